"""Each headline number of toy-lm-planted's card (``card["recovery"]``, issue 14) is re-measured here on
fresh samples (other probe seeds, other sampling seeds, other prompts), within a tolerance derived
from the sample size: the difference of two independent estimates, 4 standard errors of it (binomial
for accuracies, the spread over probe sequences or batches for head scores). Each claim is then
checked in the direction the card makes it, failures included."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from interp import zoo

NAME = "toy-lm-planted"
LORSA = "toy-lm-planted-lorsa"


@pytest.fixture(scope="module")
def card():
    return zoo.card(NAME)


@pytest.fixture(scope="module")
def lorsa_card():
    return zoo.card(LORSA)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return zoo.load(NAME, device="cpu")


def _se(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def test_card_records_the_planted_structure_and_every_design(card):
    assert {"opposite", "code", "ordinal", "repeats"} <= set(card["planted"])
    designs = [d["design"] for d in card["designs_tried"]]
    assert {"A", "B", "C", "D", "F"} <= set(designs)  # every design tried is on the card, failed ones included
    assert all("found" in d or "host_scores_like_for_like" in d for d in card["designs_tried"])
    assert 0.1 < card["planted"]["repeats"]["share_of_tokens"] < 0.5
    assert {"lorsa", "opposite", "thr_base"} <= set(card["recovery"])


# ------------------------------------------------------------------------------------------- Lorsa
def _per_sequence_attention_to_induction_target(model, layer: int, head: int, n: int, seed: int) -> np.ndarray:
    """Independent of head_scores: attention from each second-copy position of [BOS, r, r] (half 32) to
    the token after its earlier occurrence, uniform over positions, one value per probe sequence."""
    from interp.lorsa.analyze import repeated_random_tokens

    rep = repeated_random_tokens(model, n, 32, seed=seed)
    hook = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(rep, names_filter=[hook])
    t = torch.arange(33, 65)
    return cache[hook][:, head, t, t - 31].mean(-1).numpy()


def test_best_host_induction_head_re_measured(model, lorsa_card):
    """The card's best host head (uniform weighting, 64 probe sequences of seed 0) re-measured on 64
    sequences of another seed by a direct read of the attention pattern."""
    rec = lorsa_card["scores"]["uniform"]["induction"]
    layer, head, claimed = lorsa_card["layer"], rec["host_head"], rec["best_host"]
    vals = _per_sequence_attention_to_induction_target(model, layer, head, 64, seed=2024)
    assert abs(vals.mean() - claimed) <= 4 * math.sqrt(2) * _se(vals) + 1e-3, (vals.mean(), claimed)


@pytest.mark.slow
def test_selected_lorsa_heads_on_fresh_probes(model, lorsa_card):
    """The Lorsa heads the card selected (best induction / successor score, output weighting) and the
    best host head, scored like for like on four fresh probe batches (seeds 200-203, 64 sequences each): the Lorsa head's
    score and its difference from the host head are what the card measured on seeds 100-103, within 4
    standard errors of the difference of the two estimates."""
    from interp.lorsa.analyze import head_scores

    lorsa = zoo.load_lorsa(LORSA)
    fresh = lorsa_card["fresh_probes"]
    # 64 sequences a batch (the card's batches had 16): the induction head fires on ~2% of positions, so a
    # 16-sequence batch can leave it silent (no score); the tolerance uses each side's own standard error
    batches = [head_scores(model, lorsa, n_random=64, seed=200 + b, weighting="output") for b in range(4)]
    for score in ("induction", "successor"):
        got = fresh[f"output/{score}"]
        lor = np.array([b.lorsa.loc[got["lorsa_head"], score] for b in batches], dtype=float)
        host = np.array([b.host.loc[got["host_head"], score] for b in batches], dtype=float)
        if score == "successor":  # the ordinal sequences are fixed: no sampling error at all
            assert lor[0] == pytest.approx(got["lorsa_mean"], abs=1e-5)
            assert host[0] == pytest.approx(got["host_mean"], abs=1e-5)
            continue
        assert not np.isnan(lor).any(), (score, lor)
        tol = 4 * math.sqrt(_se(lor) ** 2 + got["lorsa_se"] ** 2) + 1e-3
        assert abs(lor.mean() - got["lorsa_mean"]) <= tol, (score, lor, got)
        d = lor - host
        tol_d = 4 * math.sqrt(_se(d) ** 2 + got["diff_se"] ** 2) + 1e-3
        assert abs(d.mean() - got["diff_mean"]) <= tol_d, (score, d, got)
        assert d.mean() >= -tol_d, (score, d)  # the card's claim: the Lorsa head matches (or beats) the host head


def test_lorsa_card_eval_re_measured(model, lorsa_card):
    """The bundled Lorsa's explained variance and loss recovered (card: 256 held-out rows of corpus seed 7),
    re-measured on 4 batches of 32 rows of unseen documents (corpus seed 13); tolerance from the spread
    over batches, the card's estimate having 8 batches' worth of rows."""
    from interp.lorsa import evaluate_lorsa
    from interp.zoo.recovery.lorsa import planted_tokens

    lorsa = zoo.load_lorsa(LORSA)
    tokens = planted_tokens(model, 128, lorsa_card["data"]["ctx"], seed=13)
    evs = [evaluate_lorsa(model, lorsa, tokens[i:i + 32], progress=False).summary() for i in range(0, 128, 32)]
    for key in ("explained_variance", "loss_recovered"):
        got = np.array([e[key] for e in evs])
        se = _se(got)
        tol = 4 * math.sqrt(se ** 2 + (got.std(ddof=1) / math.sqrt(8)) ** 2) + 2e-3
        assert abs(got.mean() - lorsa_card["eval"][key]) <= tol, (key, got, lorsa_card["eval"][key])
    assert all(e["l0"] == lorsa_card["eval"]["l0"] for e in evs)  # top-K: exactly K heads per token


def test_induction_control_is_head_scores_on_the_repeat_and_shows_position(model, lorsa_card):
    """``induction_control`` scores the repeated probe exactly as head_scores does (its own code path), and
    the card's finding holds on fresh probe seeds: the best host 'induction' head scores nearly as high
    when nothing repeats (its score is position), within 4 standard errors of the card's numbers."""
    from interp.lorsa.analyze import head_scores
    from interp.zoo.recovery.lorsa import induction_control

    lorsa = zoo.load_lorsa(LORSA)
    card = lorsa_card["induction_control"]
    lh, hh = card["lorsa_head"], card["host_head"]
    ref = head_scores(model, lorsa, n_random=64, seed=0, weighting="output")
    got = induction_control(model, lorsa, [lh], n_random=64, seed=0, weighting="output")
    host = got[got["source"] == "host"].set_index("head")
    np.testing.assert_allclose(host["repeated"].to_numpy(), ref.host["induction"].to_numpy(), atol=1e-5)
    assert got.loc[got["source"] == "lorsa", "repeated"].item() == pytest.approx(ref.lorsa.loc[lh, "induction"], abs=1e-5)
    frames = [induction_control(model, lorsa, [lh], n_random=64, seed=200 + s, weighting="output") for s in range(4)]
    rows = [f[(f["source"] == "host") & (f["head"] == hh)].iloc[0] for f in frames]
    claimed = card["output/host"]
    for key in ("repeated", "control", "content"):
        vals = np.array([r[key] for r in rows], dtype=float)
        tol = 4 * math.sqrt(_se(vals) ** 2 + claimed[key]["se"] ** 2) + 1e-3
        assert abs(vals.mean() - claimed[key]["mean"]) <= tol, (key, vals, claimed[key])
    content = np.array([r["content"] for r in rows], dtype=float)
    repeated = np.array([r["repeated"] for r in rows], dtype=float)
    assert content.mean() < 0.25 * repeated.mean(), (content, repeated)  # the card's claim: mostly position


