"""Streaming Pearson correlation between per-sample features and a label (CorrSteer, Cho et al. 2025).

Only running float64 moments are kept (count, means, centred second moments, co-moment, and per-class
sums for binary labels), so memory is O(n_features) whatever the number of samples. Updates and
merges use Chan et al.'s pairwise formulas, which avoid the cancellation of raw power sums; merging
makes collection parallel (:func:`all_reduce` for ``torch.distributed``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interp.steering.errors import SteeringConfigError

__all__ = ["CorrelationStats", "OneClassLabelsError", "all_reduce"]

_STATE_KEYS = ("mean_x", "m2_x", "comoment", "sum_x_by_label", "n_active_by_label")


class OneClassLabelsError(SteeringConfigError):
    """Every label seen so far is identical, so a correlation with the label is undefined."""


@dataclass
class _Batch:
    n: int
    mean_x: Tensor
    m2_x: Tensor
    mean_y: float
    m2_y: float
    comoment: Tensor


class CorrelationStats:
    """Running Pearson r between each of ``n_features`` activations and a per-sample label.

    With 0/1 labels (correct / incorrect) r is the point-biserial correlation, and
    :meth:`mean_active` gives the per-class mean activation (CorrSteer's steering coefficient).

    Example:
        >>> import torch
        >>> stats = CorrelationStats(3)
        >>> stats.update(torch.tensor([[1., 0., 2.], [0., 0., 1.], [3., 0., 2.]]), torch.tensor([1, 0, 1]))
        >>> stats.correlation()[1].item(), bool(stats.zero_variance[1])
        (0.0, True)
    """

    def __init__(self, n_features: int, *, device: torch.device | str = "cpu") -> None:
        if n_features < 1:
            raise SteeringConfigError(f"n_features must be a positive integer, got {n_features}.")
        self.n_features = int(n_features)
        kw = dict(dtype=torch.float64, device=device)
        self.n = 0
        self.mean_y = 0.0
        self.m2_y = 0.0
        self.mean_x = torch.zeros(n_features, **kw)
        self.m2_x = torch.zeros(n_features, **kw)
        self.comoment = torch.zeros(n_features, **kw)
        # Per-class sums and firing counts, index 0 = label 0, 1 = label 1 (binary labels only).
        self.sum_x_by_label = torch.zeros(2, n_features, **kw)
        self.n_active_by_label = torch.zeros(2, n_features, **kw)
        self.n_by_label = [0, 0]
        self.binary = True

    # ------------------------------------------------------------------ accumulation
    def update(self, acts: Float[Tensor, "n n_features"], labels: Tensor) -> "CorrelationStats":
        """Add ``n`` samples: ``acts`` [n, n_features] and ``labels`` [n] (bool, 0/1 or real)."""
        if acts.ndim != 2 or acts.shape[1] != self.n_features:
            raise SteeringConfigError(
                f"acts must have shape [n, {self.n_features}] (samples x features); got {tuple(acts.shape)}."
            )
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.shape[0] != acts.shape[0]:
            raise SteeringConfigError(
                f"labels must have shape [{acts.shape[0]}] (one label per row of acts); got {tuple(labels.shape)}."
            )
        if acts.shape[0] == 0:
            return self
        x = acts.detach().to(dtype=torch.float64, device=self.mean_x.device)
        y = labels.detach().to(dtype=torch.float64, device=self.mean_x.device)
        if not torch.isfinite(x).all() or not torch.isfinite(y).all():
            raise SteeringConfigError("acts and labels must be finite (found NaN or inf).")
        is_binary = bool(((y == 0) | (y == 1)).all())
        active = (x > 0).to(torch.float64)
        if is_binary:  # per-class sums as matrix-vector products (one pass each, no boolean copies)
            n_pos = int(y.sum())
            sum_pos, act_pos = y @ x, y @ active
            self.sum_x_by_label[1] += sum_pos
            self.sum_x_by_label[0] += x.sum(0) - sum_pos
            self.n_active_by_label[1] += act_pos
            self.n_active_by_label[0] += active.sum(0) - act_pos
            self.n_by_label[1] += n_pos
            self.n_by_label[0] += x.shape[0] - n_pos
        else:  # only the overall firing count is meaningful without classes
            self.binary = False
            self.n_active_by_label[0] += active.sum(0)
        n = x.shape[0]
        mx, my = x.mean(0), float(y.mean())
        dx, dy = x - mx, y - my
        batch = _Batch(n, mx, torch.einsum("nf,nf->f", dx, dx), my, float(dy @ dy), dy @ dx)
        self._combine(batch)
        return self

    def _combine(self, b: _Batch) -> None:
        # Chan, Golub & LeVeque pairwise update of means and centred (co)moments.
        if b.n == 0:
            return
        na, nb = self.n, b.n
        n = na + nb
        delta_x = b.mean_x - self.mean_x
        delta_y = b.mean_y - self.mean_y
        self.mean_x = self.mean_x + delta_x * (nb / n)
        self.m2_x = self.m2_x + b.m2_x + delta_x * delta_x * (na * nb / n)
        self.comoment = self.comoment + b.comoment + delta_x * delta_y * (na * nb / n)
        self.mean_y = self.mean_y + delta_y * nb / n
        self.m2_y = self.m2_y + b.m2_y + delta_y * delta_y * na * nb / n
        self.n = n

    def merge(self, other: "CorrelationStats") -> "CorrelationStats":
        """Fold another accumulator (e.g. from another process) into this one, in place."""
        if not isinstance(other, CorrelationStats) or other.n_features != self.n_features:
            got = getattr(other, "n_features", type(other).__name__)
            raise SteeringConfigError(f"Can only merge CorrelationStats with n_features={self.n_features}; got {got}.")
        self._combine(_Batch(other.n, other.mean_x.to(self.mean_x.device), other.m2_x.to(self.mean_x.device),
                             other.mean_y, other.m2_y, other.comoment.to(self.mean_x.device)))
        self.sum_x_by_label += other.sum_x_by_label.to(self.mean_x.device)
        self.n_active_by_label += other.n_active_by_label.to(self.mean_x.device)
        self.n_by_label = [a + b for a, b in zip(self.n_by_label, other.n_by_label)]
        self.binary = self.binary and other.binary
        return self

    # ------------------------------------------------------------------ results
    @property
    def zero_variance(self) -> Bool[Tensor, " n_features"]:
        """Features whose activation never varied (e.g. never fired): their r is reported as 0."""
        scale = self.mean_x.abs() + 1.0
        return self.m2_x <= (1e-12 * scale) ** 2 * max(self.n, 1)

    def correlation(self) -> Float[Tensor, " n_features"]:
        """Pearson r of each feature with the label (float64); 0 for zero-variance features.

        Raises :class:`OneClassLabelsError` when every label is the same (no correlation exists).
        """
        if self.n < 2:
            raise SteeringConfigError(f"Need at least 2 samples for a correlation; got {self.n}. Collect more samples.")
        if self.m2_y <= 1e-12 * self.n * (abs(self.mean_y) + 1.0) ** 2:
            raise OneClassLabelsError(
                f"All {self.n} labels equal {self.mean_y:g}: the task was always "
                f"{'solved' if self.mean_y == 1 else 'failed' if self.mean_y == 0 else 'labelled the same'}, "
                "so no feature can correlate with correctness. Use a task (or more samples) where the model "
                "is right only part of the time."
            )
        zero = self.zero_variance
        denom = torch.sqrt(self.m2_x.clamp_min(0) * self.m2_y)
        r = torch.where(zero, torch.zeros_like(denom), self.comoment / torch.where(zero, 1.0, denom))
        return r.clamp(-1.0, 1.0)

    def mean_active(self, label: int = 1) -> Float[Tensor, " n_features"]:
        """Mean activation over samples with ``label`` (zeros included): CorrSteer's coefficient."""
        if not self.binary:
            raise SteeringConfigError("mean_active needs 0/1 labels; these statistics saw other label values.")
        if label not in (0, 1):
            raise SteeringConfigError(f"label must be 0 or 1, got {label!r}.")
        if self.n_by_label[label] == 0:
            raise OneClassLabelsError(f"No sample has label {label}; its mean activation is undefined.")
        return self.sum_x_by_label[label] / self.n_by_label[label]

    def firing_rate(self, label: int | None = None) -> Float[Tensor, " n_features"]:
        """Share of samples (optionally of one class) where the feature is > 0."""
        if label is None:
            return self.n_active_by_label.sum(0) / max(self.n, 1)
        return self.n_active_by_label[label] / max(self.n_by_label[label], 1)

    @property
    def mean(self) -> Float[Tensor, " n_features"]:
        return self.mean_x

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Tensor]:
        meta = torch.tensor([self.n, self.mean_y, self.m2_y, *self.n_by_label, float(self.binary)], dtype=torch.float64)
        return {"meta": meta, **{k: getattr(self, k).detach().cpu().contiguous() for k in _STATE_KEYS}}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> "CorrelationStats":
        meta = state["meta"].tolist()
        stats = cls(state["mean_x"].shape[0])
        stats.n, stats.mean_y, stats.m2_y = int(meta[0]), meta[1], meta[2]
        stats.n_by_label = [int(meta[3]), int(meta[4])]
        stats.binary = bool(meta[5])
        for k in _STATE_KEYS:
            setattr(stats, k, state[k].to(torch.float64).clone())
        return stats

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        save_file(self.state_dict(), str(path), metadata={"format": json.dumps("CorrelationStats/1")})

    @classmethod
    def load(cls, path: str | Path) -> "CorrelationStats":
        """Read statistics written by :meth:`save`; a missing, truncated or inconsistent file is a
        :class:`~interp.steering.errors.SteeringLoadError` naming it."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from interp.core.errors import missing_file
        from interp.steering.errors import SteeringLoadError

        path = Path(path)
        if not path.is_file():
            raise missing_file(SteeringLoadError, f"No saved CorrelationStats at {path}.")
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise SteeringLoadError(f"{path} is corrupt or truncated ({err}); save the statistics again.") from err
        absent = sorted({"meta", *_STATE_KEYS} - set(state))
        if absent:
            raise SteeringLoadError(f"{path} is not a saved CorrelationStats: it lacks {absent}.")
        n = state["mean_x"].shape[0] if state["mean_x"].ndim == 1 else -1
        shapes = {"meta": (6,), "mean_x": (n,), "m2_x": (n,), "comoment": (n,), "sum_x_by_label": (2, n),
                  "n_active_by_label": (2, n)}
        wrong = [f"{k} {tuple(state[k].shape)} (expected {shapes[k]})" for k in shapes if tuple(state[k].shape) != shapes[k]]
        if n < 1 or wrong:
            raise SteeringLoadError(f"{path} holds inconsistent statistics: {', '.join(wrong) or 'no features'}.")
        if not all(bool(torch.isfinite(state[k]).all()) for k in shapes):
            raise SteeringLoadError(f"{path} holds NaN or inf; save the statistics again.")
        return cls.from_state_dict(state)

    def __repr__(self) -> str:
        return f"CorrelationStats(n_features={self.n_features}, n={self.n}, positives={self.n_by_label[1]})"


def all_reduce(stats: CorrelationStats, group: object | None = None) -> CorrelationStats:
    """Merge the statistics of every process of a ``torch.distributed`` group, in place, on all ranks.

    Each rank's state is gathered (O(world_size x n_features)) and merged in rank order, so every
    rank ends with the same numbers, equal to one process having seen all the samples.
    """
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("all_reduce needs an initialised torch.distributed process group (dist.init_process_group).")
    state = stats.state_dict()
    flat = torch.cat([state["meta"], *(state[k].flatten() for k in _STATE_KEYS)])
    if dist.get_backend(group) == "nccl":
        flat = flat.cuda()
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, flat, group=group)
    merged: CorrelationStats | None = None
    f = stats.n_features
    for chunk in gathered:
        chunk = chunk.cpu()
        parts = torch.split(chunk, [6, f, f, f, 2 * f, 2 * f])
        other = CorrelationStats.from_state_dict(
            {"meta": parts[0], "mean_x": parts[1], "m2_x": parts[2], "comoment": parts[3],
             "sum_x_by_label": parts[4].view(2, f), "n_active_by_label": parts[5].view(2, f)}
        )
        merged = other if merged is None else merged.merge(other)
    assert merged is not None
    device = stats.mean_x.device
    for k in _STATE_KEYS:
        setattr(stats, k, getattr(merged, k).to(device))
    stats.n, stats.mean_y, stats.m2_y = merged.n, merged.mean_y, merged.m2_y
    stats.n_by_label, stats.binary = merged.n_by_label, merged.binary
    return stats
