"""The generic causal-LM training loop and the toy-lm recipe, on tiny budgets (seconds)."""

import json
import math

import pytest
import torch

from interp.zoo.bpe import train_bpe
from interp.zoo.corpus import CorpusConfig, generate_corpus
from interp.zoo.training import ModelConfig, LMTrainConfig, _lr_at, tokenize_texts, train_causal_lm

TINY = ModelConfig(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=64, max_len=64)


@pytest.fixture(scope="module")
def corpus_and_tokenizer():
    docs = generate_corpus(CorpusConfig(n_docs=40, seed=5, doc_chars=(80, 160)))
    return docs, train_bpe(docs, vocab_size=300)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_train_writes_a_loadable_folder_matching_transformers(tmp_path, corpus_and_tokenizer):
    from transformers import AutoModelForCausalLM

    from interp.core.models import load_model

    docs, tok = corpus_and_tokenizer
    stats = train_causal_lm(docs, tok, TINY, LMTrainConfig(steps=3, batch_size=4, warmup_steps=1), tmp_path,
                            progress=False)
    for name in ["config.json", "model.safetensors", "tokenizer.json"]:
        assert (tmp_path / name).is_file()
    assert stats.steps == 3 and stats.tokens > 0 and math.isfinite(stats.val_loss)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert stats.n_params == sum(p.numel() for p in hf.parameters())
    assert hf.config.num_key_value_heads == 2 and hf.config.bos_token_id == tok.bos_token_id
    model = load_model(tmp_path, device="cpu")
    ids = tok(docs[0], return_tensors="pt").input_ids[:, :40]
    with torch.no_grad():
        diff = (model(ids).log_softmax(-1) - hf(ids).logits.log_softmax(-1)).abs().max().item()
    assert diff < 1e-4


def test_token_id_rows_train_exactly_like_their_texts(tmp_path, corpus_and_tokenizer):
    """Pre-tokenised rows (how toy-lm-planted plants repeats at the token level) are used as given."""
    docs, tok = corpus_and_tokenizer
    rows, _ = tokenize_texts(docs, tok, TINY.max_len)
    cfg = LMTrainConfig(steps=2, batch_size=4, seed=3)
    a = train_causal_lm(docs, tok, TINY, cfg, tmp_path / "text", progress=False)
    b = train_causal_lm(rows, tok, TINY, cfg, tmp_path / "ids", progress=False)
    wa, wb = _weights(tmp_path / "text"), _weights(tmp_path / "ids")
    assert all(torch.equal(wa[k], wb[k]) for k in wa) and a.tokens == b.tokens
    long = [[tok.bos_token_id] + [5] * 100]
    assert train_causal_lm(long * 8, tok, TINY, cfg, tmp_path / "long", progress=False).truncated_docs == 8


def test_same_seed_same_weights_other_seed_differs(tmp_path, corpus_and_tokenizer):
    docs, tok = corpus_and_tokenizer
    runs = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        train_causal_lm(docs, tok, TINY, LMTrainConfig(steps=2, batch_size=4, seed=seed), tmp_path / name,
                        progress=False)
        runs[name] = _weights(tmp_path / name)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_loss_goes_down_on_a_repeated_text(tmp_path, corpus_and_tokenizer):
    docs, tok = corpus_and_tokenizer
    stats = train_causal_lm([docs[0]] * 8, tok, TINY, LMTrainConfig(steps=30, batch_size=4, lr=1e-2, warmup_steps=2,
                                                                  val_fraction=0.0, log_every=1),
                            tmp_path, progress=False)
    first, last = stats.loss_curve[0][1], stats.loss_curve[-1][1]
    assert last < first - 1.0


def test_documents_start_with_bos_end_with_eos_and_are_cut(corpus_and_tokenizer):
    docs, tok = corpus_and_tokenizer
    full, cut = tokenize_texts(docs, tok, max_len=10_000)
    assert cut == 0
    assert all(s[0] == tok.bos_token_id and s[-1] == tok.eos_token_id and s.count(tok.bos_token_id) == 1
               for s in full)
    assert [s[1:-1] for s in full] == [tok(d, add_special_tokens=False)["input_ids"] for d in docs]
    short, cut = tokenize_texts(docs + ["word " * 200], tok, max_len=64)
    assert cut >= 1 and max(len(s) for s in short) == 64 and all(s[0] == tok.bos_token_id for s in short)


