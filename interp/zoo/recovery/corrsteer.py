"""CorrSteer against a planted latent: does the selected SAE feature point along the opposite/same
mode of toy-lm, and does steering with it beat random features?

The known answer is measured from planted data alone: for pairs of prompts built from the same
random draw (same words, same fillers, same evidence) that differ only in the mode, the mean
residual at the last prompt position with mode ``opposite`` minus the mean with mode ``same``, per
hook (:func:`latent_direction`). The task CorrSteer sees is :func:`opposite_task`: every prompt is
in ``opposite`` mode, but the evidence for it is weak (no rule line, one example, up to two
fillers), so the model represents the mode with varying strength and often copies instead.

    python -m interp.app.zoo_experiments recovery corrsteer --out out/recovery_corrsteer
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.core.tasks import CheckedTask, Example
from interp.zoo.planted import opposite_sample

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["opposite_task", "latent_direction", "feature_cosines", "run"]

WEAK_EVIDENCE: dict[str, Any] = {"rule": False, "n_examples": 1}
"""The CorrSteer task's evidence for the mode: no rule line, one example, 0-2 fillers (drawn)."""


def opposite_task(n: int = 1200, seed: int = 0, *, mode: str = "opposite", **evidence: Any) -> CheckedTask:
    """``n`` prompts of the planted ``opposite`` task in one mode (default: weak evidence, see
    :data:`WEAK_EVIDENCE`), checked by :func:`interp.zoo.tasks.check`.

    >>> t = opposite_task(4)
    >>> t.examples[0].prompt.endswith("->"), t.max_new_tokens
    (True, 3)
    """
    rng = random.Random(f"toy-eval-opposite-task-{seed}")  # never the corpus stream
    kw = {**WEAK_EVIDENCE, **evidence}
    examples = []
    for _ in range(n):
        s = opposite_sample(rng, mode=mode, **kw)
        examples.append(Example(s.prompt, s.answer.strip(), {"mode": mode}))
    from interp.zoo.tasks import STOP, check

    return CheckedTask(f"toy-lm/opposite-{mode}", examples, max_new_tokens=3, stop=STOP,
                       checker=lambda e, text: check("opposite", text, e.answer))


@torch.no_grad()
def last_position_resid(model: "HookedTransformer", prompts: Sequence[str], hooks: Sequence[str],
                        batch_size: int = 64) -> dict[str, Float[Tensor, "n d_model"]]:
    """Residual at each hook at the last prompt position (prompts grouped by length: no padding)."""
    toks = [model.to_tokens(p, prepend_bos=True)[0] for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(toks):
        groups[len(t)].append(i)
    out = {h: torch.zeros(len(prompts), model.cfg.d_model) for h in hooks}
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            batch = torch.stack([toks[i] for i in chunk]).to(model.cfg.device)
            _, cache = model.run_with_cache(batch, names_filter=list(hooks))
            for h in hooks:
                out[h][chunk] = cache[h][:, -1].float().cpu()
    return out


def _paired_prompts(n: int, seed: int) -> tuple[list[str], list[str]]:
    opp, same = [], []
    for i in range(n):  # the same random draw for both modes: the prompts differ only in the mode
        opp.append(opposite_sample(random.Random(f"latent-{seed}-{i}"), mode="opposite").prompt)
        same.append(opposite_sample(random.Random(f"latent-{seed}-{i}"), mode="same").prompt)
    return opp, same


def latent_direction(model: "HookedTransformer", hooks: Sequence[str], *, n: int = 512, seed: int = 0
                     ) -> tuple[dict[str, Tensor], dict[str, float]]:
    """The planted latent per hook: mean residual (last prompt position) of ``opposite`` prompts minus
    that of their paired ``same`` prompts, on the corpus's mix of evidence. Also how well the mode is
    linearly decodable there: accuracy of the sign of the projection on ``n`` fresh pairs (threshold
    at the midpoint of the two class means)."""
    opp, same = _paired_prompts(n, seed)
    r_opp, r_same = last_position_resid(model, opp, hooks), last_position_resid(model, same, hooks)
    t_opp, t_same = _paired_prompts(n, seed + 1)
    h_opp, h_same = last_position_resid(model, t_opp, hooks), last_position_resid(model, t_same, hooks)
    directions, decodable = {}, {}
    for h in hooks:
        mu_o, mu_s = r_opp[h].mean(0), r_same[h].mean(0)
        d = mu_o - mu_s
        directions[h] = d
        mid = float((mu_o + mu_s) @ d) / 2
        hits = torch.cat([(h_opp[h] @ d > mid), (h_same[h] @ d <= mid)]).float()
        decodable[h] = float(hits.mean())
    return directions, decodable


def feature_cosines(sae: Any, direction: Tensor) -> Tensor:
    """Cosine of every decoder row of ``sae`` with ``direction``."""
    W = sae.W_dec.detach().float().cpu()
    d = direction.float().cpu()
    return (W @ d) / (W.norm(dim=-1) * d.norm()).clamp_min(1e-12)


def _cos(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float().cpu(), b.float().cpu(), dim=0))


