"""decode_layers: exactness at the last layer, agreement with an independent Hugging Face
computation, padding/chunking/position invariances, and input errors."""

from __future__ import annotations

import pytest
import torch
from interp.lens import LensResult, decode_layers, layer_hook_name

from tiny_models import lens_model


@pytest.fixture(scope="module")
def tiny():
    return lens_model()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 97, (4, 12), generator=torch.Generator().manual_seed(1))



def reference_layer_logprobs(model, tokens, *, final_norm=True):
    """Independent: full cache, every layer unembedded at every position (the common recipe)."""
    _, cache = model.run_with_cache(tokens)
    n = model.cfg.n_layers
    out = []
    for i in range(n + 1):
        x = cache[layer_hook_name(i, n)]
        if final_norm or i == n:
            x = model.ln_final(x) if model.cfg.normalization_type else x
        out.append(model.unembed(x).log_softmax(-1))
    return torch.stack(out, dim=1)  # [batch, layer, pos, vocab]


@pytest.mark.parametrize("norm", ["LN", "RMS", None])
def test_last_index_equals_model_logits_exactly(norm, tokens):
    model = lens_model(norm=norm)
    res = decode_layers(model, tokens, k=7, positions=[0, 5, -1])
    with torch.no_grad():
        logits = model(tokens)[:, [0, 5, 11]]
    vals, ids = logits.topk(7, dim=-1)
    assert torch.equal(res.top_ids[:, -1], ids)
    assert torch.equal(res.top_logits[:, -1], vals)
    assert torch.equal(res.top_logprobs[:, -1], logits.log_softmax(-1).topk(7, dim=-1).values)


def test_all_layers_match_full_cache_reference(tiny, tokens):
    res = decode_layers(tiny, tokens, k=5, positions="all", target_ids=[3, 50])
    with torch.no_grad():
        ref = reference_layer_logprobs(tiny, tokens)
    vals, ids = ref.topk(5, dim=-1)
    assert torch.equal(res.top_ids, ids)
    torch.testing.assert_close(res.top_logprobs, vals, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.target_logprobs, ref[..., [3, 50]], atol=1e-5, rtol=0)


def test_final_norm_false_skips_norm_only_in_intermediate_layers(tiny, tokens):
    res = decode_layers(tiny, tokens, k=4, final_norm=False)
    with torch.no_grad():
        ref = reference_layer_logprobs(tiny, tokens, final_norm=False)[:, :, -1:]
        normed = reference_layer_logprobs(tiny, tokens, final_norm=True)[:, :, -1:]
    assert torch.equal(res.top_ids, ref.topk(4, dim=-1).indices)
    torch.testing.assert_close(res.top_logprobs[:, -1], normed[:, -1].topk(4, dim=-1).values, atol=1e-5, rtol=0)
    # without the norm the intermediate distributions really differ (the option does something)
    assert not torch.allclose(ref[:, 1], normed[:, 1], atol=1e-3)


