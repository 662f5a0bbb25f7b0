"""toy-mode's card (issue 14, CorrSteer's planted latent) re-measured on fresh prompts: accuracy by
evidence (binomial tolerance), the selected feature's cosine with the planted latent (bootstrap over
prompt pairs), and steering's gain over the unsteered model and over the best random control (paired
standard errors). Each tolerance is 4 standard errors of the difference of the card's estimate and
this one; each claim is then checked in the direction the card makes it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interp import zoo

NAME = "toy-mode"


@pytest.fixture(scope="module")
def card():
    return zoo.card(NAME)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return zoo.load(NAME, device="cpu")


@pytest.fixture(scope="module")
def saes():
    return zoo.load_saes(f"{NAME}-saes")


@pytest.fixture(scope="module")
def rec(card):
    return card["recovery"]["corrsteer"]


def _binom_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.25 / n) / n)  # floor: a claimed 0 or 1 still has sampling error


def test_card_records_planted_structure_designs_and_recovery(card, rec, saes):
    from interp.zoo import toy_mode

    planted = card["planted"]
    assert (planted["p_opposite"], planted["vote_true"]) == (toy_mode.P_OPPOSITE, toy_mode.VOTE_TRUE)
    designs = card["designs_tried"]
    assert len(designs) >= 2 and all({"design", "what", "found"} <= set(d) for d in designs)
    assert {"max", "answer"} <= set(rec["poolings"]) and rec["n_random"] >= 10
    for pooling in ("max", "answer"):
        p = rec["poolings"][pooling]
        assert len(p["S_minus_random"]) == rec["n_random"] and p["S"]["hook"] in saes
    assert card["model"]["weights_bytes"] < 8_000_000


def test_accuracy_rises_with_evidence(model, card):
    """Greedy accuracy in mode opposite with no evidence, two true votes, and one example, re-measured on
    100 fresh prompts each."""
    import random

    from interp.core.generation import generate
    from interp.zoo.toy_mode import check_answer, mode_episode

    claims = card["evaluation"]["accuracy_by_evidence"]
    rng = random.Random("test-toy-mode-fresh")
    got = {}
    for key, kw in {"opposite/k=0/m=0/j=0": dict(n_votes=0, n_examples=0),
                    "opposite/k=0/m=2/j=2": dict(n_votes=2, n_examples=0, flips=[False, False]),
                    "opposite/k=1/m=0/j=0": dict(n_votes=0, n_examples=1)}.items():
        claimed, n_claim, _ = claims[key]
        items = [mode_episode(rng, mode="opposite", **kw) for _ in range(100)]
        texts = generate(model, [s.prompt for s in items], 3, stop=("\n",), prepend_bos=True).texts()
        acc = float(np.mean([check_answer(t, s.answer.strip()) for t, s in zip(texts, items)]))
        tol = 4 * math.sqrt(_binom_se(claimed, n_claim) ** 2 + _binom_se(acc, 100) ** 2)
        assert abs(acc - claimed) <= tol, (key, acc, claimed, tol)
        got[key] = acc
    # the card's claim: evidence for the mode raises accuracy in mode opposite
    assert got["opposite/k=0/m=2/j=2"] > got["opposite/k=0/m=0/j=0"]
    assert got["opposite/k=1/m=0/j=0"] > got["opposite/k=0/m=0/j=0"]


def test_selected_feature_cosine_with_latent_re_measured(model, saes, rec):
    """The cosine of the S feature's decoder, and of the best-aligned feature at its hook, with the latent
    measured again from 256 fresh prompt pairs; the tolerance is the bootstrap spread over pairs. The
    card's finding: CorrSteer's S feature is not the feature closest to the latent (S is far below it)."""
    from interp.zoo.recovery.corrsteer import last_position_resid
    from interp.zoo.toy_mode import paired_prompts

    s = rec["poolings"]["max"]["S"]
    hook = s["hook"]
    best = rec["latent"][hook]
    opp, same = paired_prompts(256, seed=77)
    diff = last_position_resid(model, opp, [hook])[hook] - last_position_resid(model, same, [hook])[hook]
    g = torch.Generator().manual_seed(0)
    idx = [torch.randint(0, len(diff), (len(diff),), generator=g) for _ in range(200)]
    got = {}
    for name, feature, claimed in (("S", s["feature"], s["cosine_with_latent"]),
                                   ("best", best["best_feature"], best["best_cosine"])):
        w = saes[hook].W_dec[feature].detach().float()
        w = w / w.norm()

        def cos(d: torch.Tensor) -> float:
            return float(d @ w / d.norm())

        got[name] = cos(diff.mean(0))
        se = float(np.std([cos(diff[i].mean(0)) for i in idx]))
        assert abs(got[name] - claimed) <= 4 * math.sqrt(2) * se + 0.01, (name, got[name], claimed, se)
    assert got["best"] - got["S"] > 0.2, got


def test_steering_beats_unsteered_and_the_best_random_control(model, saes, rec):
    """S's gain over the unsteered model and over the random control that did best on the card,
    re-measured on 400 fresh prompts of the task (paired differences)."""
    from interp.steering import SteeringVector
    from interp.steering.corrsteer import evaluate_vectors
    from interp.zoo.toy_mode import mode_task

    p = rec["poolings"]["max"]
    s = p["S"]
    sae = saes[s["hook"]]
    s_vec = SteeringVector.from_sae(sae, s["feature"], s["coefficient"])
    best = max(p["random_delta_vs_unsteered"], key=p["random_delta_vs_unsteered"].get)
    r_feat = p["random_features"][best]
    row = sae.W_dec[r_feat].detach()
    r_vec = SteeringVector.from_sae(sae, r_feat, float(s_vec.vector.norm() / row.norm()))
    task = mode_task(400, seed=97)
    base, _ = evaluate_vectors(model, task, [], batch_size=100)
    y_s, _ = evaluate_vectors(model, task, [s_vec], batch_size=100)
    y_r, _ = evaluate_vectors(model, task, [r_vec], batch_size=100)
    d = (y_s - base).astype(float)
    claim = p["S_delta_vs_unsteered"]
    se_claim = (claim["ci_high"] - claim["ci_low"]) / (2 * 1.96)
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert abs(d.mean() - claim["delta"]) <= 4 * math.sqrt(se**2 + se_claim**2) + 1e-3, (d.mean(), claim)
    assert d.mean() - 2 * se > 0, d.mean()  # the claim: S raises held-out accuracy
    dr = (y_s - y_r).astype(float)
    assert dr.mean() - 2 * dr.std(ddof=1) / math.sqrt(len(dr)) > 0, (dr.mean(), best)  # and beats the best random
