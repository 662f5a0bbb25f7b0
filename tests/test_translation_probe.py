"""TranslationProbe mechanics on a real model, and ProbeReport aggregates against hand-counted
expectations."""

from __future__ import annotations

import math

import pytest
import torch

from interp.translation import (
    FEW_SHOT,
    Lexicon,
    Outcome,
    ProbeConfig,
    ProbeReport,
    TranslationProbe,
    first_answer_token,
    matches,
)


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon.bundled().subset(languages=["en", "es", "hi", "sw"])


@pytest.fixture(scope="module")
def report(stories_model, lexicon):
    probe = TranslationProbe(stories_model, lexicon, config=ProbeConfig(max_new_tokens=4, batch_size=5))
    return probe.run([("es", "en"), ("es", "sw")], n_concepts=6, progress=False)


def test_probe_rows_are_complete(stories_model, report, lexicon):
    n = stories_model.cfg.n_layers
    assert len(report) == 12
    assert report.layers == list(range(n + 1))
    for row in report.rows:
        assert row["outcome"] in {o.value for o in Outcome}
        assert len(row["layer_strings"]) == len(row["layer_languages"]) == len(row["grid"]) == n + 1
        refs = lexicon.entries[row["concept"]]
        assert row["source_word"] == refs[row["src"]][0] and row["references"] == list(refs[row["tgt"]])
        assert set(row["first_token_prob"]) == set(lexicon.languages)
    assert {r["pair"] for r in report.rows} == {"es-en", "es-sw"}


# ---- every stored number and string recomputed without the probe ------------------------------
def _outcome_by_definition(final, intermediate, refs, tgt):
    """The outcome partition as the paper defines it, from the matching rule alone."""
    def langs_of(text):
        return [lang for lang, words in refs.items() if any(matches(text, w) for w in words)]

    if any(matches(final, w) for w in refs[tgt]):
        return "correct"
    found = [langs_of(s) for s in intermediate]
    if any(tgt not in ls and ls for ls in found):  # another language, and not also the target
        return "translation_failure"
    if any(tgt in ls for ls in found):
        return "target_lost"
    return "task_failure"


def _cut(text: str, stop: str = "\n") -> str:
    lead = len(text) - len(text.lstrip())
    j = text.find(stop, lead)
    return text if j < 0 else text[:j]


@pytest.fixture(scope="module")
def toy_probe():
    from interp import zoo
    from interp.zoo.toy_translate import toy_template

    try:
        card = zoo.card("toy-translate")
    except FileNotFoundError:
        pytest.skip("toy-translate checkpoint not trained")
    model = zoo.load("toy-translate")
    lex = Lexicon.bundled().subset(concepts=card["corpus"]["concepts"])
    report = TranslationProbe(model, lex, template=toy_template(), config=ProbeConfig(max_new_tokens=8)).run(
        [("es", "hi"), ("es", "sw"), ("en", "te")], n_concepts=6, progress=False)
    return model, lex, report


