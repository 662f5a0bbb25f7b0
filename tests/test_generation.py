"""interp's one generation loop (:mod:`interp.core.generation`) against a naive loop written here.

The reference generates one row at a time, without padding and without a cache, with a full forward
over the whole sequence at every step. The loop under test batches left-padded rows, passes an explicit
attention mask and (by default) decodes with a KV cache; every case runs with and without the cache,
for a HookedTransformer and for a plain Hugging Face ``LlamaForCausalLM``. Sampled tokens are checked
through their log-probs: the logits the loop sampled from (captured at the unembedding) must equal those
of a full forward over the finished sequence, also after a sampled EOS in the middle of a row (a loop
that masks EOS keys, as one did when pad = EOS, fails that by far; the test shows it would).
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from interp.core.generation import generate, make_generator
from interp.core.tokens import cut_at_stop

from tiny_models import (
    EOS, PAD, gpt2_with_tokenizer, hf_gpt2_with_tokenizer, hf_llama_with_tokenizer, hooked, random_prompts,
    tiny_llama_with_tokenizer,
)

N_NEW = 10
KINDS = ["hooked", "hf"]  # rotary positions: a HookedTransformer Llama and a Hugging Face LlamaForCausalLM
ABSOLUTE = ["hooked-gpt2", "hf-gpt2"]  # learned positions, which left padding shifts unless the mask sets them


# ----------------------------------------------------------------------------------- the reference
def full_logits(model, ids: list[int]) -> torch.Tensor:
    """``[len(ids), vocab]`` logits of one unpadded row, one full forward, no cache, no mask."""
    x = torch.tensor([ids])
    with torch.no_grad():
        if hasattr(model, "cfg"):
            return model(x)[0]
        return model(input_ids=x).logits[0]


def naive_greedy(model, ids: list[int], n: int, *, eos: int | None = EOS) -> list[int]:
    """Greedy continuation of one row: argmax of a full forward over the whole sequence, per step."""
    ids, out = list(ids), []
    for _ in range(n):
        nxt = int(full_logits(model, ids)[-1].argmax())
        out.append(nxt)
        ids.append(nxt)
        if nxt == eos:
            break
    return out


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """BOS, then the prompt's pieces (the encoding every method uses, written out by hand)."""
    return [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]


def unembedding(model) -> torch.nn.Module:
    return model.unembed if hasattr(model, "cfg") else model.lm_head


def unembedding_rows(model) -> torch.Tensor:
    """``[vocab, d]`` view of the unembedding's weights (TransformerLens stores W_U as ``[d, vocab]``)."""
    return model.W_U.data.T if hasattr(model, "cfg") else model.lm_head.weight.data


