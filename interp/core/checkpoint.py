"""Training checkpoints as safetensors + JSON, for every trainer of interp (Lorsa, GRPO).

One serialiser for optimizer state and RNG state, one atomic folder write (a crash never leaves a
half-written checkpoint behind), and one validating reader: every file is read and checked before
the caller touches any state, and a failure names the file.

>>> from interp.core.checkpoint import optimizer_state, write_checkpoint, read_checkpoint  # doctest: +SKIP
>>> tensors, meta = optimizer_state(opt)                                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interp.core.errors import InterpLoadError

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "optimizer_state",
    "load_optimizer_state",
    "rng_state",
    "restore_rng_state",
    "write_checkpoint",
    "read_checkpoint",
    "load_module",
    "Checkpoint",
    "config_differences",
    "data_fingerprint",
    "check_data_fingerprint",
    "check_optimizer_state",
]


class CheckpointError(InterpLoadError):
    """A checkpoint is missing, partial, corrupt or from a different run; the message names the file."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """A readable checkpoint written by a different run (config, task or data differ); also a ``ValueError``."""


# ----------------------------------------------------------------------------------- optimizer
def optimizer_state(opt: torch.optim.Optimizer, prefix: str = "opt.") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimizer's state as flat tensors (``{prefix}{param_id}.{key}``) plus JSON metadata (param
    groups and the non-tensor entries)."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, Tensor):
                tensors[f"{prefix}{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars, "prefix": prefix}


def _optimizer_dict(tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    prefix = meta.get("prefix", "opt.")
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        if name.startswith(prefix):
            pid, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = val
    for name, val in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    return {"state": state, "param_groups": meta["param_groups"]}


def check_optimizer_state(opt: torch.optim.Optimizer, tensors: Mapping[str, Tensor], meta: Any, where: str) -> None:
    """Raise :class:`CheckpointError` (naming ``where``) unless what :func:`optimizer_state` wrote can be
    restored into ``opt``: the same parameter groups and sizes, and every state tensor shaped like its
    parameter (or a scalar). Checked before anything is applied."""
    if not isinstance(meta, Mapping) or not isinstance(meta.get("param_groups"), list) or \
            not isinstance(meta.get("scalars"), Mapping):
        raise CheckpointError(f"{where}: the optimizer state is missing or malformed (no param_groups/scalars).")
    try:
        saved = _optimizer_dict(tensors, meta)
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{where}: the optimizer state is malformed ({err}).") from err
    groups = opt.param_groups
    sizes = [len(g.get("params", ())) for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in groups]:
        raise CheckpointError(f"{where}: the optimizer state has parameter groups of sizes {sizes}, this optimizer "
                              f"{[len(g['params']) for g in groups]}: it was saved for another model or optimizer.")
    params = [p for g in groups for p in g["params"]]
    for pid, st in saved["state"].items():
        if not 0 <= pid < len(params):
            raise CheckpointError(f"{where}: optimizer state for parameter {pid}, but there are only {len(params)}.")
        for key, val in st.items():
            if isinstance(val, Tensor) and val.ndim and tuple(val.shape) != tuple(params[pid].shape):
                raise CheckpointError(f"{where}: optimizer state {key!r} of parameter {pid} has shape "
                                      f"{tuple(val.shape)}, the parameter {tuple(params[pid].shape)}.")


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
    """Restore what :func:`optimizer_state` wrote (tensors move to each parameter's device)."""
    opt.load_state_dict(_optimizer_dict(tensors, meta))


# ----------------------------------------------------------------------------------- RNG
def rng_state(generators: Mapping[str, torch.Generator] = {}) -> dict[str, Tensor]:  # noqa: B006 (read only)
    """torch's global CPU RNG state (and CUDA's when present) plus named generators, as uint8 tensors."""
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            out[f"rng.cuda.{i}"] = torch.cuda.get_rng_state(i)
    for name, gen in generators.items():
        out[f"rng.{name}"] = gen.get_state()
    return out


def restore_rng_state(tensors: Mapping[str, Tensor], generators: Mapping[str, torch.Generator] = {}) -> None:  # noqa: B006
    torch.set_rng_state(tensors["rng.torch"])
    for name, value in tensors.items():
        if name.startswith("rng.cuda.") and torch.cuda.is_available():
            index = int(name.rsplit(".", 1)[1])
            if index < torch.cuda.device_count():
                torch.cuda.set_rng_state(value, index)
    for name, gen in generators.items():
        gen.set_state(tensors[f"rng.{name}"])


# ----------------------------------------------------------------------------------- folders
def write_checkpoint(folder: str | Path, tensors: Mapping[str, Mapping[str, Tensor]], meta: Mapping[str, Any], *,
                     models: Mapping[str, torch.nn.Module] = {}) -> Path:  # noqa: B006 (read only)
    """Write ``{file: {name: tensor}}`` safetensors files, whole modules (``{file: module}``, tied weights
    stored once) and ``state.json`` (``meta`` plus ``complete: true``) into ``folder``, atomically:
    everything goes to a sibling temporary folder that replaces ``folder`` in one rename."""
    from safetensors.torch import save_file, save_model

    final = Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, content in tensors.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in content.items()}, str(tmp / name))
    for name, module in models.items():
        save_model(module, str(tmp / name))
    (tmp / "state.json").write_text(json.dumps({**meta, "complete": True, "files": sorted([*tensors, *models])}))
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)  # atomic on one filesystem
    if old.exists():
        shutil.rmtree(old)
    return final


