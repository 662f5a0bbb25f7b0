"""Other rules for choosing SAE features to steer with, beside CorrSteer's correlation, in one run.

Three rules pick from the same candidates, each hook's ``pool`` features with the largest positive
correlation with correctness (CorrSteer's statistics), and steer with the same coefficient (mean
pooled activation on correct samples), so they differ only in which feature they choose:

- ``correlation`` (CorrSteer, Cho et al. 2025): the largest r.
- ``output_score`` (Arad, Mueller & Belinkov, EMNLP 2025, "SAEs are good for steering, if you select
  the right features"): keep the candidates whose decoder direction moves the output, then take the
  largest r among them. A feature's output score is computed as in the authors' code: amplify it at
  the last prompt position by ``amp_factor`` x the largest SAE activation there (their
  ``AmlifySAEHook``: encode, boost, decode, add back the SAE error, i.e. add that multiple of
  ``W_dec[i]``), then, with R the best rank and P the largest probability of the feature's top-``k``
  logit-lens tokens in the next-token distribution, score = (1 - R / |V|) * P. Averaged here over
  ``n_prompts`` training prompts (the authors used one neutral sentence; pass ``prompts=`` for that).
  Kept: the ``output_keep`` share of candidates with the highest score (or score >= ``output_threshold``).
- ``token_confidence`` (Wang, Hu, Wang & Zou, arXiv 2510.03659, "Delta Token Confidence": how much
  amplifying a feature changes the next-token distribution): the candidate whose amplification most
  raises the probability of the most likely next token, mean over prompts of max_v p_amplified(v) -
  max_v p_clean(v), under the same amplification. The paper's formula could not be read here; this
  is the definition its abstract gives, made concrete.

``compare_selectors`` runs them beside difference of means, random-feature controls and the unsteered
model on the held-out split, with the same bootstrap CIs and side-effect ratio as ``run_corrsteer``,
and ranks them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.readout import direction_logits
from interp.core.tasks import TaskSplits
from interp.core.tokens import encode_prompts
from interp.core.validate import Check
from interp.steering.baselines import diff_of_means, random_features
from interp.steering.collect import Collection, Pooling, collect
from interp.steering.corrsteer import check_steering_knobs, evaluate_vectors
from interp.steering.errors import SteeringConfigError
from interp.steering.report import Arm, SteeringReport
from interp.steering.saes import SAEs, resolve_saes
from interp.steering.select import SelectedFeature
from interp.steering.steer import Positions, SteeringVector

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

__all__ = ["RULES", "Rule", "FeatureEffects", "feature_effects", "Candidates", "score_candidates", "select_by_rule",
           "SelectorConfig", "SelectorComparison", "compare_selectors"]

Rule = Literal["correlation", "output_score", "token_confidence"]
RULES: tuple[str, ...] = ("correlation", "output_score", "token_confidence")


@dataclass
class FeatureEffects:
    """Per candidate feature of one SAE: Arad et al.'s output score and the change in token confidence,
    each averaged over the prompts."""

    hook: str
    features: Int[Tensor, " n"]
    output_score: Float[Tensor, " n"]
    delta_confidence: Float[Tensor, " n"]
    n_prompts: int


@torch.no_grad()
def feature_effects(
    model: "HookedTransformer",
    sae: "SAE[Any]",
    features: Sequence[int] | Tensor,
    prompts: Sequence[str],
    *,
    amp_factor: float = 10.0,
    logit_lens_k: int = 20,
) -> FeatureEffects:
    """Output score (Arad et al. 2025) and Delta token confidence (Wang et al. 2025) of ``features``.

    One clean forward per prompt, then one forward of len(features) copies of it, each amplifying one
    feature at the last position (memory: len(features) x vocab).

    Example:
        >>> eff = feature_effects(model, sae, [3, 17], ["From my experience,"])  # doctest: +SKIP
        >>> eff.output_score                                                     # doctest: +SKIP
    """
    from interp.steering.saes import sae_hook_name

    hook = sae_hook_name(sae)
    feats = torch.as_tensor(list(features) if not isinstance(features, Tensor) else features, dtype=torch.long)
    if feats.ndim != 1 or feats.numel() == 0:
        raise ValueError("features must be a non-empty list of feature indices.")
    if int(feats.min()) < 0 or int(feats.max()) >= sae.cfg.d_sae:
        raise IndexError(f"feature indices must lie in 0..{sae.cfg.d_sae - 1}.")
    if not prompts:
        raise ValueError("feature_effects needs at least one prompt.")
    if amp_factor <= 0:
        raise ValueError(f"amp_factor={amp_factor} must be positive.")
    param = next(model.parameters())
    dirs = sae.W_dec[feats.to(sae.W_dec.device)].detach().to(device=param.device, dtype=param.dtype)  # [n, d]
    vocab = int(model.cfg.d_vocab_out if getattr(model.cfg, "d_vocab_out", -1) > 0 else model.cfg.d_vocab)
    k = min(int(logit_lens_k), vocab)
    lens_top = direction_logits(model, dirs).topk(k, dim=-1).indices  # [n, k]: the features' logit-lens tokens
    n = feats.numel()
    out_score = torch.zeros(n, dtype=torch.float64)
    d_conf = torch.zeros(n, dtype=torch.float64)
    for prompt in prompts:  # once per prompt; each forward is batched over the candidates
        tokens, _ = encode_prompts(model, [prompt])
        acts: dict[str, Tensor] = {}

        def grab(act: Tensor, hook: Any) -> None:
            acts["x"] = act[:, -1]

        clean = model.run_with_hooks(tokens, fwd_hooks=[(hook, grab)])[0, -1].float().softmax(-1)
        sae_param = next(sae.parameters())
        top_act = float(sae.encode(acts["x"].to(device=sae_param.device, dtype=sae_param.dtype)).max())
        delta = (amp_factor * max(top_act, 0.0)) * dirs  # [n, d]; their boost is amp x the largest activation

        def amplify(act: Tensor, hook: Any) -> Tensor:
            act = act.clone()
            act[:, -1] += delta
            return act

        probs = model.run_with_hooks(tokens.expand(n, -1), fwd_hooks=[(hook, amplify)])[:, -1].float().softmax(-1)
        # Rank of each lens token in the amplified distribution: the number of tokens strictly more probable.
        lens_p = probs.gather(1, lens_top)  # [n, k]
        ranks = (probs[:, None, :] > lens_p[:, :, None]).sum(-1)  # [n, k]
        best_rank = ranks.min(-1).values.double()
        out_score += ((1 - best_rank / vocab) * lens_p.max(-1).values.double()).cpu()
        d_conf += (probs.max(-1).values - clean.max()).double().cpu()
    m = len(prompts)
    return FeatureEffects(hook, feats, out_score / m, d_conf / m, m)


@dataclass
class Candidates:
    """Every hook's candidate features with their correlation, coefficient and output-side scores."""

    frame: pd.DataFrame  # hook, feature, r, coefficient, firing_rate, output_score, delta_confidence

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def __repr__(self) -> str:
        return f"Candidates({len(self.frame)} features over {self.frame['hook'].nunique()} hooks)"


