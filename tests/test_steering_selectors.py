"""Feature-selection rules beside CorrSteer: output score (Arad et al. 2025), Delta token confidence
(Wang et al. 2025), and the one-run comparison, checked on a planted feature.

The planted SAE (on the last residual of a tiny Llama) has feature P whose decoder direction writes
the unembedding of one token (it *moves* the output), feature Q with a near-zero decoder row (it
*describes* correctness, r highest, but moves nothing) and weak random features. Correctness
statistics are planted so that Q has the largest r and P the second largest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from interp.core.tasks import Example, ExactMatchTask
from interp.core.tokens import encode_prompts
from interp.steering.collect import Collection
from interp.steering.corrsteer import evaluate_vectors
from interp.steering.selectors import (
    Candidates, SelectorComparison, SelectorConfig, compare_selectors, feature_effects, score_candidates, select_by_rule,
)
from interp.steering.stats import CorrelationStats

from tiny_models import WORDS, make_sae, random_prompts, tiny_llama_with_tokenizer

HOOK = "blocks.2.hook_resid_post"
P, Q, TARGET_WORD = 7, 11, "fox"


@pytest.fixture(scope="module")
def planted():
    model = tiny_llama_with_tokenizer(seed=1)
    sae = make_sae(HOOK, d_sae=24, seed=4)
    target = WORDS.index(TARGET_WORD) + 3
    with torch.no_grad():
        w = sae.W_dec
        w.mul_(0.05 / w.norm(dim=1, keepdim=True))  # weak random directions
        u = model.W_U[:, target] / model.ln_final.w  # raises the target's logit through the final norm's weight
        w[P] = u / u.norm()
        w[Q] = w[Q] / w[Q].norm() * 1e-4
    prompts = random_prompts(6, seed=2)
    return model, sae, target, prompts


def _brute_force(model, sae, feature, prompt, amp, k):
    """The authors' recipe written out with a full argsort (as in their output_score.py), one feature."""
    tokens, _ = encode_prompts(model, [prompt])
    _, cache = model.run_with_cache(tokens, names_filter=[HOOK])
    x = cache[HOOK][:, -1]
    boost = amp * float(sae.encode(x).max())
    clean = torch.softmax(model(tokens)[0, -1], -1)

    def hook(act, hook):
        act = act.clone()
        act[:, -1] += boost * sae.W_dec[feature]
        return act

    probs = torch.softmax(model.run_with_hooks(tokens, fwd_hooks=[(HOOK, hook)])[0, -1], -1)
    lens = torch.topk(torch.softmax((sae.W_dec[feature] * model.ln_final.w) @ model.W_U, -1), k).indices
    order = torch.argsort(probs, descending=True)
    ranks = [int((order == t).nonzero()[0, 0]) for t in lens]
    out = (1 - min(ranks) / probs.numel()) * float(probs[lens].max())
    return out, float(probs.max() - clean.max())


@torch.no_grad()
def test_feature_effects_match_a_brute_force_and_find_the_planted_feature(planted):
    model, sae, target, prompts = planted
    feats = list(range(sae.cfg.d_sae))
    eff = feature_effects(model, sae, feats, prompts, amp_factor=10.0, logit_lens_k=3)
    for f in (P, Q, 0, 5):
        pairs = [_brute_force(model, sae, f, p, 10.0, 3) for p in prompts]
        assert float(eff.output_score[f]) == pytest.approx(np.mean([a for a, _ in pairs]), abs=1e-5), f
        assert float(eff.delta_confidence[f]) == pytest.approx(np.mean([b for _, b in pairs]), abs=1e-5), f
    assert int(eff.output_score.argmax()) == P and int(eff.delta_confidence.argmax()) == P
    assert float(eff.output_score[P]) > 0.9  # the target becomes the top token with probability > 0.9
    assert abs(float(eff.delta_confidence[Q])) < 1e-3  # a feature that moves nothing changes no confidence
    assert float(eff.output_score[Q]) < float(eff.output_score[P]) / 3


def _planted_collection(n_features: int) -> Collection:
    """Statistics where Q correlates best with correctness, P second, a few others weakly, the rest not."""
    g = torch.Generator().manual_seed(0)
    y = (torch.arange(200) % 2).double()
    x = torch.rand(200, n_features, generator=g, dtype=torch.float64)
    x[:, Q] += 3.0 * y
    x[:, P] += 1.5 * y
    for f in (0, 3, 5):
        x[:, f] += 0.3 * y
    stats = CorrelationStats(n_features).update(x, y)
    return Collection({HOOK: stats}, {}, [""] * 200, y.long().numpy(), "max", "planted")


@torch.no_grad()
def test_each_rule_picks_its_planted_feature(planted):
    model, sae, _, prompts = planted
    col = _planted_collection(sae.cfg.d_sae)
    cands = score_candidates(model, {HOOK: sae}, col, prompts, pool=6, logit_lens_k=3)
    frame = cands.to_frame()
    assert frame["feature"].tolist()[:2] == [Q, P] and len(frame) == 6  # the pool: top 6 by positive r
    assert select_by_rule(cands, "correlation")[0].feature == Q
    assert select_by_rule(cands, "output_score", output_threshold=0.5)[0].feature == P
    assert select_by_rule(cands, "output_score", output_keep=0.5)[0].feature == P  # Q is in the bottom half
    assert select_by_rule(cands, "token_confidence")[0].feature == P
    chosen = select_by_rule(cands, "token_confidence")[0]
    stats = col.stats[HOOK]
    assert chosen.coefficient == pytest.approx(float(stats.mean_active(1)[P]))  # CorrSteer's coefficient, any rule


