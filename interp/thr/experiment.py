"""The experiment of the THR paper: train from the same start with plain GRPO, THR p > 0
(exploitation) and p < 0 (exploration), same seeds; evaluate greedy accuracy and pass@k on the
held-out split along the way. :func:`run_experiment` returns an :class:`ExperimentResult`.

From the shell (writes ``results.json`` into ``--out``):

    python -m interp.app.thr_experiment --model stories260K --steps 40 --seeds 0 1 2 --out out/thr_exp
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.core.generation import make_generator
from interp.core.validate import Check
from interp.thr.core import THRInputError
from interp.thr.grpo import GRPOConfig, GRPOTrainer
from interp.thr.policy import Policy, as_policy
from interp.thr.result import GRPOLog
from interp.thr.tasks import VerifiableTask

__all__ = ["pass_at_k", "EvalResult", "evaluate_policy", "Variant", "DEFAULT_VARIANTS", "variants_for", "RunResult",
           "ExperimentResult", "run_experiment", "summarize"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    check = Check("pass_at_k", THRInputError)
    check.integer("n", n, min=1)
    check.integer("c", c, min=0, max=n, fix="c counts the correct samples among the n.")
    check.integer("k", k, min=1)
    if k > n:
        raise THRInputError(f"pass@{k} needs at least k samples; got n={n}.")
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

    def to_frame(self) -> "Any":
        import pandas as pd

        return pd.DataFrame([self.flat()])

    def __repr__(self) -> str:
        return "EvalResult(" + ", ".join(f"{k} {v:.3f}" for k, v in self.flat().items()) + ")"

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, float_format=lambda x: f"{x:.3f}")

    def plot(self) -> "Any":
        """One bar per metric (:func:`interp.thr.plots.eval_figure`)."""
        from interp.thr.plots import eval_figure

        return eval_figure(self.flat())


@torch.no_grad()
def evaluate_policy(model: nn.Module | Policy, task: VerifiableTask, *, n_samples: int = 16, ks: tuple[int, ...] = (1, 2, 4, 8, 16),
             temperature: float = 1.0, seed: int = 1234, batch_prompts: int = 64, tokenizer: Any | None = None) -> EvalResult:
    """Greedy accuracy and unbiased pass@k (``n_samples`` per prompt) on the task's test split."""
    c = Check("evaluate_policy", THRInputError)
    c.instance("task", VerifiableTask, task)
    c.integer("n_samples", n_samples, min=1)
    c.numbers("ks", ks, ge=1)
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int) or k > n_samples]
    if bad:
        c.fail("ks", ks, f"integers in 1..n_samples={n_samples}", f"{bad} cannot be estimated from {n_samples} samples.")
    c.number("temperature", temperature, gt=0)
    c.integer("seed", seed, min=0)
    c.integer("batch_prompts", batch_prompts, min=1)
    policy = as_policy(model, tokenizer)
    gen = make_generator(policy.model, seed)
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

    def __post_init__(self) -> None:
        c = Check(self, THRInputError)
        c.text("name")
        c.instance("overrides", dict)
        known = {f.name for f in fields(GRPOConfig)}
        unknown = sorted(set(self.overrides) - known)
        if unknown:
            c.fail("overrides", self.overrides, f"a dict of GRPOConfig fields ({unknown} are not)",
                   "e.g. {'thr': True, 'thr_p': 0.5}.")
        replace(GRPOConfig(), **self.overrides)  # the values are checked by GRPOConfig itself


DEFAULT_VARIANTS = (
    Variant("plain", {"thr": False}),
    Variant("p=+0.5", {"thr": True, "thr_p": 0.5}),
    Variant("p=-0.5", {"thr": True, "thr_p": -0.5}),
)


def variants_for(p: float) -> tuple[Variant, ...]:
    """Plain GRPO, THR with +p and THR with -p (the paper's comparison at strength |p| < 1)."""
    Check("variants_for", THRInputError).number("p", p, gt=-1, lt=1, fix="Use e.g. p=0.5 (the paper's strength).")
    if p == 0:
        raise THRInputError("variants_for(p=0) is invalid: it must satisfy 0 < |p| < 1 (p=0 is plain GRPO).")
    q = abs(p)
    return (Variant("plain", {"thr": False}), Variant(f"p=+{q:g}", {"thr": True, "thr_p": q}),
            Variant(f"p=-{q:g}", {"thr": True, "thr_p": -q}))


