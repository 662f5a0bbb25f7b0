"""collect(): batched, left-padded, KV-cached collection equals a brute-force per-sample computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.steering.collect import RunningPool, collect, pool_steps
from interp.core.generation import generate
from interp.core.tasks import Example, ExactMatchTask

from tiny_models import make_sae, random_prompts

HOOKS = ("blocks.0.hook_resid_post", "blocks.2.hook_resid_pre")
N_NEW = 5


@pytest.fixture(scope="module")
def setup(word_llama):
    model = word_llama
    saes = [make_sae(HOOKS[0]), make_sae(HOOKS[1], kind="topk", seed=1)]
    prompts = random_prompts(16, seed=2)
    first = [t.split(" ")[0] if t else "" for t in generate(model, prompts, 1).texts()]
    # half the answers are what the model says, half are not: both labels occur
    answers = [f if i % 2 == 0 else "zzz" for i, f in enumerate(first)]
    task = ExactMatchTask("toy", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=N_NEW,
                          match="first_word")
    return model, saes, task


@torch.no_grad()
def _brute_force(model, saes, task):
    """One sample at a time, no padding, no cache: full forward over prompt + generation."""
    rows, labels = {s.cfg.metadata.hook_name: [] for s in saes}, []
    eos = model.tokenizer.eos_token_id
    for ex in task.examples:
        toks = model.to_tokens(ex.prompt)
        for _ in range(N_NEW):  # greedy, by hand
            nxt = model(toks)[0, -1].argmax()
            toks = torch.cat([toks, nxt.view(1, 1)], 1)
            if int(nxt) == eos:
                break
        p = model.to_tokens(ex.prompt).shape[1]
        gen = toks[0, p:].tolist()
        n_alive = gen.index(eos) + 1 if eos in gen else len(gen)
        text = model.tokenizer.decode(gen[: n_alive - (eos in gen)], skip_special_tokens=True)
        labels.append(int(task.check(ex, text)))
        _, cache = model.run_with_cache(toks)
        for sae in saes:
            h = sae.cfg.metadata.hook_name
            f = sae.encode(cache[h][0, p - 1 : p - 1 + n_alive])  # positions predicting generated tokens
            rows[h].append({"max": f.max(0).values, "mean": f.mean(0), "answer": f[0]})
    pooled = {k: {h: torch.stack([r[k] for r in v]) for h, v in rows.items()} for k in ("max", "mean", "answer")}
    return pooled, np.array(labels)


@pytest.fixture(scope="module")
def brute(setup):
    return _brute_force(*setup)


@pytest.mark.parametrize("pooling", ["max", "mean", "answer"])
def test_collect_matches_brute_force(setup, brute, pooling):
    model, saes, task = setup
    col = collect(model, saes, task, pooling=pooling, batch_size=7, progress=False)
    feats, labels = brute[0][pooling], brute[1]
    assert col.labels.tolist() == labels.tolist() and 0 < labels.mean() < 1
    for h, x in feats.items():
        stacked = np.concatenate([x.double().numpy().T, labels[None].astype(float)])
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.corrcoef(stacked)[-1, :-1]
        r = col.stats[h].correlation().numpy()
        ok = np.isfinite(ref)
        np.testing.assert_allclose(r[ok], ref[ok], atol=1e-4)
        assert (r[~ok] == 0).all()
        torch.testing.assert_close(col.coefficients(h).float(), x[labels == 1].float().mean(0), atol=1e-4, rtol=1e-4)
        # top examples: the best sample per feature is the brute-force argmax
        best = x.max(0).values
        torch.testing.assert_close(col.top_values[h][0], best.float(), atol=1e-4, rtol=1e-4)


def test_cache_and_batching_do_not_change_results(setup):
    model, saes, task = setup
    a = collect(model, saes, task, batch_size=5, progress=False)
    b = collect(model, saes, task, batch_size=16, use_kv_cache=False, progress=False)
    assert a.generations == b.generations
    for h in a.hooks:
        torch.testing.assert_close(a.stats[h].correlation(), b.stats[h].correlation(), atol=1e-5, rtol=0)


def test_pool_steps_respects_alive_mask():
    steps = torch.tensor([[[1.0], [5.0], [9.0]], [[2.0], [3.0], [4.0]]])
    alive = torch.tensor([[True, True, False], [True, True, True]])
    assert pool_steps(steps, alive, "max").flatten().tolist() == [5.0, 4.0]
    assert pool_steps(steps, alive, "mean").flatten().tolist() == [3.0, 3.0]
    assert pool_steps(steps, alive, "answer").flatten().tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool_steps(steps, alive, "median")


def test_collection_views(setup):
    model, saes, task = setup
    col = collect(model, saes, task, batch_size=12, progress=False)
    frame = col.to_frame(top=2)
    assert len(frame) == 4 and set(frame.hook) == set(HOOKS)
    best = frame.groupby("hook").r.max()
    for h in HOOKS:
        assert best[h] == pytest.approx(float(col.stats[h].correlation().max()))
    assert len(col.plot().data) == 2 and "Collection" in col._repr_html_()


@pytest.mark.parametrize("pooling", ["max", "mean", "answer"])
def test_running_pool_equals_pool_steps(pooling):
    """Pooling step by step gives what stacking every step and pooling at the end gives (rows end at
    different steps, one row never ends)."""
    g = torch.Generator().manual_seed(3)
    steps = torch.randn(6, 9, 40, generator=g)
    ends = torch.tensor([1, 3, 9, 5, 2, 7])  # steps that count per row (step 0 always does)
    alive = torch.arange(9)[None, :] < ends[:, None]
    pool = RunningPool(pooling)
    for t in range(9):
        pool.add(steps[:, t], alive[:, t])
    ref = pool_steps(steps, alive, pooling)
    if pooling == "mean":  # a running sum adds in the same order; allow float rounding anyway
        torch.testing.assert_close(pool.result(), ref, rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(pool.result(), ref)
    with pytest.raises(ValueError, match="pooling must be one of"):
        RunningPool("median")


def test_collect_keeps_no_per_step_codes(setup):
    """Memory is O(batch x d_sae) per hook whatever the number of steps: by the time the batch is labelled
    (after generation, before pooling used to happen) no step's SAE codes are still alive."""
    import weakref

    model, saes, task = setup
    live: list[weakref.ref] = []

    class Watched(torch.nn.Module):
        def __init__(self, sae):
            super().__init__()
            self.sae, self.cfg, self.W_dec = sae, sae.cfg, sae.W_dec

        def encode(self, x):
            out = self.sae.encode(x)
            live.append(weakref.ref(out))
            return out

    held: list[int] = []

    class Counting(ExactMatchTask):
        def check(self, example, text):
            held.append(sum(r() is not None for r in live))
            return super().check(example, text)

    counting = Counting("toy", task.examples[:8], max_new_tokens=N_NEW, match="first_word")
    collect(model, [Watched(s) for s in saes], counting, pooling="max", batch_size=8, progress=False)
    assert len(live) >= 2 * 3  # two hooks, several steps: the check below is about real per-step outputs
    assert max(held) == 0, f"{max(held)} per-step SAE code tensors still alive when the batch was labelled"


