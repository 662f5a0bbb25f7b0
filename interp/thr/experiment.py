"""The experiment of the THR paper on our models: train from the same start with plain GRPO,
THR p > 0 (exploitation) and p < 0 (exploration), same seeds; evaluate greedy accuracy and
pass@k on the held-out split along the way.

Run from the shell (writes ``results.json`` and ``runs.csv`` into ``--out``):

    python -m interp.thr.experiment --model stories260K --steps 40 --seeds 0 1 2 --out out/thr_exp
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.thr.grpo import GRPOConfig, GRPOTrainer, suggested_lr
from interp.thr.policy import Policy, as_policy
from interp.thr.tasks import VerifiableTask

__all__ = ["pass_at_k", "EvalResult", "evaluate", "Variant", "DEFAULT_VARIANTS", "run_experiment", "summarize"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least k samples; got n={n}.")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


@dataclass
class EvalResult:
    greedy: float
    pass_at: dict[int, float]
    mean_reward: float

    def flat(self) -> dict[str, float]:
        return {"greedy": self.greedy, "mean_reward": self.mean_reward, **{f"pass@{k}": v for k, v in self.pass_at.items()}}


@torch.no_grad()
def evaluate(model: nn.Module | Policy, task: VerifiableTask, *, n_samples: int = 16, ks: tuple[int, ...] = (1, 2, 4, 8, 16),
             temperature: float = 1.0, seed: int = 1234, batch_prompts: int = 64, tokenizer: Any | None = None) -> EvalResult:
    """Greedy accuracy and unbiased pass@k (``n_samples`` per prompt) on the task's test split."""
    policy = as_policy(model, tokenizer)
    gen = torch.Generator().manual_seed(seed)
    items = task.test
    greedy_hits, counts = [], []
    for b0 in range(0, len(items), batch_prompts):
        chunk = items[b0 : b0 + batch_prompts]
        enc = [policy.encode(it.prompt) for it in chunk]
        ro = policy.sample(enc, max_new_tokens=task.max_new_tokens, temperature=0)
        greedy_hits += [task.reward(it, policy.decode(r)) > 0 for it, r in zip(chunk, ro.response_list())]
        ro = policy.sample([e for e in enc for _ in range(n_samples)], max_new_tokens=task.max_new_tokens,
                           temperature=temperature, generator=gen)
        texts = [policy.decode(r) for r in ro.response_list()]
        ok = [task.reward(chunk[i // n_samples], t) > 0 for i, t in enumerate(texts)]
        counts += [sum(ok[i * n_samples : (i + 1) * n_samples]) for i in range(len(chunk))]
    pk = {k: sum(pass_at_k(n_samples, c, k) for c in counts) / len(counts) for k in ks if k <= n_samples}
    return EvalResult(greedy=sum(greedy_hits) / len(greedy_hits), pass_at=pk,
                      mean_reward=sum(counts) / (len(counts) * n_samples))


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


DEFAULT_VARIANTS = (
    Variant("plain", {"thr": False}),
    Variant("p=+0.5", {"thr": True, "thr_p": 0.5}),
    Variant("p=-0.5", {"thr": True, "thr_p": -0.5}),
)


def run_experiment(
    make_model: Callable[[], tuple[nn.Module, Any]], task: VerifiableTask, *, base: GRPOConfig, steps: int,
    seeds: tuple[int, ...] = (0,), variants: tuple[Variant, ...] = DEFAULT_VARIANTS, eval_every: int = 10,
    n_samples: int = 16, out: Path | None = None, progress: bool = True, ks: tuple[int, ...] = (1, 2, 4, 8, 16),
    eval_tasks: dict[str, VerifiableTask] | None = None,
) -> dict[str, Any]:
    """Train every variant for every seed from the same start; evaluate at step 0 and every
    ``eval_every`` steps. Returns (and writes to ``out``) the per-step logs and evaluations.

    ``eval_tasks`` are further held-out sets (e.g. a hard and an easy subset) evaluated at the same
    steps; their metrics are keyed ``"<name>/<metric>"`` beside the task's own."""
    results: dict[str, Any] = {"task": task.name, "base": asdict(base), "steps": steps, "runs": [],
                               "n_samples": n_samples, "ks": list(ks), "eval_tasks": list(eval_tasks or {})}

    def measure(model: Any, tok: Any = None) -> dict[str, float]:
        rec = evaluate(model, task, n_samples=n_samples, ks=ks, tokenizer=tok).flat()
        for name, extra in (eval_tasks or {}).items():
            rec.update({f"{name}/{k}": v for k, v in evaluate(model, extra, n_samples=n_samples, ks=ks,
                                                             tokenizer=tok).flat().items()})
        return rec

    model0, tok = make_model()
    base_eval = measure(model0, tok)
    results["base_eval"] = base_eval
    for seed in seeds:
        for v in variants:
            model, tok = make_model()
            cfg = replace(base, seed=seed, **v.overrides)
            torch.manual_seed(seed)
            trainer = GRPOTrainer(model, task, cfg, tokenizer=tok, name=f"{v.name} seed={seed}")
            evals = [{"step": 0, **base_eval}]
            t0 = time.time()
            for s in range(1, steps + 1):
                trainer.step()
                if s % eval_every == 0 or s == steps:
                    evals.append({"step": s, **measure(trainer.policy)})
                    if progress:
                        print(f"[{v.name} seed={seed}] step {s}: {evals[-1]} ({time.time() - t0:.0f}s)", flush=True)
            results["runs"].append(dict(variant=v.name, seed=seed, config=asdict(cfg), log=trainer.log.records,
                                        evals=evals, seconds=time.time() - t0))
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def summarize(results: dict[str, Any], metrics: tuple[str, ...] = ("greedy", "pass@1", "pass@4", "pass@16"),
              ) -> tuple["Any", "Any"]:
    """Two tables, as "mean ± standard error over seeds": held-out metrics per variant and
    evaluation step, and per variant the training-time statistics averaged over each run's steps
    (training reward, THR density, share of dominant tokens with THR > 0, overlap of the top-10%
    |THR| tokens with the top-10% entropy tokens, chance = 0.1)."""
    import pandas as pd

    def fmt(g: Any) -> Any:
        m, se = g.mean(), g.sem()
        return m.combine(se, lambda a, b: f"{a:.3f} ± {0.0 if pd.isna(b) else b:.3f}")

    ev = pd.DataFrame([{"variant": r["variant"], "seed": r["seed"], **{k: e[k] for k in ("step",) + metrics}}
                       for r in results["runs"] for e in r["evals"]])
    evals = ev.groupby(["step", "variant"])[list(metrics)].apply(fmt)
    cols = ("reward_mean", "thr_density", "dominant_positive", "overlap_thr_entropy", "entropy_all")
    tr = pd.DataFrame([{"variant": r["variant"], "seed": r["seed"],
                        **{c: float(pd.DataFrame(r["log"])[c].mean()) for c in cols if c in pd.DataFrame(r["log"])}}
                       for r in results["runs"]])
    train = tr.groupby("variant")[[c for c in cols if c in tr]].apply(fmt)
    return evals, train


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stories260K", help="stories260K or a zoo name (toy-lm)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=None, help="default: interp.thr.grpo.suggested_lr(model)")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--n-samples", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--exclude-self", action="store_true")
    ap.add_argument("--loss-type", default="grpo")
    ap.add_argument("--variants", nargs="+", default=["plain", "p=+0.5", "p=-0.5"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/thr_experiment"))
    ap.add_argument("--summarize", type=Path, default=None, help="print the summary of a results.json and exit")
    a = ap.parse_args()
    if a.summarize is not None:
        import pandas as pd

        with pd.option_context("display.width", 250, "display.max_columns", 40, "display.precision", 3):
            evals, train = summarize(json.loads(a.summarize.read_text()))
            print(evals.to_string(), "\n\nTraining-time means over steps:\n", train.to_string(), sep="")
        return
    torch.set_num_threads(a.threads)  # one thread per process is fastest on a shared CPU
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.thr import tasks as T

    if a.model == "stories260K":
        from interp.models import shared_model_dir

        folder = shared_model_dir()
        task = T.story_word_task(max_new_tokens=a.max_new_tokens)
    else:
        from interp import zoo

        folder = zoo.model_dir(a.model)
        task = T.zoo_task()

    def make_model():
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

    table = {v.name: v for v in DEFAULT_VARIANTS}
    variants = []
    for name in a.variants:
        if name in table:
            variants.append(table[name])
        else:  # "p=<value>"
            variants.append(Variant(name, {"thr": True, "thr_p": float(name.split("=")[1])}))
    lr = a.lr if a.lr is not None else suggested_lr(a.model)
    base = GRPOConfig(group_size=a.group_size, prompts_per_step=a.prompts, lr=lr, loss_type=a.loss_type,
                      thr_exclude_self=a.exclude_self, max_new_tokens=a.max_new_tokens)
    run_experiment(make_model, task, base=base, steps=a.steps, seeds=tuple(a.seeds), variants=tuple(variants),
                   eval_every=a.eval_every, n_samples=a.n_samples, out=a.out)


if __name__ == "__main__":
    _main()