def test_lr_schedule_is_warmup_then_cosine():
    cfg = LMTrainConfig(steps=110, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert _lr_at(0, cfg) == pytest.approx(0.1)
    assert _lr_at(9, cfg) == pytest.approx(1.0)
    assert _lr_at(10, cfg) == pytest.approx(1.0)
    assert _lr_at(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert _lr_at(110, cfg) == pytest.approx(0.1)


def test_bad_configs_are_clear_errors(corpus_and_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="divisible by n_heads"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        ModelConfig(d_model=32, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="at least one text"):
        train_causal_lm([], corpus_and_tokenizer[1], TINY, LMTrainConfig(steps=1), tmp_path, progress=False)


def test_toy_lm_recipe_smoke(tmp_path):
    from interp import zoo
    from interp.core.models import load_model
    from interp.zoo.toy_lm import recipe_from_overrides

    out = zoo.train("toy-lm", out_dir=tmp_path / "toy", progress=False, steps=2, n_docs=24, eval_n=2,
                    vocab_size=300, d_model=32, n_layers=1, d_mlp=64, batch_size=4, warmup_steps=1,
                    continue_steps=2, continue_n_docs=12, continue_batch_size=4)
    card = json.loads((out / "card.json").read_text())
    stages = card["training"]["stages"]
    assert [s["steps"] for s in stages] == [2] * (1 + len(recipe_from_overrides().continuations))
    assert card["corpus"]["stages"][0]["documents"] == 24
    assert card["corpus"]["tokens"] == sum(s["tokens"] for s in card["corpus"]["stages"])
    assert not (out / "stage1").exists()
    assert set(card["evaluation"]["accuracy"]) >= {"qa", "mc", "arith", "copy", "induction", "successor"}
    assert card["model"]["weights_bytes"] == (out / "model.safetensors").stat().st_size
    model = load_model(out, device="cpu")
    assert model.cfg.n_layers == 1 and model.cfg.d_vocab == 300


def test_toy_lm_recipe_rejects_unknown_options(tmp_path):
    from interp.zoo.toy_lm import recipe_from_overrides

    recipe = recipe_from_overrides(steps=7, n_docs=3, seed=4, continue_steps=0)
    assert recipe.train.steps == 7 and recipe.corpus.n_docs == 3
    assert all(st.train.steps == 0 for st in recipe.continuations)
    assert recipe.corpus.seed == recipe.train.seed == 4 and recipe.continuations[0].corpus.seed != 4
    with pytest.raises(TypeError, match="Unknown toy-lm training option 'stepz'"):
        recipe_from_overrides(stepz=7)


def test_toy_lm_planted_recipe_smoke(tmp_path):
    """The planted recipe end to end at a tiny size: its card has the shared sections (measured here) and
    the planted ones."""
    from interp import zoo
    from interp.core.models import load_model

    out = zoo.train("toy-lm-planted", out_dir=tmp_path / "planted", progress=False, steps=2, n_docs=24, eval_n=2,
                    vocab_size=300, d_model=32, n_layers=1, d_mlp=64, batch_size=4, warmup_steps=1)
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "toy-lm-planted"
    assert card["training"]["seconds"] == round(sum(s["seconds"] for s in card["training"]["stages"]), 1)
    assert isinstance(card["training"]["cpu_seconds"], float) and card["training"]["cpu_seconds"] >= 0  # rounded to 0.1 s
    assert card["model"]["weights_bytes"] == (out / "model.safetensors").stat().st_size
    assert {"opposite", "code"} <= set(card["evaluation"]["accuracy"])
    assert {"opposite", "code"} <= set(card["planted"])
    assert load_model(out, device="cpu").cfg.d_vocab == 300
