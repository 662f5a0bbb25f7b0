"""THR on rarely solved prompts: does plain GRPO narrow exploration on toy-lm's planted-frequency
codes, and do THR p = +0.5 / -0.5 trade greedy accuracy against pass@k as the paper reports?

Every code holder of :mod:`interp.zoo.planted` was planted with its own frequency, so toy-lm
remembers the frequent codes and only half-remembers the rare ones. GRPO trains on half of the
holders (every odd index, all frequencies, or one band with ``train_band``); pass@k is measured on the
other half, split by planted frequency into a ``hard`` subset (the rarest holders) and an ``easy`` one
(the most frequent), and on the trained holders of the same bands (``train-hard``, ``train-easy``). A
code is a fact about one holder, so training on other holders cannot teach it: on the held-out holders
GRPO can only change how sharply the policy commits to what it already believes (or overwrite it); on
the trained ones it can sharpen onto the rare successes it samples.

    python -m interp.app.zoo_experiments recovery thr --steps 150 --lr 2e-4 --eval-every 50 --n-samples 64 \
        --easy-samples 16 --seeds 0 1 2 --out out/recovery_thr
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


from interp.core.tasks import Example
from interp.thr.tasks import VerifiableTask
from interp.zoo.planted import CODE_HOLDERS, CODES, code_prompt, code_weight

__all__ = ["BANDS", "code_holders", "code_tasks", "summarize_runs", "summary_frame", "pass_at_k_frame", "run", "HEADLINE", "KS"]

BANDS: dict[str, tuple[float, float]] = {"hard": (0.0, 3.0), "easy": (15.0, math.inf)}
"""Planted relative frequency (:func:`interp.zoo.planted.code_weight`) of each held-out subset."""

KS = (1, 2, 4, 8, 16, 32, 64)

HEADLINE = ("train_reward", "hard/pass@1", "hard/pass@64", "train-hard/greedy", "train-hard/pass@1",
            "train-hard/pass@64", "train-easy/greedy", "train-easy/pass@1", "easy/pass@1")
"""The metrics the card and notebook 04 quote for each variant."""


def code_holders(split: str, band: str | None = None) -> list[str]:
    """Holders of the GRPO ``train`` split (odd indices) or the held-out ``test`` split (even), optionally
    only those whose planted frequency lies in ``BANDS[band]``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    parity = 1 if split == "train" else 0
    lo, hi = BANDS[band] if band is not None else (0.0, math.inf)
    return [h for i, h in enumerate(CODE_HOLDERS) if i % 2 == parity and lo <= code_weight(i) < hi]


def _reward(item: Example, completion: str) -> float:
    from interp.zoo.tasks import check

    return 1.0 if check("code", completion, item.answer) else 0.0


def code_tasks(train_band: str | None = None) -> tuple[VerifiableTask, dict[str, VerifiableTask]]:
    """The GRPO task (train: the train holders, all of them or those of ``train_band``; test: the held-out
    ``hard`` holders) and further evaluation sets as tasks of their own: ``easy`` (held-out easy holders) and
    ``train-hard`` / ``train-easy`` (the train split's holders of each band: the prompts GRPO trains on, when
    it trains on that band). Only their test split is evaluated; their train split is the held-out one."""
    def items(holders: list[str]) -> list[Example]:
        return [Example(code_prompt(h), CODES[h]) for h in holders]

    if train_band is not None and train_band not in BANDS:
        raise ValueError(f"train_band must be None or one of {sorted(BANDS)}, got {train_band!r}.")
    train = items(code_holders("train", train_band))
    held_out = items(code_holders("test"))
    main = VerifiableTask("toy-lm-code", train, items(code_holders("test", "hard")), _reward, max_new_tokens=6,
                          description="toy-lm planted-frequency codes: the first number must be the holder's code; "
                          "test = the held-out hard holders.")
    subsets = {b: VerifiableTask(f"toy-lm-code-{b}", train, items(code_holders("test", b)), _reward, max_new_tokens=6)
               for b in BANDS if b != "hard"}
    subsets |= {f"train-{b}": VerifiableTask(f"toy-lm-code-train-{b}", held_out, items(code_holders("train", b)),
                                             _reward, max_new_tokens=6) for b in BANDS}
    return main, subsets


def _named(rec: dict[str, float]) -> dict[str, float]:
    """Evaluation keys with their subset: the main task's test split is the hard subset."""
    return {(k if "/" in k or k == "step" else f"hard/{k}"): v for k, v in rec.items()}


def _interp_at(xs: list[float], ys: list[float], x: float) -> float:
    """y at the first crossing of level x by the (step-ordered) curve xs (linear between evaluations)."""
    for i in range(1, len(xs)):
        if (xs[i - 1] - x) * (xs[i] - x) <= 0 and xs[i] != xs[i - 1]:
            t = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
    return float("nan")


