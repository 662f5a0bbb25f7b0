"""Interpreting Lorsa heads: top-activating contexts, z-patterns, OV readout, and head-type scores
(induction, previous-token, attention sink, successor) computed the same way for Lorsa heads and
for the host's own attention heads, so the two can be compared.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.readout import direction_logits, readout_frame
from interp.core.tokens import token_mask
from interp.lorsa.init import host_attention
from interp.lorsa.model import Lorsa

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = [
    "TopContexts", "top_contexts", "ov_readout", "HeadScores", "head_scores", "ORDINAL_SEQUENCES",
    "repeated_random_tokens", "context_strings", "head_loss_attribution", "ZPattern", "context_z_pattern",
]

ORDINAL_SEQUENCES: dict[str, list[str]] = {
    "digits": list("0123456789"),
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"],
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December"],
    "letters": list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
}
"""Ordinal sequences for the successor score; only elements that are one token are used."""


# ----------------------------------------------------------------------------- top contexts
@dataclass
class TopContexts:
    """Top activations per head: ``values[i, j]`` at sequence ``seq[i, j]``, position ``pos[i, j]``
    (sorted, largest first; value 0 where a head fired fewer than k times)."""

    values: Float[Tensor, "n_ov k"]
    seq: Int[Tensor, "n_ov k"]
    pos: Int[Tensor, "n_ov k"]
    frequency: Float[Tensor, " n_ov"]
    tokens: Int[Tensor, "n_seq ctx"]

    def for_head(self, head: int):
        import pandas as pd

        keep = self.values[head] != 0
        return pd.DataFrame({"activation": self.values[head][keep].tolist(), "seq": self.seq[head][keep].tolist(),
                             "pos": self.pos[head][keep].tolist()})

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"head": range(self.values.shape[0]), "frequency": self.frequency.tolist(),
                             "max_activation": self.values[:, 0].tolist()})

    def plot(self, head: int = 0):
        """Bars of one head's top activations (:func:`interp.lorsa.plots.top_activations_figure`)."""
        from interp.lorsa.plots import top_activations_figure

        return top_activations_figure(self, head)

    def _repr_html_(self) -> str:
        return self.to_frame().sort_values("frequency", ascending=False).head(20).to_html(index=False)