def test_probe_rows_equal_an_independent_recomputation(toy_probe, one_thread):
    """The toy translator (whose outcomes differ between examples): each row's answer is a naive greedy
    loop's (full forward per step, cut at the first newline past leading whitespace), each layer string
    is the logit lens of a teacher-forced forward (final norm + unembedding of that layer's residual at
    the answer's positions), each first-token probability is that lens's softmax at the first step, and
    the outcome is the paper's definition applied to those recomputed strings."""
    model, lex, report = toy_probe
    tok, n = model.tokenizer, model.cfg.n_layers
    outcomes = {row["outcome"] for row in report.rows}
    assert len(outcomes) >= 3, f"the check needs different outcomes, got {outcomes}"
    for row in report.rows:
        prompt = [tok.bos_token_id] + tok(row["prompt"], add_special_tokens=False)["input_ids"]
        ids, answer = list(prompt), []
        with torch.no_grad():
            for _ in range(8):
                nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
                if nxt == tok.eos_token_id:
                    break
                answer.append(nxt)
                ids.append(nxt)
                if _cut(tok.decode(answer)) != tok.decode(answer):  # a newline past the leading whitespace
                    break
            _, cache = model.run_with_cache(torch.tensor([ids]))
        assert row["final"] == _cut(tok.decode(answer)).strip(), row["concept"]
        p = len(prompt)
        layer_strings, step0 = [], []
        for i in range(n + 1):
            resid = cache["blocks.0.hook_resid_pre" if i == 0 else f"blocks.{i - 1}.hook_resid_post"][0]
            logits = model.unembed(model.ln_final(resid[p - 1 : p - 1 + len(answer)]))
            layer_strings.append(_cut(tok.decode(logits.argmax(-1).tolist())))
            step0.append(logits[0].softmax(-1))
        assert row["layer_strings"] == layer_strings, row["concept"]
        refs = lex.entries[row["concept"]]
        for lang, probs in row["first_token_prob"].items():
            if refs.get(lang):
                first = first_answer_token(tok, refs[lang][0], context="Translation:")
                want = [float(step0[i][first]) for i in range(n + 1)]
                assert probs == pytest.approx(want, abs=2e-5), (row["concept"], lang)
        assert row["outcome"] == _outcome_by_definition(row["final"], layer_strings[:-1], refs, row["tgt"])
        for s, lang in zip(layer_strings, row["layer_languages"]):
            langs = [c for c, words in refs.items() if any(matches(s, w) for w in words)]
            assert lang == (row["tgt"] if row["tgt"] in langs else (langs[0] if langs else None))


def test_probe_is_deterministic_and_batch_size_free(stories_model, lexicon, report):
    again = TranslationProbe(stories_model, lexicon, config=ProbeConfig(max_new_tokens=4, batch_size=12)).run(
        [("es", "en"), ("es", "sw")], n_concepts=6, progress=False)
    assert [r["layer_strings"] for r in again.rows] == [r["layer_strings"] for r in report.rows]


def test_few_shot_and_chat_templates(stories_model, lexicon):
    probe = TranslationProbe(stories_model, lexicon, template=FEW_SHOT)
    ex = probe.examples([("es", "en")], n_concepts=2)
    assert all(e.prompt.count("Word:") == 4 for e in ex)
    from interp.translation import CHAT

    with pytest.raises(ValueError, match="has none"):
        TranslationProbe(stories_model, lexicon, template=CHAT).examples([("es", "en")], n_concepts=1)


def test_probe_input_errors(stories_model, lexicon):
    probe = TranslationProbe(stories_model, lexicon)
    with pytest.raises(KeyError, match="not in the lexicon"):
        probe.run([("es", "xx")])
    with pytest.raises(ValueError, match="into itself"):
        probe.run([("es", "es")])
    with pytest.raises(ValueError, match="No language pairs"):
        probe.run([])


def test_report_save_load_roundtrip(report, tmp_path):
    for suffix in (".json", ".parquet"):
        path = report.save(tmp_path / f"r{suffix}")
        back = ProbeReport.load(path)
        assert back.rows == report.rows and back.meta == report.meta
    with pytest.raises(ValueError, match="json or .parquet"):
        report.save(tmp_path / "r.csv")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a ProbeReport"):
        ProbeReport.load(tmp_path / "x.json")


def test_report_figures_and_html(report):
    heat = report.plot("heatmap", metric="accuracy")
    assert list(heat.data[0].y) == ["es"] and [x.split()[0] for x in heat.data[0].x] == ["en", "sw"]
    presence = report.plot("presence")
    frame = report.language_presence(relative=True)
    assert [t.name for t in presence.data] == [c for c in ("target", "source", "pivot (en)", "other") if c in frame]
    for trace in presence.data:
        assert list(trace.y) == pytest.approx(frame[trace.name].tolist())
    assert len(report.plot("outcomes").data) == 4
    assert "ProbeReport" in report._repr_html_()
    with pytest.raises(ValueError, match="kind="):
        report.plot("pie")


