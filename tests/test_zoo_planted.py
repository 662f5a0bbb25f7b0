"""The planted ground truth of toy-lm's corpus (issue 14): consistent by construction, seeded, and the
token-level repeats really repeat."""

import random
import re

import pytest

from interp.zoo.corpus import NAMES, PLACES, CorpusConfig, generate_corpus
from interp.zoo.planted import (
    ANTONYM, CODE_HOLDERS, CODE_MAX_WEIGHT, CODES, OPPOSITES, ORDINAL_RUNS, RepeatConfig, code_sample, code_weight,
    opposite_sample, ordinal_sample, plant_repeats,
)
from interp.zoo.corpus import PLANTED_MIX as MIX


def test_opposite_segments_follow_their_mode():
    rng = random.Random(0)
    for _ in range(300):
        s = opposite_sample(rng)
        text = s.prompt + s.answer + s.tail
        rule = re.match(r"Rule: (same|opposite)\.", text)
        pairs = re.findall(r"(?:^|\. )(\w+) -> (\w+)\.", text)
        assert pairs, text
        modes = {"same" if a == b else "opposite" for a, b in pairs}
        assert len(modes) == 1, text  # one mode per segment
        for a, b in pairs:
            assert b == a or ANTONYM[a] == b
        if rule:
            assert modes == {rule.group(1)}
        query = s.prompt.rsplit(". ", 1)[-1].removesuffix(" ->")
        assert ANTONYM[query] not in [a for a, _ in pairs[:-1]]  # the query's antonym was never shown


def test_opposite_evidence_knobs_and_pairing():
    s = opposite_sample(random.Random(3), mode="opposite", rule=False, n_examples=1, gap=0)
    assert not s.prompt.startswith("Rule") and s.prompt.count("->") == 2
    # the same draw in the other mode differs only where the mode shows
    a = opposite_sample(random.Random("x"), mode="opposite")
    b = opposite_sample(random.Random("x"), mode="same")
    assert a.prompt.split()[-2] == b.prompt.split()[-2] and ANTONYM[b.answer.strip()] == a.answer.strip()
    with pytest.raises(ValueError, match="mode"):
        opposite_sample(random.Random(0), mode="reverse")
    assert len({w for p in OPPOSITES for w in p}) == 2 * len(OPPOSITES)


def test_code_holders_are_new_names_with_planted_frequencies():
    assert len(set(CODE_HOLDERS)) == len(CODE_HOLDERS) == 512
    assert not set(CODE_HOLDERS) & (set(NAMES) | set(PLACES))
    assert all(100 <= int(c) <= 999 for c in CODES.values())
    assert code_weight(0) == pytest.approx(CODE_MAX_WEIGHT) and code_weight(len(CODE_HOLDERS) - 1) == pytest.approx(1)
    rng = random.Random(1)
    draws = [code_sample(rng).prompt for _ in range(20000)]
    first, last = draws.count(f"The code of {CODE_HOLDERS[0]} is"), draws.count(f"The code of {CODE_HOLDERS[-1]} is")
    # expected counts 20000 * w / sum(w): about 464 and 4.6; Poisson 4-sigma bounds
    total = sum(code_weight(i) for i in range(len(CODE_HOLDERS)))
    e0, e1 = 20000 * code_weight(0) / total, 20000 / total
    assert abs(first - e0) < 4 * e0**0.5 and abs(last - e1) < 4 * e1**0.5 + 1


def test_ordinal_runs_are_consecutive():
    rng = random.Random(2)
    for _ in range(200):
        s = ordinal_sample(rng)
        items = [w.strip() for w in (s.prompt + s.answer).split(",")]
        seq = next(v for v in ORDINAL_RUNS.values() if items[0] in v and items[1] in v)
        i = seq.index(items[0])
        assert items == seq[i : i + len(items)] and len(items) >= 4


def test_plant_repeats_copies_spans_exactly():
    seqs = [[1] + [5, 6, 9, 7, 8, 9, 4] + [2] for _ in range(200)]
    cfg = RepeatConfig(doc_prob=0.5, pure_prob=0.2, span=(3, 6), copies=(2, 3), seed=4)
    out, n_rep = plant_repeats(seqs, 40, special_ids=[0, 1, 2], newline_ids=[9], max_len=64, cfg=cfg)
    assert out == plant_repeats(seqs, 40, special_ids=[0, 1, 2], newline_ids=[9], max_len=64, cfg=cfg)[0]
    changed = [o for o, s in zip(out, seqs) if o != s]
    assert 0.55 < len(changed) / len(seqs) < 0.85
    found = 0
    for o in changed:
        assert o[0] == 1 and o[-1] == 2 and len(o) <= 64
        body = o[1:-1]
        # some span of length 3..6 of non-special tokens occurs at least twice back to back
        hit = any(body[i : i + n] == body[i + n : i + 2 * n] for n in range(3, 7) for i in range(len(body) - 2 * n + 1))
        found += hit
        assert not set(body) & {0, 1, 2}
    assert found == len(changed)
    assert n_rep > 0


def test_corpus_mix_plants_every_kind():
    text = "\n".join(generate_corpus(CorpusConfig(n_docs=300, seed=0, mix=dict(MIX))))
    for marker in ["Rule: opposite.", "Rule: same.", " -> ", "The code of ", "Question: Where does", "Add: ",
                   "Copy: "]:
        assert marker in text, marker
