"""Verifiable-reward tasks for GRPO: prompts with a checkable answer, split into train and a
held-out test set, and a reward function on the generated text. Everything is offline.

``story_word_task`` works on stories260K (continue a story so that a named object word appears
again); ``zoo_task`` wraps the planted tasks of the bundled ``toy-lm`` (``interp.zoo.tasks``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["TaskItem", "VerifiableTask", "story_word_task", "zoo_task", "word_reward", "prefix_reward"]


@dataclass(frozen=True)
class TaskItem:
    """One prompt and what a correct completion must contain."""

    prompt: str
    target: str


@dataclass
class VerifiableTask:
    """Prompts with a reward function ``reward(item, completion_text) -> float``."""

    name: str
    train: list[TaskItem]
    test: list[TaskItem]
    reward: Callable[[TaskItem, str], float]
    max_new_tokens: int = 24
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise ValueError(f"Task {self.name!r} needs non-empty train and test splits.")
        overlap = {i.prompt for i in self.train} & {i.prompt for i in self.test}
        if overlap:
            raise ValueError(f"Task {self.name!r}: {len(overlap)} prompts are in both splits, e.g. {next(iter(overlap))!r}.")


def word_reward(item: TaskItem, completion: str) -> float:
    """1.0 when the target word occurs in the completion as a whole word (case-insensitive)."""
    return 1.0 if re.search(rf"\b{re.escape(item.target)}\b", completion, flags=re.IGNORECASE) else 0.0


def prefix_reward(item: TaskItem, completion: str) -> float:
    """1.0 when the completion, leading spaces removed, starts with the target followed by a
    non-alphanumeric character or the end (so "12" does not accept "123")."""
    text = completion.lstrip()
    if not text.startswith(item.target):
        return 0.0
    rest = text[len(item.target) :]
    return 1.0 if not rest or not rest[0].isalnum() else 0.0


_STORY_NAMES = ["Lily", "Tom", "Ben", "Sue", "Anna", "Max", "Mia", "Sam", "Tim", "Lucy", "Jack", "Amy", "Bob", "Kate", "Zoe", "Jill"]
_STORY_OBJECTS = ["ball", "toy", "car", "doll", "kite", "hat", "cake", "book", "box", "boat", "apple", "flower",
                  "bird", "bike", "drum", "cup", "rock", "shell", "leaf", "stick", "truck", "bear", "dress", "balloon"]
_STORY_TEMPLATES = [
    "Once upon a time, there was a little girl named {name}. {name} wanted a {obj}.",
    "Once upon a time, there was a boy named {name}. One day, {name} saw a {obj}.",
    "One day, a kid named {name} found a {obj} in the park.",
    "{name} was very happy. Mom gave {name} a big {obj}.",
]


def story_word_task(*, n_test: int = 64, seed: int = 0, max_new_tokens: int = 24) -> VerifiableTask:
    """Continue a short story so that its object word comes back (stories260K).

    Items are (template, name, object) combinations; the test split holds out whole
    combinations, drawn with ``seed``.

    >>> task = story_word_task()
    >>> task.reward(task.test[0], f"He liked the {task.test[0].target} a lot.")
    1.0
    """
    items = [
        TaskItem(t.format(name=n, obj=o), o)
        for t in _STORY_TEMPLATES for n in _STORY_NAMES for o in _STORY_OBJECTS
    ]
    random.Random(seed).shuffle(items)
    return VerifiableTask(
        name="story-word", train=items[n_test:], test=items[:n_test], reward=word_reward,
        max_new_tokens=max_new_tokens,
        description=f"stories260K: the object word of the prompt must appear within {max_new_tokens} tokens.",
    )


def zoo_task(task: str = "arith", *, n_train: int = 512, n_test: int = 64, seed: int = 0) -> VerifiableTask:
    """A planted task of the bundled ``toy-lm`` (``interp.zoo.tasks``) as a verifiable-reward task.

    Train and test items come from different item seeds; prompts in both are dropped from train.
    The reward is ``interp.zoo.tasks.check`` (for ``arith``: the first number equals the sum; the
    sums asked are never stated in the model's training corpus).

    >>> task = zoo_task("arith", n_train=8, n_test=4)
    >>> task.reward(task.test[0], " " + task.test[0].target + ".")
    1.0
    """
    from interp.zoo import tasks as zt

    test = [TaskItem(it.prompt, it.answer) for it in zt.make_items(task, n_test, seed=2 * seed + 1)]
    seen = {it.prompt for it in test}
    train: list[TaskItem] = []
    for it in zt.make_items(task, 4 * n_train, seed=2 * seed + 2):
        if it.prompt not in seen:
            seen.add(it.prompt)
            train.append(TaskItem(it.prompt, it.answer))
        if len(train) == n_train:
            break
    test = list({it.prompt: it for it in test}.values())

    def reward(item: TaskItem, completion: str) -> float:
        return 1.0 if zt.check(task, completion, item.target) else 0.0

    return VerifiableTask(name=f"toy-lm-{task}", train=train, test=test, reward=reward,
                          max_new_tokens=zt.MAX_NEW_TOKENS[task],
                          description=f"toy-lm planted task {task!r}, checked by interp.zoo.tasks.check.")
