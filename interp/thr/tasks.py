"""Verifiable-reward tasks for GRPO: prompts with a checkable answer, split into train and a held-out
test set, and a reward function on the generated text. Everything is offline.

Items are :class:`interp.core.tasks.Example` (``prompt``, ``answer``); any core :class:`~interp.core.tasks.Task`
pair becomes a GRPO task with :meth:`VerifiableTask.from_tasks`. The bundled models' tasks live in the
zoo (``interp.zoo.tasks.planted_grpo_task``, ``interp.zoo.stories.story_word_task``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from interp.core.tasks import Example, Task
from interp.core.validate import Check
from interp.thr.core import THRInputError

__all__ = ["VerifiableTask", "word_reward", "prefix_reward"]


@dataclass
class VerifiableTask:
    """Train and test prompts with a reward function ``reward(example, completion_text) -> float``."""

    name: str
    train: list[Example]
    test: list[Example]
    reward: Callable[[Example, str], float]
    max_new_tokens: int = 24
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = Check(self, THRInputError)
        c.text("name")
        c.integer("max_new_tokens", min=1)
        if not callable(self.reward):
            c.fail("reward", self.reward, "a callable reward(example, completion_text) -> float")
        for split in ("train", "test"):
            items = getattr(self, split)
            if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
                c.fail(split, items, "a list of interp.core.tasks.Example")
            items = list(items)
            if not items:
                raise THRInputError(f"Task {self.name!r} needs non-empty train and test splits; {split} is empty.")
            bad = next((x for x in items if not isinstance(x, Example)), None)
            if bad is not None:
                c.fail(split, bad, "a list of interp.core.tasks.Example (prompt, answer)", "Build items with Example(prompt, answer).")
            setattr(self, split, items)
        overlap = {i.prompt for i in self.train} & {i.prompt for i in self.test}
        if overlap:
            raise THRInputError(f"Task {self.name!r}: {len(overlap)} prompts are in both splits, e.g. {next(iter(overlap))!r}.")

    @classmethod
    def from_tasks(cls, train: Task, test: Task, *, name: str | None = None, description: str = "") -> "VerifiableTask":
        """A GRPO task from two core tasks: prompts of ``train`` that also occur in ``test`` are dropped
        from train, and the reward is ``test.reward`` (1 when the task's checker accepts the text)."""
        seen = {e.prompt for e in test.examples}
        kept = [e for e in train.examples if e.prompt not in seen]
        return cls(name or test.name, kept, list(test.examples), test.reward, max_new_tokens=test.max_new_tokens,
                   description=description)


def word_reward(item: Example, completion: str) -> float:
    """1.0 when the answer word occurs in the completion as a whole word (case-insensitive)."""
    return 1.0 if re.search(rf"\b{re.escape(item.answer)}\b", completion, flags=re.IGNORECASE) else 0.0


def prefix_reward(item: Example, completion: str) -> float:
    """1.0 when the completion, leading spaces removed, starts with the answer followed by a
    non-alphanumeric character or the end (so "12" does not accept "123")."""
    text = completion.lstrip()
    if not text.startswith(item.answer):
        return 0.0
    rest = text[len(item.answer) :]
    return 1.0 if not rest or not rest[0].isalnum() else 0.0
