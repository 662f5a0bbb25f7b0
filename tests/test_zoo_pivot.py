"""The committed toy-pivot checkpoint and its tuned lens: the card's planted answer is the corpus
recipe's, and a seeded subsample of the headline probe reproduces the card's numbers within binomial
tolerance (finite-population: the subsample is drawn from the examples the card measured), and the
takeover layer within the subsample's own bootstrap interval."""

from __future__ import annotations

import math
import random

import pytest

from interp import zoo

N_SUB = 330  # examples re-measured per lens (~10 s on one thread)
Z = 3.29  # two-sided 0.1%: several shares are checked, a false alarm stays rare


@pytest.fixture(scope="module")
def card():
    try:
        return zoo.card("toy-pivot")
    except FileNotFoundError:
        pytest.skip("toy-pivot checkpoint not trained")


@pytest.fixture(scope="module")
def model(card):
    return zoo.load("toy-pivot")


def _tolerance(p: float, n: int, N: int) -> float:
    """Z standard deviations of a proportion over ``n`` of ``N`` examples drawn without replacement,
    plus half an example (a share of n moves in steps of 1/n)."""
    fpc = (N - n) / (N - 1) if N > 1 else 0.0
    return Z * math.sqrt(max(p * (1 - p), 1 / N) / n * fpc) + 0.5 / n


def _subsample(card, set_name: str, seed: int = 0):
    from interp.zoo.toy_pivot import eval_sets, load_plant

    triples = eval_sets(load_plant(card))[set_name]
    return triples, sorted(random.Random(seed).sample(triples, min(N_SUB, len(triples))), key=triples.index)


def _check_against(stats, section: dict, N: int):
    n = stats.n_examples
    want = section["pivot_in_middle"]["value"]
    got = stats.pivot_in_middle.value
    assert abs(got - want) <= _tolerance(want, n, N), ("pivot in middle layers", got, want)
    for lvl, share in stats.pivot_in_middle_by_target.items():
        want = section["pivot_in_middle_by_target"][lvl]
        assert abs(share.value - want["value"]) <= _tolerance(want["value"], share.n, want["n"]), \
            ("pivot in middle layers by target", lvl, share.value, want["value"])
    for lvl, per in stats.outcomes.items():
        for outcome, share in per.items():
            want = section["outcomes"][lvl][outcome]["value"]
            N_lvl = section["outcomes"][lvl][outcome]["n"]
            assert abs(share.value - want) <= _tolerance(want, share.n, N_lvl), (lvl, outcome, share.value, want)
    # translation failures among the errors: given the subsample's errors, they are drawn without
    # replacement from the card's errors of that resource level
    for lvl, share in stats.translation_failure_share.items():
        want = section["translation_failure_share"][lvl]
        if share.n and want["n"]:
            assert abs(share.value - want["value"]) <= _tolerance(want["value"], share.n, want["n"]), \
                ("translation-failure share of errors", lvl, share.value, want["value"])
    # the card's takeover and majority layers lie in the subsample's bootstrap intervals
    never = stats.n_layers + 1
    for ci, want in ((stats.takeover_ci, section["takeover_layer"]), (stats.majority_ci, section["majority_layer"])):
        lo, hi = (never if v is None else v for v in ci)
        assert lo <= (never if want is None else want) <= hi, (ci, want)


def test_card_plant_is_the_recipes(card):
    from interp.zoo.pivot_corpus import PivotSpec, plant_concepts
    from interp.zoo.toy_pivot import DESIGNS, FINAL_DESIGN, recorded_designs

    spec = PivotSpec(**card["design"]["corpus"])
    assert plant_concepts(spec).to_dict() == card["plant"]
    assert card["design"]["name"] == FINAL_DESIGN
    assert card["tokenizer"]["words_not_one_token"] == []
    # every design of the recipe was tried and its numbers are on the card
    assert set(card["designs_tried"]) == set(DESIGNS) == set(recorded_designs())


def test_notebook_setup_is_the_planted_evaluation(card):
    from interp.zoo import sources
    from interp.zoo.toy_pivot import eval_sets, load_plant

    setup = sources.translation_setup("toy-pivot")
    plant = load_plant(card)
    assert setup.eval_triples == eval_sets(plant)[card["probe"]["headline_set"]] and setup.pivot == plant.pivot
    assert set(setup.lexicon.entries) == set(plant.concepts)
    assert setup.template.kind == ("few_shot" if card["design"]["corpus"]["layout"] == "implicit" else "zero_shot")


@pytest.mark.slow  # ~20-35 s on a loaded 2-core machine
@pytest.mark.parametrize("set_name", ["held_out", "bridge"])
def test_logit_lens_numbers_are_reproduced(card, model, one_thread, set_name):
    from interp.translation.barrier import barrier_stats
    from interp.zoo.toy_pivot import make_probe, run_triples

    triples, sub = _subsample(card, set_name)
    report = run_triples(make_probe(model, card, "logit"), sub)
    stats = barrier_stats(report, pivot=card["plant"]["pivot"], n_boot=500, seed=1)
    _check_against(stats, card["probe"][set_name], len(triples))


@pytest.fixture(scope="module")
def lens_card():
    try:
        return zoo.card("toy-pivot-tuned-lens")
    except FileNotFoundError:
        pytest.skip("toy-pivot tuned lens not trained")


def test_tuned_lens_belongs_to_the_committed_model(lens_card):
    import hashlib

    weights = zoo.model_dir("toy-pivot") / "model.safetensors"
    assert lens_card["model_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    kl = lens_card["held_out_kl"]
    # the lens is fitted to the model's output: closer to it than the logit lens at every inner layer
    assert all(t < lg for t, lg in zip(kl["tuned"][1:], kl["logit"][1:]))


@pytest.mark.slow
@pytest.mark.parametrize("set_name", ["held_out", "bridge"])
def test_tuned_lens_numbers_are_reproduced(card, lens_card, model, one_thread, set_name):
    from interp.translation.barrier import barrier_stats
    from interp.zoo.toy_pivot import make_probe, run_triples

    lens = zoo.load_tuned_lens("toy-pivot-tuned-lens", model, attach=False)
    triples, sub = _subsample(card, set_name)
    report = run_triples(make_probe(model, card, lens), sub)
    stats = barrier_stats(report, pivot=card["plant"]["pivot"], n_boot=500, seed=1)
    _check_against(stats, lens_card["probe"][set_name], len(triples))


def test_failure_outputs_by_hand():
    from interp.translation.lexicon import Lexicon
    from interp.translation.report import ProbeReport
    from interp.zoo.toy_pivot import failure_outputs

    def row(tgt, final, outcome="translation_failure"):
        return dict(pair=f"es-{tgt}", src="es", tgt=tgt, concept="water", final=final, outcome=outcome,
                    layer_languages=[None, None], target_resource="low" if tgt in ("sw", "te") else "high")

    rows = [row("sw", " water"), row("sw", "నీళ్ళు"), row("te", "Maji"), row("sw", "eau"), row("sw", "agua\n"),
            row("fr", "dog"), row("sw", "maji", "correct")]
    meta = dict(layers=[0, 1], resource={"es": "high", "fr": "high", "sw": "low", "te": "low", "en": "high"})
    got = failure_outputs(ProbeReport(rows, meta), Lexicon.bundled())
    assert got == {"low": {"other_low": 2, "pivot": 1, "other_language": 2}, "high": {"not_the_concept": 1}}