@torch.no_grad()
def top_contexts(
    model: "HookedTransformer",
    lorsa: Lorsa,
    tokens: Int[Tensor, "n_seq ctx"],
    *,
    k: int = 10,
    batch_size: int = 16,
    bos_token_id: int | None = None,
    progress: bool = True,
) -> TopContexts:
    """Stream ``tokens`` through the host and the Lorsa, keeping each head's ``k`` largest
    activations (memory: n_ov x k plus one batch). Signed heads are ranked by |z|.

    Example:
        >>> tops = top_contexts(model, lorsa, tokens, k=8)  # doctest: +SKIP
        >>> tops.for_head(17)                               # doctest: +SKIP
    """
    lorsa.check_host(model)
    n = lorsa.cfg.n_ov_heads
    dev = model.cfg.device
    best_v = torch.zeros(n, k, device=dev)
    best_i = torch.full((n, k), -1, dtype=torch.long, device=dev)
    fires = torch.zeros(n, device=dev)
    count = 0
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id if bos_token_id is not None else (tok.bos_token_id if tok is not None else None)
    ctx = tokens.shape[1]
    for start in tqdm(range(0, tokens.shape[0], batch_size), desc="top contexts", disable=not progress):
        toks = tokens[start : start + batch_size].to(dev)
        _, cache = model.run_with_cache(toks, names_filter=[lorsa.cfg.hook_in], stop_at_layer=lorsa.cfg.layer + 1)
        z = lorsa.encode(cache[lorsa.cfg.hook_in].float())
        mask = token_mask(toks, bos_token_id=bos)
        z = z * mask.unsqueeze(-1)
        fires += (z != 0).sum((0, 1))
        count += int(mask.sum())
        flat = z.reshape(-1, n).T  # [n, b*ctx]
        idx = torch.arange(flat.shape[1], device=dev) + start * ctx  # global flat index seq*ctx+pos
        cand_v = torch.cat([best_v, flat], dim=1)
        cand_i = torch.cat([best_i, idx.expand(n, -1)], dim=1)
        order = cand_v.abs().topk(min(k, cand_v.shape[1]), dim=1).indices
        best_v, best_i = cand_v.gather(1, order), cand_i.gather(1, order)
    best_i = torch.where(best_v != 0, best_i, torch.zeros_like(best_i))
    return TopContexts(values=best_v.cpu(), seq=(best_i // ctx).cpu(), pos=(best_i % ctx).cpu(),
                       frequency=(fires / max(count, 1)).cpu(), tokens=tokens.cpu())


@dataclass
class ZPattern:
    """Head ``head``'s activation at each query of a context window, split over its sources: entry
    ``[t, s]`` is A[t, s] (x_s . w_V + b_V); row t sums to the head's pre-activation at query t."""

    values: Float[Tensor, "q k"]
    labels: list[str]
    head: int
    layer: int
    position: int

    def plot(self):
        from interp.lorsa.plots import z_pattern_figure

        return z_pattern_figure(self)

    def __repr__(self) -> str:
        return f"ZPattern(head={self.head}, layer={self.layer}, window={len(self.labels)}, query position={self.position})"


@torch.no_grad()
def context_z_pattern(model: "HookedTransformer", lorsa: Lorsa, tokens: Int[Tensor, "n_seq ctx"], seq: int, pos: int,
                      head: int, *, window: int = 24) -> ZPattern:
    """The z-pattern of ``head`` on ``tokens[seq, :pos+1]``, cut to the last ``window`` positions (the
    host runs up to the Lorsa's layer only)."""
    from interp.viz.display import visible_token

    lorsa.check_host(model)
    toks = tokens[seq : seq + 1, : pos + 1].to(model.cfg.device)
    _, cache = model.run_with_cache(toks, names_filter=[lorsa.cfg.hook_in], stop_at_layer=lorsa.cfg.layer + 1)
    zp = lorsa.z_pattern(cache[lorsa.cfg.hook_in].float(), head)[0].cpu()
    lo = max(0, pos + 1 - window)
    labels = [f"{i}:{visible_token(model.to_string(toks[0, i:i + 1]))}" for i in range(lo, pos + 1)]
    return ZPattern(zp[lo:, lo:], labels, head, int(lorsa.cfg.layer), pos)


def context_strings(model: "HookedTransformer", tokens: Tensor, seq: int, pos: int, window: int = 12) -> tuple[str, str, str]:
    """(text before, the token itself, text after) around ``tokens[seq, pos]``, for display."""
    row = tokens[seq]
    before = model.to_string(row[max(0, pos - window) : pos])
    here = model.to_string(row[pos : pos + 1])
    after = model.to_string(row[pos + 1 : pos + 1 + window // 3])
    return before, here, after


# ----------------------------------------------------------------------------- OV readout
@torch.no_grad()
def ov_readout(model: "HookedTransformer", lorsa: Lorsa, head: int, k: int = 10):
    """Direct logit effect of head ``head``'s output direction w_O through the unembedding: the ``k`` most
    promoted and most suppressed tokens (:func:`interp.core.readout.readout_frame`)."""
    if not 0 <= head < lorsa.cfg.n_ov_heads:
        raise IndexError(f"head={head} is out of range: this Lorsa has {lorsa.cfg.n_ov_heads} OV heads.")
    return readout_frame(model, direction_logits(model, lorsa.W_O[head].detach()), k)


# ----------------------------------------------------------------------------- head-type scores
def repeated_random_tokens(model: "HookedTransformer", n_seq: int, half: int, *, seed: int = 0,
                           bos_token_id: int | None = None) -> Int[Tensor, "n_seq ctx"]:
    """[BOS, r_1..r_half, r_1..r_half]: the standard induction probe (random non-special tokens)."""
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id if bos_token_id is not None else (tok.bos_token_id if tok is not None and tok.bos_token_id is not None else 0)
    g = torch.Generator().manual_seed(seed)
    low = min(model.cfg.d_vocab - 1, 3)
    r = torch.randint(low, model.cfg.d_vocab, (n_seq, half), generator=g)
    return torch.cat([torch.full((n_seq, 1), bos), r, r], dim=1)


@dataclass
class HeadScores:
    """Head-type scores for every Lorsa OV head and every host head at the same layer and inputs.

    - ``induction``: attention from the second copy of a repeated random sequence to the token
      after the earlier occurrence.
    - ``previous_token``: attention to t-1.  - ``sink``: attention to position 0 (BOS).
    - ``successor``: fraction of ordinal tokens whose OV readout ranks their successor first
      among the sequence's elements (host: W_V W_O; Lorsa: w_V w_O, the linear map).

    Host heads are averaged over positions; a Lorsa OV head reads its QK head's pattern weighted
    by its own activation, i.e. averaged over the tokens where it fires (NaN if it never fires).
    """

    lorsa: "object"  # pandas DataFrame, one row per OV head
    host: "object"  # pandas DataFrame, one row per host head

    def to_frame(self):
        import pandas as pd

        return pd.concat([self.lorsa.assign(source="lorsa"), self.host.assign(source="host")], ignore_index=True)

    def best(self, score: str = "induction") -> dict[str, float]:
        return {"lorsa": float(self.lorsa[score].max()), "host": float(self.host[score].max())}

    def plot(self, score: str = "induction"):
        """Histogram of a type score over the Lorsa heads with the host heads marked below
        (:func:`interp.lorsa.plots.head_scores_figure`)."""
        from interp.lorsa.plots import head_scores_figure

        return head_scores_figure(self, score)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s)}</td><td>{self.lorsa[s].max():.3f}</td><td>{self.host[s].max():.3f}</td></tr>"
            for s in ("induction", "previous_token", "sink", "successor")
        )
        return f"<table><tr><th>score</th><th>best Lorsa head</th><th>best host head</th></tr>{rows}</table>"


