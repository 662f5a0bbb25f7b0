"""Interpreting Lorsa heads: top-activating contexts, z-patterns, OV readout, and head-type scores
(induction, previous-token, attention sink, successor) computed the same way for Lorsa heads and
for the host's own attention heads, so the two can be compared.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.activations import fast_activations
from interp.core.progress import bar_disabled
from interp.core.readout import direction_logits, readout_frame
from interp.core.tokens import Truncation, check_tokens, token_mask
from interp.core.validate import Check
from interp.lorsa.config import LorsaConfigError
from interp.lorsa.model import Lorsa

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = [
    "TopContexts", "top_contexts", "ov_readout", "HeadScores", "head_scores", "ORDINAL_SEQUENCES", "Weighting",
    "SuccessorProbe", "successor_probe", "repeated_random_tokens", "context_strings", "head_loss_attribution",
    "ZPattern", "context_z_pattern",
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

    def __repr__(self) -> str:
        n, k = self.values.shape
        fired = int((self.frequency > 0).sum())
        return f"TopContexts({n} heads x top-{k}, {fired} heads fired, over {self.tokens.shape[0]} sequences)"

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(repr(self))}</b>" + \
            self.to_frame().sort_values("frequency", ascending=False).head(20).to_html(index=False)


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
    truncate: Truncation | None = None,
) -> TopContexts:
    """Stream ``tokens`` through the host and the Lorsa, keeping each head's ``k`` largest
    activations (memory: n_ov x k plus one batch). Signed heads are ranked by |z|.

    Example:
        >>> tops = top_contexts(model, lorsa, tokens, k=8)  # doctest: +SKIP
        >>> tops.for_head(17)                               # doctest: +SKIP
    """
    c = Check("top_contexts", LorsaConfigError)
    c.instance("lorsa", Lorsa, lorsa)
    lorsa.check_host(model)
    tokens = check_tokens(model, tokens, what="top_contexts's tokens", truncate=truncate)
    c.integer("k", k, min=1)
    c.integer("batch_size", batch_size, min=1)
    c.integer("bos_token_id", bos_token_id, min=0, max=int(model.cfg.d_vocab) - 1, optional=True)
    c.boolean("progress", progress)
    n = lorsa.cfg.n_ov_heads
    dev = model.cfg.device
    best_v = torch.zeros(n, k, device=dev)
    best_i = torch.full((n, k), -1, dtype=torch.long, device=dev)
    fires = torch.zeros(n, device=dev)
    count = 0
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id if bos_token_id is not None else (tok.bos_token_id if tok is not None else None)
    ctx = tokens.shape[1]
    for start in tqdm(range(0, tokens.shape[0], batch_size), desc="top contexts", disable=bar_disabled(progress)):
        toks = tokens[start : start + batch_size].to(dev)
        x = fast_activations(model, toks, [lorsa.cfg.hook_in], batch_size=batch_size)[lorsa.cfg.hook_in]
        z = lorsa.encode(x.float())
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
    if count == 0:
        raise LorsaConfigError("No token to rank: every position of the tokens is BOS. Pass sequences with real tokens "
                               "after BOS.")
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
        """Heatmap of the pattern (:func:`interp.lorsa.plots.z_pattern_figure`)."""
        from interp.lorsa.plots import z_pattern_figure

        return z_pattern_figure(self)

    def to_frame(self):
        """Long table: one row per (query, source) with both tokens' labels and the entry."""
        import pandas as pd

        n = len(self.labels)
        q, k = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        return pd.DataFrame({"query": [self.labels[i] for i in q.reshape(-1).tolist()],
                             "source": [self.labels[j] for j in k.reshape(-1).tolist()],
                             "z": self.values.reshape(-1).tolist()})

    def _repr_html_(self) -> str:
        top = self.to_frame().assign(abs_z=lambda f: f.z.abs()).nlargest(10, "abs_z").drop(columns="abs_z")
        return f"<b>{html.escape(repr(self))}</b>" + top.to_html(index=False, float_format=lambda x: f"{x:.4g}")

    def __repr__(self) -> str:
        return f"ZPattern(head={self.head}, layer={self.layer}, window={len(self.labels)}, query position={self.position})"


