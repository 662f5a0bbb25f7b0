"""A small, seeded causal-LM training loop for Hugging Face ``LlamaForCausalLM`` models.

Texts + a tokenizer in, a Hugging Face folder (``config.json``, ``model.safetensors``, tokenizer
files) out. AdamW with linear warmup and cosine decay, batches bucketed by length (little padding),
every document starting with BOS (the attention-sink token) and ending with EOS. Used by the zoo
recipes (``interp.zoo.toy_lm``) and reusable for any other toy model.

>>> from interp.zoo.training import ModelConfig, LMTrainConfig, train_causal_lm
>>> stats = train_causal_lm(texts, tokenizer, ModelConfig(), LMTrainConfig(steps=100), "out/my-lm")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.core.validate import Check
from interp.zoo.errors import ZooConfigError

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

__all__ = ["ModelConfig", "LMTrainConfig", "TrainStats", "train_causal_lm", "build_model", "tokenize_texts"]


@dataclass
class ModelConfig:
    """Llama architecture (RoPE rotate-half, RMSNorm, SwiGLU). ``vocab_size=None`` takes the tokenizer's."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 4
    d_mlp: int = 384
    max_len: int = 256
    rope_theta: float = 10_000.0
    vocab_size: int | None = None
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        c = Check(self, ZooConfigError)
        for name in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_mlp"):
            c.integer(name, min=1)
        c.integer("max_len", min=2, fix="A document is at least BOS plus one token.")
        c.number("rope_theta", gt=0)
        c.integer("vocab_size", min=2, optional=True, fix="None takes the tokenizer's.")
        c.boolean("tie_embeddings")
        if self.d_model % self.n_heads:
            raise ZooConfigError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}.")
        if self.n_heads % self.n_kv_heads:
            raise ZooConfigError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads} (GQA).")
        c.require((self.d_model // self.n_heads) % 2 == 0, "n_heads", self.n_heads,
                  f"such that the head width d_model / n_heads = {self.d_model // self.n_heads} is even (RoPE rotates "
                  "pairs of features)")


@dataclass
class LMTrainConfig:
    """Optimisation settings. ``steps`` counts optimizer steps of ``batch_size`` documents each."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    val_fraction: float = 0.02
    n_threads: int | None = 2
    log_every: int = 50
    init_from: str | None = None
    """A Hugging Face folder to continue training from (a second stage) instead of a fresh model."""

    def __post_init__(self) -> None:
        c = Check(self, ZooConfigError)
        c.integer("steps", min=1, fix="A run needs at least one optimizer step.")
        c.integer("batch_size", min=1)
        c.number("lr", gt=0, fix="Use e.g. lr=3e-3 for a toy model from scratch.")
        c.number("min_lr_ratio", ge=0, le=1, fix="The cosine schedule ends at lr * min_lr_ratio.")
        c.integer("warmup_steps", min=0)
        c.number("weight_decay", ge=0)
        self.betas = c.numbers("betas", length=2, ge=0, lt=1, fix="AdamW's betas, e.g. (0.9, 0.95).")
        c.number("grad_clip", gt=0)
        c.integer("seed", min=0)
        c.number("val_fraction", ge=0, lt=1, fix="The held-out share of documents, e.g. 0.02.")
        c.integer("n_threads", min=1, optional=True, fix="None keeps torch's thread count.")
        c.integer("log_every", min=1)
        c.text("init_from", optional=True)


@dataclass
class TrainStats:
    """What a training run did: steps, tokens, wall time, losses (train curve every ``log_every``)."""

    steps: int
    tokens: int
    seconds: float
    final_train_loss: float
    val_loss: float
    n_params: int
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    truncated_docs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_frame(self) -> Any:
        """The training-loss curve, one row per logged step."""
        import pandas as pd

        return pd.DataFrame(self.loss_curve, columns=["step", "train_loss"])

    def plot(self) -> Any:
        """Training loss against the step (:func:`interp.zoo.plots.loss_curve_figure`)."""
        from interp.zoo.plots import loss_curve_figure

        return loss_curve_figure(self)

    def __repr__(self) -> str:
        return (f"TrainStats({self.steps} steps, {self.tokens:,} tokens, {self.seconds:.0f} s, train loss "
                f"{self.final_train_loss:.3f}, val loss {self.val_loss:.3f}, {self.n_params:,} params)")

    def _repr_html_(self) -> str:
        import html

        return f"<b>{html.escape(repr(self))}</b>" + self.to_frame().tail(5).to_html(index=False)


def build_model(model_cfg: ModelConfig, tokenizer: "PreTrainedTokenizerBase", seed: int = 0) -> "LlamaForCausalLM":
    """A freshly initialised ``LlamaForCausalLM`` whose special-token ids match ``tokenizer``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = model_cfg.vocab_size or len(tokenizer)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=model_cfg.d_model, intermediate_size=model_cfg.d_mlp,
        num_hidden_layers=model_cfg.n_layers, num_attention_heads=model_cfg.n_heads,
        num_key_value_heads=model_cfg.n_kv_heads, max_position_embeddings=model_cfg.max_len,
        rope_theta=model_cfg.rope_theta, rms_norm_eps=1e-5, tie_word_embeddings=model_cfg.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_act="silu", attention_bias=False, mlp_bias=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model


def tokenize_texts(texts: list[str], tokenizer: "PreTrainedTokenizerBase", max_len: int) -> tuple[list[list[int]], int]:
    """Token ids of each text as ``<s> text </s>``, cut to ``max_len``; also how many were cut."""
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    out, cut = [], 0
    for seq in ids:
        if not seq or seq[0] != bos:  # tokenizers that do not prepend BOS themselves
            seq = [bos] + seq
        seq = seq + [eos]
        if len(seq) > max_len:
            cut += 1
            seq = seq[:max_len]
        out.append(seq)
    return out, cut


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length (sort within shuffled pools of 50 batches), in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [b for b in batches if len(b) == batch_size] or batches


def _collate(seqs: list[list[int]], pad_id: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    return ids, mask


def _target_mask(seqs: list[list[int]], targets: list[list[int]] | None) -> Tensor | None:
    """``[batch, pos]`` 0/1 of which tokens are predicted (None: every real token)."""
    if targets is None:
        return None
    width = max(len(s) for s in seqs)
    out = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, t in enumerate(targets):
        out[row, : len(t)] = torch.tensor(t, dtype=torch.long)
    return out


def _loss(model: "LlamaForCausalLM", ids: Tensor, mask: Tensor, targets: Tensor | None = None) -> tuple[Tensor, int]:
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    keep = mask[:, 1:] if targets is None else mask[:, 1:] * targets[:, 1:]
    target = ids[:, 1:].masked_fill(keep == 0, -100)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100)
    return loss, int(keep.sum())


def _lr_at(step: int, cfg: LMTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def train_causal_lm(
    texts: list[str] | list[list[int]],
    tokenizer: "PreTrainedTokenizerBase",
    model_cfg: ModelConfig,
    train_cfg: LMTrainConfig,
    out_dir: str | Path,
    progress: bool = True,
    target_masks: list[list[int]] | None = None,
) -> TrainStats:
    """Train a Llama from scratch on ``texts`` and save it with the tokenizer to ``out_dir``.

    ``texts`` are strings (tokenised here as ``<s> text </s>``) or lists of token ids (used as they are).
    Seeded: the same texts, tokenizer, configs and thread count give the same weights. The corpus is
    cycled as often as ``steps`` needs; ``val_fraction`` of the documents are held out for the
    validation loss in the returned :class:`TrainStats`. ``target_masks`` (with token-id ``texts``: one
    0/1 list per text, as long as it) restricts the loss to the tokens marked 1 (e.g. only the answers of a
    task corpus); ``None`` predicts every token.
    """
    from tqdm.auto import tqdm

    from interp.core.progress import bar_disabled

    c = Check("train_causal_lm", ZooConfigError)
    c.instance("model_cfg", ModelConfig, model_cfg)
    c.instance("train_cfg", LMTrainConfig, train_cfg)
    c.boolean("progress", progress)
    def _is_ids(t: Any) -> bool:
        return isinstance(t, (list, tuple)) and len(t) > 0 and all(isinstance(i, int) and not isinstance(i, bool)
                                                                  for i in t)

    if isinstance(texts, str) or not texts or not (all(isinstance(t, str) for t in texts)
                                                  or all(_is_ids(t) for t in texts)):
        raise ZooConfigError("train_causal_lm needs at least one text: pass a non-empty list of strings "
                             "(or of token-id lists, all of one kind).")
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise ZooConfigError("The tokenizer needs bos, eos and pad tokens (see interp.zoo.bpe.train_bpe).")
    if train_cfg.n_threads:
        torch.set_num_threads(train_cfg.n_threads)
    rng = random.Random(train_cfg.seed)
    if isinstance(texts[0], str):
        seqs, truncated = tokenize_texts(texts, tokenizer, model_cfg.max_len)
    else:  # already token ids (e.g. with spans planted at the token level): used as given, cut to max_len
        truncated = sum(len(s) > model_cfg.max_len for s in texts)
        seqs = [list(s)[: model_cfg.max_len] for s in texts]
    if target_masks is not None:
        if isinstance(texts[0], str) or len(target_masks) != len(texts) or any(
                len(m) != len(t) for m, t in zip(target_masks, texts)):
            raise ZooConfigError("target_masks needs token-id texts and one 0/1 list per text, as long as that text.")
        tmasks: list[list[int]] | None = [list(m)[: model_cfg.max_len] for m in target_masks]
    else:
        tmasks = None
    n_val = max(1, int(len(seqs) * train_cfg.val_fraction)) if train_cfg.val_fraction > 0 and len(seqs) > 1 else 0
    order = list(range(len(seqs)))
    rng.shuffle(order)
    val = [seqs[i] for i in order[:n_val]]
    train = [seqs[i] for i in order[n_val:]]
    val_t = None if tmasks is None else [tmasks[i] for i in order[:n_val]]
    train_t = None if tmasks is None else [tmasks[i] for i in order[n_val:]]
    if len(train) < train_cfg.batch_size:
        reps = math.ceil(train_cfg.batch_size / len(train))
        train = train * reps
        train_t = None if train_t is None else train_t * reps

    if train_cfg.init_from:
        from transformers import LlamaForCausalLM

        model = LlamaForCausalLM.from_pretrained(train_cfg.init_from, dtype=torch.float32)
        if model.config.vocab_size != len(tokenizer):
            raise ZooConfigError(f"init_from={train_cfg.init_from!r} has a vocabulary of {model.config.vocab_size}, "
                             f"the tokenizer {len(tokenizer)}: continue with the tokenizer saved beside it.")
        torch.manual_seed(train_cfg.seed)
    else:
        model = build_model(model_cfg, tokenizer, seed=train_cfg.seed)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=train_cfg.lr, betas=train_cfg.betas,
    )
    pad = tokenizer.pad_token_id
    batches: list[list[int]] = []
    curve: list[tuple[int, float]] = []
    tokens, running, t0 = 0, None, time.perf_counter()
    bar = tqdm(range(train_cfg.steps), disable=bar_disabled(progress), desc="train", mininterval=2.0)
    for step in bar:
        if not batches:
            batches = _batches([len(s) for s in train], train_cfg.batch_size, rng)
        chosen = batches.pop()
        ids, mask = _collate([train[i] for i in chosen], pad)
        tm = None if train_t is None else _target_mask([train[i] for i in chosen], [train_t[i] for i in chosen])
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, train_cfg)
        loss, n_tok = _loss(model, ids, mask, tm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        opt.step()
        tokens += n_tok
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % train_cfg.log_every == 0 or step == train_cfg.steps - 1:
            curve.append((step, round(running, 4)))
            bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
    seconds = time.perf_counter() - t0

    model.eval()
    val_loss = float("nan")
    if val:
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(val), train_cfg.batch_size):
                rows = val[i : i + train_cfg.batch_size]
                ids, mask = _collate(rows, pad)
                tm = None if val_t is None else _target_mask(rows, val_t[i : i + train_cfg.batch_size])
                loss, n_tok = _loss(model, ids, mask, tm)
                total += loss.item() * n_tok
                count += n_tok
        val_loss = total / count

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return TrainStats(
        steps=train_cfg.steps, tokens=tokens, seconds=round(seconds, 1), final_train_loss=round(running or 0.0, 4),
        val_loss=round(val_loss, 4), n_params=sum(p.numel() for p in model.parameters()), loss_curve=curve,
        truncated_docs=truncated,
    )


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for model cards: tensor / numpy scalars as numbers, NaN as null."""
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Cannot write {type(value).__name__} to the card.")
