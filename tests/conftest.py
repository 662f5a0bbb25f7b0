"""Shared test set-up: no network, deterministic torch, the shared stories260K folder."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_model_dir(name: str = "stories260K") -> Path:
    """Where the tests find a shared model: ``INTERP_STORIES260K`` or ``../shared/models/<name>`` beside
    the project (CI always has it there)."""
    if name == "stories260K" and os.environ.get("INTERP_STORIES260K"):
        return Path(os.environ["INTERP_STORIES260K"]).expanduser()
    return PROJECT_ROOT.parent / "shared" / "models" / name


@pytest.fixture(scope="session")
def stories_dir() -> Path:
    """The real pretrained stories260K folder (../shared/models/stories260K or INTERP_STORIES260K).

    CI always has it; a missing folder is a test failure there, and a skip elsewhere.
    """
    path = shared_model_dir("stories260K")
    if not (path / "config.json").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"stories260K expected at {path} in CI but it is missing")
        pytest.skip(f"stories260K not found at {path}; set INTERP_STORIES260K to its folder")
    return path


@pytest.fixture(scope="session")
def stories_model(stories_dir):
    """stories260K through load_model's default front-end, a TransformerBridge with raw weights (shared across
    tests: treat as read-only; a test that needs a HookedTransformer loads its own with frontend="hooked")."""
    from interp import load_model

    return load_model(stories_dir, device="cpu")


@pytest.fixture(scope="session")
def word_llama():
    """:func:`tiny_models.tiny_llama_with_tokenizer` (seed 0), shared by the test files: treat as read-only
    (a test that changes weights, hooks or the tokenizer builds its own)."""
    from tiny_models import tiny_llama_with_tokenizer

    return tiny_llama_with_tokenizer(0)


@pytest.fixture(scope="session")
def word_hf_llama():
    """:func:`tiny_models.hf_llama_with_tokenizer` (seed 0): a plain Hugging Face LlamaForCausalLM, read-only."""
    from tiny_models import hf_llama_with_tokenizer

    return hf_llama_with_tokenizer(0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture()
def one_thread():
    """Run the test single-threaded: tiny matmuls and many small backward passes are several times
    slower with two OpenMP threads spinning on a shared 2-core CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ----- the architecture matrix: random-init twins of nine families (tests/twins.py), built once per session

@pytest.fixture(scope="session")
def twin_dir(tmp_path_factory):
    """``twin_dir(family)`` -> a Hugging Face folder holding that family's twin (built on first use)."""
    from twins import build_twin

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_twin(family, tmp_path_factory.mktemp(f"twin_{family}"))
        return built[family]

    return get


@pytest.fixture(scope="session")
def twin_model(twin_dir):
    """``twin_model(family, frontend)`` -> the twin loaded by ``interp.load_model`` (cached: treat as read-only),
    and the seconds the load took (``twin_model.load_seconds[(family, frontend)]``)."""
    import time

    from interp.core.models import load_model

    cache: dict[tuple[str, str], object] = {}

    def get(family: str, frontend: str):
        key = (family, frontend)
        if key not in cache:
            folder = twin_dir(family)
            start = time.perf_counter()
            cache[key] = load_model(folder, device="cpu", frontend=frontend)
            get.load_seconds[key] = time.perf_counter() - start
        return cache[key]

    get.load_seconds = {}
    return get
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After tests/gpu/ ran on a GPU (``make gpu-check``): its table of time, throughput and peak GPU memory
    per method, also written to ``$GPU_CHECK_OUT`` (default ``out/gpu-check.json``)."""
    import sys

    real_width = sys.modules.get("real_width")
    if real_width is None or not real_width.ROWS:
        return
    terminalreporter.section("GPU check: time, throughput and peak GPU memory per method")
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    terminalreporter.write_line(f"device: {name}; torch {torch.__version__}")
    terminalreporter.write_line(real_width.report(real_width.ROWS))
    out = os.environ.get("GPU_CHECK_OUT", "out/gpu-check.json")
    real_width.Results(list(real_width.ROWS)).save(out)
    terminalreporter.write_line(f"(also written to {out})")
