"""CorrSteer against a planted latent: does the selected SAE feature point along the same/opposite
mode of ``toy-mode`` (:mod:`interp.zoo.toy_mode`), and does steering with it beat random features?

The known answer is measured from planted data alone: for pairs of prompts built from the same
random draw (same words, same fillers, same evidence) that differ only in the mode, the mean
residual at the last prompt position with mode ``opposite`` minus the mean with mode ``same``, per
hook (:func:`latent_direction`). The task CorrSteer sees is :func:`interp.zoo.toy_mode.mode_task`:
every prompt is in mode ``opposite``, with no rule line and 0-3 noisy examples, so the model's belief
in the mode varies from prompt to prompt and it often copies instead. :func:`run` measures the
selected feature's cosine with the latent, steering against random features (paired bootstrap CIs),
the prompt-only pooling check, difference of means and the other selection rules, in one run.

toy-lm-planted's own opposite segments never formed the latent (its card, ``recovery.opposite``), hence the
dedicated model.

    python -m interp.app.zoo_experiments recovery corrsteer --out out/recovery_corrsteer
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.core.frontend import d_model, input_device
from interp.core.tasks import Example

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["latent_direction", "feature_cosines", "latent_frame", "run", "last_position_resid"]

PairFn = Callable[[int, int], tuple[list[str], list[str]]]

@torch.no_grad()
def last_position_resid(model: "HookedTransformer", prompts: Sequence[str], hooks: Sequence[str],
                        batch_size: int = 64) -> dict[str, Float[Tensor, "n d_model"]]:
    """Residual at each hook at the last prompt position (prompts grouped by length: no padding)."""
    toks = [model.to_tokens(p, prepend_bos=True)[0] for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(toks):
        groups[len(t)].append(i)
    out = {h: torch.zeros(len(prompts), d_model(model)) for h in hooks}
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            batch = torch.stack([toks[i] for i in chunk]).to(input_device(model))
            _, cache = model.run_with_cache(batch, names_filter=list(hooks))
            for h in hooks:
                out[h][chunk] = cache[h][:, -1].float().cpu()
    return out


def _toy_mode_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    from interp.zoo.toy_mode import paired_prompts

    return paired_prompts(n, seed)


def latent_direction(model: "HookedTransformer", hooks: Sequence[str], *, n: int = 512, seed: int = 0,
                     pairs: PairFn | None = None) -> tuple[dict[str, Tensor], dict[str, float]]:
    """The planted latent per hook: mean residual (last prompt position) of ``opposite`` prompts minus
    that of their paired ``same`` prompts (``pairs(n, seed)``; default toy-mode's
    :func:`~interp.zoo.toy_mode.paired_prompts`, on its corpus's mix of evidence). Also how well the mode
    is linearly decodable there: accuracy of the sign of the projection on ``n`` fresh pairs (threshold
    at the midpoint of the two class means)."""
    pairs = pairs or _toy_mode_pairs
    opp, same = pairs(n, seed)
    r_opp, r_same = last_position_resid(model, opp, hooks), last_position_resid(model, same, hooks)
    t_opp, t_same = pairs(n, seed + 1)
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


def latent_frame(selected: Sequence[Any], saes: dict[str, Any], directions: dict[str, Tensor]) -> Any:
    """One row per selected feature (``report.selected`` or a selector's choice): its decoder's cosine with
    the planted latent at its hook, its rank among that SAE's features, and the best cosine any feature of
    that SAE reaches (the reference)."""
    import pandas as pd

    rows = []
    for f in selected:
        c = feature_cosines(saes[f.hook], directions[f.hook])
        rows.append({"hook": f.hook, "feature": f.feature, "r": f.r, "cosine_with_latent": float(c[f.feature]),
                     "cosine_rank": int((c > c[f.feature]).sum()) + 1, "best_feature_at_hook": int(c.argmax()),
                     "best_cosine_at_hook": float(c.max()), "mean_abs_cosine_at_hook": float(c.abs().mean())})
    return pd.DataFrame(rows)


def _cos(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float().cpu(), b.float().cpu(), dim=0))


def _paired_ci(y: np.ndarray, base: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    from interp.steering.report import bootstrap_ci

    diff = np.asarray(y, float) - np.asarray(base, float)
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    return float(diff.mean()), lo, hi


def _no_nan(obj: Any) -> Any:
    """NaN (e.g. the unsteered arm's side-effect ratio) as None, so the card stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def _ci_dict(y: np.ndarray, base: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    d, lo, hi = _paired_ci(y, base, n_boot, seed)
    return {"delta": d, "ci_low": lo, "ci_high": hi}


def _by_evidence(examples: Sequence[Example], arms: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Held-out accuracy per (examples shown, examples consistent with the mode) for some arms."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[f"k={e.meta.get('n_examples')}/j={e.meta.get('n_consistent')}"].append(i)
    out = {}
    for key in sorted(groups):
        idx = groups[key]
        row: dict[str, Any] = {"n": len(idx), "bayes_posterior": float(np.mean([examples[i].meta["posterior"] for i in idx]))}
        for name in names:
            row[name] = float(np.mean([arms[name].labels[i] for i in idx]))
        out[key] = row
    return out


def run(model: "HookedTransformer | None" = None, saes: dict[str, Any] | None = None, *, name: str = "toy-mode",
        n_train: int = 600, n_val: int = 150, n_test: int = 600, n_random: int = 12, n_latent: int = 512, seed: int = 0,
        poolings: Sequence[str] = ("max", "answer"), selectors: bool = True, n_boot: int = 2000, batch_size: int = 64,
        progress: bool = False, out: str | Path | None = None) -> dict[str, Any]:
    """The whole check on toy-mode and its bundled SAEs (``<name>-saes``); a JSON-able summary (and
    ``out/summary.json``, the reports under ``out/report_<pooling>`` and ``out/selectors``).

    Per pooling (``max``: the paper's; ``answer``: the last prompt position only, the leakage check):
    CorrSteer's S feature, its decoder's cosine with the planted latent at its hook (and the best cosine
    any feature reaches there and at any hook), S against unsteered, difference of means and each of
    ``n_random`` random features at S's hook and norm (paired bootstrap CIs on the test split), and
    held-out accuracy by evidence. With ``selectors``, :func:`interp.steering.selectors.compare_selectors`
    on the first pooling's collection (the ranking of the selection rules)."""
    from interp import zoo
    from interp.steering.baselines import diff_of_means
    from interp.steering.collect import collect
    from interp.steering.corrsteer import CorrSteerConfig, run_corrsteer
    from interp.steering.saes import resolve_saes
    from interp.steering.selectors import SelectorConfig, compare_selectors
    from interp.zoo.toy_mode import TASK_EVIDENCE, mode_task

    torch.manual_seed(seed)
    model = model if model is not None else zoo.load(name, device="cpu")
    saes = saes if saes is not None else zoo.load_saes(f"{name}-saes")
    hooks = list(saes)
    directions, decodable = latent_direction(model, hooks, n=n_latent, seed=seed)
    cosines = {h: feature_cosines(saes[h], directions[h]) for h in hooks}
    best_hook = max(hooks, key=lambda h: float(cosines[h].max()))
    task = mode_task(n_train + n_val + n_test, seed=seed)
    splits = task.split(train=n_train, val=n_val, test=n_test, seed=seed)
    summary: dict[str, Any] = {
        "command": "python -m interp.app.zoo_experiments recovery corrsteer --record (interp.zoo.recovery.corrsteer.run)",
        "model": name, "saes": f"{name}-saes", "task": task.name, "evidence": {**TASK_EVIDENCE, "n_examples": "0-3",
                                                                               "gap": "0-6"},
        "n_train": n_train, "n_val": n_val, "n_test": n_test, "n_random": n_random, "n_latent_pairs": n_latent,
        "seed": seed, "n_boot": n_boot,
        "latent": {h: {"norm": float(directions[h].norm()), "decodable": decodable[h],
                       "best_feature": int(cosines[h].argmax()), "best_cosine": float(cosines[h].max()),
                       "abs_cosine_mean": float(cosines[h].abs().mean())} for h in hooks},
        "best_cosine_any_feature": {"hook": best_hook, "feature": int(cosines[best_hook].argmax()),
                                    "cosine": float(cosines[best_hook].max())},
        "poolings": {},
    }
    for pooling in poolings:
        cfg = CorrSteerConfig(pooling=pooling, n_random=n_random, seed=seed, n_boot=n_boot, batch_size=batch_size,
                              progress=progress)
        col = collect(model, resolve_saes(model, saes), splits.train, pooling=pooling, batch_size=cfg.batch_size,
                      progress=progress)
        report = run_corrsteer(model, saes, splits, cfg, collection=col)
        arms = report.arms
        s_vec = arms["S"].vectors[0]
        s_hook, s_feat = s_vec["hook_name"], int(s_vec["feature"])
        cos_all = cosines[s_hook]
        base = np.asarray(arms["unsteered"].labels)
        y_s = np.asarray(arms["S"].labels)
        randoms = [k for k in arms if k.startswith("random_")]
        vs_random = {k: _ci_dict(y_s, np.asarray(arms[k].labels), n_boot, seed) for k in randoms}
        dm = diff_of_means(col, s_hook)
        selected = []
        for f in report.selected:
            c = cosines[f.hook]
            selected.append({**f.to_dict(), "cosine_with_latent": float(c[f.feature]), "best_cosine_at_hook": float(c.max()),
                             "diff_means_cosine_with_latent": _cos(diff_of_means(col, f.hook).direction, directions[f.hook])})
        frame = report.to_frame()
        summary["poolings"][pooling] = {
            "train_accuracy": report.meta["train_accuracy"],
            "unsteered_accuracy": float(base.mean()),
            "S": {"hook": s_hook, "feature": s_feat, "r": float(max(f.r for f in report.selected)),
                  "coefficient": float(s_vec["coefficient"]), "accuracy": float(y_s.mean()),
                  "cosine_with_latent": float(cos_all[s_feat]),
                  "cosine_rank": int((cos_all > cos_all[s_feat]).sum()) + 1, "best_cosine_at_hook": float(cos_all.max()),
                  "random_feature_cosine_abs_mean": float(cos_all.abs().mean())},
            "selected": selected,
            "diff_means_cosine_with_latent": _cos(dm.direction, directions[s_hook]),
            "diff_means_cosine_with_S": _cos(dm.direction, saes[s_hook].W_dec[s_feat].detach()),
            "p_hooks": report.meta["p_hooks"],
            "conditions": frame.drop(columns=["features"]).to_dict("records"),
            "S_delta_vs_unsteered": _ci_dict(y_s, base, n_boot, seed),
            "diff_means_delta_vs_unsteered": (_ci_dict(np.asarray(arms["diff_means"].labels), base, n_boot, seed)
                                              if "diff_means" in arms else None),
            "S_minus_diff_means": (_ci_dict(y_s, np.asarray(arms["diff_means"].labels), n_boot, seed)
                                   if "diff_means" in arms else None),
            "random_delta_vs_unsteered": {k: float(np.mean(arms[k].labels) - base.mean()) for k in randoms},
            "random_features": {k: int(arms[k].vectors[0]["feature"]) for k in randoms},
            "S_minus_random": vs_random,
            "S_beats_every_random": bool(randoms) and all(v["ci_low"] > 0 for v in vs_random.values()),
            "by_evidence": _by_evidence(list(splits.test.examples), arms,
                                        ["unsteered", "S"] + (["diff_means"] if "diff_means" in arms else [])),
        }
        if out is not None:
            report.save(Path(out) / f"report_{pooling}")
        if selectors and pooling == poolings[0]:
            cmp = compare_selectors(model, saes, splits, SelectorConfig(pooling=pooling, n_random=n_random, seed=seed,
                                                                      n_boot=n_boot, batch_size=batch_size,
                                                                      progress=progress), collection=col)
            ranking = cmp.ranking()
            summary["selectors"] = {"pooling": pooling, "ranking": ranking.to_dict("records"),
                                    "chosen": {k: [f.to_dict() for f in v] for k, v in cmp.chosen.items()},
                                    "cosine_with_latent": {k: float(cosines[v[0].hook][v[0].feature])
                                                           for k, v in cmp.chosen.items() if v}}
            if out is not None:
                cmp.save(Path(out) / "selectors")
    summary = _no_nan(summary)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        from interp.zoo.training import json_default

        (Path(out) / "summary.json").write_text(json.dumps(summary, indent=1, default=json_default))
    return summary