def score_candidates(
    model: "HookedTransformer",
    saes: Mapping[str, "SAE[Any]"],
    collection: Collection,
    prompts: Sequence[str],
    *,
    pool: int = 16,
    amp_factor: float = 10.0,
    logit_lens_k: int = 20,
    progress: bool = False,
) -> Candidates:
    """Each hook's ``pool`` best positively correlated features, with both output-side scores."""
    if pool < 1:
        raise ValueError(f"pool={pool} must be >= 1.")
    rows = []
    for hook, stats in tqdm(collection.stats.items(), desc="candidate effects", disable=not progress):
        if hook not in saes:
            raise KeyError(f"The collection has statistics for {hook!r} but no SAE was given for it.")
        r = stats.correlation()
        key = torch.where(stats.zero_variance | (r <= 0), torch.full_like(r, -torch.inf), r)
        order = torch.argsort(key, descending=True, stable=True)[:pool]
        order = order[torch.isfinite(key[order])]
        if order.numel() == 0:
            continue
        coef, rate = stats.mean_active(1), stats.firing_rate()
        eff = feature_effects(model, saes[hook], order, prompts, amp_factor=amp_factor, logit_lens_k=logit_lens_k)
        for j, i in enumerate(order.tolist()):
            rows.append({"hook": hook, "feature": int(i), "r": float(r[i]), "coefficient": float(coef[i]),
                         "firing_rate": float(rate[i]), "output_score": float(eff.output_score[j]),
                         "delta_confidence": float(eff.delta_confidence[j])})
    cols = ["hook", "feature", "r", "coefficient", "firing_rate", "output_score", "delta_confidence"]
    return Candidates(pd.DataFrame(rows, columns=cols))


