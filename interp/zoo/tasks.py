"""Planted tasks of the toy-lm zoo model: held-out evaluation items, answer checkers, greedy evaluation.

Each task is a prompt whose greedy continuation has a checkable answer. Items are drawn from a
random stream the training corpus never uses (string seeds ``toy-eval-<task>-<seed>`` against
``toy-corpus-<seed>``), and the addition problems asked here never occur in the corpus.

======== ===================================================== ======================
task      prompt (ends without a trailing space)                answer
======== ===================================================== ======================
qa        facts, then ``Question: Where does X live? Answer:``  the place / pet / colour
mc        a fact, then a question with ``A) .. D) ..`` choices   the letter
arith     ``Add: 37 + 48 =``                                      ``85``
copy      ``Copy: cat owl frog ->``                               ``cat owl frog``
reverse   ``Reverse: cat owl frog ->``                            ``frog owl cat``
induction a random span, filler, the span again up to a cut       the next word of the span
successor ``Tuesday, Wednesday,``                                 ``Thursday``
======== ===================================================== ======================

>>> from interp import zoo
>>> from interp.zoo.tasks import make_items, accuracy_by_task
>>> items = make_items("arith", 50, seed=0)
>>> accuracy_by_task(zoo.load("toy-lm"), items)            # doctest: +SKIP
{'arith': 0.46}

As method inputs: :func:`planted_task` is a core :class:`~interp.core.tasks.Task` (CorrSteer), and
:func:`planted_grpo_task` a :class:`~interp.thr.tasks.VerifiableTask` (GRPO / THR).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal


from interp.core.generation import generate
from interp.core.tasks import CheckedTask, Example
from interp.thr.tasks import VerifiableTask
from interp.zoo.corpus import SAMPLERS, _arith
from interp.core.validate import Check
from interp.zoo.errors import ZooConfigError
from interp.zoo.planted import CODE_HOLDERS, code_sample

__all__ = ["TASKS", "PLANTED_TASKS", "TaskName", "make_items", "check", "accuracy_by_task", "planted_task", "planted_grpo_task",
           "MAX_NEW_TOKENS", "STOP"]

TaskName = Literal["qa", "mc", "arith", "copy", "reverse", "induction", "successor"]
TASKS: tuple[str, ...] = ("qa", "mc", "arith", "copy", "reverse", "induction", "successor")
PLANTED_TASKS: tuple[str, ...] = ("opposite", "code")
"""The tasks of toy-lm-planted beyond :data:`TASKS` (issue 14; :mod:`interp.zoo.planted`): ``opposite``
(``Rule: opposite. hot -> cold. big ->`` -> ``small``, a latent mode) and ``code`` (``The code of Kitari
is`` -> ``472``, planted frequencies; items ask about holders drawn uniformly)."""

MAX_NEW_TOKENS: dict[str, int] = {
    "qa": 6, "mc": 3, "arith": 5, "copy": 18, "reverse": 18, "induction": 6, "successor": 6, "opposite": 3,
    "code": 6,
}
"""Enough new tokens for each task's answer (names span up to ~4 tokens, copy lists ~6 words)."""


STOP = ("\n",)
"""Corpus segments end with a newline, so an answer ends at the first one."""


def _check_task(task: str) -> None:
    if task not in TASKS + PLANTED_TASKS:
        raise ZooConfigError(f"Unknown task {task!r}; the toy-lm tasks are {', '.join(TASKS + PLANTED_TASKS)}.")


def make_items(task: str, n: int, seed: int = 0) -> list[Example]:
    """``n`` held-out items of ``task``, deterministic in ``seed``. ``answer`` has no leading space;
    ``meta`` holds the task name and, for ``mc``, the choices.

    >>> make_items("successor", 1, seed=3)[0].meta["task"]
    'successor'
    """
    _check_task(task)
    Check("make_items", ZooConfigError).integer("n", n, min=0)
    rng = random.Random(f"toy-eval-{task}-{seed}")
    out = []
    for _ in range(n):
        if task == "arith":
            s = _arith(rng, heldout=True)
        elif task == "code":
            s = code_sample(rng, holder=rng.choice(CODE_HOLDERS))
        else:
            s = SAMPLERS[task](rng)
        meta = {"task": task, "choices": tuple(s.choices)} if s.choices else {"task": task}
        out.append(Example(prompt=s.prompt, answer=s.answer.strip(), meta=meta))
    return out


_PUNCT = ".,;:!?)\"'"


def _words(text: str, k: int) -> list[str]:
    return [w.strip(_PUNCT) for w in text.split()[:k]]


