"""The library runs installed as a wheel: no path into the repository, every zoo artefact shipped.

The wheel is built from a copy of the tracked (and untracked, not ignored) files, so a stale
``build/`` folder in the checkout cannot leak into it, installed with pip into a folder outside the
repository, and imported from there by a subprocess whose working directory is outside the repository
too. Its dependencies come from the project's environment; ``interp`` itself must resolve to the
installed copy (the editable install's finder sits after the path finder, so it only answers when the
package is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = ["The cat", "Once upon a time there"]
CHECK = f"PROMPTS = {PROMPTS!r}\n" + textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import torch
    torch.set_num_threads(1)

    import interp, widgets
    from interp import zoo
    from interp.core.generation import generate

    root, site = Path(sys.argv[1]), Path(sys.argv[2])
    files = {"interp": interp.__file__, "widgets": widgets.__file__}
    for name, f in files.items():
        assert Path(f).resolve().is_relative_to(site), f"{name} imported from {f}, not from the wheel in {site}"
        assert not Path(f).resolve().is_relative_to(root), f"{name} imported from the repository: {f}"

    # every registered artefact is found inside the installed package: its files, relative to its folder
    found = {}
    for name in zoo.names(kind=None):
        path = zoo.artefact_dir(name).resolve()
        assert path.is_relative_to(site), (name, path)
        found[name] = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())

    model = interp.load_model("toy-lm", device="cpu")
    out = generate(model, PROMPTS, max_new_tokens=6)
    lens = zoo.load_tuned_lens(attach=False)
    lorsa = zoo.load_lorsa()
    saes = zoo.load_saes()
    print(json.dumps({
        "files": files,
        "artefacts": found,
        "tokens": out.tokens.tolist(),
        "steps": out.n_steps,
        "lens_layers": int(lens.weight.shape[0]),
        "lorsa_heads": lorsa.cfg.n_ov_heads,
        "saes": sorted(saes),
    }))
    """
)


def _source_copy(dest: Path) -> Path:
    """The project's files as git sees them (tracked, plus untracked files not ignored), copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a file deleted but not yet committed is listed and absent
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@pytest.mark.slow
def test_installed_wheel_loads_a_zoo_model_outside_the_repository(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the project's files")
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    # --no-build-isolation: setuptools comes from the project environment, so nothing is downloaded
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(dist), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("interp-*.whl")

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                              str(site), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "interp" / "zoo" / "checkpoints" / "toy-lm" / "model.safetensors").is_file()
    assert not (site / "tests").exists() and not (site / "notebooks").exists()

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INTERP_STORIES260K")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    run = subprocess.run([sys.executable, "-c", CHECK, str(ROOT.resolve()), str(site.resolve())], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    import interp
    from interp import zoo
    from interp.core.generation import generate

    # the wheel ships every file of every registered artefact (the registry's folders, as in the checkout)
    in_checkout = {name: sorted(str(p.relative_to(zoo.artefact_dir(name))) for p in zoo.artefact_dir(name).rglob("*")
                                if p.is_file() and "__pycache__" not in p.parts)
                   for name in zoo.names(kind=None)}
    assert report["artefacts"] == in_checkout
    # the console script's module, from the installed copy: every artefact listed as trained
    listing = subprocess.run([sys.executable, "-m", "interp.app.cli", "zoo", "list"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()
    assert len(rows) == len(in_checkout) and all("[trained]" in r for r in rows), listing.stdout
    # the installed copy generates what the checkout generates
    here = generate(interp.load_model("toy-lm", device="cpu"), PROMPTS, max_new_tokens=6)
    assert report["tokens"] == here.tokens.tolist() and report["steps"] == here.n_steps
    assert report["saes"] == [f"blocks.{i}.hook_resid_post" for i in range(4)]
    assert report["lorsa_heads"] == 512
