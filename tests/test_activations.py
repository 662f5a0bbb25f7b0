"""ActivationStream: exact activations, masks, shuffling, rank sharding, resume, bad input."""

from __future__ import annotations

import pytest
import torch
from interp.core.activations import ActivationStream
from interp.core.tokens import token_mask

from tiny_models import bos_tokens, hooked

HOOKS = ["blocks.1.ln1.hook_normalized", "blocks.1.hook_attn_out"]


@pytest.fixture(scope="module")
def tiny():
    return hooked(n_layers=3, d_vocab=40)


@pytest.fixture(scope="module")
def tokens():
    return bos_tokens(40, 12, vocab=40)


def _collect(stream):
    return [(b.tokens.clone(), {h: a.clone() for h, a in b.acts.items()}, b.mask.clone()) for b in stream]


def test_blocks_are_exact_activations(tiny, tokens):
    blocks = _collect(ActivationStream(tiny, tokens, HOOKS, batch_size=4, buffer_sequences=12, seed=3))
    assert len(blocks) == 10  # 40 sequences / 4; the ragged last buffer still yields full batches
    seen = torch.cat([b[0] for b in blocks])
    # Shuffled, each sequence exactly once.
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, tokens.tolist()))
    assert not torch.equal(seen, tokens)
    _, cache = tiny.run_with_cache(seen)
    for h in HOOKS:
        assert torch.allclose(torch.cat([b[1][h] for b in blocks]), cache[h], atol=1e-5)


def test_mask_excludes_bos_and_pad():
    toks = torch.tensor([[1, 5, 6, 0, 0], [1, 1, 7, 8, 9]])
    m = token_mask(toks, bos_token_id=1, pad_token_id=0)
    assert m.tolist() == [[False, True, True, False, False], [False, False, True, True, True]]
    assert token_mask(toks, bos_token_id=None).all()


def test_ranks_partition_global_batches(tiny, tokens):
    kw = dict(batch_size=4, buffer_sequences=8, seed=1)
    single = _collect(ActivationStream(tiny, tokens, HOOKS, **kw))
    r0 = _collect(ActivationStream(tiny, tokens, HOOKS, rank=0, world_size=2, **kw))
    r1 = _collect(ActivationStream(tiny, tokens, HOOKS, rank=1, world_size=2, **kw))
    assert len(single) == len(r0) == len(r1)
    for s, a, b in zip(single, r0, r1):
        assert torch.equal(torch.cat([a[0], b[0]]), s[0])
        for h in HOOKS:
            assert torch.allclose(torch.cat([a[1][h], b[1][h]]), s[1][h], atol=1e-5)


def test_resume_skips_to_same_batches(tiny, tokens):
    kw = dict(batch_size=4, buffer_sequences=8, seed=2, epochs=2)
    full = _collect(ActivationStream(tiny, tokens, HOOKS, **kw))
    assert len(full) == 20
    resumed = _collect(ActivationStream(tiny, tokens, HOOKS, start_batch=13, **kw))
    assert len(resumed) == 7
    for a, b in zip(full[13:], resumed):
        assert torch.equal(a[0], b[0])
    # Two epochs are shuffled differently.
    assert not torch.equal(torch.cat([b[0] for b in full[:10]]), torch.cat([b[0] for b in full[10:]]))


def test_iterable_source(tiny, tokens):
    chunks = [tokens[i : i + 7] for i in range(0, 40, 7)]
    blocks = _collect(ActivationStream(tiny, iter(chunks), HOOKS, batch_size=4, buffer_sequences=8))
    assert sum(b[0].shape[0] for b in blocks) == 40
    assert sorted(map(tuple, torch.cat([b[0] for b in blocks]).tolist())) == sorted(map(tuple, tokens.tolist()))


def test_bad_input(tiny, tokens):
    with pytest.raises(KeyError, match="Unknown hook"):
        ActivationStream(tiny, tokens, ["blocks.9.hook_attn_out"], batch_size=4)
    with pytest.raises(ValueError, match="divisible"):
        ActivationStream(tiny, tokens, HOOKS, batch_size=5, world_size=2)
    with pytest.raises(ValueError, match="integer tensor"):
        ActivationStream(tiny, tokens.float(), HOOKS, batch_size=4)


def test_text_tokens_pack_documents(stories_model):
    from interp.core.activations import text_tokens

    tok = stories_model.tokenizer
    docs = ["Once upon a time there was a cat.", "The dog ran to the park and played all day long."]
    rows = text_tokens(stories_model, docs, ctx=8)
    assert (rows[:, 0] == tok.bos_token_id).all()
    stream = []
    for d in docs:
        stream += tok(d, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert rows[:, 1:].reshape(-1).tolist() == stream[: rows.shape[0] * 7]
    with pytest.raises(ValueError, match="fewer than one row"):
        text_tokens(stories_model, ["hi"], ctx=64)