class CapturedLogits:
    """The logits the loop computes at every call (forward hook on the unembedding): ``[batch, vocab]`` each."""

    def __init__(self, model):
        self.calls: list[torch.Tensor] = []
        self.handle = unembedding(model).register_forward_hook(lambda m, a, out: self.calls.append(out[:, -1].detach()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


PROMPTS = random_prompts(8, seed=1, lo=1, hi=7)


def _most_common_greedy_token(model) -> int:
    tok = model.tokenizer
    counts = Counter(t for p in PROMPTS for t in naive_greedy(model, prompt_ids(tok, p), N_NEW, eos=None))
    return counts.most_common(1)[0][0]


def _with_eos_stealing(model):
    """EOS's unembedding becomes 1.05x that of a token the greedy rows say early in some rows but not in
    most, so those rows end with EOS there instead: some rows end early, others run to the end."""
    tok = model.tokenizer
    free = [naive_greedy(model, prompt_ids(tok, p), N_NEW, eos=None) for p in PROMPTS]
    rows_with = Counter(t for r in free for t in set(r))
    first = {t: min(r.index(t) for r in free if t in r) for t in rows_with}
    token = min((t for t, n in rows_with.items() if n <= len(PROMPTS) // 2), key=lambda t: (first[t], t))
    rows = unembedding_rows(model)
    with torch.no_grad():
        rows[EOS] = 1.05 * rows[token]
    return model


@pytest.fixture(scope="module")
def greedy_models():
    return {"hooked": _with_eos_stealing(tiny_llama_with_tokenizer(0)),
            "hf": _with_eos_stealing(hf_llama_with_tokenizer(0)),
            "hooked-gpt2": _with_eos_stealing(gpt2_with_tokenizer(0)),
            "hf-gpt2": _with_eos_stealing(hf_gpt2_with_tokenizer(0))}


# ----------------------------------------------------------------------------------- greedy
@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("kind", KINDS + ABSOLUTE)
def test_greedy_batch_equals_naive_rows(greedy_models, kind, use_kv_cache):
    model = greedy_models[kind]
    tok = model.tokenizer
    out = generate(model, PROMPTS, N_NEW, use_kv_cache=use_kv_cache)
    refs = [naive_greedy(model, prompt_ids(tok, p), N_NEW) for p in PROMPTS]
    # the case is what it should be: ragged prompts (left padding), a row that ends early with EOS, a row
    # that runs the whole budget
    assert len({len(prompt_ids(tok, p)) for p in PROMPTS}) > 1 and (out.prompt_mask == 0).any()
    assert any(r[-1] == EOS and len(r) < N_NEW // 2 for r in refs), refs
    assert any(len(r) == N_NEW and EOS not in r for r in refs), refs
    assert out.n_steps == max(len(r) for r in refs)
    for b, (p, ref) in enumerate(zip(PROMPTS, refs)):
        width = out.prompt.shape[1]
        assert out.prompt[b, width - len(prompt_ids(tok, p)):].tolist() == prompt_ids(tok, p)
        assert out.tokens[b, : len(ref)].tolist() == ref, f"row {b}"
        assert out.tokens[b, len(ref):].eq(PAD).all(), "a finished row is padded"
        assert out.alive[b].tolist() == [True] * len(ref) + [False] * (out.n_steps - len(ref))
        assert int(out.answer_lengths[b]) == len(ref) - (ref[-1] == EOS)
        assert out.texts()[b] == tok.decode([t for t in ref if t != EOS], skip_special_tokens=True)


@pytest.mark.parametrize("kind", KINDS)
def test_id_rows_and_strings_give_the_same_batch(greedy_models, kind):
    model = greedy_models[kind]
    rows = [prompt_ids(model.tokenizer, p) for p in PROMPTS]
    a, b = generate(model, PROMPTS, N_NEW), generate(model, rows, N_NEW)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.prompt, b.prompt) and torch.equal(a.alive, b.alive)


# ----------------------------------------------------------------------------------- sampled
def _pad_is_eos(model):
    """Pad = EOS (the tokenizer's pad token is its EOS, as for Llama and stories260K, whose tokenizers have
    none) and EOS as likely as the most frequent greedy token (same unembedding row), so EOS is sampled in
    the middle of rows."""
    model.tokenizer.pad_token = model.tokenizer.eos_token
    assert model.tokenizer.pad_token_id == EOS and model.tokenizer.bos_token_id != EOS
    rows = unembedding_rows(model)
    top = _most_common_greedy_token(model)
    with torch.no_grad():
        rows[EOS] = rows[top]
    return model


@pytest.fixture(scope="module")
def eos_models():
    return {"hooked": _pad_is_eos(tiny_llama_with_tokenizer(1)), "hf": _pad_is_eos(hf_llama_with_tokenizer(1)),
            "hooked-gpt2": _pad_is_eos(gpt2_with_tokenizer(1)), "hf-gpt2": _pad_is_eos(hf_gpt2_with_tokenizer(1))}


def _masked_full_logprobs(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-probs of a left-padded batch in one forward with ``mask`` (positions counted over real tokens)."""
    with torch.no_grad():
        if hasattr(model, "cfg"):
            logits = model(ids, attention_mask=mask)
        else:
            logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp_min(0)).logits
    return logits.float().log_softmax(-1)


N_SAMPLED = 16


@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("kind", KINDS + ABSOLUTE)
def test_sampled_logprobs_equal_a_full_forward_also_after_eos(eos_models, kind, use_kv_cache):
    model = eos_models[kind]
    with CapturedLogits(model) as cap:
        out = generate(model, PROMPTS[:4], N_SAMPLED, temperature=1.0, seed=0, stop_at_eos=False,
                       use_kv_cache=use_kv_cache)
    assert out.n_steps == N_SAMPLED and out.alive.all()  # with stop_at_eos=False EOS is an ordinary token
    eos_inside = [(b, s) for b in range(4) for s in range(N_SAMPLED - 1) if out.tokens[b, s] == EOS]
    assert len(eos_inside) >= 2, "the case needs EOS sampled in the middle of rows"
    assert len(cap.calls) == N_SAMPLED  # one call per sampled token (the last one is never fed back)
    loop_lp = torch.stack(cap.calls, 1).float().log_softmax(-1)  # [batch, step, vocab]
    loop_lp = loop_lp.gather(-1, out.tokens[..., None])[..., 0]

    # (1) one unpadded row at a time, a full forward over prompt + sampled tokens
    for b in range(4):
        real = out.prompt[b][out.prompt_mask[b].bool()].tolist()
        ids = real + out.tokens[b].tolist()
        lp = full_logits(model, ids).float().log_softmax(-1)
        ref = lp[len(real) - 1 : len(ids) - 1].gather(-1, out.tokens[b][:, None])[:, 0]
        torch.testing.assert_close(loop_lp[b], ref, atol=2e-4, rtol=0)

    # (2) the whole left-padded batch in one forward with the Generation's mask (EOS tokens are real keys)
    width = out.prompt.shape[1]
    full = _masked_full_logprobs(model, out.input_ids, out.attention_mask)[:, width - 1 : -1]
    torch.testing.assert_close(loop_lp, full.gather(-1, out.tokens[..., None])[..., 0], atol=2e-4, rtol=0)

    # the check can fail: masking EOS keys (what a loop that infers the mask from pad = EOS ids does)
    # changes the log-probs after every sampled EOS
    wrong = out.attention_mask * (out.input_ids != EOS)
    bad = _masked_full_logprobs(model, out.input_ids, wrong)[:, width - 1 : -1]
    bad = bad.gather(-1, out.tokens[..., None])[..., 0]
    after = torch.zeros_like(out.alive)
    for b, s in eos_inside:
        after[b, s + 1:] = True
    assert (bad - loop_lp)[after].abs().max() > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_sampling_is_reproducible(eos_models, kind):
    model = eos_models[kind]

    def sample(**kw):
        return generate(model, PROMPTS[:4], 12, temperature=0.8, stop_at_eos=False, **kw).tokens

    a = sample(seed=7)
    assert torch.equal(a, sample(seed=7))
    assert torch.equal(a, sample(generator=make_generator(model, seed=7)))
    assert torch.equal(a, sample(seed=7, use_kv_cache=False))  # same logits, same draws
    assert not torch.equal(a, sample(seed=8))
    torch.manual_seed(3)  # no seed: torch's global RNG
    g1 = sample()
    torch.manual_seed(3)
    assert torch.equal(g1, sample())


def test_a_generator_on_another_device_is_a_clear_error():
    # torch refuses a 'meta' generator, so the model moves instead: a CPU generator for a model that
    # samples on 'meta' is the same mismatch as a CPU generator for a CUDA model
    model = hooked(d_vocab=12).to("meta")
    with pytest.raises(ValueError, match="generator is on cpu but the model samples on meta"):
        generate(model, torch.zeros(1, 3, dtype=torch.long), 2, temperature=1.0, generator=torch.Generator())
    with pytest.raises(ValueError, match="torch.Generator\\(device='meta'\\)"):
        make_generator(model, generator=torch.Generator())
    assert make_generator(hooked(d_vocab=12), seed=1).device.type == "cpu"


# ----------------------------------------------------------------------------------- recorded hooks
HOOKS = ("blocks.0.hook_resid_post", "blocks.2.hook_mlp_out", "blocks.1.attn.hook_z")


@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["cache", "no-cache"])
def test_recorded_activations_equal_full_forward_activations(greedy_models, use_kv_cache):
    model = greedy_models["hooked"]
    steps: list[tuple[int, dict[str, torch.Tensor], torch.Tensor]] = []
    out = generate(model, PROMPTS, N_NEW, use_kv_cache=use_kv_cache, record=HOOKS,
                   on_step=lambda s, acts, alive: steps.append((s, {h: a.clone() for h, a in acts.items()}, alive)))
    assert [s for s, _, _ in steps] == list(range(out.n_steps))
    for s, acts, alive in steps:
        assert torch.equal(alive, out.alive[:, s])  # alive at step s: token s belongs to the row
        assert set(acts) == set(HOOKS)
    for b in range(len(PROMPTS)):
        real = out.prompt[b][out.prompt_mask[b].bool()].tolist()
        n = int(out.alive[b].sum())
        with torch.no_grad():
            _, cache = model.run_with_cache(torch.tensor([real + out.tokens[b, :n].tolist()]))
        for s in range(n):  # the activation at the position that predicts token s
            for h in HOOKS:
                torch.testing.assert_close(steps[s][1][h][b], cache[h][0, len(real) - 1 + s], atol=1e-4, rtol=0,
                                           msg=lambda m: f"{h}, row {b}, step {s}: {m}")


def test_record_needs_hook_names(greedy_models):
    with pytest.raises(ValueError, match="record= needs hook names"):
        generate(greedy_models["hf"], PROMPTS[:2], 2, record=["blocks.0.hook_resid_post"])


# ----------------------------------------------------------------------------------- stop strings
def test_stop_strings_end_rows(word_llama):
    model = word_llama
    prompts = random_prompts(8, seed=2)
    free = generate(model, prompts, 5, stop_at_eos=False)
    words = [model.tokenizer.decode([t]) for t in free.tokens[:, 1].tolist()]  # stop on each row's 2nd word
    stop = tuple(sorted(set(words)))
    cut = generate(model, prompts, 5, stop=stop, stop_at_eos=False)
    for row, n, alive, full in zip(cut.tokens, cut.answer_lengths, cut.alive, free.tokens):
        hits = [i for i, t in enumerate(full.tolist()) if any(w in model.tokenizer.decode([t]) for w in stop)]
        assert int(n) == hits[0] + 1 <= 2  # the stop token is the row's last; its text is cut at the string
        assert int(alive.sum()) == int(n)
        assert torch.equal(row[: int(n)], full[: int(n)])


@pytest.fixture(scope="module")
def toy_lm():
    from interp import load_model

    return load_model("toy-lm", device="cpu")  # byte-level BPE: newline and space tokens exist


# answers of toy-lm (greedy): rows 0 and 2 start with a newline, row 4 with a lone space
STOP_PROMPTS = ["Once upon a time in December.", "Copy: red blue ->", "The blue dog ran across the road.", "A B C D",
                "Add: 3 + 4 ="]


def _naive_stop(model, ids: list[int], n: int, stop: str, skip_leading_whitespace: bool) -> tuple[list[int], str]:
    """The row's tokens up to the first one at which the decoded answer shows ``stop`` (past its leading
    whitespace when asked), and the answer text cut there."""
    tok = model.tokenizer
    free = naive_greedy(model, ids, n, eos=None)
    for t in range(1, len(free) + 1):
        text = tok.decode(free[:t])
        start = len(text) - len(text.lstrip()) if skip_leading_whitespace else 0
        if text.find(stop, start) >= 0:
            return free[:t], text[: text.find(stop, start)]
    return free, tok.decode(free)


@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("skip", [False, True], ids=["stop-anywhere", "skip-leading-whitespace"])
def test_stop_string_after_leading_whitespace(toy_lm, skip, use_kv_cache):
    tok = toy_lm.tokenizer
    out = generate(toy_lm, STOP_PROMPTS, 12, stop=["\n"], skip_leading_whitespace=skip, stop_at_eos=False,
                   use_kv_cache=use_kv_cache)
    refs = [_naive_stop(toy_lm, prompt_ids(tok, p), 12, "\n", skip) for p in STOP_PROMPTS]
    leading_newline = [i for i, (ids, _) in enumerate(refs) if tok.decode(ids[:1]) == "\n"]
    if skip:
        assert all(len(refs[i][0]) > 1 for i in leading_newline)  # a leading newline does not end the answer
    else:
        assert leading_newline and all(len(refs[i][0]) == 1 for i in leading_newline)
    for b, (ids, text) in enumerate(refs):
        assert out.tokens[b, : len(ids)].tolist() == ids, f"row {b}"
        assert int(out.alive[b].sum()) == len(ids) == int(out.answer_lengths[b])
        assert out.texts()[b] == text == cut_at_stop(tok.decode(ids), ["\n"], skip_leading_whitespace=skip)