@torch.no_grad()
def context_z_pattern(model: "HookedTransformer", lorsa: Lorsa, tokens: Int[Tensor, "n_seq ctx"], seq: int, pos: int,
                      head: int, *, window: int = 24) -> ZPattern:
    """The z-pattern of ``head`` on ``tokens[seq, :pos+1]``, cut to the last ``window`` positions (the
    host runs up to the Lorsa's layer only)."""
    from interp.viz.display import visible_token

    c = Check("context_z_pattern", LorsaConfigError)
    lorsa.check_host(model)
    tokens = check_tokens(model, tokens, what="context_z_pattern's tokens")
    c.integer("seq", seq, min=0, max=tokens.shape[0] - 1)
    c.integer("pos", pos, min=0, max=tokens.shape[1] - 1)
    c.integer("head", head, min=0, max=lorsa.cfg.n_ov_heads - 1)
    c.integer("window", window, min=1)
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
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < lorsa.cfg.n_ov_heads:
        raise IndexError(f"head={head!r} is out of range: this Lorsa has {lorsa.cfg.n_ov_heads} OV heads.")
    lorsa.check_host(model)
    Check("ov_readout", LorsaConfigError).integer("k", k, min=1, max=int(model.cfg.d_vocab))
    return readout_frame(model, direction_logits(model, lorsa.W_O[head].detach()), k)


# ----------------------------------------------------------------------------- head-type scores
Weighting = Literal["output", "uniform"]
"""How a head's per-position values become one score, the same way for host and Lorsa heads.

``output``: weighted by the norm of what the head writes at each position (host head h:
||z_h(t) W_O^h||; Lorsa OV head i: |z_i(t)| ||w_O^i||), so a score describes the positions where the
head acts; a Lorsa head that never fires on the probe gets NaN. ``uniform``: a plain mean over the
probe positions (a Lorsa OV head then shares its QK head's attention scores)."""


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
class SuccessorProbe:
    """Ordinal sequences in context: ``tokens`` [n_seq, ctx] (BOS first, padded with ``pad``), the
    positions ``pos`` (per sequence) that predict a next element, its id ``target``, and each
    sequence's element ids ``candidates`` (padded with -1)."""

    tokens: Int[Tensor, "n_seq ctx"]
    pos: Int[Tensor, "n_seq n_pred"]
    target: Int[Tensor, "n_seq n_pred"]
    valid: Tensor
    candidates: Int[Tensor, "n_seq n_cand"]


