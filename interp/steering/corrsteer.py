"""One call for the common case: collect on train, select S / A / P, evaluate with baselines on test.

CorrSteer (Cho et al. 2025, arXiv 2508.12535). P's per-hook solo runs use the validation split only;
every number in the report comes from the held-out test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.core.progress import bar_disabled
from interp.steering.baselines import diff_of_means, random_features
from interp.steering.collect import Collection, Pooling, collect
from interp.core.generation import generate
from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError
from interp.steering.report import Arm, SteeringReport
from interp.steering.saes import SAEs, resolve_saes
from interp.steering.select import select_features, to_vectors, variant_a, variant_p, variant_s
from interp.steering.steer import Positions, SteeringVector, steer
from interp.core.tasks import TaskProtocol, TaskSplits

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["CorrSteerConfig", "evaluate_vectors", "run_corrsteer", "scale_sweep", "compare_generations"]


@dataclass
class CorrSteerConfig:
    """Every knob of :func:`run_corrsteer`.

    ``scale`` multiplies the paper's coefficient (mean activation on correct samples). Baselines
    (difference of means, ``n_random`` random features) sit at the hook of the S feature, at the
    norm of the S vector, so they differ from S only in direction.
    """

    pooling: Pooling | None = None
    max_new_tokens: int | None = None
    batch_size: int = 32
    scale: float = 1.0
    n_random: int = 5
    diff_means: bool = True
    positions: Positions = "generated"
    use_kv_cache: bool = True
    n_boot: int = 2000
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_steering_knobs(Check(self, SteeringConfigError))


def check_steering_knobs(c: Check) -> None:
    """The knobs every steering run shares (CorrSteerConfig, the selection-rule comparison's SelectorConfig)."""
    c.choice("pooling", ("max", "mean", "answer"), optional=True, fix="None takes the task's default pooling.")
    c.integer("max_new_tokens", min=1, optional=True, fix="None takes the task's own.")
    c.integer("batch_size", min=1)
    c.number("scale", fix="scale multiplies the paper's coefficient; 1.0 is the paper's setting.")
    c.integer("n_random", min=0, fix="The number of random-feature controls (5 by default; 0 for none).")
    c.boolean("diff_means")
    c.choice("positions", ("generated", "all"))
    c.boolean("use_kv_cache")
    c.integer("n_boot", min=1, fix="Bootstrap resamples for the CIs, e.g. 2000.")
    c.integer("seed", min=0)
    c.boolean("progress")


def _check_eval_args(name: str, model: Any, task: Any, vectors: Any, *, max_new_tokens: Any, batch_size: Any,
                     positions: Any, use_kv_cache: Any, scale: Any) -> list[SteeringVector]:
    c = Check(name, SteeringConfigError)
    if not isinstance(task, TaskProtocol):
        c.fail("task", task, "a task with examples, max_new_tokens, answer_format, stop and check() (interp.core.tasks.Task)")
    vecs = [vectors] if isinstance(vectors, SteeringVector) else list(vectors)
    bad = next((v for v in vecs if not isinstance(v, SteeringVector)), None)
    if bad is not None:
        c.fail("vectors", bad, "a sequence of SteeringVector")
    c.integer("max_new_tokens", max_new_tokens, min=1, optional=True)
    c.integer("batch_size", batch_size, min=1)
    c.choice("positions", ("generated", "all"), positions)
    c.boolean("use_kv_cache", use_kv_cache)
    c.number("scale", scale, fix="A NaN or infinite scale steers every token to garbage.")
    return vecs


@torch.no_grad()
def evaluate_vectors(
    model: "HookedTransformer",
    task: TaskProtocol,
    vectors: Sequence[SteeringVector] = (),
    *,
    max_new_tokens: int | None = None,
    batch_size: int = 32,
    positions: Positions = "generated",
    use_kv_cache: bool = True,
    scale: float = 1.0,
    progress: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Greedy generation on ``task`` while steering with ``vectors``: (labels, generations)."""
    vectors = _check_eval_args("evaluate_vectors", model, task, vectors, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, positions=positions, use_kv_cache=use_kv_cache, scale=scale)
    max_new = int(max_new_tokens or task.max_new_tokens)
    texts: list[str] = []
    examples = list(task.examples)
    stop = tuple(getattr(task, "stop", ()))
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=bar_disabled(progress)):
        chunk = examples[start : start + batch_size]
        prompts = [e.prompt for e in chunk]
        if vectors:
            with steer(model, list(vectors), positions=positions, scale=scale):
                out = generate(model, prompts, max_new, use_kv_cache=use_kv_cache, stop=stop)
        else:
            out = generate(model, prompts, max_new, use_kv_cache=use_kv_cache, stop=stop)
        texts.extend(out.texts())
    labels = np.array([int(task.check(e, t)) for e, t in zip(examples, texts)], dtype=np.int64)
    return labels, texts


def compare_generations(model: "HookedTransformer", prompts: Sequence[str], vectors: Sequence[SteeringVector], *,
                        scale: float = 1.0, max_new_tokens: int = 12, stop: Sequence[str] = (),
                        positions: Positions = "generated") -> tuple[list[str], list[str]]:
    """Unsteered and steered greedy continuations of ``prompts`` side by side."""
    c = Check("compare_generations", SteeringConfigError)
    prompts = c.strings("prompts", [prompts] if isinstance(prompts, str) else prompts, min_len=1)
    c.number("scale", scale)
    vectors = [vectors] if isinstance(vectors, SteeringVector) else list(vectors)
    with torch.no_grad():
        plain = generate(model, list(prompts), max_new_tokens, stop=stop).texts()
        if vectors and scale != 0:
            with steer(model, list(vectors), positions=positions, scale=scale):
                steered = generate(model, list(prompts), max_new_tokens, stop=stop).texts()
        else:
            steered = list(plain)
    return plain, steered


def scale_sweep(model: "HookedTransformer", task: TaskProtocol, vectors: Sequence[SteeringVector],
                scales: Sequence[float], **kwargs: Any) -> dict[float, float]:
    """Accuracy at each multiple of the vectors' coefficients (0 is the unsteered model)."""
    Check("scale_sweep", SteeringConfigError).numbers("scales", scales, fix="e.g. (0, 0.5, 1, 2).")
    return {float(s): float(evaluate_vectors(model, task, vectors, scale=s, **kwargs)[0].mean()) for s in scales}


def run_corrsteer(
    model: "HookedTransformer",
    saes: SAEs,
    splits: TaskSplits,
    config: CorrSteerConfig | None = None,
    *,
    collection: Collection | None = None,
) -> SteeringReport:
    """CorrSteer end to end: statistics on ``splits.train``, P's solo runs on ``splits.val``,
    unsteered / S / A / P / difference-of-means / random controls on ``splits.test``.

    Example:
        >>> splits = task.split(train=0.6, val=0.1, seed=0)              # doctest: +SKIP
        >>> report = run_corrsteer(model, saes, splits)                  # doctest: +SKIP
        >>> report.to_frame()[["condition", "accuracy", "ci_low", "ci_high", "ser"]]  # doctest: +SKIP
    """
    cfg = config or CorrSteerConfig()
    c = Check("run_corrsteer", SteeringConfigError)
    c.instance("config", CorrSteerConfig, cfg)
    c.instance("splits", TaskSplits, splits, fix="Make them with task.split(train=..., val=..., seed=...).")
    c.instance("collection", Collection, collection, optional=True)
    by_hook = resolve_saes(model, saes)
    smallest = min(int(s.cfg.d_sae) for s in by_hook.values())
    c.require(cfg.n_random <= smallest - 1, "n_random", cfg.n_random,
              f"at most {smallest - 1} (the random controls are distinct features of an SAE with d_sae={smallest}, "
              "other than the selected one)")
    ev = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, positions=cfg.positions,
              use_kv_cache=cfg.use_kv_cache)
    if collection is not None and set(collection.hooks) != set(by_hook):
        c.fail("collection", f"Collection over {collection.hooks}", f"collected at the SAEs' hooks {list(by_hook)}",
               "Collect with the same SAEs, or pass collection=None.")
    col = collection or collect(model, by_hook, splits.train, pooling=cfg.pooling, max_new_tokens=cfg.max_new_tokens,
                                batch_size=cfg.batch_size, use_kv_cache=cfg.use_kv_cache, progress=cfg.progress)
    selected = select_features(col)
    if not selected:
        raise SteeringConfigError("No feature varied across training samples at any hook; nothing to select. Use more "
                                  "or more varied training samples.")

    def vecs(features: Sequence[Any]) -> list[SteeringVector]:
        return to_vectors(features, by_hook, scale=cfg.scale)

    # P: solo steering per hook on the validation split
    base_val = float(evaluate_vectors(model, splits.val, **ev)[0].mean())
    solo = {}
    for f in tqdm(variant_a(selected), desc="solo (val)", disable=bar_disabled(cfg.progress)):
        solo[f.hook] = float(evaluate_vectors(model, splits.val, vecs([f]), **ev)[0].mean())
    conditions: dict[str, tuple[str, list[SteeringVector]]] = {
        "unsteered": ("unsteered", []),
        "S": ("corrsteer", vecs(variant_s(selected))),
        "A": ("corrsteer", vecs(variant_a(selected))),
        "P": ("corrsteer", vecs(variant_p(selected, solo, base_val))),
    }
    s_vec = conditions["S"][1][0]
    norm = float(s_vec.vector.norm())
    if cfg.diff_means and col.labels.min() != col.labels.max():
        conditions["diff_means"] = ("diff_means", [diff_of_means(col, s_vec.hook_name, norm=norm)])
    for j, v in enumerate(random_features(by_hook[s_vec.hook_name], cfg.n_random, norm=norm, seed=cfg.seed,
                                          exclude=(s_vec.feature or 0,))):
        conditions[f"random_{j}"] = ("random", [v])
    arms: dict[str, Arm] = {}
    for name, (kind, vs) in tqdm(conditions.items(), desc="test", disable=bar_disabled(cfg.progress)):
        if name == "P" and not vs:  # no hook qualified: P is the unsteered model
            arms[name] = Arm(name, kind, list(arms["unsteered"].labels), list(arms["unsteered"].generations), [])
            continue
        labels, texts = evaluate_vectors(model, splits.test, vs, **ev)
        arms[name] = Arm(name, kind, labels.tolist(), texts, [v.to_dict() for v in vs])
    meta = {"config": asdict(cfg), "pooling": col.pooling, "n_train": len(col.labels),
            "n_val": len(splits.val), "n_test": len(splits.test), "train_accuracy": col.accuracy,
            "hooks": list(by_hook), "p_hooks": [v.hook_name for v in conditions["P"][1]]}
    return SteeringReport(splits.test.name, arms, selected, solo, base_val, meta, cfg.n_boot, 0.95, cfg.seed)
