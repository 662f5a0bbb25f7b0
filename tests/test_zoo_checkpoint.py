"""The committed toy-lm checkpoint: loads fast, TransformerLens matches transformers, the card's
numbers are reproduced, and the planted structure is really there."""

import json
import math
import time

import pytest
import torch

from interp import zoo
from interp.core.generation import generate
from interp.zoo.tasks import STOP, TASKS, accuracy_by_task, make_items

NAME = "toy-lm"


@pytest.fixture(scope="module")
def folder():
    return zoo.model_dir(NAME)  # a clear FileNotFoundError when the checkpoint is missing


@pytest.fixture(scope="module")
def card(folder):
    return zoo.card(NAME)


@pytest.fixture(scope="module")
def model(folder):
    return zoo.load(NAME, device="cpu")


@pytest.fixture(scope="module")
def hf(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_folder_is_small_and_complete(folder, card):
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "card.json"]:
        assert name in files
    assert sum(files.values()) < 8 * 2**20
    assert card["model"]["weights_bytes"] == files["model.safetensors"]


def test_loads_in_under_5_seconds(folder):
    import transformer_lens  # noqa: F401  (import time is not load time)

    zoo.load(NAME, device="cpu")  # warm the file cache once, as any second call would
    t0 = time.perf_counter()
    model = zoo.load(NAME, device="cpu")
    assert time.perf_counter() - t0 < 5.0
    assert model.cfg.n_layers == zoo.card(NAME)["model"]["n_layers"]


def test_card_matches_the_weights(model, hf, card):
    hf_model, tok = hf
    assert card["model"]["n_params"] == sum(p.numel() for p in hf_model.parameters())
    assert card["tokenizer"]["vocab_size"] == len(tok) == model.cfg.d_vocab
    assert set(card["evaluation"]["accuracy"]) == set(TASKS)
    assert card["corpus"]["tokens"] > 100_000


def test_transformer_lens_matches_transformers_logprobs(model, hf):
    hf_model, tok = hf
    texts = [it.prompt + " " + it.answer for task in TASKS for it in make_items(task, 2, seed=11)]
    for text in texts:
        ids = tok(text, return_tensors="pt").input_ids
        assert ids[0, 0].item() == tok.bos_token_id
        with torch.no_grad():
            ours = model(ids).log_softmax(-1)
            ref = hf_model(ids).logits.log_softmax(-1)
        assert (ours - ref).abs().max().item() < 1e-4


def _naive_greedy(hf_model, tok, prompt, max_new):
    """Independent reference: one prompt at a time, no KV cache, full recompute each step."""
    ids = tok(prompt, return_tensors="pt").input_ids
    new = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = hf_model(ids).logits[0, -1].argmax().item()
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tok.decode(new)


@pytest.mark.slow
def test_batched_cached_generation_matches_naive_greedy(model, hf):
    hf_model, tok = hf
    prompts = [it.prompt for task in TASKS for it in make_items(task, 2, seed=5)]
    ours_tl = generate(model, prompts, 8, stop=STOP).texts()
    ours_hf = generate(hf_model, prompts, 8, stop=STOP, tokenizer=tok).texts()
    assert ours_tl == ours_hf
    for prompt, got in zip(prompts, ours_tl):
        ref = _naive_greedy(hf_model, tok, prompt, 8)
        # ours ends each answer at its first newline; the naive loop runs on
        assert ref.split("\n")[0] == got


@pytest.mark.slow
def test_card_accuracies_are_reproduced(model, card):
    """Re-evaluate the first n of the card's items: a subset of a fixed sample, so the tolerance is
    3.5 binomial standard errors with the finite-population correction (sqrt(1 - n/N)), plus one item."""
    ev = card["evaluation"]
    n, big_n = 40, ev["n_items_per_task"]
    items = [it for task in TASKS for it in make_items(task, n, seed=ev["seed"])]
    got = accuracy_by_task(model, items)
    for task in TASKS:
        p = ev["accuracy"][task]
        tol = 3.5 * math.sqrt(max(p * (1 - p), 0.02) / n * (1 - n / big_n)) + 1 / n
        assert abs(got[task] - p) <= tol, (task, got[task], p, tol)


def test_some_tasks_are_solved_only_part_of_the_time(card):
    acc = card["evaluation"]["accuracy"]
    partial = [t for t in ("qa", "mc", "arith", "copy", "reverse") if 0.1 <= acc[t] <= 0.9]
    assert len(partial) >= 2, acc


def test_every_document_starts_with_bos(model):
    tokens = model.to_tokens("Add: 1 + 2 =")
    assert tokens[0, 0].item() == model.tokenizer.bos_token_id
    assert (tokens == model.tokenizer.bos_token_id).sum().item() == 1
