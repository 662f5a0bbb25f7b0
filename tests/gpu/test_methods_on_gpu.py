"""Every method end to end on CUDA, in bf16 and fp32, on random-init twins of Llama-3.1-8B and Gemma-2-2B at
their real width (2 layers, real vocabularies: 128,256 and 256,000 tokens; SAEs of 65,536 features), with
time, throughput and peak GPU memory per method (printed at the end by tests/conftest.py)."""

from __future__ import annotations

import gc

import pytest
import torch

from real_width import FAMILIES, ROWS, Row, Sizes, build_twin, load_twin, method_runs

NO_CUDA = (f"needs a CUDA GPU: torch {torch.__version__} sees none here (torch.cuda.is_available() is False). "
           "Run `make gpu-check` on a GPU machine (DEVELOPING.md, 'GPU check').")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
METHODS = ("generation", "lens", "translation", "lorsa", "corrsteer", "thr")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One bf16 folder per family, written once; the fp32 runs load it upcast."""
    out = {}
    for i, family in enumerate(sorted(FAMILIES)):
        # neutral names: TransformerLens matches model names inside paths ("llama", "gemma")
        out[family] = build_twin(family, tmp_path_factory.mktemp(f"twin{i}"), device="cuda", dtype=torch.bfloat16)
        torch.cuda.empty_cache()
    return out


_LOADED: dict = {}


def _model(folders, family, dtype_name):
    key = (family, dtype_name)
    if key not in _LOADED:
        _LOADED.clear()  # one model on the GPU at a time
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        import time

        t0 = time.perf_counter()
        model = load_twin(folders[family], device="cuda", dtype=DTYPES[dtype_name])
        ROWS.append(Row(family, dtype_name, "load", time.perf_counter() - t0, 1, "model",
                        torch.cuda.max_memory_allocated() / 2**30))
        _LOADED[key] = model
    return _LOADED[key]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype_name", sorted(DTYPES))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_method_on_cuda(folders, family, dtype_name, method):
    model = _model(folders, family, dtype_name)
    assert next(model.parameters()).device.type == "cuda"
    rows: list = []
    try:
        method_runs(model, Sizes())[method](rows, dict(family=family, dtype=dtype_name))
    finally:
        ROWS.extend(rows)
        torch.cuda.empty_cache()
    assert all(r.status in ("ok", "refused") for r in rows)
