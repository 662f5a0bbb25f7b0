"""toy-induction (issue 14, item 4) is not bundled: no design grew a content-based induction head (its
designs file says what each measured). What ships is checked here: the designs are on the record, the
recipe runs end to end at a tiny size (character-level tokens included), and the Lorsa recovery and the
token source take the host's recipe."""

from __future__ import annotations

import json

import pytest

from interp import zoo


def test_designs_are_on_the_record():
    from interp.zoo.toy_lm_planted import _designs

    designs = _designs("toy-induction")
    assert len(designs) >= 3 and all({"design", "found", "verdict"} <= set(d) for d in designs)
    assert "toy-induction" not in zoo.names()  # nothing bundled that did not grow the head


def test_chars_tokenizer_round_trips():
    from interp.zoo.bpe import train_chars

    tok = train_chars(["Kelmira lives in Dovaren.\nA, B, C 12"])
    text = "Dova 21, C.\nA"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert len(tok) == 3 + len(set("Kelmira lives in Dovaren.\nA, B, C 12"))


def test_toy_induction_recipe_smoke(tmp_path):
    from interp.core.models import load_model
    from interp.zoo.toy_induction import train

    out = train(tmp_path / "ti", progress=False, steps=2, n_docs=24, eval_n=2, d_model=32, n_layers=1, d_mlp=64,
                batch_size=4, warmup_steps=1, tokenizer="chars")
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "toy-induction" and card["recipe"] == "interp.zoo.toy_induction:train"
    assert card["tokenizer"]["type"].startswith("character level")
    assert card["designs_tried"] and 0 < card["planted"]["repeats"]["share_of_tokens"] < 1
    assert load_model(out, device="cpu").cfg.d_vocab == card["tokenizer"]["vocab_size"] < 100


def test_recovery_takes_the_host_recipe():
    from interp.zoo.recovery.lorsa import host_recipe
    from interp.zoo.toy_induction import default_recipe
    from interp.zoo.toy_lm_planted import PlantedRecipe

    assert host_recipe("toy-lm-planted") == PlantedRecipe()
    assert host_recipe("toy-induction") == default_recipe()
    with pytest.raises(ValueError, match="toy-lm-planted"):
        host_recipe("toy-lm")


def test_copy_diagnostic_and_copy_losses_run(tmp_path):
    """The committed diagnostic (a few steps here) and the probe losses recorded by the recovery run."""
    import math

    from interp.core.models import load_model
    from interp.zoo.recovery.lorsa import copy_losses
    from interp.zoo.toy_induction import copy_diagnostic

    got = copy_diagnostic(tmp_path / "diag", n_ids=8, span=4, steps=3, d_model=16, n_heads=2, batch_size=4, n_probe=4)
    assert abs(got["first_copy_loss"] - math.log(1024)) < 1.0  # an untrained model: about uniform over its vocabulary
    assert len(got["loss_curve"]) >= 2 and got["half"] == 4
    assert len(got["attention"]) == 2 and len(got["attention_control"][0]) == 2
    var = copy_diagnostic(tmp_path / "var", n_ids=8, span=(2, 6), copies=(2, 3), steps=2, d_model=16, n_heads=2,
                          batch_size=4, n_probe=4, half=5)
    assert var["half"] == 5 and all(0 <= a <= 1 for row in var["attention"] for a in row)
    model = load_model(tmp_path / "diag", device="cpu")
    losses = copy_losses(model, n_random=4, half=4)
    assert losses["half"] == 4 and losses["second_copy_se"] >= 0
    assert all(abs(losses[k] - math.log(1024)) < 1.0 for k in ("first_copy", "second_copy", "control_second_half"))
