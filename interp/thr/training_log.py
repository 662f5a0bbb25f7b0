"""Token-level logs of THR during someone else's GRPO loop: one record per rollout batch with, for every
response, its tokens and per-token THR, advantage (what the loss used), entropy and KL to the reference.

Framework-free (no TRL import): :class:`interp.thr.trl_callback.THRCallback` fills it from TRL, a verl or
prime-rl loop can call :meth:`THRTrainingLog.add_rollout` itself. Saved as JSON lines (one rollout a line).
``widgets.THRTrainingViewer`` browses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.core.errors import InterpLoadError, missing_file
from interp.thr.core import THRInputError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["THRTrainingLog", "Rollout", "TrainingLogError", "QUANTITIES"]

QUANTITIES = ("thr", "advantage", "entropy", "kl")
"""The per-token series every response carries."""


class TrainingLogError(InterpLoadError):
    """A saved THR training log that cannot be read (the message names the file and line)."""


@dataclass
class Rollout:
    """One rollout batch: ``responses[i]`` has ``group``, ``prompt``, ``tokens`` (strings), ``reward``,
    ``seq_advantage`` and the per-token lists of :data:`QUANTITIES` (NaN where unknown)."""

    step: int
    """Optimizer steps completed before this rollout (TRL's ``state.global_step``)."""
    group_size: int
    responses: list[dict[str, Any]]
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return len(self.responses) // self.group_size

    def group(self, b: int) -> list[dict[str, Any]]:
        if not 0 <= b < self.n_groups:
            raise IndexError(f"group {b} is outside 0..{self.n_groups - 1} of step {self.step}.")
        return self.responses[b * self.group_size:(b + 1) * self.group_size]

    def to_dict(self) -> dict[str, Any]:
        return dict(step=self.step, group_size=self.group_size, responses=self.responses, stats=self.stats)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


class THRTrainingLog:
    """Rollouts in training order.

    Example:
        >>> log = THRTrainingLog()                                                       # doctest: +SKIP
        >>> log.add_rollout(step, G, prompts, tokens, thr, adv, ent, kl, rewards, seq_adv)  # doctest: +SKIP
        >>> log.save("out/thr_log.jsonl"); THRTrainingLog.load("out/thr_log.jsonl").plot()  # doctest: +SKIP
    """

    quantities = QUANTITIES

    def __init__(self, rollouts: Sequence[Rollout] = ()):
        self.rollouts: list[Rollout] = list(rollouts)

    # ---- filling -----------------------------------------------------------------------
    def add_rollout(self, step: int, group_size: int, prompts: Sequence[str], tokens: Sequence[Sequence[str]],
                    thr: Sequence[Sequence[float]], advantage: Sequence[Sequence[float]],
                    entropy: Sequence[Sequence[float]], kl: Sequence[Sequence[float]] | None,
                    rewards: Sequence[float], seq_advantage: Sequence[float],
                    stats: dict[str, float] | None = None) -> Rollout:
        """Record one rollout batch (``prompts``: one per response, contiguous groups of ``group_size``)."""
        n = len(tokens)
        if group_size < 1 or n % group_size:
            raise THRInputError(f"A rollout of {n} responses is not whole groups of group_size={group_size}.")
        kl = kl if kl is not None else [[math.nan] * len(t) for t in tokens]
        series = dict(thr=thr, advantage=advantage, entropy=entropy, kl=kl)
        for name, values in series.items():
            if len(values) != n or any(len(v) != len(t) for v, t in zip(values, tokens)):
                raise THRInputError(f"{name} must hold one value per token of each of the {n} responses.")
        if not (len(prompts) == len(rewards) == len(seq_advantage) == n):
            raise THRInputError(f"prompts, rewards and seq_advantage must have one entry per response ({n}).")
        responses = [dict(group=i // group_size, prompt=str(prompts[i]), tokens=[str(t) for t in tokens[i]],
                          reward=_finite(float(rewards[i])), seq_advantage=_finite(float(seq_advantage[i])),
                          **{name: [_finite(float(x)) for x in values[i]] for name, values in series.items()})
                     for i in range(n)]
        rollout = Rollout(int(step), int(group_size), responses, {k: _finite(float(v)) for k, v in (stats or {}).items()})
        self.rollouts.append(rollout)
        return rollout

    # ---- access ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rollouts)

    def __getitem__(self, i: int) -> Rollout:
        return self.rollouts[i]

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.rollouts]

    def to_frame(self) -> "pd.DataFrame":
        """One row per token: rollout, step, group, response, position, token and the four quantities."""
        import pandas as pd

        rows = []
        for ri, r in enumerate(self.rollouts):
            for i, resp in enumerate(r.responses):
                for k, tok in enumerate(resp["tokens"]):
                    rows.append(dict(rollout=ri, step=r.step, group=resp["group"], response=i, position=k, token=tok,
                                     reward=resp["reward"], seq_advantage=resp["seq_advantage"],
                                     **{q: resp[q][k] for q in QUANTITIES}))
        return pd.DataFrame(rows, columns=["rollout", "step", "group", "response", "position", "token", "reward",
                                           "seq_advantage", *QUANTITIES]).astype({q: float for q in QUANTITIES})

    def stats_frame(self) -> "pd.DataFrame":
        """The per-rollout summary statistics (THR density, mean entropy, mean KL...), one row per rollout."""
        import pandas as pd

        return pd.DataFrame([dict(step=r.step, **r.stats) for r in self.rollouts])

    def plot(self, rollout: int = -1, group: int = 0, quantity: str = "thr") -> "go.Figure":
        """Response rows of one group coloured by ``quantity`` (:func:`interp.thr.plots.rollout_token_figure`)."""
        from interp.thr.plots import rollout_token_figure

        return rollout_token_figure(self, rollout, group, quantity)

    # ---- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in self.rollouts))
        return path

    def append_to(self, path: str | Path, rollout: Rollout) -> None:
        """Append one rollout to a JSON-lines file (a crash loses at most the rollout being written)."""
        with Path(path).open("a") as fh:
            fh.write(json.dumps(rollout.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "THRTrainingLog":
        path = Path(path)
        if not path.is_file():
            raise missing_file(TrainingLogError, f"{path} does not exist: a THR training log is the JSON-lines file "
                                                 "THRCallback(log_path=...) or THRTrainingLog.save writes.")
        rollouts = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                rollouts.append(Rollout(int(d["step"]), int(d["group_size"]), list(d["responses"]),
                                        dict(d.get("stats", {}))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise TrainingLogError(f"{path}, line {n}, is not a THR rollout record ({err}).") from err
        return cls(rollouts)

    def __repr__(self) -> str:
        if not self.rollouts:
            return "THRTrainingLog(empty)"
        n_resp = sum(len(r.responses) for r in self.rollouts)
        return f"THRTrainingLog({len(self.rollouts)} rollouts, steps {self.steps[0]}..{self.steps[-1]}, {n_resp} responses)"

    def _repr_html_(self) -> str:
        frame = self.stats_frame()
        table = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}") if len(frame) else ""
        return f"<div><b>{self!r}</b>{table}</div>"
