"""The GPU check's runner (tests/real_width.py) on the CPU: the same twins shrunk, moved to a simulated CUDA
device, every method end to end. What it leaves to tests/gpu/: real widths, real CUDA kernels, bf16 on a
GPU, memory and speed."""

from __future__ import annotations

import pytest
import torch

from real_width import CONTROL, FAMILIES_AND_CONTROL, Sizes, build_twin, load_twin, method_runs, report
from simcuda import CUDA, SimulatedCuda

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # tiny models run fastest single-threaded


@pytest.mark.parametrize("family", sorted(FAMILIES_AND_CONTROL))
def test_every_method_runs_on_a_shrunk_twin_on_simulated_cuda(tmp_path, family):
    # a neutral folder name: TransformerLens matches model names inside paths ("llama", "gemma")
    folder = build_twin(family, tmp_path / "twin", shrink=True, dtype=torch.float32)
    try:
        model = load_twin(folder, device="cpu", dtype=torch.float32)
    except Exception as err:
        if family == CONTROL:
            raise
        # loading every family is the front-end half of issue 12 (tested by the architecture matrix); here
        # only the runner is under test, and the control family always loads
        pytest.skip(f"load_model cannot build the {family} twin here: {type(err).__name__}: {str(err)[:160]}")
    sizes = Sizes(batch=3, new_tokens=6, ctx=24, d_sae=96, n_examples=16, lorsa_steps=2, grpo_group=2,
                  grpo_prompts=2)
    rows: list = []
    base = dict(family=family, dtype="float32")
    with SimulatedCuda() as sim:
        model.to("cuda")
        assert next(model.parameters()).device == CUDA
        for name, run in method_runs(model, sizes).items():
            run(rows, base)
    print(report(rows))
    assert {r.status for r in rows} <= {"ok", "refused"}, report(rows)
    methods = {r.method.split(" ")[0] for r in rows}
    assert {"generate", "logit", "translation", "lorsa", "corrsteer", "sae", "thr", "grpo"} <= methods
    assert sim.checked > 10_000  # the runner really ran on the simulated device