# ------------------------------------------------------------------------------------------- CorrSteer's latent
def test_opposite_mode_accuracy_by_evidence(model, card):
    """Greedy accuracy of the opposite/same segments per mode and evidence, re-measured on 100 fresh
    prompts per condition (binomial tolerance of the difference of two estimates)."""
    from interp.core.generation import generate
    from interp.zoo.planted import opposite_sample
    from interp.zoo.tasks import check

    rng = random.Random("test-opposite-fresh")
    for key in ("opposite/rule=True/examples=0", "same/rule=True/examples=0", "opposite/rule=False/examples=3"):
        claimed, n_claim = card["recovery"]["opposite"][key]
        mode, rule, k = key.split("/")
        items = [opposite_sample(rng, mode=mode, rule=rule == "rule=True", n_examples=int(k.split("=")[1]))
                 for _ in range(100)]
        texts = generate(model, [x.prompt for x in items], 3, stop=("\n",), prepend_bos=True).texts()
        acc = float(np.mean([check("opposite", t, x.answer.strip()) for t, x in zip(texts, items)]))
        p = min(max((acc + claimed) / 2, 0.05), 0.95)
        tol = 4 * math.sqrt(p * (1 - p) * (1 / 100 + 1 / n_claim)) + 0.01
        assert abs(acc - claimed) <= tol, (key, acc, claimed)


