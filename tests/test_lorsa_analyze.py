"""Lorsa interpretation: streamed top contexts equal a brute-force sort, head scores equal loop
computations on the host pattern, OV readout and loss attribution against direct computation,
and the HeadBrowser widget reacts to its controls."""

from __future__ import annotations

import pytest
import torch

from interp.lorsa import Lorsa, LorsaConfig, init_from_host
from interp.lorsa.analyze import (
    SuccessorProbe, head_loss_attribution, head_scores, ov_readout, repeated_random_tokens, top_contexts,
)

from tiny_models import bos_tokens, rotary_model


@pytest.fixture(scope="module")
def setup():
    model = rotary_model(0, n_ctx=40, d_vocab=30)
    model.tokenizer = None
    model.to_string = lambda t: " ".join(f"t{int(i)}" for i in torch.as_tensor(t).reshape(-1))
    lc = LorsaConfig.from_model(model, 1, expansion=2, top_k=5, activation="signed")
    lorsa = init_from_host(Lorsa(lc, seed=1), model, 1)
    return model, lorsa, bos_tokens(10, 14, vocab=30)


def test_top_contexts_equal_brute_force(setup):
    model, lorsa, toks = setup
    tops = top_contexts(model, lorsa, toks, k=4, batch_size=3, bos_token_id=1, progress=False)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
        z = lorsa.encode(cache[lorsa.cfg.hook_in]) * (toks != 1).unsqueeze(-1)
    flat = z.reshape(-1, z.shape[-1]).T
    ref = flat.abs().sort(dim=1, descending=True).values[:, :4]
    assert torch.allclose(tops.values.abs(), ref, atol=1e-6)
    for h in range(0, lorsa.cfg.n_ov_heads, 5):  # the stored location holds the stored value
        for j in range(4):
            if tops.values[h, j] != 0:
                assert z[tops.seq[h, j], tops.pos[h, j], h] == pytest.approx(tops.values[h, j].item(), abs=1e-6)
    assert torch.allclose(tops.frequency, (z != 0).float().sum((0, 1)) / (toks != 1).sum())


def test_host_scores_equal_loops(setup):
    model, lorsa, toks = setup
    s = head_scores(model, lorsa, toks, n_random=4, half=6, bos_token_id=1, weighting="uniform")
    rep = repeated_random_tokens(model, 4, 6, bos_token_id=1)
    _, cache = model.run_with_cache(rep)
    pat = cache["blocks.1.attn.hook_pattern"]
    for h in range(2):
        vals = [pat[b, h, t, t - 6 + 1].item() for b in range(4) for t in range(7, 13)]
        assert s.host.loc[h, "induction"] == pytest.approx(sum(vals) / len(vals), abs=1e-5)
    _, cache = model.run_with_cache(toks)
    pat = cache["blocks.1.attn.hook_pattern"]
    for h in range(2):
        prev = [pat[b, h, t, t - 1].item() for b in range(10) for t in range(2, 14)]
        sink = [pat[b, h, t, 0].item() for b in range(10) for t in range(2, 14)]
        assert s.host.loc[h, "previous_token"] == pytest.approx(sum(prev) / len(prev), abs=1e-5)
        assert s.host.loc[h, "sink"] == pytest.approx(sum(sink) / len(sink), abs=1e-5)
    # Like for like: the Lorsa copies the host QK at init, so with uniform weighting every OV head
    # scores exactly what its parent host head scores.
    for i in range(0, lorsa.cfg.n_ov_heads, 3):
        parent = i // lorsa.cfg.group_size
        for col in ("induction", "previous_token", "sink"):
            assert s.lorsa.loc[i, col] == pytest.approx(s.host.loc[parent, col], abs=1e-5)


