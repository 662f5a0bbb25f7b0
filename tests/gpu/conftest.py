"""tests/gpu/: every method on a real CUDA GPU at real width (``make gpu-check``; the tests skip, with the
reason, wherever torch sees no CUDA device). The summary table (time, throughput, peak GPU memory per method) is
printed at the end of the run and written to ``$GPU_CHECK_OUT`` (default ``out/gpu-check.json``)."""

from __future__ import annotations

import os

import torch


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from real_width import ROWS, Results, report

    if not ROWS:
        return
    terminalreporter.section("GPU check: time, throughput and peak GPU memory per method")
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    terminalreporter.write_line(f"device: {name}; torch {torch.__version__}")
    terminalreporter.write_line(report(ROWS))
    out = os.environ.get("GPU_CHECK_OUT", "out/gpu-check.json")
    Results(list(ROWS)).save(out)
    terminalreporter.write_line(f"(also written to {out})")
