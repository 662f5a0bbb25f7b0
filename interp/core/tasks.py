"""Tasks: prompts with a gold answer, a checker that labels generated text correct or not, and seeded
splits. CorrSteer labels samples with ``check``; GRPO rewards responses with ``reward``.

Built-ins cover the three checkers of the CorrSteer paper (multiple-choice letter, exact short answer,
final number) and any checking function (:class:`CheckedTask`); loaders read MMLU-style records and
local JSONL / JSON / CSV / parquet files, or a ``datasets`` name when a network exists. Malformed
records raise errors naming the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from interp.core.errors import CoreConfigError
from interp.core.validate import Check

__all__ = [
    "Example", "Task", "TaskProtocol", "TaskSplits", "TaskFormatError", "AnswerFormat",
    "MultipleChoiceTask", "ExactMatchTask", "NumericTask", "CheckedTask",
    "mmlu_task", "load_task", "load_hf_task", "TASK_KINDS",
]

AnswerFormat = Literal["text", "choice", "number"]
"""What an answer looks like: free ``text``, a ``choice`` letter (one token), or a ``number``. Methods
use it for their defaults (CorrSteer pools a choice at the answer position and a number by mean)."""

LETTERS = "ABCDEFGHIJ"


class TaskFormatError(CoreConfigError):
    """A record or file does not have the fields a task needs, or a task field that cannot work."""


@dataclass(frozen=True)
class Example:
    """One sample: the prompt given to the model and the gold answer."""

    prompt: str
    answer: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class TaskProtocol(Protocol):
    """What ``collect`` and ``evaluate`` need from a task."""

    name: str
    examples: Sequence[Example]
    max_new_tokens: int
    answer_format: AnswerFormat
    stop: tuple[str, ...]

    def check(self, example: Example, generated: str) -> bool: ...


@dataclass(frozen=True)
class TaskSplits:
    train: "Task"
    val: "Task"
    test: "Task"


@dataclass(frozen=True)
class Task:
    """A list of :class:`Example` plus a checker. Subclasses define :meth:`check`.

    Example:
        >>> t = ExactMatchTask("capitals", [Example("The capital of France is", "Paris")] * 10)
        >>> t.check(t.examples[0], " Paris, of course")
        True
        >>> len(t.split(train=6, val=2, seed=0).test)
        2
    """

    name: str
    examples: Sequence[Example]
    max_new_tokens: int = 8
    answer_format: AnswerFormat = "text"
    stop: tuple[str, ...] = ()  # generation also ends at any token whose text contains one of these

    def __post_init__(self) -> None:
        c = Check(self, TaskFormatError)
        c.text("name")
        if isinstance(self.examples, (str, bytes)) or not hasattr(self.examples, "__iter__"):
            c.fail("examples", self.examples, "a sequence of Example(prompt, answer)")
        object.__setattr__(self, "examples", tuple(self.examples))
        if not self.examples:
            raise TaskFormatError(f"Task {self.name!r} has no examples.")
        bad = next((e for e in self.examples if not isinstance(e, Example)), None)
        if bad is not None:
            c.fail("examples", bad, "a sequence of Example(prompt, answer)", "Build items with Example(prompt, answer).")
        c.integer("max_new_tokens", min=1)
        c.choice("answer_format", ("text", "choice", "number"))
        object.__setattr__(self, "stop", c.strings("stop"))
        for name, options in (("match", ("first_word", "prefix", "exact")), ("which", ("first", "last"))):
            if hasattr(self, name):
                c.choice(name, options)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def prompts(self) -> list[str]:
        return [e.prompt for e in self.examples]

    def check(self, example: Example, generated: str) -> bool:
        raise NotImplementedError

    def reward(self, example: Example, generated: str) -> float:
        """1.0 when :meth:`check` accepts the generation, else 0.0 (a verifiable reward for GRPO)."""
        return 1.0 if self.check(example, generated) else 0.0

    def labels(self, generations: Sequence[str]) -> np.ndarray:
        """1 where the generated text is correct, 0 elsewhere."""
        if len(generations) != len(self.examples):
            raise TaskFormatError(f"Got {len(generations)} generations for {len(self.examples)} examples.")
        return np.array([int(self.check(e, g)) for e, g in zip(self.examples, generations)], dtype=np.int64)

    def subset(self, indices: Iterable[int], suffix: str = "") -> "Task":
        return replace(self, name=self.name + suffix, examples=tuple(self.examples[i] for i in indices))

    def split(self, train: int | float, val: int | float, test: int | float | None = None, *, seed: int = 0) -> TaskSplits:
        """Shuffle with ``seed`` and cut into train / validation / test (counts or fractions)."""
        n = len(self.examples)
        c = Check("Task.split", TaskFormatError)
        for name, x in (("train", train), ("val", val), ("test", test)):
            if x is None and name == "test":
                continue
            if isinstance(x, float):
                c.number(name, x, gt=0, le=1, fix="A float is a fraction of the examples; an int is a count.")
            else:
                c.integer(name, x, min=1, fix="Every split needs at least one example (an empty split would score "
                          "nothing); a float is a fraction.")
        c.integer("seed", seed, min=0)

        def count(x: int | float) -> int:
            return int(round(x * n)) if isinstance(x, float) else int(x)

        n_train, n_val = count(train), count(val)
        n_test = n - n_train - n_val if test is None else count(test)
        if min(n_train, n_val, n_test) < 0 or n_train + n_val + n_test > n:
            raise TaskFormatError(f"Cannot split {n} examples into train={n_train}, val={n_val}, test={n_test}.")
        empty = [name for name, k in (("train", n_train), ("val", n_val), ("test", n_test)) if k == 0]
        if empty:
            raise TaskFormatError(f"Splitting {n} examples into train={n_train}, val={n_val}, test={n_test} leaves "
                                  f"{' and '.join(empty)} empty; use more examples or larger fractions.")
        order = np.random.default_rng(seed).permutation(n)
        cuts = np.cumsum([n_train, n_val, n_test])
        parts = np.split(order[: cuts[-1]], cuts[:-1])
        return TaskSplits(*(self.subset(p.tolist(), f"/{s}") for p, s in zip(parts, ("train", "val", "test"))))


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).strip(" .,;:!?\"'")


@dataclass(frozen=True)
class MultipleChoiceTask(Task):
    """Correct when the first non-space character generated is the gold letter (``A``, ``B``...)."""

    max_new_tokens: int = 1
    answer_format: AnswerFormat = "choice"

    def check(self, example: Example, generated: str) -> bool:
        text = generated.strip()
        return bool(text) and text[0].upper() == example.answer.upper()


@dataclass(frozen=True)
class ExactMatchTask(Task):
    """Correct when the generated text matches the answer (case and punctuation ignored).

    ``match="first_word"`` compares the first word, ``"prefix"`` asks the generation to start with
    the answer, ``"exact"`` compares the whole (trimmed) generation.
    """

    match: Literal["first_word", "prefix", "exact"] = "prefix"

    def check(self, example: Example, generated: str) -> bool:
        gold, text = _normalise(example.answer), _normalise(generated)
        if self.match == "exact":
            return text == gold
        if self.match == "first_word":
            words = text.split(" ")
            return bool(words) and words[0].strip(".,;:!?\"'") == gold.split(" ")[0]
        return text.startswith(gold) and (len(text) == len(gold) or not text[len(gold)].isalnum())


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class NumericTask(Task):
    """Correct when a number in the generation equals the answer (``which="last"`` as in GSM8K)."""

    which: Literal["first", "last"] = "last"
    answer_format: AnswerFormat = "number"

    def check(self, example: Example, generated: str) -> bool:
        found = _NUMBER.findall(generated)
        if not found:
            return False
        got = found[-1] if self.which == "last" else found[0]
        try:
            return float(got.replace(",", "")) == float(example.answer.replace(",", ""))
        except ValueError:
            return False


@dataclass(frozen=True)
class CheckedTask(Task):
    """A task checked by any function ``checker(example, generated) -> bool`` (a zoo task's own checker,
    a unit test, a regex...)."""

    checker: Callable[[Example, str], bool] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.checker is None:
            raise TaskFormatError(f"CheckedTask {self.name!r} needs checker=callable(example, generated) -> bool.")

    def check(self, example: Example, generated: str) -> bool:
        assert self.checker is not None
        return bool(self.checker(example, generated))


TASK_KINDS: dict[str, type[Task]] = {
    "multiple_choice": MultipleChoiceTask, "exact": ExactMatchTask, "numeric": NumericTask,
}


# ---------------------------------------------------------------------------- loaders
def _mc_prompt(question: str, choices: Sequence[str]) -> str:
    lines = [question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines) + "\nAnswer:"


def mmlu_task(records: Iterable[Mapping[str, Any]], name: str = "mmlu", **kwargs: Any) -> MultipleChoiceTask:
    """Multiple-choice task from MMLU-style records: ``question``, ``choices`` (list), ``answer``
    (index or letter). The prompt lists lettered choices and ends with ``Answer:``."""
    examples = []
    for i, rec in enumerate(records):
        missing = [k for k in ("question", "choices", "answer") if k not in rec]
        if missing:
            raise TaskFormatError(
                f"Record {i} lacks {missing}; MMLU-style records need 'question', 'choices' (a list) and "
                f"'answer' (an index or a letter). Got keys {sorted(rec)}."
            )
        choices = rec["choices"]
        if isinstance(choices, str) or not isinstance(choices, Sequence) and not hasattr(choices, "tolist"):
            raise TaskFormatError(f"Record {i}: 'choices' must be a list of strings, got {type(choices).__name__}.")
        choices = [str(c) for c in (choices.tolist() if hasattr(choices, "tolist") else choices)]
        if not 2 <= len(choices) <= len(LETTERS):
            raise TaskFormatError(f"Record {i}: needs 2 to {len(LETTERS)} choices, got {len(choices)}.")
        ans = rec["answer"]
        if isinstance(ans, str) and not ans.strip().lstrip("-").isdigit():
            letter = ans.strip().upper()
            if len(letter) != 1 or letter not in LETTERS[: len(choices)]:
                raise TaskFormatError(f"Record {i}: answer {ans!r} is not one of {list(LETTERS[: len(choices)])}.")
        else:
            try:
                idx = int(ans)
            except (TypeError, ValueError):
                raise TaskFormatError(f"Record {i}: answer {ans!r} is neither an index nor a letter.") from None
            if not 0 <= idx < len(choices):
                raise TaskFormatError(f"Record {i}: answer index {idx} is out of range for {len(choices)} choices.")
            letter = LETTERS[idx]
        examples.append(Example(_mc_prompt(str(rec["question"]), choices), letter, {"choices": tuple(choices)}))
    return MultipleChoiceTask(name, examples, **kwargs)


def _records_from_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if not path.is_file():
        from interp.core.errors import InterpLoadError, missing_file

        raise missing_file(InterpLoadError, f"No task file at {str(path)!r}.")
    if suffix == ".jsonl":
        out = []
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TaskFormatError(f"{path.name}, line {line_no}: not valid JSON ({err.msg}).") from None
        return out
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TaskFormatError(f"{path.name}: not valid JSON ({err}).") from None
        if not isinstance(data, list):
            raise TaskFormatError(f"{path.name} must hold a JSON list of records.")
        return data
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        try:
            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        except Exception as err:  # pandas / pyarrow raise many types for a damaged file
            raise TaskFormatError(f"{path.name}: could not be read as {suffix[1:]} ({type(err).__name__}: {err}).") from None
        records = frame.to_dict("records")
        if suffix == ".csv":  # choices in a CSV are a JSON list or separate columns
            for rec in records:
                if isinstance(rec.get("choices"), str):
                    try:
                        rec["choices"] = json.loads(rec["choices"])
                    except json.JSONDecodeError:
                        pass
        return records
    raise TaskFormatError(f"Unsupported task file {path.name!r}: use .jsonl, .json, .csv or .parquet.")


def _from_records(records: list[Mapping[str, Any]], kind: str, name: str, prompt_field: str, answer_field: str,
                  **kwargs: Any) -> Task:
    if not isinstance(kind, str) or kind not in TASK_KINDS:
        raise TaskFormatError(f"kind must be one of {sorted(TASK_KINDS)}, got {kind!r}.")
    if not records:
        raise TaskFormatError(f"Task {name!r}: no records.")
    if kind == "multiple_choice" and "choices" in records[0]:
        return mmlu_task(records, name=name, **kwargs)
    examples = []
    for i, rec in enumerate(records):
        if prompt_field not in rec or answer_field not in rec:
            raise TaskFormatError(
                f"Record {i} lacks {prompt_field!r} or {answer_field!r} (has {sorted(rec)}); pass "
                "prompt_field= / answer_field= to name the columns, or use MMLU-style question/choices/answer."
            )
        prompt, answer = rec[prompt_field], rec[answer_field]
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskFormatError(f"Record {i}: {prompt_field!r} must be a non-empty string, got {prompt!r}.")
        if answer is None or (isinstance(answer, float) and np.isnan(answer)) or str(answer).strip() == "":
            raise TaskFormatError(f"Record {i}: {answer_field!r} is empty.")
        meta = {k: v for k, v in rec.items() if k not in (prompt_field, answer_field)}
        examples.append(Example(prompt, str(answer).strip(), meta))
    return TASK_KINDS[kind](name, examples, **kwargs)


def load_task(path: str | Path, kind: str = "exact", *, name: str | None = None, prompt_field: str = "prompt",
              answer_field: str = "answer", **kwargs: Any) -> Task:
    """Load a task from a local ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file.

    ``kind`` is ``"multiple_choice"`` (MMLU-style question/choices/answer records), ``"exact"`` or
    ``"numeric"`` (``prompt_field`` / ``answer_field`` columns). Extra keyword arguments go to the
    task (e.g. ``max_new_tokens``, ``match``).
    """
    path = Path(path)
    return _from_records(_records_from_file(path), kind, name or path.stem, prompt_field, answer_field, **kwargs)


def load_hf_task(dataset: str, config: str | None = None, *, split: str = "test", kind: str = "multiple_choice",
                 prompt_field: str = "prompt", answer_field: str = "answer", limit: int | None = None,
                 **kwargs: Any) -> Task:
    """Load a task through ``datasets.load_dataset`` (needs a network or a local cache),
    e.g. ``load_hf_task("cais/mmlu", "all", split="auxiliary_train")``."""
    import datasets

    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as err:  # datasets raises many types when offline
        raise TaskFormatError(
            f"Could not load {dataset!r} ({type(err).__name__}: {err}). Without a network, save the records "
            "as JSONL/CSV/parquet and use load_task(path)."
        ) from err
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return _from_records(list(ds), kind, dataset, prompt_field, answer_field, **kwargs)
