"""Collect CorrSteer statistics: SAE features on generated tokens, correlated with correctness.

For each batch: greedy generation (KV cache, left padding); at every forward call each SAE encodes
only the newest position at its own hook; activations are pooled over generated tokens up to EOS
(max / mean) or read at the answer position; the task's checker labels each sample and the pooled
features update a running :class:`CorrelationStats` per hook. Memory is O(batch x d_sae).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.progress import bar_disabled
from interp.core.generation import generate
from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError
from interp.steering.saes import SAEs, resolve_saes
from interp.steering.stats import CorrelationStats
from interp.core.tasks import TaskProtocol

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from transformer_lens import HookedTransformer

__all__ = ["Collection", "collect", "pool_steps", "Pooling", "default_pooling"]

Pooling = Literal["max", "mean", "answer"]
"""How per-step SAE activations become one vector per sample.

``max`` / ``mean`` over generated tokens up to EOS (the paper's defaults); ``answer`` reads only the
position that predicts the first generated token, i.e. the last prompt position (the paper's
multiple-choice setting, and a leakage check for the others: it cannot see the answer being written)."""


def default_pooling(task: TaskProtocol) -> Pooling:
    """The paper's pooling for a task's answer format: the answer position for a choice letter, the mean
    for a number (long-form math), the max over generated tokens otherwise."""
    return {"choice": "answer", "number": "mean"}.get(getattr(task, "answer_format", "text"), "max")  # type: ignore[return-value]


def pool_steps(
    steps: Float[Tensor, "batch steps d"], alive: Tensor, pooling: Pooling
) -> Float[Tensor, "batch d"]:
    """Pool per-step activations over the steps that count (``alive``); ``answer`` takes step 0."""
    if pooling == "answer":
        return steps[:, 0]
    m = alive.to(steps.dtype)[..., None]
    if pooling == "mean":
        return (steps * m).sum(1) / m.sum(1).clamp_min(1)
    if pooling == "max":  # step 0 always counts, so every row has a finite max
        return steps.masked_fill(~alive.bool()[..., None], -torch.inf).amax(1)
    raise ValueError(f"pooling must be one of {get_args(Pooling)}, got {pooling!r}.")


@dataclass
class Collection:
    """What :func:`collect` returns: per-hook statistics, generations, labels and top examples."""

    stats: dict[str, CorrelationStats]
    resid_stats: dict[str, CorrelationStats]
    generations: list[str]
    labels: np.ndarray
    pooling: Pooling
    task_name: str
    top_values: dict[str, Float[Tensor, "k d_sae"]] = field(default_factory=dict)
    top_indices: dict[str, Int[Tensor, "k d_sae"]] = field(default_factory=dict)

    @property
    def hooks(self) -> list[str]:
        return list(self.stats)

    @property
    def accuracy(self) -> float:
        return float(self.labels.mean()) if len(self.labels) else float("nan")

    def correlations(self) -> dict[str, Tensor]:
        return {h: s.correlation() for h, s in self.stats.items()}

    def coefficients(self, hook: str) -> Tensor:
        """Mean pooled activation on correct samples (zeros included): the steering coefficient."""
        return self.stats[hook].mean_active(1)

    def to_frame(self, top: int = 5) -> pd.DataFrame:
        """Top features by r per hook."""
        rows = []
        for h, s in self.stats.items():
            r = s.correlation()
            coef, rate = s.mean_active(1), s.firing_rate()
            for i in torch.argsort(r, descending=True)[:top].tolist():
                rows.append({"hook": h, "feature": i, "r": float(r[i]), "coefficient": float(coef[i]),
                             "firing_rate": float(rate[i])})
        return pd.DataFrame(rows)

    def plot(self, top: int = 50) -> "go.Figure":
        """The ``top`` largest correlations of each hook, sorted
        (:func:`interp.steering.plots.correlations_figure`)."""
        from interp.steering.plots import correlations_figure

        return correlations_figure(self, top)

    def __repr__(self) -> str:
        return (f"Collection({self.task_name!r}: {len(self.labels)} samples, accuracy {self.accuracy:.3f}, pooling "
                f"{self.pooling}, hooks {self.hooks})")

    def _repr_html_(self) -> str:
        head = (f"<b>Collection</b> {self.task_name}: {len(self.labels)} samples, accuracy {self.accuracy:.3f}, "
                f"pooling {self.pooling}")
        return head + self.to_frame(top=3).to_html(index=False, float_format=lambda x: f"{x:.3f}")


@torch.no_grad()
def collect(
    model: "HookedTransformer",
    saes: SAEs,
    task: TaskProtocol,
    *,
    pooling: Pooling | None = None,
    max_new_tokens: int | None = None,
    batch_size: int = 32,
    use_kv_cache: bool = True,
    top_k_examples: int = 5,
    progress: bool = True,
) -> Collection:
    """Run ``task`` through ``model`` and correlate each SAE feature with correctness.

    Args:
        saes: sae-lens SAEs (a list, or a dict keyed by their own hook names).
        pooling: ``"max"`` / ``"mean"`` over generated tokens up to EOS, or ``"answer"`` (only the
            position predicting the first generated token, i.e. the last prompt position; also the
            leakage check, since it cannot see the answer being written). Defaults to
            :func:`default_pooling` of the task.
        max_new_tokens: defaults to the task's.

    Example:
        >>> col = collect(model, [sae], task, pooling="max", batch_size=32)   # doctest: +SKIP
        >>> col.to_frame().head()                                              # doctest: +SKIP
    """
    c = Check("collect", SteeringConfigError)
    if not isinstance(task, TaskProtocol):
        c.fail("task", task, "a task with examples, max_new_tokens, answer_format, stop and check() (interp.core.tasks.Task)")
    c.choice("pooling", get_args(Pooling), pooling, optional=True, fix="None takes the task's default.")
    c.integer("max_new_tokens", max_new_tokens, min=1, optional=True, fix="None takes the task's own.")
    c.integer("batch_size", batch_size, min=1)
    c.boolean("use_kv_cache", use_kv_cache)
    c.integer("top_k_examples", top_k_examples, min=0)
    c.boolean("progress", progress)
    if not len(task.examples):
        raise SteeringConfigError(f"Task {task.name!r} has no examples to collect on.")
    by_hook = resolve_saes(model, saes)
    pooling = pooling or default_pooling(task)
    max_new = int(max_new_tokens or task.max_new_tokens)
    if pooling == "answer":
        max_new = max(1, max_new)
    hooks = list(by_hook)
    d_model = model.cfg.d_model
    stats = {h: CorrelationStats(by_hook[h].cfg.d_sae) for h in hooks}
    resid_stats = {h: CorrelationStats(d_model) for h in hooks}
    top_v = {h: torch.zeros(0, by_hook[h].cfg.d_sae) for h in hooks}
    top_i = {h: torch.zeros(0, by_hook[h].cfg.d_sae, dtype=torch.long) for h in hooks}
    examples = list(task.examples)
    generations: list[str] = []
    labels: list[int] = []
    bar = tqdm(total=len(examples), desc=f"collect {task.name}", disable=bar_disabled(progress))
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        feats: dict[str, list[Tensor]] = {h: [] for h in hooks}
        resid: dict[str, list[Tensor]] = {h: [] for h in hooks}

        def on_step(step: int, acts: Mapping[str, Tensor], alive: Tensor) -> None:
            for h in hooks:
                x = acts[h]
                sae = by_hook[h]
                feats[h].append(sae.encode(x.to(sae.W_dec.dtype)).float().cpu())
                resid[h].append(x.float().cpu())

        out = generate(model, [e.prompt for e in chunk], max_new, use_kv_cache=use_kv_cache, record=hooks,
                       on_step=on_step, stop=getattr(task, "stop", ()))
        texts = out.texts()
        y = torch.tensor([int(task.check(e, t)) for e, t in zip(chunk, texts)])
        alive = out.alive.cpu()
        for h in hooks:
            pooled = pool_steps(torch.stack(feats[h], 1), alive, pooling)
            # residual means (for difference-of-means) use mean pooling: a max over residual dims has no meaning
            pooled_resid = pool_steps(torch.stack(resid[h], 1), alive, "answer" if pooling == "answer" else "mean")
            stats[h].update(pooled, y)
            resid_stats[h].update(pooled_resid, y)
            if top_k_examples:
                idx = torch.arange(start, start + len(chunk))[:, None].expand_as(pooled)
                vals = torch.cat([top_v[h], pooled])
                inds = torch.cat([top_i[h], idx])
                k = min(top_k_examples, vals.shape[0])
                top_v[h], order = vals.topk(k, dim=0)
                top_i[h] = inds.gather(0, order)
        generations.extend(texts)
        labels.extend(y.tolist())
        bar.update(len(chunk))
    bar.close()
    return Collection(stats, resid_stats, generations, np.array(labels, dtype=np.int64), pooling, task.name,
                      top_v, top_i)
