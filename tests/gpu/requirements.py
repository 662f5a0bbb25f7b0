"""Print the pinned requirements (constraints.txt lines) of every distribution the GPU check imports, torch
excluded: what ``make wheelhouse`` downloads for a CUDA machine that has torch and transformers and nothing
of ours.

The set is measured, not guessed: the check's own runner (tests/real_width.py) runs every method once on a
tiny twin on the CPU, pytest is imported as the check imports it, and every module then in ``sys.modules``
is mapped to its distribution.

    python tests/gpu/requirements.py > .wheelhouse/requirements.txt
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = {"torch", "triton"}  # the GPU machine's own CUDA build of torch (and what comes with it)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import pytest  # noqa: F401 (the check runs under pytest)
    import torch

    torch.set_num_threads(1)
    import conftest  # noqa: F401 (tests/conftest.py: what every test run imports)
    from real_width import CONTROL, Sizes, build_twin, load_twin, method_runs
    from test_methods_on_gpu import METHODS  # noqa: F401 (the GPU test module itself)

    # stdout carries the requirements only: what the run prints goes to stderr
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        model = load_twin(build_twin(CONTROL, Path(tmp) / "twin", shrink=True, dtype=torch.float32), device="cpu",
                          dtype=torch.float32)
        sizes = Sizes(batch=2, new_tokens=4, ctx=16, d_sae=32, n_examples=16, lorsa_steps=1, grpo_group=2,
                      grpo_prompts=2)
        rows: list = []
        for run in method_runs(model, sizes).values():
            run(rows, dict(family=CONTROL, dtype="float32"))
    owners = md.packages_distributions()
    used = {_canonical(d) for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])}
    used |= {_canonical(r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip())
             for r in (md.requires("pytest") or []) if "extra" not in r}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pins[_canonical(line.split("==")[0])] = line.strip()
    missing = sorted(u for u in used if u not in pins and u not in EXCLUDED and u != "interp")
    if missing:
        print(f"# imported but not pinned in constraints.txt (left to the machine): {', '.join(missing)}")
    for name in sorted(used):
        if name in pins and name not in EXCLUDED:
            print(pins[name])


if __name__ == "__main__":
    main()