def test_collect_on_a_bridge_reads_the_hooks_it_was_asked_for(stories_model, stories_dir):
    """A TransformerBridge reports an alias hook under its canonical name (hook_resid_pre -> hook_in): the
    recorded activations must be keyed by the asked name, or collect() fails with a KeyError (what
    bench/bridge.py hit before generation keyed them so). The bridge's collection equals the
    HookedTransformer's on the same prompts."""
    from interp import load_model

    hooks = ("blocks.0.hook_resid_pre", "blocks.2.hook_resid_post")
    seen = []
    out = generate(stories_model, ["Once upon a time", "Tom had a"], 3, record=hooks,
                   on_step=lambda s, acts, alive: seen.append({h: a.clone() for h, a in acts.items()}))
    assert seen and all(set(acts) == set(hooks) for acts in seen)
    real = out.prompt[0][out.prompt_mask[0].bool()].tolist()
    with torch.no_grad():
        _, cache = stories_model.run_with_cache(torch.tensor([real]))
    for h in hooks:  # step 0 records the last prompt position
        torch.testing.assert_close(seen[0][h][0], cache[h][0, -1], atol=1e-5, rtol=0)
    saes = [make_sae(h, d_in=stories_model.cfg.d_model, seed=i) for i, h in enumerate(hooks)]
    task = ExactMatchTask("stories", [Example(p, a) for p, a in [("Once upon a time", "there"), ("Tom had a", "big"),
                                                                  ("Lily saw a", "cat"), ("One day, Sue", "went")]],
                          max_new_tokens=3, match="first_word")
    on_bridge = collect(stories_model, saes, task, progress=False)
    on_hooked = collect(load_model(stories_dir, frontend="hooked"), saes, task, progress=False)
    assert on_bridge.generations == on_hooked.generations and (on_bridge.labels == on_hooked.labels).all()
    assert on_bridge.hooks == list(hooks)
    for h in hooks:  # the pooled SAE codes agree: their per-feature sums over the correct samples and firing rates
        torch.testing.assert_close(on_bridge.coefficients(h), on_hooked.coefficients(h), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(on_bridge.stats[h].firing_rate(), on_hooked.stats[h].firing_rate())
