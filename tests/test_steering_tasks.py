"""Task checkers, seeded splits, and loaders (MMLU-style records, JSONL / JSON / CSV / parquet)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from interp.steering.collect import default_pooling
from interp.core.tasks import (
    Example, ExactMatchTask, MultipleChoiceTask, NumericTask, TaskFormatError, TaskProtocol, load_task, mmlu_task,
)

RECORDS = [
    {"question": "2+2?", "choices": ["3", "4", "5"], "answer": 1},
    {"question": "Sky colour?", "choices": ["blue", "red"], "answer": "A"},
]


def test_checkers():
    mc = MultipleChoiceTask("mc", [Example("q", "B")])
    assert mc.check(mc.examples[0], " B. 4") and mc.check(mc.examples[0], "b") and not mc.check(mc.examples[0], " A")
    assert not mc.check(mc.examples[0], "   ")
    ex = ExactMatchTask("e", [Example("p", "Tom")])
    e = ex.examples[0]
    assert ex.check(e, " Tom, said") and ex.check(e, "tom") and not ex.check(e, " Tommy") and not ex.check(e, " Sue")
    assert ExactMatchTask("e", [e], match="first_word").check(e, "Tom went home")
    assert not ExactMatchTask("e", [e], match="exact").check(e, "Tom went home")
    num = NumericTask("n", [Example("p", "1,234")])
    n = num.examples[0]
    assert num.check(n, "so 3 + 4 = 1234") and not num.check(n, "1234 then 5") and not num.check(n, "none")
    assert NumericTask("n", [n], which="first").check(n, "1234 then 5")
    assert isinstance(ex, TaskProtocol)
    assert ex.labels([" Tom", " Sue"][:1]).tolist() == [1]


def test_split_is_seeded_disjoint_and_complete():
    t = ExactMatchTask("t", [Example(f"p{i}", str(i)) for i in range(50)])
    a, b = t.split(30, 10, seed=3), t.split(30, 10, seed=3)
    assert a.train.prompts == b.train.prompts and t.split(30, 10, seed=4).train.prompts != a.train.prompts
    parts = [set(s.prompts) for s in (a.train, a.val, a.test)]
    assert [len(p) for p in parts] == [30, 10, 10] and set().union(*parts) == set(t.prompts)
    frac = t.split(0.6, 0.2, seed=0)
    assert (len(frac.train), len(frac.val), len(frac.test)) == (30, 10, 10)
    with pytest.raises(ValueError, match="Cannot split 50"):
        t.split(40, 20)


def test_mmlu_records_and_errors():
    task = mmlu_task(RECORDS)
    assert [e.answer for e in task.examples] == ["B", "A"]
    assert task.examples[0].prompt.endswith("C. 5\nAnswer:") and default_pooling(task) == "answer"
    with pytest.raises(TaskFormatError, match=r"Record 0 lacks \['choices'\]"):
        mmlu_task([{"question": "q", "answer": 0}])
    with pytest.raises(TaskFormatError, match="out of range for 2 choices"):
        mmlu_task([{"question": "q", "choices": ["a", "b"], "answer": 2}])
    with pytest.raises(TaskFormatError, match="'C' is not one of"):
        mmlu_task([{"question": "q", "choices": ["a", "b"], "answer": "C"}])
    with pytest.raises(TaskFormatError, match="must be a list"):
        mmlu_task([{"question": "q", "choices": "ab", "answer": 0}])


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_file_loaders_roundtrip(tmp_path, fmt):
    rows = [{"prompt": f"Say {i}:", "answer": str(i)} for i in range(5)]
    path = tmp_path / f"t.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    task = load_task(path, "numeric")
    assert isinstance(task, NumericTask) and task.prompts == [r["prompt"] for r in rows]
    assert [e.answer for e in task.examples] == [r["answer"] for r in rows]


def test_mmlu_from_parquet_and_csv(tmp_path):
    pd.DataFrame(RECORDS).assign(answer=["1", "A"]).to_parquet(tmp_path / "m.parquet")
    assert [e.answer for e in load_task(tmp_path / "m.parquet", "multiple_choice").examples] == ["B", "A"]
    frame = pd.DataFrame(RECORDS).assign(choices=[json.dumps(r["choices"]) for r in RECORDS])
    frame.to_csv(tmp_path / "m.csv", index=False)
    assert len(load_task(tmp_path / "m.csv", "multiple_choice")) == 2


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": "1"}\n{oops}\n')
    with pytest.raises(TaskFormatError, match="line 2: not valid JSON"):
        load_task(bad)
    miss = tmp_path / "miss.jsonl"
    miss.write_text('{"text": "a", "answer": "1"}\n')
    with pytest.raises(TaskFormatError, match="Record 0 lacks 'prompt'"):
        load_task(miss)
    assert len(load_task(miss, prompt_field="text")) == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"prompt": "a", "answer": ""}\n')
    with pytest.raises(TaskFormatError, match="'answer' is empty"):
        load_task(empty)
    with pytest.raises(TaskFormatError, match="Unsupported task file"):
        (tmp_path / "x.txt").write_text("hi")
        load_task(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_task(miss, "regression", prompt_field="text")


def test_planted_qa_task_uses_zoo_checker():
    from interp.zoo.tasks import make_items, planted_task

    task = planted_task("qa", 20, seed=3)
    items = make_items("qa", 20, seed=3)
    assert task.prompts == [it.prompt for it in items] and task.stop == ("\n",)
    e = task.examples[0]
    assert task.check(e, f" {e.answer}.") and not task.check(e, " zzzz")
    mc = planted_task("mc", 5)
    assert default_pooling(mc) == "answer" and mc.check(mc.examples[0], f" {mc.examples[0].answer})")


def test_stories_recall_task_is_seeded_and_answerable():
    from interp.zoo.stories import stories_recall_task

    a, b = stories_recall_task("name", 30, seed=1), stories_recall_task("name", 30, seed=1)
    assert a.prompts == b.prompts and a.prompts != stories_recall_task("name", 30, seed=2).prompts
    assert all(e.answer in e.prompt for e in a.examples)
    obj = stories_recall_task("object", 5)
    assert all(e.prompt.endswith("play with the") and e.answer in e.prompt for e in obj.examples)
    with pytest.raises(ValueError, match="kind must be"):
        stories_recall_task("place")
