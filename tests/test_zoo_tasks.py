"""Planted-task items (held out, answers right by independent parsing) and the answer checkers."""

import re

import pytest

from interp.zoo.corpus import SEQUENCES, is_heldout_sum
from interp.core.tasks import Example
from interp.zoo.tasks import PLANTED_TASKS, MAX_NEW_TOKENS, TASKS, check, make_items


def test_task_names_cover_the_contract():
    assert {"qa", "mc", "arith", "copy", "induction", "successor"} <= set(TASKS)
    assert set(MAX_NEW_TOKENS) == set(TASKS) | set(PLANTED_TASKS)  # toy-lm-planted's tasks have budgets too
    assert not set(TASKS) & set(PLANTED_TASKS)


@pytest.mark.parametrize("task", TASKS + PLANTED_TASKS)
def test_items_are_deterministic_and_well_formed(task):
    a, b = make_items(task, 30, seed=1), make_items(task, 30, seed=1)
    assert a == b
    assert a != make_items(task, 30, seed=2)
    for item in a:
        assert isinstance(item, Example) and item.meta["task"] == task
        assert item.prompt == item.prompt.rstrip(), "prompts end without a space (BPE words carry it)"
        assert item.answer == item.answer.strip() and item.answer
        assert check(task, " " + item.answer + ".", item.answer)


def test_arith_items_are_heldout_and_correct():
    for item in make_items("arith", 100, seed=0):
        a, b = map(int, re.fullmatch(r"Add: (\d+) \+ (\d+) =", item.prompt).groups())
        assert is_heldout_sum(a, b)
        assert int(item.answer) == a + b


def test_copy_and_reverse_answers_follow_the_prompt():
    for item in make_items("copy", 50, seed=0):
        assert item.answer == re.fullmatch(r"Copy: (.+) ->", item.prompt).group(1)
    for item in make_items("reverse", 50, seed=0):
        words = re.fullmatch(r"Reverse: (.+) ->", item.prompt).group(1).split()
        assert item.answer.split() == words[::-1]


def test_qa_answer_is_the_fact_stated_for_the_asked_name():
    for item in make_items("qa", 100, seed=0):
        facts = dict(re.findall(r"(\w+) lives in (\w+)\.", item.prompt))
        facts.update(re.findall(r"(\w+) has a pet (\w+)\.", item.prompt))
        facts.update((n, c) for n, c, _ in re.findall(r"(\w+) has a (\w+) (\w+)\.", item.prompt) if c != "pet")
        asked = re.search(r"(?:does (\w+) (?:live|have)\?|of (\w+)\?)", item.prompt)
        name = asked.group(1) or asked.group(2)
        assert facts[name] == item.answer


def test_mc_letter_points_at_the_stated_colour():
    for item in make_items("mc", 100, seed=0):
        facts = {n: c for n, c, _ in re.findall(r"(\w+) has a (\w+) (\w+)\.", item.prompt)}
        name = re.search(r"of (\w+)\?", item.prompt).group(1)
        options = dict(re.findall(r"([A-D])\) (\w+)", item.prompt))
        assert options[item.answer] == facts[name]
        assert list(item.meta["choices"]) == [options[k] for k in "ABCD"]


def test_successor_answer_is_next_in_sequence():
    for item in make_items("successor", 100, seed=0):
        run = [w.strip() for w in item.prompt.rstrip(",").split(",")]
        if run[-1].isdigit():
            assert int(item.answer) == int(run[-1]) + 1
        else:
            seq = next(s for s in SEQUENCES.values() if run[0] in s and run[-1] in s)
            assert seq[seq.index(run[-1]) + 1] == item.answer


def test_induction_answer_continues_the_repeated_span():
    for item in make_items("induction", 100, seed=0):
        first, _, _ = item.prompt.partition(".")
        span = first.split()
        tail = item.prompt.split()
        k = next(k for k in range(len(span), 0, -1) if tail[-k:] == span[:k])  # repeated prefix
        assert span[k] == item.answer


@pytest.mark.parametrize(
    "task,text,answer,ok",
    [
        ("qa", " Dorton.", "Dorton", True),
        ("qa", " Dorton lives", "Dorton", True),
        ("qa", " Dortonville.", "Dorton", False),
        ("qa", "", "Dorton", False),
        ("mc", " B", "B", True),
        ("mc", " B) red", "B", True),
        ("mc", " C.", "B", False),
        ("mc", " Blue", "B", False),
        ("arith", " 85.", "85", True),
        ("arith", " 851", "85", False),
        ("arith", " 8", "85", False),
        ("arith", " eighty", "85", False),
        ("copy", " cat owl frog.\nAdd", "cat owl frog", True),
        ("copy", " cat owl", "cat owl frog", False),
        ("copy", " cat frog owl.", "cat owl frog", False),
        ("reverse", " frog owl cat.", "frog owl cat", True),
        ("induction", " Kelmira sheep.", "Kelmira", True),
        ("successor", " Thursday, Friday", "Thursday", True),
        ("successor", " Friday", "Thursday", False),
    ],
)
def test_check(task, text, answer, ok):
    assert check(task, text, answer) is ok


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown task 'poem'"):
        make_items("poem", 3)
    with pytest.raises(ValueError, match="Unknown task"):
        check("poem", "x", "x")
    with pytest.raises(ValueError, match=r"make_items\(n=-1\) is invalid: it must be an integer >= 0"):
        make_items("qa", -1)
