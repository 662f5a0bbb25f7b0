"""SteeringReport: accuracy per steering condition with paired bootstrap CIs, side-effect ratio, chosen
features and per-hook solo results (CorrSteer, Cho et al. 2025)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interp.core.errors import missing_file
from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError, SteeringLoadError
from interp.steering.select import SelectedFeature, features_frame

__all__ = ["Arm", "SteeringReport", "bootstrap_ci", "side_effect_ratio"]


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling samples, vectorised)."""
    c = Check("bootstrap_ci", SteeringConfigError)
    c.integer("n_boot", n_boot, min=1)
    c.number("level", level, gt=0, lt=1, fix="e.g. level=0.95.")
    c.integer("seed", seed, min=0)
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def side_effect_ratio(base_labels: np.ndarray, labels: np.ndarray, base_text: Sequence[str], text: Sequence[str]) -> tuple[float, int]:
    """Of the answers steering changed, the share that went from correct to wrong; and how many changed."""
    changed = np.array([a.strip() != b.strip() for a, b in zip(base_text, text)], dtype=bool)
    broke = changed & (np.asarray(base_labels) == 1) & (np.asarray(labels) == 0)
    n = int(changed.sum())
    return (float(broke.sum() / n) if n else float("nan")), n


def _describe(v: Mapping[str, Any]) -> str:
    what = f"#{v['feature']}" if v.get("feature") is not None else f" ({v['source']})"
    return f"{v['hook_name']}{what} c={v['coefficient']:.3g}"


@dataclass
class Arm:
    """One steering condition evaluated on the held-out split."""

    name: str
    kind: str  # "unsteered" | "corrsteer" | "diff_means" | "random"
    labels: list[int]
    generations: list[str]
    vectors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.labels)) if self.labels else float("nan")


@dataclass
class SteeringReport:
    """Held-out results of CorrSteer variants and baselines.

    ``to_frame()`` has one row per condition: accuracy with a bootstrap CI, the paired difference to
    the unsteered model with its CI, and the side-effect ratio (SER: of the answers steering changed,
    the share that went from correct to wrong).

    Example:
        >>> report = run_corrsteer(model, saes, splits)    # doctest: +SKIP
        >>> report.to_frame()                              # doctest: +SKIP
        >>> report.save("out/corrsteer"); SteeringReport.load("out/corrsteer")  # doctest: +SKIP
    """

    task: str
    arms: dict[str, Arm]
    selected: list[SelectedFeature] = field(default_factory=list)
    solo_val: dict[str, float] = field(default_factory=dict)
    val_baseline: float = float("nan")
    meta: dict[str, Any] = field(default_factory=dict)
    n_boot: int = 2000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if "unsteered" not in self.arms:
            raise ValueError("A SteeringReport needs an 'unsteered' arm to compare against.")
        n = len(self.arms["unsteered"].labels)
        bad = [k for k, a in self.arms.items() if len(a.labels) != n]
        if bad:
            raise ValueError(f"Arms {bad} were evaluated on a different number of samples than 'unsteered' ({n}).")

    def to_frame(self) -> pd.DataFrame:
        base = self.arms["unsteered"]
        b = np.asarray(base.labels, dtype=float)
        rows = []
        for name, arm in self.arms.items():
            y = np.asarray(arm.labels, dtype=float)
            lo, hi = bootstrap_ci(y, n_boot=self.n_boot, level=self.level, seed=self.seed)
            dlo, dhi = bootstrap_ci(y - b, n_boot=self.n_boot, level=self.level, seed=self.seed)
            ser, n_changed = side_effect_ratio(base.labels, arm.labels, base.generations, arm.generations)
            rows.append({
                "condition": name, "kind": arm.kind, "accuracy": y.mean(), "ci_low": lo, "ci_high": hi,
                "delta": (y - b).mean(), "delta_low": dlo, "delta_high": dhi, "ser": ser, "n_changed": n_changed,
                "n": len(y), "features": ", ".join(_describe(v) for v in arm.vectors),
            })
        return pd.DataFrame(rows)

    def features_frame(self) -> pd.DataFrame:
        frame = features_frame(self.selected)
        frame["solo_val_accuracy"] = [self.solo_val.get(h, float("nan")) for h in frame["hook"]]
        return frame

    def plot(self) -> Any:
        """Accuracy per condition with CIs (left) and side-effect ratio (right)
        (:func:`interp.steering.plots.conditions_figure`)."""
        from interp.steering.plots import conditions_figure

        return conditions_figure(self)

    def __repr__(self) -> str:
        acc = ", ".join(f"{k} {a.accuracy:.3f}" for k, a in list(self.arms.items())[:5])
        more = f", +{len(self.arms) - 5} more" if len(self.arms) > 5 else ""
        n = len(self.arms["unsteered"].labels)
        return f"SteeringReport({self.task!r}, n={n}: {acc}{more})"

    def _repr_html_(self) -> str:
        f = self.to_frame().drop(columns=["features"])
        return (f"<h4>SteeringReport: {html.escape(self.task)}</h4>" + f.to_html(float_format=lambda x: f"{x:.3f}",
                index=False) + "<h5>Selected features</h5>" + self.features_frame().to_html(
                float_format=lambda x: f"{x:.3f}", index=False))

    # ------------------------------------------------------------------ persistence (JSON only)
    def to_dict(self) -> dict[str, Any]:
        return {"format": "SteeringReport/1", "task": self.task, "arms": {k: asdict(a) for k, a in self.arms.items()},
                "selected": [s.to_dict() for s in self.selected], "solo_val": self.solo_val,
                "val_baseline": self.val_baseline, "meta": self.meta, "n_boot": self.n_boot, "level": self.level,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SteeringReport":
        if not isinstance(d, Mapping) or d.get("format") != "SteeringReport/1":
            got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise SteeringLoadError(f"Not a saved SteeringReport (format={got!r}, expected 'SteeringReport/1').")
        try:
            return cls(d["task"], {k: Arm(**a) for k, a in d["arms"].items()},
                       [SelectedFeature(**s) for s in d["selected"]], dict(d["solo_val"]), d["val_baseline"],
                       dict(d["meta"]), d["n_boot"], d["level"], d["seed"])
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise SteeringLoadError(f"The saved SteeringReport is incomplete or malformed ({type(err).__name__}: {err}).") from err

    def save(self, path: str | Path) -> Path:
        """Write ``report.json`` into the folder ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(self.to_dict(), indent=1))
        return folder / "report.json"

    @classmethod
    def load(cls, path: str | Path) -> "SteeringReport":
        """Read a report written by :meth:`save` (the folder or its ``report.json``); a missing, damaged or
        incomplete file raises :class:`~interp.steering.errors.SteeringLoadError` naming it."""
        p = Path(path)
        p = p / "report.json" if p.is_dir() else p
        if not p.is_file():
            raise missing_file(SteeringLoadError, f"No saved SteeringReport at {p} (write one with report.save(folder)).")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SteeringLoadError(f"{p} is not valid JSON ({err}); save the report again.") from err
        try:
            return cls.from_dict(data)
        except SteeringLoadError as err:
            raise SteeringLoadError(f"{p}: {err}") from err
