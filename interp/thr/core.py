"""Token hidden reward (THR): the first-order effect of one token's GRPO update on the
likelihood of the group's correct responses, computed exactly through the unembedding.

Implements the definition of Deng et al., "Token Hidden Reward" (arXiv 2510.03669), in the form
of its predecessor NTHR (arXiv 2505.18830): THR_{j,k} = A_j * g_{j,k}^T M h_{j,k} with
M = sum over correct responses of g h^T. Framework-free: tensors in, tensors out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.errors import InterpConfigError
from interp.core.validate import Check
from interp.thr.logprobs import OutputHead, token_logprobs

__all__ = [
    "Vocab",
    "Normalize",
    "THRInputError",
    "group_advantages",
    "token_hidden_reward",
    "thr_weights",
    "dominant_threshold",
]

Vocab = Literal["group", "full"]
"""Which vocabulary the prediction errors g = onehot(y) - q live in.

- ``"group"``: only the ids generated somewhere in the group (NTHR's restriction; q still comes
  from a full-vocabulary log-sum-exp). Cheap; ignores the error mass on never-sampled ids.
- ``"full"``: the whole vocabulary; exact first-order change (checked by finite differences).
"""

Normalize = Literal["token", "sequence"]
"""How the GRPO loss weighs a token: ``"token"`` weight A_j (token-mean aggregation, DAPO,
Dr.GRPO), ``"sequence"`` weight A_j / |y_j| (the original GRPO per-sequence mean)."""

_STD_EPS = 1e-6
_GRAM_MAX_FLOATS = 64 * 2**20  # the token-pair order holds two B x N x N_c matrices: at most 256 MiB of floats
_ONE_PER_GROUP = ("THR compares the responses of a group: a group of one response has no advantage, so every THR "
                  "would be 0. Sample several responses per prompt (e.g. group_size=8).")


class THRInputError(InterpConfigError):
    """A THR / GRPO config field or an input that cannot work (inconsistent shapes, out-of-range values,
    degenerate groups); the message says what and how to fix it."""


def group_advantages(
    rewards: Float[Tensor, "n"], *, group_size: int | None = None, scale: bool = True
) -> Float[Tensor, "n"]:
    """GRPO advantages: A_i = (r_i - mean_group r) / std_group r.

    The std is the population std (divide by G), so a binary group with success rate p gives
    correct responses sqrt((1-p)/p) and wrong ones -sqrt(p/(1-p)). ``scale=False`` drops the
    division (Dr.GRPO). Rewards may be any real numbers; a group whose rewards are all equal
    (std < 1e-6) gets zero advantages.

    >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0])).tolist()  # doctest: +ELLIPSIS
    [1.73..., -0.57..., -0.57..., -0.57...]
    """
    r = torch.as_tensor(rewards, dtype=torch.float32)
    g = r.numel() if group_size is None else group_size
    if r.ndim != 1 or g <= 0 or r.numel() % g:
        raise THRInputError(
            f"rewards must be a 1-D tensor whose length is a multiple of group_size; got shape "
            f"{tuple(r.shape)} with group_size={group_size}."
        )
    if not torch.isfinite(r).all():
        raise THRInputError("rewards contain NaN or inf; give every response a finite reward.")
    rg = r.view(-1, g)
    centred = rg - rg.mean(dim=1, keepdim=True)
    std = rg.std(dim=1, unbiased=False, keepdim=True)
    flat = std < _STD_EPS
    adv = centred / std.clamp_min(_STD_EPS) if scale else centred
    return torch.where(flat, torch.zeros_like(adv), adv).view(-1)


def _check_inputs(
    hidden: Sequence[Tensor], logits: Sequence[Tensor] | None, tokens: Sequence[Tensor], rewards: Tensor,
    group_size: int | None, temperature: float, head: OutputHead | None = None,
) -> int:
    n = len(hidden)
    if (logits is None) == (head is None):
        raise THRInputError("Pass either the logits of every response or the model's output head (head=...), "
                            "not both and not neither.")
    if logits is None:  # the head makes the logits: check them as if they had been passed
        logits = [h.new_empty(h.shape[0], head.vocab_size) if h.ndim == 2 else h for h in hidden]
        if hidden and hidden[0].shape[-1] != head.weight.shape[-1]:
            raise THRInputError(f"hidden states have width {hidden[0].shape[-1]} but the head reads vectors of "
                                f"width {head.weight.shape[-1]}.")
    if not (len(logits) == n and len(tokens) == n):
        raise THRInputError(
            f"hidden, logits and tokens must hold one entry per response; got {len(hidden)}, "
            f"{len(logits)} and {len(tokens)}."
        )
    if n == 0:
        raise THRInputError("No responses given: pass at least one group of responses.")
    if rewards.ndim != 1 or rewards.numel() != n:
        raise THRInputError(
            f"rewards must have one value per response: {n} responses but rewards of shape "
            f"{tuple(rewards.shape)}."
        )
    g = n if group_size is None else int(group_size)
    if g <= 0 or n % g:
        raise THRInputError(
            f"{n} responses cannot be split into groups of {group_size}: responses must come as "
            "contiguous groups of group_size (all samples of one prompt together)."
        )
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise THRInputError(
            f"temperature must be a finite number > 0 (the sampling temperature); got {temperature!r}."
        )
    vocab_sizes = {lg.shape[-1] for lg in logits}
    dims = {h.shape[-1] for h in hidden}
    if len(vocab_sizes) > 1 or len(dims) > 1:
        raise THRInputError(
            f"All responses must share the vocabulary and hidden width; got vocab sizes {sorted(vocab_sizes)} "
            f"and hidden widths {sorted(dims)}."
        )
    V = vocab_sizes.pop()
    for j, (h, lg, t) in enumerate(zip(hidden, logits, tokens)):
        if h.ndim != 2 or lg.ndim != 2 or t.ndim != 1:
            raise THRInputError(
                f"Response {j}: expected hidden [T, d], logits [T, V] and tokens [T]; got shapes "
                f"{tuple(h.shape)}, {tuple(lg.shape)} and {tuple(t.shape)}."
            )
        if not (h.shape[0] == lg.shape[0] == t.shape[0]):
            raise THRInputError(
                f"Response {j}: mismatched lengths, hidden has {h.shape[0]} positions, logits {lg.shape[0]}, "
                f"tokens {t.shape[0]}. hidden[j] and logits[j] must be the states/logits that predict "
                "each generated token (drop the prompt positions and the position after the last token)."
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= V):
            raise THRInputError(f"Response {j}: token ids must lie in [0, {V}); got {int(t.min())}..{int(t.max())}.")
        if not torch.isfinite(h).all():
            raise THRInputError(f"Response {j}: hidden states contain NaN or inf.")
    return g


def _use_pair_order(B: int, n_rows: int, n_corr_rows: int, n_cols: int, d: int, T: int, exclude_self: bool) -> bool:
    """True when the token-pair (Gram) order costs fewer multiply-adds than the M order and its ``[B, N, N_c]``
    matrices fit in ``_GRAM_MAX_FLOATS``. The M order pays ``(N_c + N) d`` per column (plus ``N_c T`` per column
    and ``N_c T d`` once for ``exclude_self``), the Gram order ``N N_c`` per column plus ``N N_c d`` once."""
    m_order = (n_corr_rows + n_rows) * d * n_cols
    if exclude_self:
        m_order += n_corr_rows * T * (n_cols + d)
    return n_rows * n_corr_rows * (n_cols + d) < m_order and 2 * B * n_rows * n_corr_rows <= _GRAM_MAX_FLOATS


def _pack(rows: Sequence[Tensor], n_groups: int, G: int, T: int, width: int, device, fill=0.0, dtype=torch.float32):
    shape = (n_groups, G, T, width) if width else (n_groups, G, T)
    if all(x.shape[0] == T for x in rows):  # no padding: one copy, no fill
        return torch.stack([x.to(device=device, dtype=dtype) for x in rows]).view(shape)
    out = torch.full(shape, fill, dtype=dtype, device=device)
    for j, x in enumerate(rows):
        if x.shape[0]:
            out[j // G, j % G, : x.shape[0]] = x.to(dtype)
    return out


@torch.no_grad()
def token_hidden_reward(
    hidden: Sequence[Float[Tensor, "T d"]],
    logits: Sequence[Float[Tensor, "T V"]] | None,
    tokens: Sequence[Int[Tensor, "T"]],
    rewards: Float[Tensor, "n"] | Sequence[float],
    *,
    vocab: Vocab = "group",
    temperature: float = 1.0,
    normalize: Normalize = "token",
    group_size: int | None = None,
    exclude_self: bool = False,
    scale_rewards: bool = True,
    chunk_size: int = 4096,
    softcap: float = 0.0,
    head: OutputHead | None = None,
    lse: Sequence[Float[Tensor, "T"]] | None = None,
) -> list[Float[Tensor, "T"]]:
    """THR of every generated token, for one group or for many contiguous groups.

    ``THR_{j,k} = w_j * s_{j,k}`` with ``s_{j,k} = g_{j,k}^T M h_{j,k} / temperature^2``,
    ``M = sum_{i in C} sum_k' g_{i,k'} h_{i,k'}^T``, ``g = onehot(y) - softmax(logits / temperature)``
    and ``w_j = A_j`` (``normalize="token"``) or ``A_j / |y_j|`` (``"sequence"``). This equals the
    first-order change of ``sum_{i in C} log pi(y_i)`` (the correct responses' log-likelihood)
    per unit learning rate when one SGD step is taken on the unembedding for token (j,k)'s loss
    ``-w_j log pi(y_{j,k})`` (exactly so for ``vocab="full"``; the 1/temperature^2 comes from
    logits = W h / temperature and only rescales).

    The set C of "correct" responses is those with positive advantage: the responses with
    reward 1 for binary rewards, those above the group mean for real-valued rewards. Advantages
    are ``group_advantages(rewards, scale=scale_rewards)`` (population std; ``scale_rewards=False``
    for Dr.GRPO); groups whose rewards are all equal carry no signal and get zeros.

    Args:
        hidden: per response, the final hidden states that predict each generated token (the
            unembedding's input, after the final norm), ``[T_j, d]``.
        logits: per response, the old policy's raw logits at those positions, ``[T_j, V]``; or None with
            ``head``, and then the logits are made from ``hidden`` a chunk of columns at a time (no
            ``[T, V]`` tensor is ever held: what GRPO scoring uses at real vocabulary sizes).
        tokens: per response, the generated ids, ``[T_j]``.
        rewards: one reward per response.
        vocab: ``"group"`` or ``"full"``, see :data:`Vocab`.
        temperature: sampling temperature; q = softmax(logits / temperature).
        normalize: ``"token"`` or ``"sequence"``, see :data:`Normalize`.
        group_size: responses per prompt when several groups are passed back to back
            (``None``: all responses form one group).
        exclude_self: leave a correct token's own response out of M (s uses M - M_j). The self
            term otherwise dominates correct responses' THR (see the brief); this measures only
            the effect on the *other* correct responses, and is no longer the exact derivative of
            the full correct-set likelihood.
        softcap: with ``logits``, the model's final logit soft-cap c (Gemma-2; 0 = none; with ``head``,
            the head's own soft-cap is used). The logits are then
            c tanh(W h / c), so the error each token sends back to the unembedding is
            g * (1 - (logits / c)^2); with it THR stays the exact first-order change.
        chunk_size: vocabulary columns processed at once; bounds memory at
            O(groups * G * T * chunk + groups * chunk * d) floats, plus O(groups * G * T^2) with
            ``exclude_self`` (the log-sum-exp pass reads blocks of whole rows of about chunk_size * 1024
            logits).
        head: the model's output head (:func:`interp.thr.logprobs.output_head`), instead of ``logits``.
        lse: with ``head``, the per-token ``logsumexp(logits / temperature)`` when the caller already has
            it (GRPO scoring computes it with the log-probabilities); computed here otherwise.

    Returns:
        One float32 tensor ``[T_j]`` per response, on the device of ``hidden``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> H = [torch.randn(5, 16, generator=g) for _ in range(4)]
        >>> L = [torch.randn(5, 50, generator=g) for _ in range(4)]
        >>> Y = [torch.randint(0, 50, (5,), generator=g) for _ in range(4)]
        >>> thr = token_hidden_reward(H, L, Y, torch.tensor([1.0, 0.0, 1.0, 0.0]), vocab="full")
        >>> [t.shape for t in thr][:2]
        [torch.Size([5]), torch.Size([5])]
    """
    c = Check("token_hidden_reward", THRInputError)
    c.integer("chunk_size", chunk_size, min=1, fix="Vocabulary columns processed at once, e.g. 4096.")
    c.integer("group_size", group_size, min=2, optional=True, fix=_ONE_PER_GROUP)
    c.boolean("exclude_self", exclude_self)
    c.boolean("scale_rewards", scale_rewards)
    if vocab not in ("group", "full"):
        raise THRInputError(f"vocab must be 'group' or 'full'; got {vocab!r}.")
    if normalize not in ("token", "sequence"):
        raise THRInputError(f"normalize must be 'token' or 'sequence'; got {normalize!r}.")
    if chunk_size <= 0:
        raise THRInputError(f"chunk_size must be positive; got {chunk_size}.")
    if not (isinstance(softcap, (int, float)) and math.isfinite(softcap) and softcap >= 0):
        raise THRInputError(f"softcap must be a finite number >= 0 (0: no soft-cap); got {softcap!r}.")
    if head is not None:
        if softcap not in (0, head.softcap):
            raise THRInputError(f"softcap={softcap!r} differs from the head's own soft-cap {head.softcap}; pass one.")
        softcap = head.softcap  # head.logits returns capped logits: the derivative factor below needs c
    rewards_t = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1) if not isinstance(rewards, Tensor) \
        else rewards.detach().float()
    G = _check_inputs(hidden, logits, tokens, rewards_t, group_size, temperature, head)
    if G < 2:  # group_size=None with a single response
        c.fail("group_size", group_size, f"a group of at least 2 responses (got {len(hidden)} response in all)",
               _ONE_PER_GROUP)
    n = len(hidden)
    B = n // G
    device = hidden[0].device
    V = head.vocab_size if head is not None else logits[0].shape[-1]
    d = hidden[0].shape[-1]
    lengths = torch.tensor([t.shape[0] for t in tokens], device=device)
    T = max(int(lengths.max()), 1)
    adv = group_advantages(rewards_t.cpu(), group_size=G, scale=scale_rewards).to(device).view(B, G)
    token_w = adv / lengths.view(B, G).clamp_min(1) if normalize == "sequence" else adv
    inv_t = 1.0 / float(temperature)

    H = _pack([h.detach() for h in hidden], B, G, T, d, device)                     # [B, G, T, d]
    Y = _pack([t.detach() for t in tokens], B, G, T, 0, device, fill=-1, dtype=torch.long)  # [B, G, T]
    valid = Y >= 0
    correct = (adv > 0).float()                                                      # [B, G]
    active = (adv != 0).any(dim=1)                                                   # groups with signal
    # M only needs the correct responses: gather them (padded to the largest count) instead of
    # multiplying the wrong ones by zero, which halves the cost of building M at p = 1/2.
    n_corr = int(correct.sum(1).max())
    corr_idx = torch.argsort(correct, dim=1, descending=True, stable=True)[:, : max(n_corr, 1)]   # [B, Gc]
    corr_w = correct.gather(1, corr_idx)                                              # 1 real, 0 padding

    # log-sum-exp over the full vocabulary, chunked, float32: q must be the true distribution
    # even when only a few columns enter g (vocab="group"). One pass over the logits per response;
    # it doubles as the NaN / +inf check (-inf logits are allowed: they mean q = 0).
    # Blocks of whole rows (contiguous reads) holding about chunk_size * 1024 logits each.
    rows_per_block = max(1, (chunk_size * 1024) // V)
    if head is not None and lse is None:
        flat_h = torch.cat([h.detach() for h in hidden])
        flat_y = torch.cat([t.detach().reshape(-1) for t in tokens]).to(device)
        lse = list(token_logprobs(head, flat_h, flat_y, temperature=temperature,
                                  chunk_size=chunk_size)[2].split([int(t.shape[0]) for t in tokens]))
    if lse is not None and (len(lse) != n or any(l.shape[0] != t.shape[0] for l, t in zip(lse, tokens))):
        raise THRInputError("lse must hold one [T_j] tensor per response, like tokens.")
    lse_rows = []
    for j in range(n):
        if lse is not None:
            acc = lse[j].detach().float().to(device)
        else:
            lg, parts = logits[j], []
            for r0 in range(0, lg.shape[0], rows_per_block):
                block = lg[r0 : r0 + rows_per_block].detach().float()
                parts.append(torch.logsumexp(block * inv_t if inv_t != 1.0 else block, dim=-1))
            acc = torch.cat(parts).to(device) if parts else torch.zeros(0, device=device)
        if not (torch.isfinite(acc) | (acc == -math.inf)).all() or (acc == -math.inf).any():
            raise THRInputError(
                f"Response {j}: logits contain NaN or +inf (or a row that is all -inf). Check the forward pass "
                "(dtype overflow in float16 is a common cause) before computing THR."
            )
        lse_rows.append(acc)
    lse = _pack(lse_rows, B, G, T, 0, device)

    if vocab == "full":
        col_sets = None
        n_cols = V
    else:
        # ids generated anywhere in each group, padded to a common width with a column mask
        uniq = [torch.unique(torch.cat([t.reshape(-1) for t in tokens[b * G : (b + 1) * G]]).to(device)) for b in range(B)]
        n_cols = max(u.numel() for u in uniq)
        col_sets = torch.zeros(B, max(n_cols, 1), dtype=torch.long, device=device)
        col_mask = torch.zeros(B, max(n_cols, 1), dtype=torch.bool, device=device)
        for b, u in enumerate(uniq):
            col_sets[b, : u.numel()] = u
            col_mask[b, : u.numel()] = True

    # The correct responses' hidden states, padding slots zeroed, flattened: [B, N_c, d] with N_c = Gc * T.
    Gc = corr_idx.shape[1]
    Hc = (H.gather(1, corr_idx[:, :, None, None].expand(-1, -1, T, d)) * corr_w[:, :, None, None]).reshape(B, -1, d)
    Hf = H.reshape(B, G * T, d)
    n_rows, n_corr_rows = G * T, Gc * T
    # Two exact orders of the same sum s_j = sum_{c correct} <e_j, e_c> <h_j, h_c>: through M = E_c^T H_c
    # (~ (N_c + N) d multiply-adds per vocabulary column), or through the token-pair Gram matrices
    # K = E E_c^T and H H_c^T (~ N N_c per column, plus N N_c d once), the direct pairwise form done in
    # vocabulary chunks. The Gram order wins when the correct tokens are few against the width (short groups,
    # wide models: G=8 x 256 tokens at d=2048); exclude_self is free in it (the pairs inside one response drop).
    pairs = _use_pair_order(B, n_rows, n_corr_rows, n_cols, d, T, exclude_self)
    if pairs:
        K = torch.zeros(B, n_rows, n_corr_rows, device=device)
    else:
        s = torch.zeros(B, n_rows, device=device)
        if exclude_self:
            # a correct response's own part of M, e_t^T M_j h_t = sum_t' (e_t . e_t')(h_t . h_t'), through the
            # two [T, T] Gram matrices: O(T^2) per response and column instead of a [C, d] matrix per response
            KHc = Hc.view(B, Gc, T, d) @ Hc.view(B, Gc, T, d).transpose(-1, -2)     # [B, Gc, T, T]
            self_c = torch.zeros(B, Gc, T, device=device)
    if vocab == "full":
        ypos = Y                                                                     # column of each y
    else:  # col_sets rows are sorted (torch.unique); padding columns get V, past every id
        sorted_sets = torch.where(col_mask, col_sets, torch.full_like(col_sets, V))
        ypos = torch.searchsorted(sorted_sets, Y.clamp_min(0).view(B, G * T)).view(B, G, T)
    for c0 in range(0, n_cols, chunk_size):
        c1 = min(c0 + chunk_size, n_cols)
        if col_sets is None:
            if head is not None:
                z = head.logits(Hf.reshape(-1, d), c0, c1).float().view(B, G, T, c1 - c0)
            else:
                z = _pack([lg[:, c0:c1].detach() for lg in logits], B, G, T, c1 - c0, device)
        else:
            cols = col_sets[:, c0:c1]
            if head is not None:
                z = torch.stack([head.columns(H[b], cols[b]) for b in range(B)]).float()  # one matmul per group
            else:
                z = _pack([lg.detach().index_select(1, cols[j // G]) for j, lg in enumerate(logits)], B, G, T,
                          c1 - c0, device)
        # d(c tanh(u / c)) / du = 1 - tanh^2 = 1 - (z / c)^2, from the capped logits z: the error each token
        # sends back to the unembedding is e * (1 - (z / c)^2)
        cap = 1 - (z / softcap).square_() if softcap > 0 else None
        # E = onehot(y) - q on this chunk's columns, in place: q, negated, masked, then +1 at y.
        if inv_t != 1.0:
            z.mul_(inv_t)
        E = z.sub_(lse[..., None]).exp_().neg_()                                     # [B, G, T, C]
        E.masked_fill_(~valid[..., None], 0.0)
        if col_sets is not None:
            E.masked_fill_(~col_mask[:, None, None, c0:c1], 0.0)
        here = valid & (ypos >= c0) & (ypos < c1)
        E.scatter_add_(-1, (ypos - c0).clamp(0, c1 - c0 - 1)[..., None], here[..., None].to(E.dtype))
        if cap is not None:
            E.mul_(cap)
        Ec = E.gather(1, corr_idx[:, :, None, None].expand(-1, -1, T, c1 - c0))       # [B, Gc, T, C]
        Eflat, Ecf = E.view(B, n_rows, c1 - c0), Ec.view(B, n_corr_rows, c1 - c0)
        if pairs:
            K.baddbmm_(Eflat, Ecf.transpose(1, 2))
            continue
        M = Ecf.transpose(1, 2) @ Hc                                                 # [B, C, d]
        s += ((Eflat @ M) * Hf).sum(-1)
        if exclude_self:
            self_c += ((Ec @ Ec.transpose(-1, -2)) * KHc).sum(-1)
    if pairs:
        HH = Hf @ Hc.transpose(1, 2)                                                 # [B, N, N_c]; padding columns 0
        if exclude_self:  # a token's own response leaves M: drop the pairs inside one response
            own_row = torch.arange(G, device=device).repeat_interleave(T)            # [N]
            own_col = corr_idx.repeat_interleave(T, dim=1)                           # [B, N_c]
            HH.masked_fill_(own_row[None, :, None] == own_col[:, None, :], 0.0)
        s = (K.mul_(HH)).sum(-1).view(B, G, T)
    else:
        s = s.view(B, G, T)
        if exclude_self:  # padding slots of corr_idx carry weight 0
            s.scatter_add_(1, corr_idx[:, :, None].expand(-1, -1, T), -self_c * corr_w[..., None])
    thr = s * (inv_t * inv_t) * token_w[..., None] * active.view(B, 1, 1).float()
    return [thr[j // G, j % G, : int(lengths[j])].clone() for j in range(n)]


def dominant_threshold(
    thr: Sequence[Float[Tensor, "T"]], rewards: Float[Tensor, "G"], *, beta: float = 1.0, scale_rewards: bool = True
) -> float:
    """tau = beta * max(0, min over correct responses of their mean THR) for one group."""
    adv = group_advantages(torch.as_tensor(rewards, dtype=torch.float32), scale=scale_rewards)
    means = [t.float().mean() for t, a in zip(thr, adv) if a > 0 and t.numel()]
    if not means:
        return 0.0
    return float(beta * max(0.0, float(torch.stack(means).min())))


def thr_weights(
    thr: Sequence[Float[Tensor, "T"]],
    rewards: Float[Tensor, "n"] | Sequence[float],
    *,
    p: float,
    beta: float = 1.0,
    non_dominant: float = 1.0,
    group_size: int | None = None,
    scale_rewards: bool = True,
) -> list[Float[Tensor, "T"]]:
    """Per-token advantage weights from THR (the reweighting rule of the brief, reconstructed).

    Dominant tokens have |THR| > tau, tau = beta * max(0, min over the group's correct responses
    of their mean THR); they get weight 1 + p * sign(THR), the others ``non_dominant`` (1: plain
    steering, 0: "THR-only" training). The token advantage becomes w * A_j. p > 0 favours
    exploitation, p < 0 exploration; |p| < 1 keeps the sign of every advantage (so PPO clipping
    works as before) and is enforced.

    >>> w = thr_weights([torch.tensor([2.0, 0.0]), torch.tensor([-3.0])], [1.0, 0.0], p=0.5)
    >>> [x.tolist() for x in w]
    [[1.5, 1.0], [0.5]]
    """
    if not (isinstance(p, (int, float)) and math.isfinite(p) and -1.0 < p < 1.0):
        raise THRInputError(
            f"|p| must be < 1 (got p={p!r}): with |p| >= 1 the weight 1 + p*sign(THR) is <= 0 and flips or "
            "zeroes the sign of advantages, which breaks PPO clipping. Use e.g. p=0.5 or p=-0.5."
        )
    c = Check("thr_weights", THRInputError)
    c.number("beta", beta, ge=0, fix="The dominant-token threshold multiplier, e.g. 1.0.")
    c.number("non_dominant", non_dominant, ge=0, fix="1 is plain steering, 0 trains on dominant tokens only.")
    c.integer("group_size", group_size, min=1, optional=True)
    c.boolean("scale_rewards", scale_rewards)
    r = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
    if r.numel() != len(thr):
        raise THRInputError(f"rewards must have one value per response: {len(thr)} THR rows, {r.numel()} rewards.")
    G = len(thr) if group_size is None else group_size
    if G <= 0 or len(thr) % G:
        raise THRInputError(f"{len(thr)} responses cannot be split into groups of {group_size}.")
    out: list[Tensor] = []
    for b in range(len(thr) // G):  # loop over groups, not tokens: tau is a per-group scalar
        rows = thr[b * G : (b + 1) * G]
        tau = dominant_threshold(rows, r[b * G : (b + 1) * G], beta=beta, scale_rewards=scale_rewards)
        for t in rows:
            dom = t.abs() > tau
            out.append(torch.where(dom, 1.0 + p * torch.sign(t), torch.full_like(t, float(non_dominant))))
    return out
