"""Add steering vectors to the residual stream during generation (CorrSteer, Cho et al. 2025, step 7).

``steer`` adds ``c * W_dec[i]`` (no decoder bias) at each vector's hook. With
``positions="generated"`` only the positions whose next-token prediction is generated are changed:
the last prompt position and every generated token, exactly the "last position of every forward
call" of KV-cached generation. The same positions are found when generation recomputes the whole
sequence without a cache, so both give the same tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError
from interp.steering.saes import HookError, check_hooks, hook_widths, sae_hook_name

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

__all__ = ["SteeringVector", "Positions", "PositionTracker", "steer"]

Positions = Literal["generated", "all"]
TRACKER_HOOK = "blocks.0.hook_resid_pre"


@dataclass
class SteeringVector:
    """``coefficient * direction`` added at ``hook_name``.

    ``source`` says where it came from (``"sae"``, ``"diff_means"``, ``"random"``), ``feature`` is
    the SAE feature index when there is one.

    Example:
        >>> v = SteeringVector.from_sae(sae, feature=12, coefficient=3.0)  # doctest: +SKIP
    """

    hook_name: str
    direction: Float[Tensor, " d_model"]
    coefficient: float
    source: str = "sae"
    feature: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = Check(self, SteeringConfigError)
        c.text("hook_name")
        c.number("coefficient", fix="A NaN or infinite coefficient steers every token to garbage.")
        c.instance("direction", Tensor)
        if self.direction.ndim != 1 or not self.direction.is_floating_point() or \
                not bool(torch.isfinite(self.direction).all()):
            c.fail("direction", f"tensor of shape {tuple(self.direction.shape)}", "a 1-D float tensor of finite values")
        c.integer("feature", min=0, optional=True)
        self.coefficient = float(self.coefficient)

    @classmethod
    def from_sae(cls, sae: "SAE[Any]", feature: int, coefficient: float, **meta: Any) -> "SteeringVector":
        """Decoder row ``W_dec[feature]`` of ``sae`` at the SAE's own hook."""
        if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < sae.cfg.d_sae:
            raise IndexError(f"feature {feature} is out of range for an SAE with d_sae={sae.cfg.d_sae}.")
        return cls(sae_hook_name(sae), sae.W_dec[feature].detach().clone(), float(coefficient), "sae", int(feature), meta)

    @property
    def vector(self) -> Float[Tensor, " d_model"]:
        return self.coefficient * self.direction

    def scaled(self, factor: float) -> "SteeringVector":
        return SteeringVector(self.hook_name, self.direction, self.coefficient * factor, self.source, self.feature,
                              dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        return {"hook_name": self.hook_name, "coefficient": self.coefficient, "source": self.source,
                "feature": self.feature, "meta": self.meta}


class PositionTracker:
    """Knows, at every forward call, the absolute position of its first token and the prompt length.

    It watches ``blocks.0.hook_resid_pre``, which every forward pass crosses (TransformerLens's
    ``generate`` embeds tokens itself and starts at layer 0, so ``hook_embed`` is skipped). A call of one token after a
    previous call of the same batch is a KV-cached step; a call that repeats the previous call's
    embeddings plus one token is an uncached step; anything else starts a new prompt. Call
    :meth:`reset` (or pass ``prompt_len``) to force a new prompt.
    """

    def __init__(self, prompt_len: int | None = None) -> None:
        self.fixed_prompt_len = prompt_len
        self.reset()

    def reset(self) -> None:
        self.prompt_len: int | None = self.fixed_prompt_len
        self.offset = 0
        self.total = 0
        self._prev: Tensor | None = None

    def __call__(self, embed: Tensor, hook: Any) -> None:
        b, n = embed.shape[:2]
        prev = self._prev
        if prev is not None and prev.shape[0] == b and n == 1 and self.total > 0 and self.prompt_len is not None:
            self.offset, self.total = self.total, self.total + 1  # cached step
        elif (prev is not None and prev.shape[0] == b and n == prev.shape[1] + 1
              and torch.equal(embed[:, : prev.shape[1]], prev)):
            self.offset, self.total = 0, n  # uncached step: whole sequence again
        else:
            self.offset, self.total = 0, n  # new prompt
            self.prompt_len = self.fixed_prompt_len if self.fixed_prompt_len is not None else n
        self._prev = embed.detach()

    def first_steered(self) -> int:
        """Index, within the current call, of the first position to steer (may be past the end)."""
        assert self.prompt_len is not None
        return max(0, self.prompt_len - 1 - self.offset)


def _stack_by_hook(vectors: Sequence[SteeringVector], scale: float) -> dict[str, Tensor]:
    by_hook: dict[str, Tensor] = {}
    for v in vectors:
        vec = v.vector.detach() * scale
        by_hook[v.hook_name] = by_hook[v.hook_name] + vec if v.hook_name in by_hook else vec
    return by_hook


@contextmanager
def steer(
    model: "HookedTransformer",
    vectors: SteeringVector | Sequence[SteeringVector],
    *,
    positions: Positions = "generated",
    scale: float = 1.0,
    prompt_len: int | None = None,
) -> Iterator[PositionTracker | None]:
    """Context manager: inside it every forward pass of ``model`` is steered.

    Args:
        vectors: one or more :class:`SteeringVector`; several on one hook are summed.
        positions: ``"generated"`` (the last prompt position and every generated token; prompt
            positions before it are untouched) or ``"all"``.
        scale: multiplies every coefficient (``0`` gives the unsteered model).
        prompt_len: fix the prompt length instead of inferring it from the first forward call.

    Example:
        >>> with steer(model, SteeringVector.from_sae(sae, 12, 3.0)):   # doctest: +SKIP
        ...     text = model.generate("Once upon a time", max_new_tokens=20, use_past_kv_cache=True)
    """
    c = Check("steer", SteeringConfigError)
    c.choice("positions", ("generated", "all"), positions)
    c.number("scale", scale, fix="0 gives the unsteered model; a NaN or infinite scale steers every token to garbage.")
    c.integer("prompt_len", prompt_len, min=1, optional=True)
    vecs = [vectors] if isinstance(vectors, SteeringVector) else list(vectors)
    bad = next((v for v in vecs if not isinstance(v, SteeringVector)), None)
    if bad is not None:
        c.fail("vectors", bad, "a SteeringVector or a sequence of them")
    names = sorted({v.hook_name for v in vecs})
    check_hooks(model, names)
    widths = hook_widths(model, names) if names else {}
    for v in vecs:
        if v.direction.ndim != 1 or v.direction.shape[0] != widths[v.hook_name]:
            raise HookError(
                f"Steering vector for {v.hook_name!r} has shape {tuple(v.direction.shape)} but the hook carries "
                f"vectors of width {widths[v.hook_name]}; build it from an SAE or activations of this model and hook."
            )
    param = next(model.parameters())
    by_hook = {k: t.to(device=param.device, dtype=param.dtype) for k, t in _stack_by_hook(vecs, scale).items()}
    tracker = PositionTracker(prompt_len) if positions == "generated" else None

    def make_hook(vec: Tensor) -> Any:
        def hook(act: Tensor, hook: Any) -> Tensor:
            if tracker is None:
                return act + vec
            start = tracker.first_steered()
            if start >= act.shape[1]:
                return act
            out = act.clone()
            out[:, start:] += vec  # vectorised over batch and positions
            return out

        return hook

    fwd = [(name, make_hook(vec)) for name, vec in by_hook.items()]
    if tracker is not None:
        fwd.insert(0, (TRACKER_HOOK, tracker))  # first, so it sees the unsteered input
    with model.hooks(fwd_hooks=fwd):
        yield tracker