@dataclass
class RunResult:
    """One trained variant: its config, training log and held-out evaluations (step 0 = the start)."""

    variant: str
    seed: int
    config: dict[str, Any]
    log: GRPOLog
    evals: list[dict[str, float]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(variant=self.variant, seed=self.seed, config=self.config, log=self.log.records,
                    evals=self.evals, seconds=self.seconds)

    def __repr__(self) -> str:
        last = self.evals[-1] if self.evals else {}
        tail = f", greedy {last['greedy']:.3f} at step {last['step']}" if "greedy" in last else ""
        return f"RunResult({self.variant!r}, seed={self.seed}, {len(self.log.records)} steps{tail})"

    def to_frame(self) -> "Any":
        """The held-out evaluations, one row per evaluated step."""
        import pandas as pd

        return pd.DataFrame(self.evals)

    def plot(self, metrics: Sequence[str] = ("greedy", "pass@1")) -> "Any":
        """Held-out metrics against the step (:func:`interp.thr.plots.eval_curve_figure`); the training curves
        are ``run.log.plot()``."""
        from interp.thr.plots import eval_curve_figure

        return eval_curve_figure(self, metrics)

    def _repr_html_(self) -> str:
        head = f"<b>{html.escape(repr(self))}</b>"
        if not self.evals:
            return head + " (no evaluations)"
        return head + self.to_frame().to_html(index=False, float_format=lambda x: f"{x:.3f}")


@dataclass
class ExperimentResult:
    """Every run of :func:`run_experiment`: ``.to_frame()`` (held-out metrics per run and step),
    ``.summary()`` (mean ± standard error over seeds), ``.plot()`` (training curves), ``.to_dict()``."""

    task: str
    base: dict[str, Any]
    steps: int
    base_eval: dict[str, float]
    runs: list[RunResult] = field(default_factory=list)

    @property
    def logs(self) -> list[GRPOLog]:
        return [r.log for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return dict(task=self.task, base=self.base, steps=self.steps, base_eval=self.base_eval,
                    runs=[r.to_dict() for r in self.runs])

    def to_frame(self) -> "Any":
        import pandas as pd

        return pd.DataFrame([{"variant": r.variant, "seed": r.seed, **e} for r in self.runs for e in r.evals])

    def final(self) -> "Any":
        """The last evaluation of every run (one row per variant and seed)."""
        frame = self.to_frame()
        return frame[frame["step"] == frame["step"].max()].reset_index(drop=True)

    def summary(self, metrics: tuple[str, ...] = ("greedy", "pass@1", "pass@4", "pass@16")) -> tuple["Any", "Any"]:
        return summarize(self.to_dict(), metrics)

    def plot(self, columns: Sequence[str] = ("reward_mean", "thr_density")) -> "Any":
        from interp.thr.plots import training_figure

        return training_figure(self.logs, columns)

    def _repr_html_(self) -> str:
        return (f"<b>ExperimentResult</b> {html.escape(self.task)}: {len(self.runs)} runs x {self.steps} steps"
                + self.final().to_html(index=False, float_format=lambda x: f"{x:.3f}"))

    def __repr__(self) -> str:
        return f"ExperimentResult({self.task!r}, runs={len(self.runs)}, steps={self.steps})"


def run_experiment(
    make_model: Callable[[], tuple[nn.Module, Any]], task: VerifiableTask, *, base: GRPOConfig, steps: int,
    seeds: tuple[int, ...] = (0,), variants: tuple[Variant, ...] = DEFAULT_VARIANTS, eval_every: int = 10,
    n_samples: int = 16, ks: tuple[int, ...] = (1, 2, 4, 8, 16), out: Path | None = None, progress: bool = True,
    eval_tasks: dict[str, VerifiableTask] | None = None, eval_samples: dict[str, int] | None = None,
) -> ExperimentResult:
    """Train every variant for every seed from the same start (``make_model()`` returns a fresh
    ``(model, tokenizer_or_None)`` each call); evaluate at step 0 and every ``eval_every`` steps
    (``n_samples=0`` evaluates nothing). With ``out``, ``results.json`` is rewritten after every run.
    ``eval_tasks`` are further held-out sets (e.g. a hard and an easy subset) evaluated at the same
    steps; their metrics are keyed ``"<name>/<metric>"`` beside the task's own. ``eval_samples`` gives some of
    them their own number of samples per prompt (pass@k only for k up to it), e.g. fewer for an easy set whose
    pass@k saturates early.

    >>> res = run_experiment(lambda: (copy_model(model), None), task, base=GRPOConfig(), steps=20)  # doctest: +SKIP
    >>> res.final()                                                                                  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from interp.core.progress import bar_disabled

    c = Check("run_experiment", THRInputError)
    if not callable(make_model) or isinstance(make_model, nn.Module):  # a model is callable too
        c.fail("make_model", make_model, "a callable returning a fresh (model, tokenizer_or_None) each call",
               "Pass e.g. lambda: (copy_model(model), None), so every run starts from the same weights.")
    c.instance("task", VerifiableTask, task)
    c.instance("base", GRPOConfig, base)
    c.integer("steps", steps, min=1)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        c.fail("seeds", seeds, "a non-empty tuple of integers >= 0")
    if not variants or not all(isinstance(v, Variant) for v in variants):
        c.fail("variants", variants, "a non-empty tuple of Variant (e.g. variants_for(0.5))")
    c.integer("eval_every", eval_every, min=1)
    c.integer("n_samples", n_samples, min=0, fix="0 evaluates nothing.")
    c.boolean("progress", progress)
    if eval_tasks is not None and not all(isinstance(t, VerifiableTask) for t in eval_tasks.values()):
        c.fail("eval_tasks", eval_tasks, "a dict of name -> VerifiableTask")
    eval_samples = dict(eval_samples or {})
    unknown = sorted(set(eval_samples) - set(eval_tasks or {}))
    if unknown or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in eval_samples.values()):
        c.fail("eval_samples", eval_samples, "a dict of eval_tasks name -> samples per prompt (>= 1)",
               f"{unknown} are not eval_tasks." if unknown else "")
    ks = tuple(k for k in ks if k <= n_samples)

    def measure(model: Any, tok: Any = None) -> dict[str, float]:
        rec = evaluate_policy(model, task, n_samples=n_samples, ks=ks, tokenizer=tok).flat()
        for name, extra in (eval_tasks or {}).items():
            n = eval_samples.get(name, n_samples)
            rec.update({f"{name}/{k}": v for k, v in evaluate_policy(
                model, extra, n_samples=n, ks=tuple(k for k in ks if k <= n), tokenizer=tok).flat().items()})
        return rec

    model0, tok = make_model()
    base_eval = measure(model0, tok) if n_samples else {}
    result = ExperimentResult(task.name, asdict(base), steps, base_eval)
    bar = tqdm(total=len(seeds) * len(variants) * steps, desc="GRPO runs", disable=bar_disabled(progress))
    for seed in seeds:
        for v in variants:
            model, tok = make_model()
            cfg = replace(base, seed=seed, **v.overrides)
            torch.manual_seed(seed)
            # make_model() returned a fresh model, so the trainer may train it in place (no second copy)
            trainer = GRPOTrainer(model, task, cfg, tokenizer=tok, name=f"{v.name} seed={seed}" if len(seeds) > 1 else v.name,
                                  in_place=True)
            evals = [{"step": 0, **base_eval}] if n_samples else []
            t0 = time.time()
            for s in range(1, steps + 1):
                trainer.step()
                bar.update(1)
                if n_samples and (s % eval_every == 0 or s == steps):
                    evals.append({"step": s, **measure(trainer.policy)})
            result.runs.append(RunResult(v.name, seed, asdict(cfg), trainer.log, evals, time.time() - t0))
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / "results.json").write_text(json.dumps(result.to_dict(), indent=1))
    bar.close()
    return result


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