def summarize_runs(results: dict[str, Any], *, match: str = "train_reward", smooth: int = 5) -> dict[str, Any]:
    """Mean and standard error over seeds, per variant: at the last step, and at equal ``match`` (the
    training reward averaged over the last ``smooth`` steps, or an evaluation key such as
    ``"easy/pass@1"``): the level every run reaches (the smallest of the runs' final values), each
    run's metrics read where it first crosses that level (linear between evaluations)."""
    import numpy as np

    runs = [{**r, "evals": [_named(e) for e in r["evals"]]} for r in results["runs"]]
    variants = sorted({r["variant"] for r in runs}, key=lambda v: [r["variant"] for r in runs].index(v))
    for r in runs:  # the training reward at each evaluation step, smoothed over the steps before it
        rewards = [x["reward_mean"] for x in r["log"]]
        for e in r["evals"]:
            s = int(e["step"])
            window = rewards[max(0, s - smooth) : s]
            e["train_reward"] = float(np.mean(window)) if window else float("nan")
        if r["evals"][0]["step"] == 0:  # step 0: the base policy's reward, from the first steps' samples
            r["evals"][0]["train_reward"] = float(np.mean(rewards[:smooth]))
    metrics = [k for k in runs[0]["evals"][-1] if k != "step"]
    level = min(r["evals"][-1][match] for r in runs)
    out: dict[str, Any] = {"base": _named(results["base_eval"]), "match": match, "match_level": level, "final": {},
                           "matched": {}}

    def stats(vals: list[float]) -> dict[str, float]:
        a = np.asarray(vals, float)
        se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
        return {"mean": float(a.mean()), "se": se, "n": len(a)}

    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        out["final"][v] = {m: stats([r["evals"][-1][m] for r in rs]) for m in metrics}
        out["final"][v]["step"] = rs[0]["evals"][-1]["step"]
        matched = {}
        for m in metrics:
            vals = [_interp_at([e[match] for e in r["evals"]], [e[m] for e in r["evals"]], level) for r in rs]
            matched[m] = stats(vals)
        matched["step"] = stats([_interp_at([e[match] for e in r["evals"]], [e["step"] for e in r["evals"]], level)
                                 for r in rs])
        out["matched"][v] = matched
    return out


def summary_frame(summary: dict[str, Any], which: str = "matched", metrics: tuple[str, ...] | None = None) -> Any:
    """One row per variant (the base policy first) of a :func:`summarize_runs` summary, ``which`` = ``"matched"``
    (at the common level of ``summary["match"]``) or ``"final"`` (last step): "mean ± SE over seeds" per metric."""
    import pandas as pd

    if which not in ("matched", "final"):
        raise ValueError(f"which must be 'matched' or 'final', got {which!r}.")
    part = summary[which]
    first = next(iter(part.values()))
    metrics = metrics or tuple(m for m in first if m != "step" and not m.endswith("mean_reward"))
    rows = [{"variant": "base", "step": 0, **{m: (f"{summary['base'][m]:.3f}" if m in summary["base"] else "")
                                            for m in metrics}}]
    for v, d in part.items():
        step = d["step"] if not isinstance(d["step"], dict) else d["step"]["mean"]
        rows.append({"variant": v, "step": round(float(step), 1),
                     **{m: f"{d[m]['mean']:.3f} ± {d[m]['se']:.3f}" for m in metrics if m in d}})
    return pd.DataFrame(rows).set_index("variant")


def pass_at_k_frame(summary: dict[str, Any], band: str = "hard", which: str = "matched") -> Any:
    """Long frame (``variant``, ``k``, ``mean``, ``se``) of pass@k on one evaluation set (``hard``, ``easy``,
    ``train-hard``, ...), the base policy first: the input of :func:`interp.thr.plots.pass_at_k_figure`."""
    import pandas as pd

    prefix = f"{band}/pass@"
    rows = [dict(variant="base", k=int(m[len(prefix):]), mean=v, se=float("nan"))
            for m, v in summary["base"].items() if m.startswith(prefix)]
    for v, d in summary[which].items():
        rows += [dict(variant=v, k=int(m[len(prefix):]), mean=s["mean"], se=s["se"]) for m, s in d.items()
                 if m.startswith(prefix)]
    if not rows:
        raise ValueError(f"The summary has no pass@k for {band!r}; sets: "
                         f"{sorted({m.split('/')[0] for m in summary['base'] if '/' in m})}.")
    return pd.DataFrame(rows)


def run(*, steps: int = 40, seeds: tuple[int, ...] = (0, 1, 2), lr: float | None = None, group_size: int = 8,
        prompts: int = 16, train_band: str | None = None, easy_samples: int | None = None, eval_every: int = 10, n_samples: int = 128, ks: tuple[int, ...] = KS,
        variants: tuple[str, ...] = ("plain", "p=+0.5", "p=-0.5"), out: str | Path | None = None,
        progress: bool = True, model_dir: str | Path | None = None) -> dict[str, Any]:
    """Plain GRPO and THR p = +-0.5 from the committed toy-lm, ``seeds`` each; pass@k on the held-out
    hard and easy holders every ``eval_every`` steps. Returns the raw results plus ``summary``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp import zoo
    from interp.thr.experiment import DEFAULT_VARIANTS, run_experiment
    from interp.thr.grpo import DEFAULT_LR, GRPOConfig

    folder = Path(model_dir) if model_dir is not None else zoo.model_dir("toy-lm-planted")
    task, subsets = code_tasks(train_band)
    table = {v.name: v for v in DEFAULT_VARIANTS}

    def make_model():
        return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)

    base = GRPOConfig(group_size=group_size, prompts_per_step=prompts, lr=lr if lr is not None else DEFAULT_LR,
                      max_new_tokens=task.max_new_tokens)
    t0, c0 = time.time(), time.process_time()
    result = run_experiment(make_model, task, base=base, steps=steps, seeds=tuple(seeds),
                             variants=tuple(table[v] for v in variants), eval_every=eval_every, n_samples=n_samples,
                             ks=ks, eval_tasks=subsets,
                             eval_samples={k: easy_samples for k in subsets if k.endswith("easy")} if easy_samples else None,
                             out=Path(out) if out is not None else None, progress=progress)
    results = result.to_dict()
    results |= dict(train_band=train_band, wall_seconds=time.time() - t0, cpu_seconds=time.process_time() - c0)
    results["summary"] = summarize_runs(results)
    results["bands"] = {b: {"range": list(r), "n_test": len(code_holders("test", b)), "n_train": len(code_holders("train", b))}
                        for b, r in BANDS.items()}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "results.json").write_text(json.dumps(results, indent=1))
    return results

