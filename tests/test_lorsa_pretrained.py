"""The bundled stories260K Lorsa (zoo artefact ``stories260K-lorsa-L2``) loads, runs on raw activations
(normalisation folded), and its card's explained variance and loss recovered are reproduced on fresh
held-out text: both re-measured here from the hook activations, independently of ``evaluate_lorsa``,
with a bootstrap over sequences saying how close a re-measurement can be expected to land."""

from __future__ import annotations

import pytest
import torch

from interp import zoo
from interp.core.activations import sample_tokens
from interp.lorsa import LorsaConfigError, evaluate_lorsa

NAME = "stories260K-lorsa-L2"
N_SEQ, CTX = 64, 256
SEED = 777  # neither a training seed (1000-1009) nor the card's evaluation seed (12345)
N_BOOT = 2000


@pytest.fixture(scope="module")
def lorsa():
    try:
        return zoo.load_lorsa(NAME)
    except FileNotFoundError as err:
        pytest.skip(str(err))


def _per_sequence_sums(model, lorsa, tokens, batch_size: int = 16):
    """Per sequence: squared reconstruction error, sum and squared norm of the attention output, token
    count (non-BOS tokens, where the Lorsa is spliced), and next-token cross-entropy summed over the
    predicted positions for the clean model, the splice and the zero ablation."""
    parts = [_sums(model, lorsa, tokens[i : i + batch_size]) for i in range(0, tokens.shape[0], batch_size)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _sums(model, lorsa, tokens):
    cfg = lorsa.cfg
    bos = model.tokenizer.bos_token_id
    keep = (tokens != bos)[..., None]  # BOS keeps its real attention output
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[cfg.hook_in, cfg.hook_out])
        x, y = cache[cfg.hook_in], cache[cfg.hook_out]
        y_hat = lorsa.decode(lorsa.encode(x))

        def nll(logits):
            lp = logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
            return -lp.double().sum(1)

        clean = nll(model(tokens))
        spliced = nll(model.run_with_hooks(tokens, fwd_hooks=[(cfg.hook_out, lambda a, hook: torch.where(keep, y_hat, a))]))
        ablated = nll(model.run_with_hooks(tokens, fwd_hooks=[(cfg.hook_out, lambda a, hook: torch.where(keep, 0 * a, a))]))
    y, y_hat, m = y.double(), y_hat.double(), keep.double()
    return dict(sq=((y_hat - y) ** 2 * m).sum((1, 2)), y=(y * m).sum(1), y2=(y ** 2 * m).sum((1, 2)),
                n=m.sum((1, 2)), clean=clean, spliced=spliced, ablated=ablated)


def _ev(s, idx):
    n = s["n"][idx].sum()
    total = s["y2"][idx].sum() - s["y"][idx].sum(0).pow(2).sum() / n
    return float(1 - s["sq"][idx].sum() / total)


def _loss_recovered(s, idx):
    c, sp, a = (s[k][idx].sum() for k in ("clean", "spliced", "ablated"))
    return float((a - sp) / (a - c))


@pytest.mark.slow
def test_bundled_lorsa_reproduces_its_card(stories_model, lorsa):
    card = zoo.card(NAME)["evaluation"]
    assert lorsa.cfg.layer == 2 and lorsa.cfg.hook_in == "blocks.2.ln1.hook_normalized"
    tokens = sample_tokens(stories_model, N_SEQ, CTX, batch_size=N_SEQ, seed=SEED, progress=False)
    s = _per_sequence_sums(stories_model, lorsa, tokens)
    every = torch.arange(N_SEQ)
    ev, lr = _ev(s, every), _loss_recovered(s, every)
    g = torch.Generator().manual_seed(0)
    boot = [torch.randint(0, N_SEQ, (N_SEQ,), generator=g) for _ in range(N_BOOT)]
    ev_se = torch.tensor([_ev(s, i) for i in boot]).std().item()
    lr_se = torch.tensor([_loss_recovered(s, i) for i in boot]).std().item()
    # the card's numbers (256 other held-out sequences) lie within 3 bootstrap standard errors of ours
    assert abs(card["explained_variance"] - ev) <= 3 * ev_se, (card["explained_variance"], ev, ev_se)
    assert abs(card["loss_recovered"] - lr) <= 3 * lr_se, (card["loss_recovered"], lr, lr_se)
    assert ev_se < 0.01 and lr_se < 0.03, "the re-measurement must be precise enough to mean something"

    # the library's evaluation agrees with this independent computation on the same tokens (a quarter of
    # them, to keep the test short)
    part = torch.arange(N_SEQ // 4)
    res = evaluate_lorsa(stories_model, lorsa, tokens[part], progress=False)
    assert res.explained_variance == pytest.approx(_ev(s, part), abs=1e-6)
    assert res.loss_recovered == pytest.approx(_loss_recovered(s, part), abs=1e-5)
    assert res.n_tokens == int(s["n"][part].sum()) and res.l0 == pytest.approx(lorsa.cfg.top_k, abs=1e-6)


def test_bundled_lorsa_refuses_other_model(lorsa):
    from tiny_models import hooked

    other = hooked(n_layers=1, d_model=32, n_heads=4, n_ctx=16, d_vocab=20)
    with pytest.raises(LorsaConfigError, match="d_model=64"):
        evaluate_lorsa(other, lorsa, torch.zeros(1, 8, dtype=torch.long), progress=False)
