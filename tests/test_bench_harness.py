"""The peer-bench harness: a missing peer is reported with its reason, timings are interleaved A B A B,
and every ratio line has one format (no timing is asserted here: performance lives in the benches)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _harness as H  # noqa: E402


def test_missing_peer_says_why():
    module, why = H.peer("no_such_peer_module", "no-such-peer-distribution")
    assert module is None and "no-such-peer-distribution is not installed" in why
    line = H.ratio_line("m", 1.0, peer_name="p", peer_missing=why, floor_name="f", floor=0.5)
    assert line.startswith("RATIO m | ours 1.00 s | vs p: peer not installed: no-such-peer-distribution")
    assert line.endswith("vs floor (f) 500.0 ms: 2.00x the floor's time")


def test_installed_peer_imports():
    module, version = H.peer("pytest")
    assert module is pytest and version == pytest.__version__


def test_ratio_line_directions():
    assert "vs p 3.00 s: 1.50x faster" in H.ratio_line("m", 2.0, peer_name="p", peer=3.0, floor_name="f", floor=None)
    assert "vs p 1.00 s: 2.00x slower" in H.ratio_line("m", 2.0, peer_name="p", peer=1.0, floor_name="f", floor=None)
    assert "vs peer: none (no package)" in H.ratio_line("m", 2.0, peer_name="", no_peer="no package", floor_name="f",
                                                        floor=1.0)


def test_interleave_runs_abab(tmp_path, monkeypatch):
    calls = []
    times = H.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=False)
    assert calls == ["a", "b"] * 3 and [len(v) for v in times.values()] == [3, 3]
    out = tmp_path / "ratios.txt"
    monkeypatch.setenv("BENCH_RATIOS", str(out))
    H.report("RATIO x")
    H.report("RATIO y")
    assert out.read_text() == "RATIO x\nRATIO y\n"