def _as_feature(row: pd.Series) -> SelectedFeature:
    return SelectedFeature(str(row["hook"]), int(row["feature"]), float(row["r"]), float(row["coefficient"]),
                           float(row["firing_rate"]))


def select_by_rule(
    candidates: Candidates,
    rule: Rule,
    *,
    output_keep: float = 0.5,
    output_threshold: float | None = None,
) -> list[SelectedFeature]:
    """One feature per hook under ``rule`` (see the module docstring), best first by the rule's own key.

    ``output_score`` keeps, per hook, the ``output_keep`` share of candidates with the highest output
    score (at least one), or those with score >= ``output_threshold`` when given; then the largest r.

    Example:
        >>> select_by_rule(candidates, "token_confidence")[0]   # the S feature under that rule  # doctest: +SKIP
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
    if not 0 < output_keep <= 1:
        raise ValueError(f"output_keep={output_keep} must be in (0, 1].")
    chosen: list[tuple[float, SelectedFeature]] = []
    for _, g in candidates.frame.groupby("hook", sort=False):
        if rule == "correlation":
            best = g.sort_values("r", ascending=False, kind="stable").iloc[0]
            chosen.append((float(best["r"]), _as_feature(best)))
        elif rule == "output_score":
            if output_threshold is not None:
                kept = g[g["output_score"] >= output_threshold]
            else:
                n_keep = max(1, int(np.ceil(output_keep * len(g))))
                kept = g.sort_values("output_score", ascending=False, kind="stable").iloc[:n_keep]
            if len(kept):
                best = kept.sort_values("r", ascending=False, kind="stable").iloc[0]
                chosen.append((float(best["r"]), _as_feature(best)))
        else:
            best = g.sort_values("delta_confidence", ascending=False, kind="stable").iloc[0]
            chosen.append((float(best["delta_confidence"]), _as_feature(best)))
    return [f for _, f in sorted(chosen, key=lambda t: -t[0])]


@dataclass
class SelectorConfig:
    """Knobs of :func:`compare_selectors` (steering knobs as in :class:`CorrSteerConfig`)."""

    pooling: Pooling | None = None
    max_new_tokens: int | None = None
    batch_size: int = 32
    scale: float = 1.0
    n_random: int = 5
    diff_means: bool = True
    positions: Positions = "generated"
    use_kv_cache: bool = True
    pool: int = 16
    n_prompts: int = 16
    amp_factor: float = 10.0
    logit_lens_k: int = 20
    output_keep: float = 0.5
    output_threshold: float | None = None
    n_boot: int = 2000
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        c = Check(self, SteeringConfigError)
        check_steering_knobs(c)
        c.integer("pool", min=1, fix="Candidates per hook (the features with the largest positive correlation).")
        c.integer("n_prompts", min=1, fix="Training prompts the output scores are averaged over.")
        c.number("amp_factor", gt=0, fix="The amplification, in units of the largest SAE activation (10 in Arad et al.).")
        c.integer("logit_lens_k", min=1)
        c.number("output_keep", gt=0, le=1, fix="The share of candidates the output-score filter keeps.")
        c.number("output_threshold", optional=True, fix="None keeps the output_keep share instead.")


@dataclass
class SelectorComparison:
    """Held-out comparison of feature-selection rules: the :class:`SteeringReport` (one arm per rule,
    difference of means, random controls, unsteered), the candidates' scores and each rule's choice.

    ``ranking()`` orders the rules and baselines by their paired accuracy change over the unsteered
    model; a rule ``beats_random`` when its change's CI lies above the best random control's change.
    """

    report: SteeringReport
    candidates: Candidates
    chosen: dict[str, list[SelectedFeature]]
    meta: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> pd.DataFrame:
        f = self.report.to_frame()
        rnd = f[f["kind"] == "random"]
        top_random = float(rnd["delta"].max()) if len(rnd) else float("nan")
        g = f[f["kind"] != "random"].copy()
        g["beats_random"] = g["delta_low"] > top_random if len(rnd) else False
        g.loc[g["kind"] == "unsteered", "beats_random"] = False
        g = g.sort_values(["delta", "delta_low"], ascending=False, kind="stable").reset_index(drop=True)
        g.insert(0, "rank", np.arange(1, len(g) + 1))
        g["random_delta_max"] = top_random
        g["random_delta_min"] = float(rnd["delta"].min()) if len(rnd) else float("nan")
        return g[["rank", "condition", "kind", "accuracy", "ci_low", "ci_high", "delta", "delta_low", "delta_high",
                  "ser", "n_changed", "n", "beats_random", "random_delta_min", "random_delta_max", "features"]]

    def plot(self) -> "go.Figure":
        """Paired accuracy change per rule with 95% CIs over the random controls' range, and the SER
        (:func:`interp.steering.plots_selectors.selectors_figure`)."""
        from interp.steering.plots_selectors import selectors_figure

        return selectors_figure(self)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "SelectorComparison/1", "report": self.report.to_dict(),
                "candidates": self.candidates.frame.to_dict(orient="records"),
                "chosen": {k: [f.to_dict() for f in v] for k, v in self.chosen.items()}, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SelectorComparison":
        if d.get("format") != "SelectorComparison/1":
            raise ValueError(f"Not a saved SelectorComparison (format={d.get('format')!r}).")
        return cls(SteeringReport.from_dict(d["report"]), Candidates(pd.DataFrame(d["candidates"])),
                   {k: [SelectedFeature(**f) for f in v] for k, v in d["chosen"].items()}, dict(d["meta"]))

    def save(self, path: str | Path) -> Path:
        """Write ``comparison.json`` into the folder ``path`` (JSON only)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "comparison.json").write_text(json.dumps(self.to_dict(), indent=1))
        return folder / "comparison.json"

    @classmethod
    def load(cls, path: str | Path) -> "SelectorComparison":
        p = Path(path)
        return cls.from_dict(json.loads((p / "comparison.json" if p.is_dir() else p).read_text()))

    def _repr_html_(self) -> str:
        r = self.ranking().drop(columns=["features"])
        return (f"<h4>Selection rules on {html.escape(self.report.task)}</h4>"
                + r.to_html(index=False, float_format=lambda x: f"{x:.3f}"))

    def __repr__(self) -> str:
        r = self.ranking()
        return f"SelectorComparison({self.report.task!r}, best={r['condition'].iloc[0]!r}, n={int(r['n'].iloc[0])})"


