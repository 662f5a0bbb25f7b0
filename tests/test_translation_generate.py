"""Generation-time lens: greedy answers equal TransformerLens's own generate, every layer's token at
every step equals an independent teacher-forced decode_layers run, and batching with left padding
changes nothing."""

from __future__ import annotations

import pytest
import torch

from interp.lens import decode_layers
from interp.translation import first_answer_token, generate_with_lens

PROMPTS = ["Once upon a time, there was a little", "Tom had a big red", "The sun"]



@pytest.fixture(scope="module")
def trace(stories_model):
    return generate_with_lens(stories_model, PROMPTS, max_new_tokens=5, stop=(), k=3)


def test_answers_equal_greedy_generate(stories_model, trace):
    for b, prompt in enumerate(PROMPTS):
        ref = stories_model.generate(prompt, max_new_tokens=5, do_sample=False, verbose=False, return_type="tokens")
        n_prompt = stories_model.to_tokens(prompt).shape[1]
        new = ref[0, n_prompt:].tolist()
        eos = stories_model.tokenizer.eos_token_id
        new = new[: new.index(eos)] if eos in new else new
        assert trace.top_ids[b, -1, : len(new), 0].tolist() == new
        assert trace.answers[b] == stories_model.tokenizer.decode(new)


def test_every_layer_and_step_equals_teacher_forced_lens(stories_model, trace):
    for b, prompt in enumerate(PROMPTS):
        prefix = stories_model.to_tokens(prompt)
        for t in range(trace.n_steps[b]):
            res = decode_layers(stories_model, prefix, k=3)
            assert torch.equal(res.top_ids[0, :, -1], trace.top_ids[b, :, t]), (b, t)
            torch.testing.assert_close(res.top_logprobs[0, :, -1], trace.top_logprobs[b, :, t], atol=1e-4, rtol=0)
            prefix = torch.cat([prefix, trace.top_ids[b, -1, t, :1][None]], dim=1)


def test_batching_with_left_padding_changes_nothing(stories_model, trace):
    for b, prompt in enumerate(PROMPTS):
        one = generate_with_lens(stories_model, [prompt], max_new_tokens=5, stop=(), k=3)
        n = one.n_steps[0]
        assert torch.equal(one.top_ids[0, :, :n], trace.top_ids[b, :, :n])
        assert one.layer_strings[0] == trace.layer_strings[b]


def test_layer_strings_and_selection(stories_model, trace):
    n = stories_model.cfg.n_layers
    assert trace.layers == list(range(n + 1))
    for b in range(len(PROMPTS)):
        assert trace.layer_strings[b][-1] == trace.answers[b]
        assert len(trace.layer_strings[b]) == n + 1
    sub = generate_with_lens(stories_model, PROMPTS[:1], max_new_tokens=3, layers=[1, 2], stop=())
    assert sub.layers == [1, 2, n]  # the output layer is always decoded (greedy needs it)
    assert torch.equal(sub.top_ids[0, :, :, 0], trace.top_ids[0, [1, 2, n], :3, 0])


def test_stop_strings_cut_answers(stories_model):
    free = generate_with_lens(stories_model, PROMPTS, max_new_tokens=8, stop=())
    cut = generate_with_lens(stories_model, PROMPTS, max_new_tokens=8, stop=(".", ","))
    for b in range(len(PROMPTS)):
        assert free.answers[b].startswith(cut.answers[b])
        assert "." not in cut.answers[b].strip() and "," not in cut.answers[b]
        assert cut.n_steps[b] <= free.n_steps[b]


def test_step0_target_logprobs(stories_model):
    tok = stories_model.tokenizer
    ids = torch.tensor([[first_answer_token(tok, "girl", context="little"), 5]])
    tr = generate_with_lens(stories_model, PROMPTS[:1], max_new_tokens=1, stop=(), step0_target_ids=ids)
    ref = decode_layers(stories_model, PROMPTS[0], target_ids=ids[0].tolist())
    torch.testing.assert_close(tr.step0_target_logprobs[0], ref.target_logprobs[0, :, 0], atol=1e-4, rtol=0)


def test_first_answer_token_is_the_first_generated_piece(stories_model):
    tok = stories_model.tokenizer
    tid = first_answer_token(tok, "girl", context="a little")
    full = tok("a little girl", add_special_tokens=False)["input_ids"]
    start = full.index(tid)
    assert tok.decode(full[start:]).strip() == "girl"  # the answer starts exactly at that token
    assert "girl".startswith(tok.decode([tid]).strip())


def test_generation_errors(stories_model):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_with_lens(stories_model, PROMPTS, max_new_tokens=0)
