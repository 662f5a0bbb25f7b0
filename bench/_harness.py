"""What every peer bench shares: thread pinning, the load average, finding a peer package, interleaved
(ABAB) timing with medians, persistent worker processes (each method's peak memory is its own), the
machine's matmul rate, and the one format of the ratio lines that ``make bench`` prints.

Every ratio line starts with ``RATIO`` so the README's table and a closing note can be grepped from a run:

    RATIO <method> | ours <t> | vs <peer>: <t> = <x>x faster | vs floor <floor>: <t> = <x>x the floor

Peers are optional (``bench/requirements.txt``, installed by ``make bench``); a missing one prints
``peer not installed: <reason>`` in its ratio line instead of a number.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------------- environment
def pin_threads(threads: int) -> None:
    """One torch thread (and one OpenMP/MKL thread for anything started later): on a shared 2-core
    machine more threads only fight the other jobs, and both sides of a ratio must run alike."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(threads)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def header(title: str, threads: int) -> None:
    import torch

    print(f"# {title}")
    print(f"# torch {torch.__version__}, {threads} thread(s), {load_average()}")


# ----------------------------------------------------------------------------------- peers
def peer(module: str, distribution: str | None = None) -> tuple[Any | None, str]:
    """``(module, "")`` when the peer imports, else ``(None, reason)``: not installed, or the import error."""
    from importlib import metadata

    dist = distribution or module
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None, f"{dist} is not installed (make bench installs bench/requirements.txt)"
    try:
        return importlib.import_module(module), version
    except Exception as err:  # a peer that installs but does not import is reported, not fatal
        return None, f"{dist} {version} is installed but `import {module}` fails: {type(err).__name__}: {err}"


# ----------------------------------------------------------------------------------- timing
def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def interleave(fns: dict[str, Callable[[], Any]], repeats: int, *, warmup: bool = True,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of every function, run A B C A B C ... so that load drifts hit all alike. ``clock``:
    wall clock by default; ``time.process_time`` counts this process's CPU seconds, which the other jobs of a
    shared machine do not stretch (for single-threaded runs: the work done)."""
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = clock()
            fn()
            times[key].append(clock() - t0)
    return times


def matmul_rate(seconds: float = 1.0, n: int = 512) -> float:
    """FLOP/s of a float32 ``n x n`` matmul on this process's threads, measured now (the machine's floor)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------------- memory
def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    try:  # Linux: writing 5 resets VmHWM (peak RSS) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measured_call(fn: Callable[[], Any]) -> dict[str, float]:
    """Run ``fn`` once: seconds and peak resident memory above what the process held before."""
    reset_peak()
    base = rss_kb("VmRSS")
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mib": max(0, rss_kb("VmHWM") - base) / 1024}


class Workers:
    """One long-lived subprocess per method (``script --worker NAME ...``): each builds its own inputs once,
    then answers every ``run`` line with one measured call as JSON. The coordinator asks them in turn
    (A B C A B C ...), so timings are interleaved and each method's peak memory is its own process's."""

    def __init__(self, script: str, names: Sequence[str], args: Sequence[str]):
        self.procs: dict[str, subprocess.Popen] = {}
        self.failed: dict[str, str] = {}
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        for name in names:
            cmd = [sys.executable, script, "--worker", name, *args]
            self.procs[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True, env=env)
        self.info: dict[str, dict] = {}
        for name in list(self.procs):
            msg = self._read(name)
            if msg is not None:
                self.info[name] = msg

    def _read(self, name: str) -> dict | None:
        proc = self.procs[name]
        while True:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read()[-3000:]
                self.failed[name] = err.strip().splitlines()[-1] if err.strip() else "worker exited"
                self.failed[name + ":stderr"] = err
                del self.procs[name]
                return None
            if line.startswith("{"):
                return json.loads(line)

    def run(self, repeats: int) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {n: [] for n in self.procs}
        for _ in range(repeats):
            for name in list(self.procs):
                self.procs[name].stdin.write("run\n")
                self.procs[name].stdin.flush()
                msg = self._read(name)
                if msg is not None:
                    out[name].append(msg)
        return {k: v for k, v in out.items() if v}

    def close(self) -> None:
        for proc in self.procs.values():
            proc.stdin.close()
            proc.wait(timeout=60)


def serve(setup: Callable[[], tuple[Callable[[], Any], dict]]) -> None:
    """Worker side of :class:`Workers`: build once, warm up, then one measured call per ``run`` line."""
    fn, info = setup()
    if not info.pop("warm", False):
        fn()  # warm-up (allocator, kernels, lazy imports), unless setup's own first call was one
    print(json.dumps({"ready": True, **info}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            print(json.dumps(measured_call(fn)), flush=True)


# ----------------------------------------------------------------------------------- report
def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(line: str) -> None:
    """Print a ratio line, and append it to the file ``$BENCH_RATIOS`` names (``make bench`` lists them all)."""
    print(line, flush=True)
    path = os.environ.get("BENCH_RATIOS")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def ratio_line(method: str, ours: float, *, peer_name: str, peer: float | None = None, peer_missing: str = "",
               floor_name: str, floor: float | None, extra: str = "", no_peer: str = "") -> str:
    """The one format of a ratio line (times in seconds; medians of interleaved repeats). ``no_peer`` says why
    a method has no peer package at all (as opposed to one that is not installed)."""
    parts = [f"RATIO {method}", f"ours {fmt_s(ours)}"]
    if no_peer:
        parts.append(f"vs peer: none ({no_peer})")
    elif peer is not None:
        r = peer / ours
        parts.append(f"vs {peer_name} {fmt_s(peer)}: " + (f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"))
    else:
        parts.append(f"vs {peer_name}: peer not installed: {peer_missing}" if peer_missing
                     else f"vs {peer_name}: not measured")
    if floor is not None:
        parts.append(f"vs floor ({floor_name}) {fmt_s(floor)}: {ours / floor:.2f}x the floor's time")
    line = " | ".join(parts)
    return line + (f" | {extra}" if extra else "")
