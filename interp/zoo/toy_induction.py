"""Designs for ``toy-induction`` (issue 14, item 4): a small toy Llama meant to grow a real, content-based
induction head for the Lorsa demo. NOT bundled: no design tried so far grew one (their numbers are in
``interp/zoo/designs/toy-induction.json``, the card's ``designs_tried`` once one works).

What was learnt: the zoo's training loop (``interp.zoo.training``) is sound, :func:`copy_diagnostic` drops
the loss on the second copy of [BOS, r, r] from ln(1021) to ~0 within 200-400 steps, but with a fixed span
length the solution is a positional copier (a head attending span - 1 tokens back whatever the tokens; it
copies confidently when nothing repeats), which is also what toy-lm-planted's best "induction" head is.
With variable span lengths (no positional shortcut) every design plateaued at bag-of-tokens copying
("some earlier token") within the budgets this loaded machine allowed (600-1200 steps of 16 rows, or
1000-2500 of 64), at 1021, 317, 72 and 64 ids alike, with 2 or 3 layers. The same pipeline as toy-lm-planted (:func:`interp.zoo.toy_lm_planted.train_recipe`)
with its own defaults and card identity:

>>> from interp.zoo.toy_induction import design, train
>>> train("/tmp/toy-induction-A")                                 # doctest: +SKIP  (design A, the defaults)
>>> from interp.zoo.toy_lm_planted import train_recipe
>>> train_recipe("/tmp/D", design("D"), identity=IDENTITY)        # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.zoo.corpus import CorpusConfig
from interp.zoo.planted import RepeatConfig
from interp.zoo.toy_lm_planted import CardIdentity, PlantedRecipe, recipe_from_overrides, train_recipe
from interp.zoo.training import LMTrainConfig, ModelConfig, train_causal_lm

__all__ = ["INDUCTION_MIX", "IDENTITY", "DESIGNS", "default_recipe", "design", "train", "copy_diagnostic"]

INDUCTION_MIX: dict[str, float] = {
    "filler": 1.5, "story": 1.0, "qa": 1.0, "copy": 1.0, "successor": 1.0, "induction": 1.5, "ordinal": 2.5,
    "arith": 0.5,
}
"""Segment weights of toy-induction's text: toy-lm's segments (no opposite / code latents), ordinal runs up."""

IDENTITY = CardIdentity(
    name="toy-induction",
    description="Two-layer toy Llama (RoPE rotate-half, RMSNorm, SwiGLU) trained from scratch on synthetic text "
    "(stories, fillers, question-answer, copy, ordinal runs) with repeated random-token spans planted at the token "
    "level and bare [BOS, span, span] rows, so that an induction head forms (issue 14, item 4: the Lorsa demo).",
    recipe="interp.zoo.toy_induction:train",
)


def default_recipe() -> PlantedRecipe:
    """Design A: the first recipe tried (text + planted repeats in one stage, BPE of 1024, untied)."""
    return PlantedRecipe(
        corpus=CorpusConfig(n_docs=16_000, seed=0, doc_chars=(200, 450), mix=dict(INDUCTION_MIX)),
        model=ModelConfig(d_model=128, n_layers=2, n_heads=4, n_kv_heads=4, d_mlp=256, max_len=160,
                          tie_embeddings=False),
        train=LMTrainConfig(steps=1200, batch_size=16, lr=2e-3, warmup_steps=50, log_every=50, n_threads=1),
        repeats=RepeatConfig(doc_prob=0.5, pure_prob=0.35, span=(8, 32), copies=(2, 3)),
        vocab_size=1024, eval_n=50,
    )


DESIGNS = ("A", "B", "D")
"""The designs of :func:`design` (C was B with 2 heads of width 64)."""


def design(name: str) -> PlantedRecipe:
    """The recipe of a design on the record: ``"A"`` (:func:`default_recipe`), ``"B"`` (a first stage of
    variable-length repeats only, BPE of 320, tied embeddings, then A's text at lr 1e-3 for 800 steps) or
    ``"D"`` (character-level tokens, 72 ids: documents of 120-240 characters, context 192, tied, 900 steps)."""
    from interp.zoo.planted import RepeatConfig as _Repeats
    from interp.zoo.toy_lm_planted import Stage

    if name not in DESIGNS:
        raise ValueError(f"design={name!r}: use one of {DESIGNS}.")
    r = default_recipe()
    if name == "B":
        r.vocab_size = 320
        r.model.tie_embeddings = True
        r.repeat_stage = Stage(None, LMTrainConfig(steps=600, batch_size=16, lr=2e-3, warmup_steps=50, log_every=50,
                                                   seed=100, n_threads=1),
                               _Repeats(doc_prob=0.0, pure_prob=1.0, span=(8, 32), copies=(2, 3), seed=100))
        r.train.steps, r.train.lr, r.train.warmup_steps = 800, 1e-3, 20
    elif name == "D":
        r.tokenizer = "chars"
        r.corpus.doc_chars = (120, 240)
        r.model.max_len = 192
        r.model.tie_embeddings = True
        r.train.steps = 900
    return r


def train(out_dir: Path, progress: bool = True, stages_dir: str | Path | None = None, **overrides: Any) -> Path:
    """Train toy-induction into ``out_dir`` (Hugging Face folder + ``card.json``); ``overrides`` change any
    field of :func:`default_recipe` by name, as for toy-lm-planted."""
    recipe = recipe_from_overrides(default_recipe(), **overrides)
    return train_recipe(out_dir, recipe, progress=progress, stages_dir=stages_dir, identity=IDENTITY)


def copy_diagnostic(out_dir: str | Path, *, n_ids: int = 1021, span: int | tuple[int, int] = 16,
                    copies: tuple[int, int] = (2, 2), steps: int = 1000, d_model: int = 64, n_heads: int = 2,
                    n_layers: int = 2, lr: float = 2e-3, batch_size: int = 16, tie_embeddings: bool = False,
                    seed: int = 0, n_probe: int = 64, half: int = 32) -> dict[str, Any]:
    """Can the zoo's training loop grow induction at all? A ``n_layers`` Llama trained with
    :func:`interp.zoo.training.train_causal_lm` on nothing but [BOS, r x c] rows (``r``: ``span`` tokens, or a
    length drawn from the ``(min, max)`` pair per row, uniform over ids 3 .. 3 + ``n_ids``; ``c`` copies drawn
    from ``copies``). Then its mean next-token loss on ``n_probe`` fresh rows [BOS, r, r] (``half`` tokens each, the
    span when it is fixed; probe seed ``seed + 1``): on the first copy, on the second copy, and on the second half of
    a control [BOS, r, r'] where nothing repeats, plus the mean attention of every head from the second half to the
    induction target (``attention`` / ``attention_control``, [layer][head]). Content-based induction: a low second-copy
    loss and a head that attends to the target on the repeat only. A fixed span teaches a positional copier instead
    (it attends to the target on the control too, and its control loss is high). Uses toy-lm-planted's tokenizer for
    the special ids."""
    import random

    import torch
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from interp.zoo.registry import REGISTRY

    tok = PreTrainedTokenizerFast.from_pretrained(str(REGISTRY["toy-lm-planted"].path))
    if n_ids + 3 > len(tok):
        raise ValueError(f"n_ids={n_ids}: at most {len(tok) - 3} (the tokenizer's non-special ids).")
    lo, hi = (span, span) if isinstance(span, int) else span
    half = lo if lo == hi else half
    rng = random.Random(seed)
    rows = []
    for _ in range(steps * batch_size):
        r = [rng.randrange(3, 3 + n_ids) for _ in range(rng.randint(lo, hi))]
        rows.append([tok.bos_token_id] + r * rng.randint(*copies))
    max_len = max(max(len(r) for r in rows), 2 * half + 1)
    stats = train_causal_lm(rows, tok, ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                                                   d_mlp=2 * d_model, max_len=max_len, tie_embeddings=tie_embeddings),
                            LMTrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=50, n_threads=1,
                                          log_every=100, seed=seed), out_dir, progress=False)
    model = LlamaForCausalLM.from_pretrained(str(out_dir), attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(seed + 1)
    r = torch.randint(3, 3 + n_ids, (n_probe, half), generator=g)
    r2 = torch.randint(3, 3 + n_ids, (n_probe, half), generator=g)
    bos = torch.full((n_probe, 1), tok.bos_token_id)
    t = torch.arange(half + 1, 2 * half + 1)
    out: dict[str, Any] = {"half": half}
    for key, ids in (("", torch.cat([bos, r, r], 1)), ("_control", torch.cat([bos, r, r2], 1))):
        with torch.no_grad():
            o = model(ids, output_attentions=True)
        nll = -o.logits.log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        if not key:
            out["first_copy_loss"] = float(nll[:, 1:half].mean())
            out["second_copy_loss"] = float(nll[:, half + 1:].mean())
        else:
            out["control_loss"] = float(nll[:, half + 1:].mean())
        out["attention" + key] = [[round(float(v), 4) for v in a[:, :, t, t - half + 1].mean((0, 2))] for a in o.attentions]
    return {**out, "loss_curve": stats.loss_curve, "seconds": stats.seconds}