def successor_probe(model: "HookedTransformer", sequences: dict[str, list[str]] | None = None,
                    separator: str = ", ") -> SuccessorProbe | None:
    """Each ordinal sequence written out as ``"a, b, c, ..."``; at the token before every element
    after the first, the next element is the successor. Only elements that are one token in context
    count (elements split into several tokens are skipped); None without a tokenizer."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return None
    sequences = sequences or ORDINAL_SEQUENCES
    rows, preds, targets, cands = [], [], [], []
    for words in sequences.values():
        ids = model.to_tokens(separator.join(words), prepend_bos=True)[0].tolist()
        p_list, t_list, elems = [], [], {}
        for k in range(1, len(words)):
            prefix = model.to_tokens(separator.join(words[:k]) + separator.rstrip(), prepend_bos=True)[0].tolist()
            if ids[: len(prefix)] != prefix:
                continue
            p = len(prefix)
            while p < len(ids) and model.to_string(torch.tensor([ids[p]])).strip() == "":
                p += 1  # a separator token of its own (e.g. a space before a digit)
            if p >= len(ids) or model.to_string(torch.tensor([ids[p]])).strip() != words[k]:
                continue  # not a single token here
            p_list.append(p - 1)
            t_list.append(ids[p])
            elems[ids[p]] = True
        if len(p_list) >= 2 and len(elems) == len(p_list):
            rows.append(ids)
            preds.append(p_list)
            targets.append(t_list)
            cands.append(list(elems))
    if not rows:
        return None
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0

    def stack(lists: list[list[int]], fill: int) -> Tensor:
        width = max(len(x) for x in lists)
        return torch.tensor([x + [fill] * (width - len(x)) for x in lists], dtype=torch.long)

    pos = stack(preds, 0)
    valid = stack([[1] * len(p) for p in preds], 0).bool()
    return SuccessorProbe(stack(rows, pad), pos, stack(targets, 0), valid, stack(cands, -1))


@dataclass
class HeadScores:
    """Head-type scores for every Lorsa OV head and every host head at the same layer, on the same
    probes and positions, with the same :data:`Weighting` for both.

    - ``induction``: on repeated random sequences, attention from each position of the second copy
      to the token after its earlier occurrence.
    - ``previous_token``: attention to t-1.  - ``sink``: attention to position 0 (BOS).
    - ``successor``: on ordinal sequences in context (``"Monday, Tuesday, ..."``), whether the head's
      direct logit effect at a position that predicts the next element ranks that element first
      among the sequence's elements.
    - ``support``: share of the induction probe's positions where the head writes anything (host 1).
    """

    lorsa: "object"  # pandas DataFrame, one row per OV head
    host: "object"  # pandas DataFrame, one row per host head
    weighting: str = "output"

    def to_frame(self):
        import pandas as pd

        return pd.concat([self.lorsa.assign(source="lorsa"), self.host.assign(source="host")], ignore_index=True)

    def best(self, score: str = "induction", min_support: float = 0.0) -> dict[str, float]:
        """Best Lorsa and best host score; ``min_support`` ignores Lorsa heads that fire on fewer of
        the induction probe's positions."""
        lor = self.lorsa[self.lorsa["support"] >= min_support] if min_support > 0 else self.lorsa
        return {"lorsa": float(lor[score].max()), "host": float(self.host[score].max())}

    def best_head(self, score: str = "induction", min_support: float = 0.0) -> int:
        """Index of the Lorsa head with the highest ``score`` (among those with ``min_support``)."""
        lor = self.lorsa[self.lorsa["support"] >= min_support] if min_support > 0 else self.lorsa
        return int(lor["head"].iloc[int(lor[score].fillna(-1e9).to_numpy().argmax())])

    def plot(self, score: str = "induction"):
        """Histogram of a type score over the Lorsa heads with the host heads marked below
        (:func:`interp.lorsa.plots.head_scores_figure`)."""
        from interp.lorsa.plots import head_scores_figure

        return head_scores_figure(self, score)

    def __repr__(self) -> str:
        return (f"HeadScores({len(self.lorsa)} Lorsa heads, {len(self.host)} host heads, {self.weighting}-weighted; "
                f"best induction {self.best('induction')})")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s)}</td><td>{self.lorsa[s].max():.3f}</td><td>{self.host[s].max():.3f}</td></tr>"
            for s in ("induction", "previous_token", "sink", "successor")
        )
        return (f"<table><tr><th>score ({self.weighting}-weighted)</th><th>best Lorsa head</th><th>best host head</th></tr>"
                f"{rows}</table>")