def test_rule_logic_on_a_hand_made_frame():
    rows = [("h0", 1, 0.9, 0.01, 0.0), ("h0", 2, 0.5, 0.8, 0.1), ("h0", 3, 0.4, 0.7, 0.6), ("h0", 4, 0.3, 0.2, 0.2),
            ("h1", 5, 0.95, 0.9, 0.05), ("h1", 6, 0.2, 0.1, 0.3)]
    cands = Candidates(pd.DataFrame([dict(hook=h, feature=f, r=r, coefficient=1.0, firing_rate=0.5, output_score=o,
                                          delta_confidence=d) for h, f, r, o, d in rows]))
    assert [f.feature for f in select_by_rule(cands, "correlation")] == [5, 1]  # best first over hooks: S = 5
    assert [f.feature for f in select_by_rule(cands, "output_score", output_keep=0.5)] == [5, 2]
    assert [f.feature for f in select_by_rule(cands, "output_score", output_threshold=0.75)] == [5, 2]
    assert [f.feature for f in select_by_rule(cands, "output_score", output_threshold=0.95)] == []
    assert [f.feature for f in select_by_rule(cands, "token_confidence")] == [3, 6]
    with pytest.raises(ValueError, match="rule must be"):
        select_by_rule(cands, "mutual_information")  # type: ignore[arg-type]


def test_feature_effects_errors(planted):
    model, sae, _, prompts = planted
    with pytest.raises(IndexError, match="0..23"):
        feature_effects(model, sae, [24], prompts)
    with pytest.raises(ValueError, match="prompt"):
        feature_effects(model, sae, [1], [])


@pytest.fixture(scope="module")
def pipeline():
    model = tiny_llama_with_tokenizer(seed=3)
    saes = [make_sae("blocks.0.hook_resid_post", seed=2), make_sae("blocks.1.hook_resid_post", kind="topk", seed=3)]
    prompts = random_prompts(40, seed=5)
    base = evaluate_vectors(model, ExactMatchTask("x", [Example(p, "a") for p in prompts], max_new_tokens=3))[1]
    answers = [t.split(" ")[0] if i % 2 == 0 else "zzz" for i, t in enumerate(base)]
    task = ExactMatchTask("toy", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=3, match="first_word")
    return model, saes, task


def test_compare_selectors_one_run(pipeline, tmp_path):
    model, saes, task = pipeline
    splits = task.split(20, 4, seed=0)
    cfg = SelectorConfig(scale=0.0, n_random=3, batch_size=8, progress=False, n_boot=200, pool=4, n_prompts=4)
    cmp = compare_selectors(model, saes, splits, cfg)
    f = cmp.report.to_frame()
    assert set(f["condition"]) == {"unsteered", "correlation", "output_score", "token_confidence", "diff_means",
                                   "random_0", "random_1", "random_2"}
    base = cmp.report.arms["unsteered"]
    for name, arm in cmp.report.arms.items():
        if arm.kind not in ("diff_means", "random"):  # scale 0: every SAE-feature rule is the unsteered model
            assert arm.generations == base.generations, name
    r = cmp.ranking()
    assert list(r["rank"]) == list(range(1, len(r) + 1)) and "random_0" not in set(r["condition"])
    assert (r["delta"].diff().dropna() <= 1e-12).all()  # ranked best first
    assert cmp.chosen["correlation"][0].feature == cmp.report.selected[0].feature
    fig = cmp.plot()
    assert len(fig.data) == 2 and len(fig.data[0].x) == len(r) - 1
    again = SelectorComparison.from_dict(json.loads(json.dumps(cmp.to_dict())))
    pd.testing.assert_frame_equal(again.ranking(), r)
    pd.testing.assert_frame_equal(SelectorComparison.load(cmp.save(tmp_path / "cmp")).ranking(), r)
    assert "SelectorComparison" in repr(cmp) and "<table" in cmp._repr_html_()


def test_each_arm_is_its_rules_feature_steered(pipeline):
    """At a scale that changes answers, each rule's arm equals steering its chosen feature by hand with
    CorrSteer's coefficient; rules that chose the same feature share identical arms."""
    from interp.steering.steer import SteeringVector

    model, saes, task = pipeline
    splits = task.split(20, 4, seed=0)
    cfg = SelectorConfig(scale=30.0, n_random=1, batch_size=8, progress=False, n_boot=100, pool=4, n_prompts=4)
    cmp = compare_selectors(model, saes, splits, cfg)
    by_hook = {s.cfg.metadata.hook_name: s for s in saes}
    assert cmp.report.arms["correlation"].generations != cmp.report.arms["unsteered"].generations
    for rule, feats in cmp.chosen.items():
        f = feats[0]
        vec = SteeringVector.from_sae(by_hook[f.hook], f.feature, 30.0 * f.coefficient)
        labels, texts = evaluate_vectors(model, splits.test, [vec], batch_size=8)
        assert cmp.report.arms[rule].generations == texts and cmp.report.arms[rule].labels == labels.tolist(), rule
        assert cmp.report.arms[rule].vectors[0]["feature"] == f.feature