def test_output_weighted_scores_equal_loops(setup):
    """Default weighting: host head h weighted by ||z_h(t) W_O^h||, Lorsa head i by |z_i(t)| ||w_O^i||."""
    model, lorsa, toks = setup
    s = head_scores(model, lorsa, toks, n_random=4, half=6, bos_token_id=1)
    assert s.weighting == "output"
    rep = repeated_random_tokens(model, 4, 6, bos_token_id=1)
    _, cache = model.run_with_cache(rep)
    pat, zh = cache["blocks.1.attn.hook_pattern"], cache["blocks.1.attn.hook_z"]
    W_O = model.blocks[1].attn.W_O
    for h in range(2):
        num = den = 0.0
        for b in range(4):
            for t in range(7, 13):
                w = (zh[b, t, h] @ W_O[h]).norm().item()
                num += w * pat[b, h, t, t - 5].item()
                den += w
        assert s.host.loc[h, "induction"] == pytest.approx(num / den, abs=1e-5)
    x = cache[lorsa.cfg.hook_in]
    z = lorsa.encode(x)
    lp = lorsa.attention_pattern(x)
    norms = lorsa.W_O.norm(dim=-1)
    for i in range(0, lorsa.cfg.n_ov_heads, 5):
        qk = i // lorsa.cfg.group_size
        w = [(z[b, t, i].abs() * norms[i]).item() for b in range(4) for t in range(7, 13)]
        v = [lp[b, qk, t, t - 5].item() for b in range(4) for t in range(7, 13)]
        if sum(w) == 0:
            assert s.lorsa.loc[i, "induction"] != s.lorsa.loc[i, "induction"]  # NaN: never fires on the probe
            assert s.lorsa.loc[i, "support"] == 0
        else:
            assert s.lorsa.loc[i, "induction"] == pytest.approx(sum(a * b for a, b in zip(w, v)) / sum(w), abs=1e-5)
            assert s.lorsa.loc[i, "support"] == pytest.approx(sum(x > 0 for x in w) / len(w))
    assert (s.host["support"] == 1).all()
    with pytest.raises(ValueError, match="weighting"):
        head_scores(model, lorsa, toks, weighting="max")


def test_successor_score_equals_loop_over_positions(setup):
    """In context: a head's direct logit effect at each predicting position, argmax over the sequence's
    elements, weighted by what the head writes there; computed the same way for both head families."""
    model, lorsa, _ = setup
    seqs = [[1, 5, 6, 7, 8, 9], [1, 11, 12, 13, 14, 3]]
    probe = SuccessorProbe(tokens=torch.tensor(seqs), pos=torch.tensor([[1, 2, 3, 4], [1, 2, 3, 0]]),
                           target=torch.tensor([[6, 7, 8, 9], [12, 13, 14, 0]]),
                           valid=torch.tensor([[True] * 4, [True, True, True, False]]),
                           candidates=torch.tensor([[6, 7, 8, 9], [12, 13, 14, -1]]))
    s = head_scores(model, lorsa, None, n_random=2, half=4, bos_token_id=1, successor=probe)
    W_U = model.W_U * model.ln_final.w[:, None]
    _, cache = model.run_with_cache(probe.tokens)
    zh, x = cache["blocks.1.attn.hook_z"], cache[lorsa.cfg.hook_in]
    z = lorsa.encode(x)
    W_O = model.blocks[1].attn.W_O
    for h in range(2):
        num = den = 0.0
        for b in range(2):
            for j in range(4):
                if not probe.valid[b, j]:
                    continue
                t, cands = int(probe.pos[b, j]), [c for c in probe.candidates[b].tolist() if c >= 0]
                out = zh[b, t, h] @ W_O[h]
                pick = cands[int((out @ W_U[:, cands]).argmax())]
                num += out.norm().item() * (pick == int(probe.target[b, j]))
                den += out.norm().item()
        assert s.host.loc[h, "successor"] == pytest.approx(num / den, abs=1e-6)
    for i in range(0, lorsa.cfg.n_ov_heads, 7):
        num = den = 0.0
        for b in range(2):
            for j in range(4):
                if not probe.valid[b, j]:
                    continue
                t, cands = int(probe.pos[b, j]), [c for c in probe.candidates[b].tolist() if c >= 0]
                zi = z[b, t, i]
                if zi == 0:
                    continue
                pick = cands[int(((zi * lorsa.W_O[i]) @ W_U[:, cands]).argmax())]
                w = (zi.abs() * lorsa.W_O[i].norm()).item()
                num += w * (pick == int(probe.target[b, j]))
                den += w
        got = s.lorsa.loc[i, "successor"]
        assert (got != got) if den == 0 else got == pytest.approx(num / den, abs=1e-6)


def test_type_score_plot_shows_every_host_head_beside_the_histogram(setup):
    model, lorsa, toks = setup
    s = head_scores(model, lorsa, toks, n_random=4, half=6, bos_token_id=1)
    hist, host = s.plot("induction").data
    assert hist.type == "histogram" and len(hist.x) == int(s.lorsa["induction"].notna().sum())
    # host heads are markers in their own strip (under the bars they were hidden), one per head
    assert host.xaxis == "x2" or host.yaxis == "y2"
    assert list(host.x) == pytest.approx(s.host["induction"].tolist())
    assert list(host.text) == [f"host head {h}" for h in range(model.cfg.n_heads)]


def test_ov_readout_direct(setup):
    model, lorsa, _ = setup
    df = ov_readout(model, lorsa, 3, k=5)
    logits = lorsa.W_O[3] @ (model.W_U * model.ln_final.w[:, None])
    promoted, suppressed = df[df.direction == "promotes"], df[df.direction == "suppresses"]
    assert promoted["logit"].tolist() == pytest.approx(logits.topk(5).values.tolist(), abs=1e-5)
    assert suppressed["logit"].iloc[0] == pytest.approx(logits.min().item(), abs=1e-5)
    assert promoted["token"].tolist() == [str(i) for i in logits.topk(5).indices.tolist()]  # no tokenizer: ids