def _weighted_mean(values: Float[Tensor, "batch pos heads"], weight: Float[Tensor, "batch pos heads"],
                   valid: Tensor) -> Float[Tensor, " heads"]:
    """Per head, sum(w * value) / sum(w) over valid positions; NaN where a head has no weight there."""
    w = weight * valid.unsqueeze(-1).to(weight.dtype)
    total = w.sum((0, 1))
    return torch.where(total > 0, (values * w).sum((0, 1)) / total.clamp_min(1e-30), torch.full_like(total, float("nan")))


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
    weighting: Weighting = "output",
    successor: SuccessorProbe | None = None,
) -> HeadScores:
    """Induction, previous-token, sink and successor scores for the Lorsa's heads and the host's
    heads at the Lorsa's layer, like for like: the same probes, the same positions and the same
    :data:`Weighting` for both. Induction uses repeated random sequences; previous-token and sink use
    ``tokens`` (natural text; the repeated sequences when None); successor uses ordinal sequences
    in context (``successor``, by default :func:`successor_probe` of :data:`ORDINAL_SEQUENCES`; NaN
    without a tokenizer).

    Example:
        >>> s = head_scores(model, lorsa, tokens[:32])  # doctest: +SKIP
        >>> s.best("induction")                         # doctest: +SKIP
    """
    import pandas as pd

    c = Check("head_scores", LorsaConfigError)
    if weighting not in ("output", "uniform"):
        c.fail("weighting", weighting, "'output' or 'uniform'")
    lorsa.check_host(model)
    c.integer("n_random", n_random, min=1)
    c.integer("half", half, min=2, fix="Each random half needs at least two tokens for an induction target.")
    c.integer("seed", seed, min=0)
    c.integer("bos_token_id", bos_token_id, min=0, max=int(model.cfg.d_vocab) - 1, optional=True)
    if tokens is not None:
        tokens = check_tokens(model, tokens, what="head_scores's tokens", min_len=3)
    layer = lorsa.cfg.layer
    dev = model.cfg.device
    G = lorsa.cfg.group_size
    hook_pat, hook_z = f"blocks.{layer}.attn.hook_pattern", f"blocks.{layer}.attn.hook_z"
    W_O_host = model.blocks[layer].attn.W_O.float()  # [heads, d_head, d_model]
    w_o_norm = lorsa.W_O.float().norm(dim=-1)

    def run(toks: Tensor) -> dict[str, Tensor]:
        """Per-position quantities of both head families: patterns [b, heads, q, k] and what each head
        writes ([b, pos, heads, d_model] for the host, z [b, pos, n_ov] for the Lorsa)."""
        _, cache = model.run_with_cache(toks.to(dev), names_filter=[lorsa.cfg.hook_in, hook_pat, hook_z],
                                        stop_at_layer=layer + 1)
        x = cache[lorsa.cfg.hook_in].float()
        out_host = torch.einsum("bphe,hem->bphm", cache[hook_z].float(), W_O_host)
        z = lorsa.encode(x)
        if weighting == "output":
            w_host, w_lor = out_host.norm(dim=-1), z.abs() * w_o_norm
        else:
            w_host, w_lor = torch.ones_like(out_host[..., 0]), torch.ones_like(z)
        return dict(host_p=cache[hook_pat].float(), lor_p=lorsa.attention_pattern(x), out_host=out_host, z=z,
                    w_host=w_host, w_lor=w_lor)

    def per_position(pattern: Tensor, key: Tensor) -> Tensor:
        """pattern[b, h, t, key[t]] as [b, t, h] (key: [ctx] source position per query position)."""
        idx = key.view(1, 1, -1, 1).expand(*pattern.shape[:3], 1)
        return pattern.gather(-1, idx)[..., 0].transpose(1, 2)

    def both(r: dict[str, Tensor], key: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        host = _weighted_mean(per_position(r["host_p"], key), r["w_host"], valid)
        lor = _weighted_mean(per_position(r["lor_p"], key).repeat_interleave(G, dim=-1), r["w_lor"], valid)
        return host, lor

    half = min(half, (model.cfg.n_ctx - 1) // 2)  # both copies and BOS must fit the context
    rep = repeated_random_tokens(model, n_random, half, seed=seed, bos_token_id=bos_token_id)
    r = run(rep)
    ctx = rep.shape[1]
    pos = torch.arange(ctx, device=dev)
    target = torch.where(pos > half, pos - half + 1, torch.zeros_like(pos))  # the token after the earlier occurrence
    valid = (pos > half).expand(rep.shape[0], -1)
    induction_host, induction_lorsa = both(r, target, valid)
    support = ((r["z"] != 0) & valid.unsqueeze(-1)).float().sum((0, 1)) / valid.sum()

    natural = tokens if tokens is not None else rep
    r = run(natural)
    pos = torch.arange(natural.shape[1], device=dev)
    valid = (pos >= 2).expand(natural.shape[0], -1)  # position 0 is BOS, position 1 sees only BOS and itself
    previous_host, previous_lorsa = both(r, (pos - 1).clamp_min(0), valid)
    sink_host, sink_lorsa = both(r, torch.zeros_like(pos), valid)

    succ_host = torch.full((model.cfg.n_heads,), float("nan"), device=dev)
    succ_lorsa = torch.full((lorsa.cfg.n_ov_heads,), float("nan"), device=dev)
    probe = successor if successor is not None else successor_probe(model)
    if probe is not None:
        r = run(probe.tokens)
        # the effective unembedding (final norm weight folded in): the logits of the unit directions
        W_U = direction_logits(model, torch.eye(model.cfg.d_model, device=dev)).to(dev)  # [d_model, vocab]
        b_idx = torch.arange(probe.pos.shape[0], device=dev)[:, None]
        p = probe.pos.to(dev)
        cand = probe.candidates.to(dev)
        cand_ok = cand >= 0
        W_c = W_U[:, cand.clamp_min(0)].permute(1, 0, 2)  # [n_seq, d_model, n_cand]
        # direct logit effect on the sequence's own elements at each predicting position
        dla_host = torch.einsum("bphm,bmc->bphc", r["out_host"][b_idx, p], W_c)
        dla_lor = r["z"][b_idx, p][..., None] * torch.einsum("im,bmc->bic", lorsa.W_O.float(), W_c)[:, None]
        mask = ~cand_ok[:, None, None, :]
        want = (cand[:, None, :] == probe.target.to(dev)[..., None]).float().argmax(-1)  # [n_seq, n_pred]

        def hits(dla: Tensor) -> Tensor:
            return (dla.masked_fill(mask, float("-inf")).argmax(-1) == want[..., None]).float()  # [b, n_pred, heads]

        ok = probe.valid.to(dev)
        succ_host = _weighted_mean(hits(dla_host), r["w_host"][b_idx, p], ok)
        succ_lorsa = _weighted_mean(hits(dla_lor), r["w_lor"][b_idx, p], ok)

    n_ov = lorsa.cfg.n_ov_heads
    lor = pd.DataFrame({"head": range(n_ov), "qk_head": [i // G for i in range(n_ov)],
                        "induction": induction_lorsa.cpu().numpy(), "previous_token": previous_lorsa.cpu().numpy(),
                        "sink": sink_lorsa.cpu().numpy(), "successor": succ_lorsa.cpu().numpy(),
                        "support": support.cpu().numpy()})
    host_df = pd.DataFrame({"head": range(model.cfg.n_heads), "induction": induction_host.cpu().numpy(),
                            "previous_token": previous_host.cpu().numpy(), "sink": sink_host.cpu().numpy(),
                            "successor": succ_host.cpu().numpy(), "support": 1.0})
    return HeadScores(lorsa=lor, host=host_df, weighting=weighting)


def head_loss_attribution(
    model: "HookedTransformer",
    lorsa: Lorsa,
    tokens: Int[Tensor, "n_seq ctx"],
    *,
    batch_size: int = 16,
    bos_token_id: int | None = None,
    progress: bool = True,
    truncate: Truncation | None = None,
) -> Float[Tensor, " n_ov"]:
    """Per-head loss contribution, first order: with the Lorsa spliced in, removing head i's output
    z_i w_O changes the mean next-token loss by about -(dL/dy . z_i w_O). Positive: the head helps.
    One backward pass per batch (exact ablation of every head would cost n_ov forward passes).
    """
    c = Check("head_loss_attribution", LorsaConfigError)
    lorsa.check_host(model)
    tokens = check_tokens(model, tokens, what="head_loss_attribution's tokens", truncate=truncate, min_len=2)
    c.integer("batch_size", batch_size, min=1)
    c.integer("bos_token_id", bos_token_id, min=0, max=int(model.cfg.d_vocab) - 1, optional=True)
    c.boolean("progress", progress)
    dev = model.cfg.device
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id if bos_token_id is not None else (tok.bos_token_id if tok is not None else None)
    total = torch.zeros(lorsa.cfg.n_ov_heads, dtype=torch.float64, device=dev)
    n_batches = 0
    for start in tqdm(range(0, tokens.shape[0], batch_size), desc="loss attribution", disable=bar_disabled(progress)):
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