def _weighted(pattern_score: Float[Tensor, "batch n_qk pos"], z: Float[Tensor, "batch pos n_ov"], group: int,
              valid: Tensor) -> Tensor:
    """Mean of each OV head's QK-head score over positions, weighted by |activation| there."""
    per_ov = pattern_score.repeat_interleave(group, dim=1).transpose(1, 2)  # [batch, pos, n_ov]
    w = z.abs() * valid.unsqueeze(-1)
    total = w.sum((0, 1))
    return torch.where(total > 0, (per_ov * w).sum((0, 1)) / total.clamp_min(1e-12), torch.full_like(total, float("nan")))


@torch.no_grad()
def _successor_scores(model: "HookedTransformer", lorsa: Lorsa, layer: int) -> tuple[Tensor, Tensor]:
    """Successor score per Lorsa head and per host head (NaN without a tokenizer)."""
    n_host = model.cfg.n_heads
    tok = getattr(model, "tokenizer", None)
    nan = (torch.full((lorsa.cfg.n_ov_heads,), float("nan")), torch.full((n_host,), float("nan")))
    if tok is None:
        return nan
    seqs = []
    for words in ORDINAL_SEQUENCES.values():
        ids = []
        for w in words:
            t = model.to_tokens(" " + w, prepend_bos=False)[0]
            t = t if t.shape[0] == 1 else model.to_tokens(w, prepend_bos=False)[0]
            ids.append(int(t[0]) if t.shape[0] == 1 else None)
        ids = [i for i in ids if i is not None]
        if len(set(ids)) >= 3 and len(set(ids)) == len(ids):
            seqs.append(torch.tensor(ids))
    if not seqs:
        return nan
    host = host_attention(model, layer)
    dev = host.W_V.device
    hits_l, hits_h, total = 0, 0, 0
    for ids in seqs:
        e = model.W_E[ids.to(model.W_E.device)].float()
        if model.cfg.normalization_type in ("LN", "LNPre"):
            e = e - e.mean(-1, keepdim=True)
        if model.cfg.normalization_type is not None:
            e = e / (e.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()
        src, dst = torch.arange(len(ids) - 1), torch.arange(1, len(ids))
        # Lorsa: logits[i, token, candidate] restricted to the sequence's own tokens.
        e = e.to(dev)
        src, dst = src.to(dev), dst.to(dev)
        v = e @ lorsa.W_V.T.float().to(dev) + lorsa.b_V.float().to(dev)  # [tokens, n_ov]
        out = direction_logits(model, lorsa.W_O.float(), ids).to(dev)  # [n_ov, cand]
        logits_l = v.T[:, :, None] * out[:, None, :]  # [n_ov, tokens, cand]
        hits_l = hits_l + (logits_l[:, src].argmax(-1) == dst).float().sum(-1)
        vh = torch.einsum("td,hde->hte", e, host.W_V) + host.b_V[:, None]  # [heads, tokens, d_head]
        ov = torch.einsum("hte,hed->htd", vh, host.W_O)  # [heads, tokens, d_model]
        logits_h = direction_logits(model, ov, ids).to(dev)
        hits_h = hits_h + (logits_h[:, src].argmax(-1) == dst).float().sum(-1)
        total += len(src)
    return (hits_l / total).cpu(), (hits_h / total).cpu()


@torch.no_grad()
def head_scores(
    model: "HookedTransformer",
    lorsa: Lorsa,
    tokens: Int[Tensor, "n_seq ctx"] | None = None,
    *,
    n_random: int = 32,
    half: int = 32,
    seed: int = 0,
    bos_token_id: int | None = None,
) -> HeadScores:
    """Induction, previous-token, sink and successor scores for the Lorsa's heads and the host's
    heads at the Lorsa's layer. Induction uses repeated random sequences; previous-token and sink
    use ``tokens`` (natural text; the repeated sequences when None).

    Example:
        >>> s = head_scores(model, lorsa, tokens[:32])  # doctest: +SKIP
        >>> s.best("induction")                         # doctest: +SKIP
    """
    import pandas as pd

    lorsa.check_host(model)
    layer = lorsa.cfg.layer
    dev = model.cfg.device
    G = lorsa.cfg.group_size
    hook_pat = f"blocks.{layer}.attn.hook_pattern"

    def run(toks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, cache = model.run_with_cache(toks.to(dev), names_filter=[lorsa.cfg.hook_in, hook_pat], stop_at_layer=layer + 1)
        x = cache[lorsa.cfg.hook_in].float()
        return cache[hook_pat].float(), lorsa.attention_pattern(x), lorsa.encode(x)

    half = min(half, (model.cfg.n_ctx - 1) // 2)  # both copies and BOS must fit the context
    rep = repeated_random_tokens(model, n_random, half, seed=seed, bos_token_id=bos_token_id)
    host_p, lor_p, z = run(rep)
    ctx = rep.shape[1]
    t = torch.arange(half + 1, ctx, device=dev)  # second copy; target is the token after the earlier occurrence
    valid = torch.zeros(ctx, dtype=torch.bool, device=dev)
    valid[t] = True
    target = torch.zeros(ctx, dtype=torch.long, device=dev)
    target[t] = t - half + 1
    ind_host = host_p.gather(-1, target.view(1, 1, ctx, 1).expand(*host_p.shape[:3], 1))[..., 0]
    ind_lor = lor_p.gather(-1, target.view(1, 1, ctx, 1).expand(*lor_p.shape[:3], 1))[..., 0]
    induction_host = ind_host[..., valid].mean((0, 2))
    induction_lorsa = _weighted(ind_lor, z, G, valid.expand(rep.shape[0], -1))

    natural = tokens if tokens is not None else rep
    host_p, lor_p, z = run(natural)
    ctx = natural.shape[1]
    valid = torch.ones(natural.shape, dtype=torch.bool, device=dev)
    valid[:, :2] = False  # position 0 is BOS and position 1 can only attend to it and itself
    prev_host = torch.diagonal(host_p, offset=-1, dim1=-2, dim2=-1)  # [b, h, ctx-1] = A[t, t-1] for t>=1
    prev_lor = torch.diagonal(lor_p, offset=-1, dim1=-2, dim2=-1)
    pad = lambda p: torch.cat([p.new_zeros(*p.shape[:2], 1), p], dim=-1)  # noqa: E731 (align to t)
    previous_host = pad(prev_host)[..., 2:].mean((0, 2))
    previous_lorsa = _weighted(pad(prev_lor), z, G, valid)
    sink_host = host_p[..., 2:, 0].mean((0, 2))
    sink_lorsa = _weighted(lor_p[..., 0], z, G, valid)
    succ_lorsa, succ_host = _successor_scores(model, lorsa, layer)

    lor = pd.DataFrame({"head": range(lorsa.cfg.n_ov_heads), "qk_head": [i // G for i in range(lorsa.cfg.n_ov_heads)],
                        "induction": induction_lorsa.cpu().numpy(), "previous_token": previous_lorsa.cpu().numpy(),
                        "sink": sink_lorsa.cpu().numpy(), "successor": succ_lorsa.numpy()})
    host_df = pd.DataFrame({"head": range(model.cfg.n_heads), "induction": induction_host.cpu().numpy(),
                            "previous_token": previous_host.cpu().numpy(), "sink": sink_host.cpu().numpy(),
                            "successor": succ_host.numpy()})
    return HeadScores(lorsa=lor, host=host_df)


def head_loss_attribution(
    model: "HookedTransformer",
    lorsa: Lorsa,
    tokens: Int[Tensor, "n_seq ctx"],
    *,
    batch_size: int = 16,
    bos_token_id: int | None = None,
    progress: bool = True,
) -> Float[Tensor, " n_ov"]:
    """Per-head loss contribution, first order: with the Lorsa spliced in, removing head i's output
    z_i w_O changes the mean next-token loss by about -(dL/dy . z_i w_O). Positive: the head helps.
    One backward pass per batch (exact ablation of every head would cost n_ov forward passes).
    """
    lorsa.check_host(model)
    dev = model.cfg.device
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id if bos_token_id is not None else (tok.bos_token_id if tok is not None else None)
    total = torch.zeros(lorsa.cfg.n_ov_heads, dtype=torch.float64, device=dev)
    n_batches = 0
    for start in tqdm(range(0, tokens.shape[0], batch_size), desc="loss attribution", disable=not progress):
        toks = tokens[start : start + batch_size].to(dev)
        mask = token_mask(toks, bos_token_id=bos).unsqueeze(-1)
        store: dict[str, Tensor] = {}

        def grab(act, hook):
            store["x"] = act.detach()

        def splice(act, hook):
            z = lorsa.encode(store["x"].float()).detach()
            y = (lorsa.decode(z)).to(act.dtype).detach().requires_grad_(True)
            store.update(z=z, y=y)
            return torch.where(mask, y, act)

        with torch.enable_grad():
            loss = model.run_with_hooks(toks, return_type="loss", fwd_hooks=[(lorsa.cfg.hook_in, grab), (lorsa.cfg.hook_out, splice)])
            (grad,) = torch.autograd.grad(loss, store["y"])
        # d loss for removing head i = -(grad . z_i w_O) summed over tokens
        proj = grad.float() @ lorsa.W_O.detach().float().T  # [b, ctx, n_ov]
        total -= (proj * store["z"]).sum((0, 1)).double()
        n_batches += 1
    return (total / max(n_batches, 1)).float().cpu()
