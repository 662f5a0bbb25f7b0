"""Where each SAE reads and writes: its own hook name, checked against the model.

CorrSteer's reference code applied the SAE trained on layer L's output to layer L's input; here
the hook name stored in the SAE (``sae.cfg.metadata.hook_name``) is the single source of truth,
and a hook the model lacks or a width that does not match is an error before any work starts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import torch

from interp.steering.errors import SteeringConfigError

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

__all__ = ["SAEs", "HookError", "sae_hook_name", "resolve_saes", "hook_widths", "check_hooks"]

SAEs = Union["SAE[Any]", Sequence["SAE[Any]"], Mapping[str, "SAE[Any]"]]


class HookError(SteeringConfigError):
    """A hook name the model lacks, or an SAE / vector whose width does not fit its hook."""


def sae_hook_name(sae: "SAE[Any]") -> str:
    """The hook an SAE was trained on (``sae.cfg.metadata.hook_name``)."""
    name = getattr(getattr(getattr(sae, "cfg", None), "metadata", None), "hook_name", None)
    if not name:
        raise HookError(
            f"{type(sae).__name__} has no hook name (sae.cfg.metadata.hook_name is empty). Set it to the "
            "TransformerLens hook the SAE was trained on, e.g. sae.cfg.metadata.hook_name = 'blocks.2.hook_resid_post'."
        )
    return str(name)


_RESIDUAL_WIDTH = re.compile(r"(^hook_embed$|^blocks\.\d+\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$)")


def hook_widths(model: "HookedTransformer", names: Sequence[str]) -> dict[str, int]:
    """Width of the last dimension at each hook: d_model for residual-stream hooks, otherwise read from
    one single-token forward pass."""
    check_hooks(model, names)
    widths: dict[str, int] = {n: int(model.cfg.d_model) for n in names if _RESIDUAL_WIDTH.match(n)}
    if len(widths) == len(set(names)):
        return widths

    def record(act: torch.Tensor, hook: Any) -> None:
        widths[hook.name] = int(act.shape[-1])

    tokens = torch.zeros(1, 1, dtype=torch.long, device=model.cfg.device)
    with torch.no_grad():
        model.run_with_hooks(tokens, return_type=None, fwd_hooks=[(n, record) for n in names if n not in widths])
    return widths


def check_hooks(model: "HookedTransformer", names: Sequence[str]) -> None:
    """Raise :class:`HookError` naming the closest valid hooks when a name is not in the model."""
    for name in names:
        if not isinstance(name, str):
            raise HookError(f"Hook names are strings such as 'blocks.1.hook_resid_post'; got {name!r}.")
        if name not in model.hook_dict:
            close = difflib.get_close_matches(name, list(model.hook_dict), n=3, cutoff=0.5)
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise HookError(
                f"The model has no hook named {name!r} ({model.cfg.n_layers} layers, blocks.0 to "
                f"blocks.{model.cfg.n_layers - 1}).{hint} List them with list(model.hook_dict)."
            )


def resolve_saes(model: "HookedTransformer", saes: SAEs) -> dict[str, "SAE[Any]"]:
    """Map hook name -> SAE, checking every hook exists and each SAE's ``d_in`` fits its hook."""
    if isinstance(saes, Mapping):
        items = list(saes.items())
        for key, sae in items:
            own = sae_hook_name(sae)
            if own != key:
                raise HookError(
                    f"SAE given under {key!r} was trained on {own!r}. The SAE's own hook decides where it reads "
                    "and writes; pass a list of SAEs, or key the dict by sae.cfg.metadata.hook_name."
                )
    else:
        seq = [saes] if hasattr(saes, "encode") else list(saes)  # type: ignore[arg-type]
        items = [(sae_hook_name(s), s) for s in seq]
    if not items:
        raise HookError("No SAEs given: pass at least one sae_lens SAE.")
    names = [k for k, _ in items]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise HookError(f"Two SAEs read the same hook {sorted(dup)}; pass one SAE per hook.")
    widths = hook_widths(model, names)
    for name, sae in items:
        if int(sae.cfg.d_in) != widths[name]:
            raise HookError(
                f"SAE for {name!r} has d_in={sae.cfg.d_in} but that hook carries vectors of width {widths[name]}. "
                "It was trained for a different model or hook; load the SAE that matches this model."
            )
    return dict(items)