def _paired_ci(y: np.ndarray, base: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    from interp.steering.report import bootstrap_ci

    diff = np.asarray(y, float) - np.asarray(base, float)
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    return float(diff.mean()), lo, hi


def run(model: "HookedTransformer | None" = None, saes: dict[str, Any] | None = None, *, n_train: int = 600,
        n_val: int = 150, n_test: int = 600, n_random: int = 12, n_latent: int = 512, seed: int = 0,
        poolings: Sequence[str] = ("max", "answer"), n_boot: int = 2000, progress: bool = False,
        out: str | Path | None = None) -> dict[str, Any]:
    """The whole check on toy-lm and its bundled SAEs; a JSON-able summary (and ``out/*.json``)."""
    from interp import zoo
    from interp.steering.baselines import diff_of_means
    from interp.steering.collect import collect
    from interp.steering.corrsteer import CorrSteerConfig, run_corrsteer
    from interp.steering.saes import resolve_saes
    from interp.steering.sae_training import load_saes, zoo_sae_dir

    torch.manual_seed(seed)
    model = model if model is not None else zoo.load("toy-lm", device="cpu")
    saes = saes if saes is not None else load_saes(zoo_sae_dir("toy-lm"))
    hooks = list(saes)
    directions, decodable = latent_direction(model, hooks, n=n_latent, seed=seed)
    task = opposite_task(n_train + n_val + n_test, seed=seed)
    splits = task.split(train=n_train, val=n_val, test=n_test, seed=seed)
    summary: dict[str, Any] = {
        "task": task.name, "evidence": WEAK_EVIDENCE, "n_train": n_train, "n_val": n_val, "n_test": n_test,
        "n_random": n_random, "seed": seed,
        "latent": {h: {"norm": float(directions[h].norm()), "decodable": decodable[h]} for h in hooks},
        "poolings": {},
    }
    for pooling in poolings:
        cfg = CorrSteerConfig(pooling=pooling, n_random=n_random, seed=seed, n_boot=n_boot, progress=progress)
        col = collect(model, resolve_saes(model, saes), splits.train, pooling=pooling, batch_size=cfg.batch_size,
                      progress=progress)
        report = run_corrsteer(model, saes, splits, cfg, collection=col)
        frame = report.to_frame()
        arms = report.arms
        s_vec = arms["S"].vectors[0]
        s_hook, s_feat = s_vec["hook_name"], int(s_vec["feature"])
        cos_all = feature_cosines(saes[s_hook], directions[s_hook])
        base = np.asarray(arms["unsteered"].labels)
        y_s = np.asarray(arms["S"].labels)
        randoms = [k for k in arms if k.startswith("random_")]
        vs_random = {k: _paired_ci(y_s, np.asarray(arms[k].labels), n_boot, seed) for k in randoms}
        selected = []
        for f in report.selected:
            c = feature_cosines(saes[f.hook], directions[f.hook])
            selected.append({**f.to_dict(), "cosine_with_latent": float(c[f.feature]), "best_cosine_at_hook": float(c.max()),
                             "diff_means_cosine_with_latent": _cos(diff_of_means(col, f.hook).direction, directions[f.hook])})
        summary["poolings"][pooling] = {
            "train_accuracy": report.meta["train_accuracy"],
            "S": {"hook": s_hook, "feature": s_feat, "r": float(max(f.r for f in report.selected)),
                  "cosine_with_latent": float(cos_all[s_feat]),
                  "cosine_rank": int((cos_all > cos_all[s_feat]).sum()) + 1, "best_cosine_at_hook": float(cos_all.max()),
                  "random_feature_cosine_abs_mean": float(cos_all.abs().mean())},
            "selected": selected,
            "diff_means_cosine_with_latent": _cos(diff_of_means(col, s_hook).direction, directions[s_hook]),
            "diff_means_cosine_with_S": _cos(diff_of_means(col, s_hook).direction, saes[s_hook].W_dec[s_feat].detach()),
            "p_hooks": report.meta["p_hooks"],
            "conditions": frame.drop(columns=["features"]).to_dict("records"),
            "S_minus_random": {k: {"delta": d, "ci_low": lo, "ci_high": hi} for k, (d, lo, hi) in vs_random.items()},
            "S_beats_every_random": bool(all(lo > 0 for _, lo, _ in vs_random.values())),
            "S_delta_vs_unsteered": _paired_ci(y_s, base, n_boot, seed),
        }
        if out is not None:
            report.save(Path(out) / f"report_{pooling}")
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

