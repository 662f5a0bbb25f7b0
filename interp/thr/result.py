"""Result objects of THR analyses: a scored rollout batch (``THRResult``) and a GRPO training log
(``GRPOLog``), each with ``.to_frame()``, ``.plot()`` and ``_repr_html_``."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from interp.thr.core import dominant_threshold, group_advantages, thr_weights

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["THRResult", "GRPOLog", "thr_statistics", "overlap_top_fraction"]


def overlap_top_fraction(a: Tensor, b: Tensor, fraction: float = 0.1) -> float:
    """Share of the top-``fraction`` tokens by ``a`` that are also in the top-``fraction`` by ``b``
    (chance level is ``fraction``)."""
    n = a.numel()
    k = max(1, int(round(fraction * n)))
    if n == 0:
        return float("nan")
    top_a = torch.zeros(n, dtype=torch.bool)
    top_b = torch.zeros(n, dtype=torch.bool)
    top_a[torch.topk(a.float(), k).indices] = True
    top_b[torch.topk(b.float(), k).indices] = True
    return float((top_a & top_b).sum()) / k


def thr_statistics(
    thr: list[Tensor], entropy: list[Tensor], rewards: Tensor, group_size: int, *, beta: float = 1.0,
    scale_rewards: bool = True, top_fraction: float = 0.1,
) -> dict[str, float]:
    """Per-batch THR statistics over the groups that carry a signal (not all rewards equal):
    density (share of tokens with |THR| > tau), share of dominant tokens with THR > 0, mean THR
    in correct / incorrect responses, mean entropy of dominant vs all tokens, and the overlap of
    the top-10% |THR| tokens with the top-10% entropy tokens (chance = 0.1)."""
    adv = group_advantages(rewards, group_size=group_size, scale=scale_rewards)
    dom_all, thr_all, ent_all, corr_thr, wrong_thr = [], [], [], [], []
    for b in range(len(thr) // group_size):
        sl = slice(b * group_size, (b + 1) * group_size)
        if (adv[sl] == 0).all():
            continue
        tau = dominant_threshold(thr[sl], rewards[sl], beta=beta, scale_rewards=scale_rewards)
        for t, e, a in zip(thr[sl], entropy[sl], adv[sl]):
            dom_all.append(t.abs() > tau)
            thr_all.append(t)
            ent_all.append(e)
            (corr_thr if a > 0 else wrong_thr).append(t)
    nan = float("nan")
    if not thr_all:
        return dict(active_groups=0.0, thr_density=nan, dominant_positive=nan, thr_mean_correct=nan,
                    thr_mean_incorrect=nan, entropy_dominant=nan, entropy_all=nan, overlap_thr_entropy=nan)
    dom, t, e = torch.cat(dom_all), torch.cat(thr_all), torch.cat(ent_all)
    mean = lambda xs: float(torch.cat(xs).mean()) if xs and torch.cat(xs).numel() else nan  # noqa: E731
    return dict(
        active_groups=float(sum(1 for b in range(len(thr) // group_size)
                                if not (adv[b * group_size:(b + 1) * group_size] == 0).all())),
        thr_density=float(dom.float().mean()),
        dominant_positive=float((t[dom] > 0).float().mean()) if dom.any() else nan,
        thr_mean_correct=mean(corr_thr),
        thr_mean_incorrect=mean(wrong_thr),
        entropy_dominant=float(e[dom].mean()) if dom.any() else nan,
        entropy_all=float(e.mean()),
        overlap_thr_entropy=overlap_top_fraction(t.abs(), e, top_fraction),
    )


@dataclass
class THRResult:
    """THR of a batch of scored rollouts: ``len(rewards) // group_size`` groups of responses.

    Per response: its prompt, token ids and strings, THR, the sampled token's probability and the
    entropy of the old policy at that position (both at the sampling temperature)."""

    prompts: list[str]
    completions: list[str]
    tokens: list[Tensor]
    token_text: list[list[str]]
    thr: list[Tensor]
    prob: list[Tensor]
    entropy: list[Tensor]
    rewards: Tensor
    group_size: int
    scale_rewards: bool = True
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return len(self.rewards) // self.group_size

    @property
    def advantages(self) -> Tensor:
        return group_advantages(self.rewards, group_size=self.group_size, scale=self.scale_rewards)

    @property
    def correct(self) -> list[bool]:
        """Which responses count as correct: positive advantage (above the group's mean reward); in a
        group whose rewards are all equal (no advantage), those with a positive reward."""
        adv = self.advantages
        return [bool(a > 0 or (a == 0 and r > 0)) for a, r in zip(adv.tolist(), self.rewards.tolist())]

    @property
    def active_groups(self) -> list[int]:
        """Groups whose rewards are not all equal: the only ones with a GRPO signal (nonzero
        advantages), the groups ``statistics()["active_groups"]`` counts."""
        adv = self.advantages.reshape(self.n_groups, self.group_size)
        return (adv != 0).any(dim=1).nonzero().reshape(-1).tolist()

    def group(self, b: int) -> range:
        if not 0 <= b < self.n_groups:
            raise IndexError(f"group {b} out of range: the result holds {self.n_groups} groups.")
        return range(b * self.group_size, (b + 1) * self.group_size)

    def threshold(self, b: int, beta: float = 1.0) -> float:
        idx = self.group(b)
        return dominant_threshold([self.thr[i] for i in idx], self.rewards[idx.start:idx.stop], beta=beta,
                                  scale_rewards=self.scale_rewards)

    def weights(self, p: float, *, beta: float = 1.0, non_dominant: float = 1.0) -> list[Tensor]:
        return thr_weights(self.thr, self.rewards, p=p, beta=beta, non_dominant=non_dominant,
                           group_size=self.group_size, scale_rewards=self.scale_rewards)

    def dominant(self, beta: float = 1.0) -> list[Tensor]:
        taus = [self.threshold(b, beta) for b in range(self.n_groups)]
        return [t.abs() > taus[i // self.group_size] for i, t in enumerate(self.thr)]

    def statistics(self, beta: float = 1.0) -> dict[str, float]:
        return thr_statistics(self.thr, self.entropy, self.rewards, self.group_size, beta=beta,
                              scale_rewards=self.scale_rewards)

    def to_frame(self, p: float | None = None, beta: float = 1.0) -> "pd.DataFrame":
        """One row per generated token (group, response, position, token, THR, prob, entropy,
        reward, advantage, dominant and, when ``p`` is given, the weight under that p)."""
        import pandas as pd

        adv = self.advantages
        dom = self.dominant(beta)
        w = self.weights(p, beta=beta) if p is not None else None
        rows = []
        for i, t in enumerate(self.thr):
            n = t.numel()
            rows.append(pd.DataFrame(dict(
                group=i // self.group_size, response=i, position=range(n), token_id=self.tokens[i].tolist(),
                token=self.token_text[i], thr=t.tolist(), prob=self.prob[i].tolist(),
                entropy=self.entropy[i].tolist(), reward=float(self.rewards[i]), advantage=float(adv[i]),
                dominant=dom[i].tolist(), **({"weight": w[i].tolist()} if w is not None else {}),
            )))
        return pd.concat(rows, ignore_index=True)

    def plot(self, beta: float = 1.0) -> "go.Figure":
        """Histogram of THR over the groups with mixed rewards, correct vs incorrect responses
        (:func:`interp.thr.plots.histogram_figure`, log counts)."""
        from interp.thr.plots import histogram_figure

        return histogram_figure(self, beta=beta, log_y=True)

    def __repr__(self) -> str:
        n_tok = sum(t.numel() for t in self.thr)
        return (f"THRResult({self.n_groups} groups x {self.group_size} responses, {n_tok} tokens, mean reward "
                f"{float(self.rewards.mean()):.3f}, {len(self.active_groups)} groups with a signal)")

    def _repr_html_(self) -> str:
        s = self.statistics()
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in s.items())
        return (f"<b>THRResult</b>: {self.n_groups} groups x {self.group_size} responses, "
                f"mean reward {float(self.rewards.mean()):.3f}<table>{rows}</table>")


@dataclass
class GRPOLog:
    """Per-step records of a GRPO run (reward, loss, clip fraction, KL, THR statistics...)."""

    records: list[dict[str, float]] = field(default_factory=list)
    name: str = "grpo"

    def append(self, record: dict[str, float]) -> None:
        self.records.append(record)

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame(self.records)

    def plot(self, columns: tuple[str, ...] = ("reward_mean", "thr_density", "entropy_all")) -> "go.Figure":
        """Training curves, one panel per column, against the step (:func:`interp.thr.plots.training_figure`)."""
        from interp.thr.plots import training_figure

        return training_figure([self], columns)

    def __repr__(self) -> str:
        if not self.records:
            return f"GRPOLog({self.name!r}, empty)"
        r = [x.get("reward_mean", float("nan")) for x in self.records]
        return f"GRPOLog({self.name!r}, {len(self.records)} steps, reward {r[0]:.3f} -> {r[-1]:.3f})"

    def _repr_html_(self) -> str:
        if not self.records:
            return f"<b>GRPOLog</b> {html.escape(self.name)}: empty"
        return f"<b>GRPOLog</b> {html.escape(self.name)}: {len(self.records)} steps" + self.to_frame().tail(5).to_html()