def check(task: str, generated_text: str, answer: str) -> bool:
    """Is the continuation ``generated_text`` (the text after the prompt) right?

    - ``qa``, ``induction``, ``successor``, ``opposite``: the first word (punctuation stripped) equals ``answer``;
    - ``mc``: the first word is the letter (``"B"``, ``"B)"`` and ``"B."`` all count);
    - ``arith``, ``code``: the first number equals ``answer``;
    - ``copy``, ``reverse``: the first ``len(answer.split())`` words equal those of ``answer``.

    >>> check("arith", " 85.", "85"), check("mc", " C) red", "C"), check("qa", " Dorton.", "Dor")
    (True, True, False)
    """
    _check_task(task)
    answer = answer.strip()
    if task in ("arith", "code"):
        m = re.match(r"\s*(\d+)", generated_text)
        return m is not None and m.group(1) == answer
    if task in ("copy", "reverse"):
        want = answer.split()
        return _words(generated_text, len(want)) == [w.strip(_PUNCT) for w in want]
    got = _words(generated_text, 1)
    return bool(got) and got[0] == answer.strip(_PUNCT)


# ----------------------------------------------------------------------------------------------
def accuracy_by_task(model: Any, items: Sequence[Example], *, max_new_tokens: int | None = None,
                     batch_size: int = 64, tokenizer: Any = None, return_outputs: bool = False) -> dict[str, Any]:
    """Greedy accuracy per task on ``items`` (``{task: accuracy}``), generated with interp's one loop
    (batched, left-padded, each answer ending at EOS or its first newline).

    Works with a TransformerLens model or a Hugging Face causal LM (pass ``tokenizer``).
    ``max_new_tokens=None`` uses :data:`MAX_NEW_TOKENS` per task. ``return_outputs=True`` adds
    ``"outputs"``: a list of ``(item, continuation, correct)`` for every item.
    """
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        task = item.meta.get("task")
        _check_task(task)
        by_task[task].append(i)
    if not by_task:
        raise ZooConfigError("No items given: make some with make_items(task, n).")
    result: dict[str, Any] = {}
    outputs: list[Any] = [None] * len(items)
    for task, idx in by_task.items():
        budget = max_new_tokens or MAX_NEW_TOKENS[task]
        idx = sorted(idx, key=lambda i: len(items[i].prompt))  # similar lengths together: little padding
        texts: list[str] = []
        for start in range(0, len(idx), batch_size):
            chunk = [items[i].prompt for i in idx[start : start + batch_size]]
            texts += generate(model, chunk, budget, stop=STOP, tokenizer=tokenizer, prepend_bos=True).texts()
        correct = [check(task, t, items[i].answer) for i, t in zip(idx, texts)]
        result[task] = sum(correct) / len(correct)
        for i, t, c in zip(idx, texts, correct):
            outputs[i] = (items[i], t, c)
    if return_outputs:
        result["outputs"] = outputs
    return result


def planted_task(task: str = "qa", n: int = 1000, seed: int = 0, **kwargs: Any) -> CheckedTask:
    """``n`` held-out items of a planted task as a core :class:`~interp.core.tasks.Task` (checked by
    :func:`check`; CorrSteer's input).

    >>> planted_task("qa", 4).max_new_tokens
    6
    """
    items = make_items(task, n, seed=seed)
    kwargs.setdefault("max_new_tokens", MAX_NEW_TOKENS[task])
    kwargs.setdefault("answer_format", "choice" if task == "mc" else "text")
    kwargs.setdefault("stop", STOP)
    return CheckedTask(f"toy-lm/{task}", items, checker=lambda e, text: check(task, text, e.answer), **kwargs)


def planted_grpo_task(task: str = "arith", *, n_train: int = 512, n_test: int = 64, seed: int = 0) -> VerifiableTask:
    """A planted task as a GRPO task: train and test items from different item seeds, prompts in both
    dropped from train, reward 1 when :func:`check` accepts the completion (for ``arith``: the first
    number equals the sum; the sums asked are never stated in the training corpus).

    >>> task = planted_grpo_task("arith", n_train=8, n_test=4)
    >>> task.reward(task.test[0], " " + task.test[0].answer + ".")
    1.0
    """
    _check_task(task)
    c = Check("planted_grpo_task", ZooConfigError)
    c.integer("n_train", n_train, min=1)
    c.integer("n_test", n_test, min=1)
    c.integer("seed", seed, min=0)
    test = list({e.prompt: e for e in make_items(task, n_test, seed=2 * seed + 1)}.values())
    seen = {e.prompt for e in test}
    train: list[Example] = []
    for e in make_items(task, 4 * n_train, seed=2 * seed + 2):
        if e.prompt not in seen:
            seen.add(e.prompt)
            train.append(e)
        if len(train) == n_train:
            break

    def reward(item: Example, completion: str) -> float:
        return 1.0 if check(task, completion, item.answer) else 0.0

    return VerifiableTask(name=f"toy-lm-{task}", train=train, test=test, reward=reward,
                          max_new_tokens=MAX_NEW_TOKENS[task],
                          description=f"toy-lm planted task {task!r}, checked by interp.zoo.tasks.check.")