@dataclass
class Checkpoint:
    """Every file of a checkpoint, read and checked: ``tensors[file][name]`` and the ``state.json`` dict."""

    folder: Path
    meta: dict[str, Any]
    tensors: dict[str, dict[str, Tensor]] = field(default_factory=dict)


def read_checkpoint(folder: str | Path, files: tuple[str, ...], *, models: Mapping[str, torch.nn.Module] = {},  # noqa: B006
                    hint: str = "delete it or pass resume=False") -> Checkpoint:
    """Read ``state.json`` and the safetensors ``files`` of ``folder``, and check that each module file
    in ``models`` opens and fits its module (names and shapes), raising :class:`CheckpointError`
    naming the file when one is missing, truncated, corrupt, mismatched or marked incomplete. Nothing is
    applied to any model or optimizer here, so a failed read leaves the caller's state untouched;
    apply module files afterwards with :func:`load_module`."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [n for n in ("state.json", *files, *models) if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(f"Checkpoint {folder} is partial: missing {', '.join(missing)}; {hint}.")
    try:
        meta = json.loads((folder / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{folder / 'state.json'} is not valid JSON ({err}); {hint}.") from err
    if not isinstance(meta, dict) or not meta.get("complete"):
        raise CheckpointError(f"{folder / 'state.json'} was not completely written; {hint}.")
    out = Checkpoint(folder, meta)
    for name in files:
        try:
            out.tensors[name] = load_file(str(folder / name))
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{folder / name} is corrupt or truncated ({err}); {hint}.") from err
    for name, module in models.items():
        try:
            with safe_open(str(folder / name), framework="pt") as f:  # checks the header against the file size
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{folder / name} is corrupt or truncated ({err}); {hint}.") from err
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        extra = sorted(set(shapes) - set(want))
        wrong = sorted(k for k in shapes if k in want and shapes[k] != want[k])
        # tied weights are stored once (safetensors.save_model): only the names it keeps are required
        from safetensors.torch import _remove_duplicate_names

        dropped = {n for names in _remove_duplicate_names(module.state_dict()).values() for n in names}
        absent = sorted(set(want) - set(shapes) - dropped)
        if extra or wrong or absent or not shapes:
            raise CheckpointError(f"{folder / name} does not fit this model (unknown tensors {extra[:5]}, shape "
                                  f"mismatches {wrong[:5]}, missing {absent[:5]}); it was saved from another "
                                  "architecture or is incomplete.")
    return out


def load_module(module: torch.nn.Module, path: str | Path) -> None:
    """Load a module file written by :func:`write_checkpoint` (tied weights restored)."""
    from safetensors.torch import load_model

    load_model(module, str(path))


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ between two (JSON-like, nested) configs: ``{key: (saved, current)}``,
    nested keys joined with dots, so an error can name just what changed."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(saved) | set(current), key=str):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.update({f"{key}.{k}": v for k, v in config_differences(a, b).items()})
        elif json.loads(json.dumps(a, default=str)) != json.loads(json.dumps(b, default=str)):
            out[str(key)] = (a, b)
    return out


def data_fingerprint(*parts: Any) -> str:
    """A short hash of the data a run trains on, stored in its checkpoints so a resume with other data is
    refused: tensors hash by dtype, shape and bytes; anything else by its JSON (e.g. a task's prompts).

    >>> data_fingerprint(torch.arange(4)) == data_fingerprint(torch.arange(4))
    True
    >>> data_fingerprint(torch.arange(4)) == data_fingerprint(torch.arange(5))
    False
    """
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Tensor):
            t = part.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def check_data_fingerprint(meta: Mapping[str, Any], current: str, where: str | Path, what: str, hint: str) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint ``meta`` was written for the same data."""
    saved = meta.get("data_fingerprint")
    if saved is None:
        raise CheckpointMismatchError(f"{where} records no fingerprint of its {what} (it predates them), so resuming cannot "
                              f"check that the {what} are the same; {hint}.")
    if saved != current:
        raise CheckpointMismatchError(f"{where} was written for other {what} (fingerprint {saved}, these are {current}): "
                              f"resuming would continue on different data. Pass the same {what}, or {hint}.")
