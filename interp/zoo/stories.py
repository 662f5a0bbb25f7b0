"""Offline tasks for the shared real model stories260K (``../shared/models/stories260K``): a recall task
for CorrSteer and a story-continuation task with a verifiable reward for GRPO. The model gets both
right only part of the time, which is what the methods need.
"""

from __future__ import annotations

import random
from typing import Literal

import numpy as np

from interp.core.tasks import Example, ExactMatchTask
from interp.thr.tasks import VerifiableTask, word_reward

__all__ = ["stories_recall_task", "story_word_task", "STORIES260K_GRPO_LR"]

STORIES260K_GRPO_LR = 5e-4
"""GRPO learning rate measured for stories260K on :func:`story_word_task`: plain GRPO, 20 steps of 8 prompts
x 8 responses, held-out pass@1 0.151 at the start, 0.912 after at lr 5e-4, 0.510 at 5e-5
(``python -m interp.app.thr_experiment --model stories260K --variants plain --steps 20 --prompts 8 --lr LR``)."""

_NAMES = ("Lily", "Tom", "Ben", "Sue", "Mia", "Max", "Anna", "Sam", "Tim", "Lucy", "Jack", "Amy", "Sara", "Bob",
          "Zoe", "Kate")
_OBJECTS = ("ball", "doll", "kite", "car", "bike", "book", "hat", "box", "cake", "boat", "train", "bear", "toy",
            "dog", "cat", "bird")


def stories_recall_task(kind: Literal["name", "object"] = "name", n: int = 1000, seed: int = 0) -> ExactMatchTask:
    """Recall, in a TinyStories-style text, a name or an object stated earlier (for ``stories260K``, which
    gets these right only part of the time). Correct = the first generated word is the stated one.

    >>> stories_recall_task("object", 2, seed=1).examples[0].prompt.endswith("play with the")
    True
    """
    if kind not in ("name", "object"):
        raise ValueError(f"kind must be 'name' or 'object', got {kind!r}.")
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        a, b = rng.choice(len(_NAMES), 2, replace=False)
        name, friend = _NAMES[a], _NAMES[b]
        obj = _OBJECTS[int(rng.integers(len(_OBJECTS)))]
        if kind == "name":
            prompt = (f"Once upon a time, there was a little kid named {name}. {name} had a {obj}. One day, "
                      f"{friend} came to play. {friend} said, \"Come here,")
            examples.append(Example(prompt, name, {"friend": friend}))
        else:
            prompt = (f"Once upon a time, {name} had a big {obj}. {name} loved the {obj} very much. One day, "
                      f"{name} and a friend wanted to play with the")
            examples.append(Example(prompt, obj, {"name": name}))
    return ExactMatchTask(f"stories/{kind}-recall", examples, max_new_tokens=4, match="first_word", stop=("\n",))


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
    """Continue a short story so that its object word comes back (stories260K, GRPO).

    Items are (template, name, object) combinations; the test split holds out whole
    combinations, drawn with ``seed``.

    >>> task = story_word_task()
    >>> task.reward(task.test[0], f"He liked the {task.test[0].answer} a lot.")
    1.0
    """
    items = [
        Example(t.format(name=n, obj=o), o)
        for t in _STORY_TEMPLATES for n in _STORY_NAMES for o in _STORY_OBJECTS
    ]
    random.Random(seed).shuffle(items)
    return VerifiableTask(
        name="story-word", train=items[n_test:], test=items[:n_test], reward=word_reward,
        max_new_tokens=max_new_tokens,
        description=f"stories260K: the object word of the prompt must appear within {max_new_tokens} tokens.",
    )