# ------------------------------------------------------------------------------------------- THR
@pytest.mark.slow
def test_base_pass_at_k_on_hard_and_easy_codes(card):
    """The base policy's pass@1 and pass@64 on the held-out hard / easy code holders, re-measured with
    another sampling seed. Same prompts, so only sampling noise: pass@1 is a mean of n_prompts x 64
    Bernoulli draws (SE <= sqrt(p(1-p)/(64 n))), pass@64 of n_prompts Bernoulli draws."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.thr.experiment import evaluate_policy
    from interp.zoo.recovery.thr import code_tasks

    folder = zoo.model_dir(NAME)
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    main, subsets = code_tasks()
    base = card["recovery"]["thr_base"]
    for band, task in (("hard", main), ("easy", subsets["easy"])):
        got = evaluate_policy(hf, task, n_samples=64, ks=(1, 64), tokenizer=tok, seed=4321).flat()
        n = len(task.test)
        for k, draws in ((1, 64 * n), (64, n)):
            claimed = base[band][f"pass@{k}"]
            p = min(max((got[f"pass@{k}"] + claimed) / 2, 1 / draws), 1 - 1 / draws)
            tol = 4 * math.sqrt(2 * p * (1 - p) / draws) + 1 / draws
            assert abs(got[f"pass@{k}"] - claimed) <= tol, (band, k, got, claimed)


def test_base_pass_at_k_on_the_trained_hard_holders(card):
    """The base of the card's GRPO experiment (``thr_grpo``) on the trained hard holders (``train-hard``: the rare
    codes GRPO trains on), re-measured with another sampling seed: pass@1 (n_prompts x 64 draws) and pass@64
    (n_prompts draws) within 4 binomial SEs of the difference. A few seconds: 61 prompts x 64 samples of 6 tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.thr.experiment import evaluate_policy
    from interp.zoo.recovery.thr import code_tasks

    torch.set_num_threads(1)
    folder = zoo.model_dir(NAME)
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    task = code_tasks()[1]["train-hard"]
    base = card["recovery"]["thr_grpo"]["summary"]["base"]
    got = evaluate_policy(hf, task, n_samples=64, ks=(1, 64), tokenizer=tok, seed=4321).flat()
    n = len(task.test)
    for k, draws in ((1, 64 * n), (64, n)):
        claimed = base[f"train-hard/pass@{k}"]
        p = min(max((got[f"pass@{k}"] + claimed) / 2, 1 / draws), 1 - 1 / draws)
        tol = 4 * math.sqrt(2 * p * (1 - p) / draws) + 1 / draws
        assert abs(got[f"pass@{k}"] - claimed) <= tol, (k, got, claimed)
    assert got["pass@1"] < 0.05  # rarely solved: the premise of the experiment