def compare_selectors(
    model: "HookedTransformer",
    saes: SAEs,
    splits: TaskSplits,
    config: SelectorConfig | None = None,
    *,
    collection: Collection | None = None,
    prompts: Sequence[str] | None = None,
) -> SelectorComparison:
    """Correlation, output-score filtering and Delta token confidence, beside difference of means, random
    controls and the unsteered model, on ``splits.test``: one run, one report.

    Every rule steers with its S feature (its best over hooks) at ``scale`` x its mean activation on
    correct training samples; the baselines sit at the correlation S feature's hook and norm (as in
    :func:`run_corrsteer`). The output-side scores use ``prompts`` (default: the first ``n_prompts``
    training prompts). ``splits.val`` is not used.

    Example:
        >>> cmp = compare_selectors(model, saes, task.split(900, 150))   # doctest: +SKIP
        >>> cmp.ranking(); cmp.plot()                                    # doctest: +SKIP
    """
    cfg = config or SelectorConfig()
    by_hook = resolve_saes(model, saes)
    ev = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, positions=cfg.positions,
              use_kv_cache=cfg.use_kv_cache)
    col = collection or collect(model, by_hook, splits.train, pooling=cfg.pooling, max_new_tokens=cfg.max_new_tokens,
                                batch_size=cfg.batch_size, use_kv_cache=cfg.use_kv_cache, progress=cfg.progress)
    use_prompts = list(prompts) if prompts is not None else [e.prompt for e in list(splits.train.examples)[: cfg.n_prompts]]
    cands = score_candidates(model, by_hook, col, use_prompts, pool=cfg.pool, amp_factor=cfg.amp_factor,
                             logit_lens_k=cfg.logit_lens_k, progress=cfg.progress)
    if cands.frame.empty:
        raise ValueError("No feature correlated positively with correctness at any hook; nothing to select.")
    chosen = {rule: select_by_rule(cands, rule, output_keep=cfg.output_keep, output_threshold=cfg.output_threshold)
              for rule in RULES}

    def vec(f: SelectedFeature) -> SteeringVector:
        return SteeringVector.from_sae(by_hook[f.hook], f.feature, f.coefficient * cfg.scale, r=f.r)

    conditions: dict[str, tuple[str, list[SteeringVector]]] = {"unsteered": ("unsteered", [])}
    for rule in RULES:
        if chosen[rule]:
            conditions[rule] = ("corrsteer" if rule == "correlation" else rule, [vec(chosen[rule][0])])
    s_vec = conditions["correlation"][1][0]
    norm = float(s_vec.vector.norm())
    if cfg.diff_means and col.labels.min() != col.labels.max():
        conditions["diff_means"] = ("diff_means", [diff_of_means(col, s_vec.hook_name, norm=norm)])
    for j, v in enumerate(random_features(by_hook[s_vec.hook_name], cfg.n_random, norm=norm, seed=cfg.seed,
                                          exclude=(s_vec.feature or 0,))):
        conditions[f"random_{j}"] = ("random", [v])
    arms: dict[str, Arm] = {}
    done: dict[tuple, tuple[list[int], list[str]]] = {}  # rules that chose the same feature share one evaluation
    for name, (kind, vs) in tqdm(conditions.items(), desc="test", disable=not cfg.progress):
        key = tuple((v.hook_name, v.feature, v.coefficient) if v.source == "sae" else (name,) for v in vs)
        if key not in done:
            labels, texts = evaluate_vectors(model, splits.test, vs, **ev)
            done[key] = (labels.tolist(), texts)
        arms[name] = Arm(name, kind, list(done[key][0]), list(done[key][1]), [v.to_dict() for v in vs])
    meta = {"config": asdict(cfg), "pooling": col.pooling, "n_train": len(col.labels), "n_test": len(splits.test),
            "train_accuracy": col.accuracy, "hooks": list(by_hook), "n_score_prompts": len(use_prompts)}
    report = SteeringReport(splits.test.name, arms, [f for r in RULES for f in chosen[r][:1]], {}, float("nan"),
                            meta, cfg.n_boot, 0.95, cfg.seed)
    return SelectorComparison(report, cands, chosen, meta)
