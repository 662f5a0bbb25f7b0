"""Random-init twins of the nine architecture families interp supports, built offline from configs.

Each twin is a Hugging Face folder (config.json, model.safetensors, a 512-token byte-level BPE tokenizer)
with the family's own features switched on at toy size: Llama-3.1's ``llama3`` RoPE scaling, Gemma-2's
final and attention soft-caps, sliding window and ``query_pre_attn_scalar``, Gemma-3's QK norm and
per-layer RoPE, Qwen2's QKV biases and tied embeddings, Qwen3's QK norm, GPT-2's LayerNorm and learned
positions, GPT-NeoX's partial rotary and parallel attention, Phi-3's fused projections. Nothing is
downloaded or committed: ``build_twin(family, folder)`` writes one in well under a second.

Sizes are chosen so that every feature changes the numbers at the short contexts the tests use (a
sliding window of 8 tokens, ``original_max_position_embeddings=64`` for the llama3 scaling, soft-caps
that bind), so a check that ignored the feature would fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAMILIES = ("llama3", "gemma2", "gemma3", "qwen2", "qwen3", "mistral", "gpt2", "gpt_neox", "phi3")
"""The nine families of issue 12 (the names used in test ids)."""

VOCAB = 512
D_MODEL = 64
N_LAYERS = 3
SLIDING_WINDOW = 8

_SPECIALS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "eot": "<|endoftext|>"}


def _corpus() -> list[str]:
    """Text for the tokenizer: the bundled lexicon's words in prompt-like lines, plus plain English."""
    from interp.translation.lexicon import Lexicon

    lex = Lexicon.bundled()
    lines = []
    for concept, by_lang in lex.entries.items():
        words = [w for forms in by_lang.values() for w in forms[:1]]
        lines.append(f"Word: {words[0]}\nTranslation: " + " ".join(words))
    lines += ["Once upon a time, there was a little girl named Lily. She liked to play in the park."] * 20
    lines += [f"{a} + {b} = {a + b}" for a in range(0, 100, 7) for b in range(0, 100, 11)]
    return lines


def build_tokenizer(folder: Path, *, style: str) -> Any:
    """A byte-level BPE of ``VOCAB`` tokens saved into ``folder``.

    ``style``: ``"llama"`` (BOS ``<s>``, EOS ``</s>``, pad ``<pad>``), ``"qwen"`` (no BOS; EOS and pad
    ``<|endoftext|>``) or ``"gpt2"`` (BOS = EOS = ``<|endoftext|>``, no pad).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>", "<|endoftext|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    kwargs: dict[str, Any] = dict(tokenizer_object=tok, model_max_length=256)
    if style == "llama":
        kwargs.update(bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    elif style == "qwen":
        kwargs.update(eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    elif style == "gpt2":
        kwargs.update(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    else:
        raise ValueError(f"style={style!r}")
    fast = PreTrainedTokenizerFast(**kwargs)
    fast.save_pretrained(folder)
    return fast


def _ids(tok: Any) -> dict[str, int | None]:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)


def twin_config(family: str, tok: Any) -> Any:
    """The family's ``transformers`` config at toy size, with its distinctive features on."""
    from transformers import AutoConfig

    ids = _ids(tok)
    common = dict(vocab_size=VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS, num_attention_heads=4,
                  intermediate_size=128, max_position_embeddings=256, **ids)
    if family == "llama3":
        return AutoConfig.for_model(
            "llama", **common, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False, initializer_range=0.2,
            rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                 high_freq_factor=4.0, original_max_position_embeddings=64))
    if family == "gemma2":
        return AutoConfig.for_model(
            "gemma2", **common, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
            attn_logit_softcapping=3.0, final_logit_softcapping=4.0, sliding_window=SLIDING_WINDOW,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"], tie_word_embeddings=True,
            hidden_activation="gelu_pytorch_tanh", initializer_range=0.2)
    if family == "gemma3":
        return AutoConfig.for_model(
            "gemma3_text", **common, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
            sliding_window=SLIDING_WINDOW, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            rope_parameters=dict(sliding_attention=dict(rope_type="default", rope_theta=10000.0),
                                 full_attention=dict(rope_type="linear", rope_theta=1000000.0, factor=8.0)),
            tie_word_embeddings=True, initializer_range=0.2)
    if family == "qwen2":
        return AutoConfig.for_model("qwen2", **common, num_key_value_heads=2, tie_word_embeddings=True,
                                    initializer_range=0.1)
    if family == "qwen3":
        return AutoConfig.for_model("qwen3", **common, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
                                    initializer_range=0.1)
    if family == "mistral":
        return AutoConfig.for_model("mistral", **common, num_key_value_heads=2, head_dim=16, sliding_window=4096,
                                    tie_word_embeddings=False, initializer_range=0.1)
    if family == "gpt2":
        return AutoConfig.for_model("gpt2", vocab_size=VOCAB, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=4,
                                    n_positions=256, n_inner=128, bos_token_id=ids["bos_token_id"],
                                    eos_token_id=ids["eos_token_id"], initializer_range=0.1)
    if family == "gpt_neox":
        return AutoConfig.for_model(
            "gpt_neox", **common, use_parallel_residual=True, tie_word_embeddings=False, initializer_range=0.1,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25))
    if family == "phi3":
        return AutoConfig.for_model("phi3", **common, num_key_value_heads=2, tie_word_embeddings=False,
                                    initializer_range=0.1)
    raise ValueError(f"Unknown family {family!r}; one of {FAMILIES}.")


_STYLE = {"qwen2": "qwen", "qwen3": "qwen", "gpt2": "gpt2"}


def build_twin(family: str, folder: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """Write a random-init twin of ``family`` into ``folder`` (a Hugging Face folder); returns it.
    ``overrides`` replace config fields (e.g. a variant the methods must refuse)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder, style=_STYLE.get(family, "llama"))
    cfg = twin_config(family, tok)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # norms start at their identity and biases at zero: perturb both, so a skipped
        for name, p in model.named_parameters():  # norm weight or a forgotten bias shows in the numbers
            if "norm" in name or ".ln_" in name or "layernorm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(folder)
    return folder