# ---- aggregates on a hand-made report --------------------------------------------------------
def _row(pair, outcome, langs, tgt_resource="mid"):
    src, tgt = pair.split("-")
    return dict(pair=pair, src=src, tgt=tgt, concept="c", pos="noun", source_word="w", references=["r"], final="f",
                outcome=outcome, layer_strings=["s"] * len(langs), layer_languages=langs, grid=[],
                first_token_prob={}, target_resource=tgt_resource, prompt="p")


@pytest.fixture()
def handmade():
    rows = [
        # layers 0..3 (3 = output); es -> hi
        _row("es-hi", "correct", [None, "en", "hi", "hi"]),
        _row("es-hi", "translation_failure", [None, "en", "en", None]),
        _row("es-hi", "translation_failure", ["es", "en", "hi", "hi"]),
        _row("es-hi", "task_failure", [None, None, None, None]),
        # es -> sw
        _row("es-sw", "target_lost", [None, None, "sw", None], "low"),
        _row("es-sw", "correct", [None, "en", "en", "sw"], "low"),
    ]
    meta = dict(layers=[0, 1, 2, 3], languages=["en", "es", "hi", "sw"],
                resource={"en": "high", "es": "high", "hi": "mid", "sw": "low"})
    return ProbeReport(rows, meta)


def test_rates_by_pair_match_hand_counts(handmade):
    frame = handmade.by_pair().set_index("pair")
    hi = frame.loc["es-hi"]
    assert hi.n == 4 and hi.accuracy == 0.25 and hi.translation_failure_rate == 0.5
    assert math.isclose(hi.translation_failure_share, 2 / 3) and hi.task_failure_rate == 0.25
    assert hi.main_intermediate_language == "en"  # 3 examples show English, 1 shows Spanish
    sw = frame.loc["es-sw"]
    assert sw.accuracy == 0.5 and sw.target_lost_rate == 0.5 and sw.translation_failure_share == 0.0


def test_takeover_layer_matches_brute_force(handmade):
    # es-hi: layer 3: hi 2 vs none; layer 2: hi 2 vs en 1 -> takes over; layer 1: hi 0 -> stop => 2
    rows = [r for r in handmade.rows if r["pair"] == "es-hi"]
    assert handmade.takeover_layer(rows) == 2
    # es-sw: layer 3: sw 1 vs 0; layer 2: sw 1 vs en 1 -> not more -> takeover at 3
    assert handmade.takeover_layer([r for r in handmade.rows if r["pair"] == "es-sw"]) == 3


def test_presence_and_resource_levels(handmade):
    pres = handmade.language_presence(relative=True)
    assert pres.loc[1, "pivot (en)"] == pytest.approx(4 / 6)
    assert pres.loc[0, "source"] == pytest.approx(1 / 6)
    assert pres.loc[3, "target"] == pytest.approx(3 / 6)
    by_level = handmade.by_resource().set_index("target_resource")
    assert list(by_level.index) == ["mid", "low"] and by_level.loc["low", "accuracy"] == 0.5
    inter = handmade.intermediate_languages()
    assert inter.loc["es-hi", "en"] == 3 and inter.loc["es-hi", "es"] == 1
    # the presence figure draws these shares, per layer
    fig = {t.name: list(t.y) for t in handmade.plot("presence").data}
    assert fig["pivot (en)"][1] == pytest.approx(4 / 6) and fig["source"][0] == pytest.approx(1 / 6)
    assert fig["target"] == pytest.approx([0, 0, 3 / 6, 3 / 6])
    summary = handmade.summary()
    assert summary["overall"]["n"] == 6 and summary["pivot_en_share_by_layer"][1] == pytest.approx(4 / 6, abs=1e-4)


def test_chat_template_wraps_the_zero_shot_text(stories_model, lexicon):
    import copy

    from interp.translation import CHAT, build_prompt

    tok = copy.deepcopy(stories_model.tokenizer)
    tok.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}[assistant]{% endif %}")
    text = build_prompt(CHAT, src="Spanish", tgt="Hindi", word="perro", tokenizer=tok)
    assert text.startswith("[user] Translate the following word from Spanish to Hindi.")
    assert "Word: perro\nTranslation:" in text and text.endswith("[assistant]")
