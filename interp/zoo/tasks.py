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
opposite  ``Rule: opposite. hot -> cold. big ->`` (a latent mode) ``small``
code      ``The code of Kitari is`` (planted frequencies)         ``472``
======== ===================================================== ======================

``opposite`` items are drawn like the corpus (either mode, varying evidence); ``code`` items ask
about holders drawn uniformly (not by their planted frequency). :mod:`interp.zoo.planted` has both.

>>> from interp import zoo
>>> from interp.zoo.tasks import make_items, evaluate
>>> items = make_items("arith", 50, seed=0)
>>> evaluate(zoo.load("toy-lm"), items)            # doctest: +SKIP
{'arith': 0.46}
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

from interp.zoo.corpus import SAMPLERS, _arith
from interp.zoo.planted import CODE_HOLDERS, code_sample

__all__ = ["TASKS", "TaskName", "TaskItem", "make_items", "check", "generate", "evaluate", "MAX_NEW_TOKENS"]

TaskName = Literal["qa", "mc", "arith", "copy", "reverse", "induction", "successor", "opposite", "code"]
TASKS: tuple[str, ...] = ("qa", "mc", "arith", "copy", "reverse", "induction", "successor", "opposite", "code")

MAX_NEW_TOKENS: dict[str, int] = {
    "qa": 6, "mc": 3, "arith": 5, "copy": 18, "reverse": 18, "induction": 6, "successor": 6, "opposite": 3,
    "code": 6,
}
"""Enough new tokens for each task's answer (names span up to ~4 tokens, copy lists ~6 words)."""


@dataclass
class TaskItem:
    """One evaluation item. ``answer`` has no leading space; ``choices`` only for ``mc``."""

    prompt: str
    answer: str
    task: str
    choices: list[str] | None = None


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; the toy-lm tasks are {', '.join(TASKS)}.")


def make_items(task: str, n: int, seed: int = 0) -> list[TaskItem]:
    """``n`` held-out items of ``task``, deterministic in ``seed``.

    >>> make_items("successor", 1, seed=3)[0].task
    'successor'
    """
    _check_task(task)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    rng = random.Random(f"toy-eval-{task}-{seed}")
    out = []
    for _ in range(n):
        if task == "arith":
            s = _arith(rng, heldout=True)
        elif task == "code":
            s = code_sample(rng, holder=rng.choice(CODE_HOLDERS))
        else:
            s = SAMPLERS[task](rng)
        out.append(TaskItem(prompt=s.prompt, answer=s.answer.strip(), task=task, choices=s.choices))
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
def _is_tl(model: Any) -> bool:
    return hasattr(model, "run_with_hooks") and hasattr(model, "cfg")


def _stop_ids(tokenizer: Any) -> Tensor:
    """EOS and every token whose text holds a newline: corpus segments end with one."""
    ids = [tokenizer.eos_token_id]
    ids += [i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])]
    return torch.tensor(sorted(set(ids)))


@torch.no_grad()
def _greedy_block(model: Any, tokens: Int[Tensor, "batch pos"], max_new: int,
                  stop: Tensor) -> Int[Tensor, "batch new"]:
    """Greedy continuation of equal-length prompts with a KV cache (no padding, so exact)."""
    batch = tokens.shape[0]
    done = torch.zeros(batch, dtype=torch.bool, device=tokens.device)
    out = []
    if _is_tl(model):
        from transformer_lens import TransformerLensKeyValueCache

        cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, batch)
        step = lambda x: model(x, past_kv_cache=cache)[:, -1]  # noqa: E731
    else:
        state: dict[str, Any] = {"past": None}

        def step(x: Tensor) -> Tensor:
            res = model(input_ids=x, past_key_values=state["past"], use_cache=True)
            state["past"] = res.past_key_values
            return res.logits[:, -1]

    x = tokens
    for _ in range(max_new):
        nxt = step(x).argmax(-1)
        out.append(nxt)
        done |= torch.isin(nxt, stop.to(nxt.device))
        if bool(done.all()):
            break
        x = nxt[:, None]
    return torch.stack(out, dim=1)


def generate(model: Any, prompts: Sequence[str], *, max_new_tokens: int = 8, batch_size: int = 64,
             tokenizer: Any = None) -> list[str]:
    """Greedy continuations (text after the prompt, cut at EOS) of ``prompts``, batched.

    Works with a TransformerLens ``HookedTransformer`` (its own tokenizer) or a Hugging Face causal
    LM (pass ``tokenizer``). Prompts are grouped by token length so no padding is ever needed.
    """
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("generate() needs a tokenizer: pass tokenizer=... for a model without one.")
    ids = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    ids = [s if s and s[0] == bos else [bos] + s for s in ids]
    device = next(model.parameters()).device
    stop = _stop_ids(tokenizer)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(ids):
        groups[len(s)].append(i)
    texts: list[str] = [""] * len(ids)
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            tokens = torch.tensor([ids[i] for i in chunk], device=device)
            new = _greedy_block(model, tokens, max_new_tokens, stop).tolist()
            for i, row in zip(chunk, new):
                if tokenizer.eos_token_id in row:
                    row = row[: row.index(tokenizer.eos_token_id)]
                texts[i] = tokenizer.decode(row, skip_special_tokens=True)
    return texts


def evaluate(model: Any, items: Sequence[TaskItem], *, max_new_tokens: int | None = None,
             batch_size: int = 64, tokenizer: Any = None, return_outputs: bool = False) -> dict[str, Any]:
    """Greedy accuracy per task on ``items`` (``{task: accuracy}``).

    ``max_new_tokens=None`` uses :data:`MAX_NEW_TOKENS` per task. ``return_outputs=True`` adds
    ``"outputs"``: a list of ``(item, continuation, correct)`` for every item.
    """
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        _check_task(item.task)
        by_task[item.task].append(i)
    result: dict[str, Any] = {}
    outputs: list[Any] = [None] * len(items)
    for task, idx in by_task.items():
        budget = max_new_tokens or MAX_NEW_TOKENS[task]
        texts = generate(model, [items[i].prompt for i in idx], max_new_tokens=budget,
                         batch_size=batch_size, tokenizer=tokenizer)
        correct = [check(task, t, items[i].answer) for i, t in zip(idx, texts)]
        result[task] = sum(correct) / len(correct)
        for i, t, c in zip(idx, texts, correct):
            outputs[i] = (items[i], t, c)
    if return_outputs:
        result["outputs"] = outputs
    return result