@pytest.mark.parametrize("softcap", [0.0, 3.0])
def test_chunked_unembedding_matches_one_chunk(softcap, tokens):
    model = lens_model(softcap=softcap)
    whole = decode_layers(model, tokens, k=6, target_ids=[1, 2, 96])
    chunked = decode_layers(model, tokens, k=6, target_ids=[1, 2, 96], chunk_size=10)
    assert torch.equal(whole.top_ids, chunked.top_ids)
    torch.testing.assert_close(whole.top_logprobs, chunked.top_logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(whole.target_logprobs, chunked.target_logprobs, atol=1e-5, rtol=0)
    if softcap:
        assert float(whole.top_logits.abs().max()) <= softcap


def test_layer_subset_equals_slices_of_full_result(tiny, tokens):
    full = decode_layers(tiny, tokens, k=3)
    last_two = decode_layers(tiny, tokens, k=3, layers=-2)
    some = decode_layers(tiny, tokens, k=3, layers=[0, 2])
    assert last_two.layers == [2, 3] and some.layers == [0, 2]
    assert torch.equal(last_two.top_ids, full.top_ids[:, 2:])
    assert torch.equal(some.top_ids, full.top_ids[:, [0, 2]])
    torch.testing.assert_close(some.top_logprobs, full.top_logprobs[:, [0, 2]], atol=1e-6, rtol=0)


def test_one_forward_pass_and_early_stop(tiny, tokens):
    calls = {"embed": 0, "block2": 0}

    def count(name):
        def hook(act, hook):
            calls[name] += 1

        return hook

    tiny.add_hook("hook_embed", count("embed"))
    tiny.add_hook("blocks.2.hook_resid_pre", count("block2"))
    try:
        decode_layers(tiny, tokens, k=2)
        assert calls == {"embed": 1, "block2": 1}
        decode_layers(tiny, tokens, k=2, layers=[0, 1])  # only block 0 needs to run
        assert calls == {"embed": 2, "block2": 1}
    finally:
        tiny.reset_hooks()


def test_stories260k_matches_transformers_hidden_states(stories_model):
    """Independent computation: Hugging Face's own forward with output_hidden_states, its own
    final RMSNorm (model.model.norm) and lm_head."""
    from transformers import AutoModelForCausalLM

    from conftest import shared_model_dir

    hf = AutoModelForCausalLM.from_pretrained(shared_model_dir(), dtype=torch.float32).eval()
    prompts = ["Once upon a time, there was a little", "The dog ran to the"]
    res = decode_layers(stories_model, prompts, k=5, positions=[-1, -2])
    for b, text in enumerate(prompts):
        ids = stories_model.to_tokens(text)  # same BOS convention as decode_layers
        with torch.no_grad():
            out = hf(ids, output_hidden_states=True)
        hs = out.hidden_states  # [0] = embeddings, [i] = after layer i; the last one is already normed
        n = stories_model.cfg.n_layers
        assert len(hs) == n + 1
        for i in range(n + 1):
            h = hs[i][0, [-1, -2]]
            if i < n:
                h = hf.model.norm(h)
            lp = hf.lm_head(h).log_softmax(-1)
            vals, top = lp.topk(5, dim=-1)
            assert torch.equal(res.top_ids[b, i], top), f"layer {i}, prompt {b}"
            torch.testing.assert_close(res.top_logprobs[b, i], vals, atol=2e-4, rtol=0)
        torch.testing.assert_close(res.top_logits[b, -1, 0], out.logits[0, -1].topk(5).values, atol=2e-4, rtol=0)


def test_left_padding_gives_the_same_answers_as_single_prompts(stories_model):
    prompts = ["Once upon a time, there was a little girl named", "Tom", "The sun"]
    batch = decode_layers(stories_model, prompts, k=4, positions=[-1, 0, 1], target_ids=[10, 200])
    for b, text in enumerate(prompts):
        one = decode_layers(stories_model, text, k=4, positions=[-1, 0, 1], target_ids=[10, 200])
        assert torch.equal(batch.top_ids[b], one.top_ids[0])
        torch.testing.assert_close(batch.top_logprobs[b], one.top_logprobs[0], atol=1e-4, rtol=0)
        torch.testing.assert_close(batch.target_logprobs[b], one.target_logprobs[0], atol=1e-4, rtol=0)
    # position 0 is each prompt's own first token (the BOS), whatever its padding
    assert batch.input_tokens(1)[1] == batch.input_tokens(0)[1]


def test_positions_all_marks_padding_invalid(stories_model):
    res = decode_layers(stories_model, ["Once upon a time", "Hi"], positions="all", k=2)
    lengths = res.attention_mask.sum(-1)
    assert res.position_valid.sum(-1).tolist() == lengths.tolist()


def test_result_frame_plot_and_html(tiny, tokens):
    res = decode_layers(tiny, tokens[:2], k=3, positions=[-1, -2], target_ids=[5])
    assert isinstance(res, LensResult)
    frame = res.to_frame()
    assert len(frame) == 2 * 4 * 2 * 3
    assert {"layer", "token", "logprob", "prob", "target_0_logprob"} <= set(frame.columns)
    # the frame holds the same numbers as the arrays
    row = frame[(frame.example == 1) & (frame.layer == 3) & (frame["rank"] == 0)].iloc[-1]
    assert row.token_id == int(res.top_ids[1, 3, -1, 0])
    fig = res.plot(1)
    assert len(fig.data[0].z) == 4 and len(fig.data[0].z[0]) == 2
    assert "LensResult" in res._repr_html_()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), r"k=0\) is invalid: it must be an integer >= 1"),
        (dict(layers=[7]), "outside"),
        (dict(layers=3), "must be negative"),
        (dict(positions=[20]), "do not all exist"),
        (dict(positions="middle"), "positions="),
        (dict(target_ids=[1000]), r"\[0, 97\)"),
        (dict(lens="tuned"), "no tuned lens is attached"),
        (dict(lens="magic"), "is not 'logit'"),
    ],
)
def test_bad_input_is_explained(tiny, tokens, kwargs, message):
    with pytest.raises(ValueError, match=message):
        decode_layers(tiny, tokens, **kwargs)


def test_string_prompts_need_a_tokenizer(tiny):
    with pytest.raises(ValueError, match="no tokenizer"):
        decode_layers(tiny, "hello")
    with pytest.raises(TypeError, match="must all be strings"):
        decode_layers(tiny, ["a", 3])