def test_loss_attribution_matches_finite_difference(setup):
    model, lorsa, toks = setup
    toks = toks[:4]
    attr = head_loss_attribution(model, lorsa, toks, batch_size=4, bos_token_id=1, progress=False)
    keep = (toks != 1).unsqueeze(-1)
    head = int(attr.abs().argmax())

    def loss(scale: float) -> float:
        def grab(act, hook):
            store["x"] = act

        def splice(act, hook):
            z = lorsa.encode(store["x"])
            z[..., head] *= scale
            return torch.where(keep, lorsa.decode(z), act)

        store = {}
        with torch.no_grad():
            return model.run_with_hooks(toks, return_type="loss", fwd_hooks=[(lorsa.cfg.hook_in, grab),
                                                                               (lorsa.cfg.hook_out, splice)]).item()

    eps = 1e-3  # removing a fraction eps of the head: first-order change is eps * contribution
    fd = (loss(1 - eps) - loss(1 + eps)) / (2 * eps)
    assert attr[head].item() == pytest.approx(fd, rel=1e-2, abs=1e-6)


def test_head_browser_shows_the_selected_heads_z_pattern(setup):
    pytest.importorskip("ipywidgets")
    import numpy as np

    from interp.lorsa.analyze import head_loss_attribution, head_scores, top_contexts
    from static_html import static_figures
    from widgets.head_browser import HeadBrowser

    model, lorsa, toks = setup
    tops = top_contexts(model, lorsa, toks, k=4, progress=False)
    scores = head_scores(model, lorsa, toks, n_random=4, half=6)
    contribution = head_loss_attribution(model, lorsa, toks, progress=False)
    b = HeadBrowser(lorsa, model, tops, scores, loss_contribution=contribution)
    fired = [h for h in range(lorsa.cfg.n_ov_heads) if tops.frequency[h] > 0]
    # each sort key ranks the heads that fired by the library's own numbers, best first
    for key, values in (("loss_contribution", contribution.tolist()), ("induction", scores.lorsa["induction"].tolist()),
                        ("frequency", tops.frequency.tolist())):
        b.sort.value = key
        shown = [h for _, h in b.head.options]
        assert sorted(shown) == fired and b.head.value == shown[0]
        ranked = [values[h] for h in shown if values[h] == values[h]]  # NaN (never fired on the probe) last
        assert ranked == sorted(ranked, reverse=True)

    def z_pattern(head: int, j: int):
        """The head's activation at each query of its j-th top context split over sources, by hand."""
        seq, pos = int(tops.seq[head, j]), int(tops.pos[head, j])
        with torch.no_grad():
            _, cache = model.run_with_cache(toks[seq : seq + 1, : pos + 1], names_filter=[lorsa.cfg.hook_in])
            x = cache[lorsa.cfg.hook_in]
            pattern = lorsa.attention_pattern(x)[0, head // lorsa.cfg.group_size]
            expected = pattern * (x[0] @ lorsa.W_V[head] + lorsa.b_V[head])[None, :]
        lo = max(0, pos + 1 - b.window)
        return expected[lo:, lo:].float()

    b.sort.value = "loss_contribution"
    for head in [h for _, h in b.head.options][:2]:  # what the widget draws is the head's z-pattern on its top contexts
        b.head.value = head
        n_ctx = int((tops.values[head] != 0).sum())
        assert b.context.value == 0 and b.context.max == n_ctx - 1
        torch.testing.assert_close(torch.tensor(b.fig.data[0].z), z_pattern(head, 0), rtol=1e-5, atol=1e-6)
        assert f"head {head}" in b.contexts_html.value
        # the contexts table lists the head's top activations, largest first
        assert [f"<td>{v:.2f}</td>" in b.contexts_html.value for v in tops.values[head, :n_ctx].tolist()] == [True] * n_ctx
        assert n_ctx > 1, "the fixture's top heads should fire in more than one context"
        b.context.value = 1
        torch.testing.assert_close(torch.tensor(b.fig.data[0].z), z_pattern(head, 1), rtol=1e-5, atol=1e-6)
    bundle = b._repr_mimebundle_()
    (static,) = static_figures(bundle["text/html"])
    np.testing.assert_array_equal(static["data"][0]["z"], np.array(b.fig.data[0].z))  # the view on screen
    assert b.contexts_html.value in bundle["text/html"] and b.scores_html.value in bundle["text/html"]
    with pytest.raises(TypeError, match="library results"):
        HeadBrowser(lorsa, model, toks, scores)
