"""Peak memory of interp's bounded paths beside the naive paths they replaced, at real widths, on the CPU.

Widths (d_model, vocabulary) of Gemma-2-2B (2304, 256,000), Llama-3.1-8B (4096, 128,256) and Qwen2.5-7B
(3584, 152,064); SAEs of 65,536 features. Per width and path, the naive and the bounded computation run in
this process on the same inputs (and are checked to agree), one after the other:

- ``collect pooling``: CorrSteer's per-step SAE codes at two hooks: kept for every step, stacked and pooled
  at the end (before) vs :class:`interp.steering.collect.RunningPool` (now).
- ``grpo scoring``: old-policy log-probs and entropies of n responses: ``[n, P+R, V]`` logits, float32
  log-softmax and entropy (before) vs :func:`interp.thr.logprobs.token_logprobs` on the response tokens.
- ``grpo loss + backward``: the same log-probs with gradients into the hidden states and (``head trained``)
  the head, autograd through full logits (before) vs the chunked custom backward. A trained head's own
  gradient (V x d) is in both; ``head frozen`` (gradients into the body only) shows the per-token part.
- ``thr exclude_self``: token_hidden_reward with exclude_self: a ``[B, G, C, d]`` matrix per chunk (the
  previous implementation, kept below verbatim as the reference) vs the ``[T, T]`` Gram matrices (now).

How memory is measured: resident set size on Linux. Before each path the allocator is trimmed
(``malloc_trim``; glibc's mmap threshold is pinned at 128 KiB so every large tensor is its own mapping and is
returned when freed), the peak counter is reset (``/proc/self/clear_refs`` = 5) and the RSS read; after the
path, ``VmHWM`` minus that RSS is the path's peak above its inputs. The inputs (hidden states, head weights,
SAE, logits for THR) exist before the measurement and are not counted. The transformer body is replaced by
random hidden states: its activations are the same in both paths.

    python bench/scale.py --threads 1          # ~4 min on one shared core
    python bench/scale.py --quick              # smaller batches, ~2 min
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.steering.collect import RunningPool, pool_steps  # noqa: E402
from interp.thr import group_advantages, token_hidden_reward  # noqa: E402
from interp.thr.logprobs import OutputHead, token_logprobs  # noqa: E402

WIDTHS = {"gemma-2-2b": (2304, 256_000), "llama-3.1-8b": (4096, 128_256), "qwen2.5-7b": (3584, 152_064)}
D_SAE = 65_536
MiB = 2**20

_libc = ctypes.CDLL("libc.so.6")
_libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD fixed: large blocks are mappings, returned to the OS on free


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status: this bench needs Linux")


def peak_above_inputs(fn: Callable[[], object]) -> tuple[int, float, object]:
    """(peak RSS during ``fn`` above the RSS before it, seconds, its result)."""
    gc.collect()
    _libc.malloc_trim(0)
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - base
    return peak, seconds, out


def fast_randn(rows: int, cols: int, *, std: float, seed: int, dtype=torch.bfloat16) -> torch.Tensor:
    """A [rows, cols] matrix of N(0, std^2)-like entries made quickly (torch's CPU RNG draws ~30M numbers/s,
    i.e. 15 s for one 128k x 4096 head): a 4096-row random block tiled, each row scaled by its own random
    factor. Memory and the naive/bounded agreement do not depend on the values."""
    g = torch.Generator().manual_seed(seed)
    block = torch.randn(min(rows, 4096), cols, generator=g) * std
    reps = -(-rows // block.shape[0])
    out = block.to(dtype).repeat(reps, 1)[:rows]
    out.mul_(torch.empty(rows, 1, dtype=dtype).uniform_(0.5, 1.5, generator=g))
    return out


def line(width: str, path: str, naive: int, bounded: int, note: str = "") -> str:
    return (f"{width:13s} {path:52s} naive {naive / MiB:9.1f} MiB   bounded {bounded / MiB:8.1f} MiB   "
            f"ratio {naive / max(bounded, 1):6.1f}x{('   ' + note) if note else ''}")


# ------------------------------------------------------------------------------------------ collect
def bench_collect(d: int, B: int, steps: int, hooks: int) -> tuple[int, int, str]:
    g = torch.Generator().manual_seed(0)
    W_enc = fast_randn(D_SAE, d, std=d**-0.5, seed=0).T                   # an SAE's encoder (input), bf16
    b_enc = torch.zeros(D_SAE).bfloat16()
    xs = [torch.randn(B, d, generator=g) for _ in range(steps)]          # the hook's newest position per step
    ends = torch.randint(1, steps + 1, (B,), generator=g)
    alive = [torch.arange(steps)[t] < ends for t in range(steps)]

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.bfloat16() @ W_enc + b_enc).float()

    def naive():  # interp before: every step's codes kept (on the host), stacked, pooled
        kept = [[] for _ in range(hooks)]
        for t in range(steps):
            for h in range(hooks):
                kept[h].append(encode(xs[t]).cpu())
        al = torch.stack(alive, 1)
        return [pool_steps(torch.stack(k, 1), al, "mean") for k in kept]

    def bounded():
        pools = [RunningPool("mean") for _ in range(hooks)]
        for t in range(steps):
            for h in range(hooks):
                pools[h].add(encode(xs[t]), alive[t])
        return [p.result() for p in pools]

    a, _, ra = peak_above_inputs(naive)
    b, _, rb = peak_above_inputs(bounded)
    for x, y in zip(ra, rb):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    return a, b, f"B={B}, {steps} steps, {hooks} hooks, d_sae={D_SAE}"


# ------------------------------------------------------------------------------------------ GRPO
_HEADS: dict[tuple[int, int], torch.Tensor] = {}


def _grpo_inputs(d: int, V: int, n: int, P: int, R: int):
    g = torch.Generator().manual_seed(1)
    if (V, d) not in _HEADS:
        _HEADS.clear()
        _HEADS[(V, d)] = fast_randn(V, d, std=3 * d**-0.5, seed=1)
    W = torch.nn.Parameter(_HEADS[(V, d)], requires_grad=True)                   # a bf16 model's head (shared)
    hidden = torch.randn(n, P + R, d, generator=g).bfloat16()                     # the head's input
    responses = torch.randint(0, V, (n, R), generator=g)
    lengths = torch.randint(R // 2, R + 1, (n,), generator=g)
    mask = torch.arange(R)[None, :] < lengths[:, None]
    return W, hidden, responses, mask


def bench_grpo_scoring(d: int, V: int, n: int, P: int, R: int, temperature: float = 0.8) -> tuple[int, int, str]:
    W, hidden, responses, mask = _grpo_inputs(d, V, n, P, R)

    @torch.no_grad()
    def naive():  # interp before: the forward's logits at every position, float32 log-softmax, entropy
        logits = F.linear(hidden, W)[:, P - 1 : -1]
        logp_all = torch.log_softmax(logits.float() / temperature, -1)
        old_logp = logp_all.gather(-1, responses[..., None])[..., 0]
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return old_logp[mask], entropy[mask]

    @torch.no_grad()
    def bounded():
        lp, ent, _ = token_logprobs(OutputHead(W), hidden[:, P - 1 : -1][mask], responses[mask], temperature=temperature)
        return lp, ent

    a, _, ra = peak_above_inputs(naive)
    b, _, rb = peak_above_inputs(bounded)
    for x, y in zip(ra, rb):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-3)
    return a, b, f"n={n}, P+R={P + R}, bf16 head"


def bench_grpo_loss(d: int, V: int, n: int, P: int, R: int, *, train_head: bool,
                    temperature: float = 0.8) -> tuple[int, int, str]:
    W, hidden, responses, mask = _grpo_inputs(d, V, n, P, R)
    W.requires_grad_(train_head)
    h = hidden.clone().requires_grad_(True)   # stands for the body's output (its graph is the same in both)
    w = torch.randn(mask.shape, generator=torch.Generator().manual_seed(2)) * mask

    def grads():
        out = (h.grad, W.grad)   # handed over, not copied
        h.grad, W.grad = None, None
        return out

    def naive():  # autograd through [n, P+R, V] logits and a float32 log-softmax
        logits = F.linear(h, W)[:, P - 1 : -1]
        lp = torch.log_softmax(logits.float() / temperature, -1).gather(-1, responses[..., None])[..., 0]
        (lp * w).sum().backward()
        return grads()

    def bounded():
        lp, _, _ = token_logprobs(OutputHead(W), h[:, P - 1 : -1][mask], responses[mask], temperature=temperature)
        (lp * w[mask]).sum().backward()
        return grads()

    a, _, ra = peak_above_inputs(naive)
    b, _, rb = peak_above_inputs(bounded)
    rows = torch.randperm(V, generator=torch.Generator().manual_seed(4))[:512]  # W's gradient: a sample of rows
    for i, (x, y) in enumerate(zip(ra, rb)):
        if x is not None:
            x, y = (x[rows], y[rows]) if i == 1 else (x, y)
            torch.testing.assert_close(x.float(), y.float(), rtol=5e-2, atol=2e-2 * float(x.float().abs().max()))
    del ra, rb
    grad = V * d * 2
    note = (f"head trained: its V x d bf16 gradient ({grad / MiB:.0f} MiB) is in both; above it: naive "
            f"{(a - grad) / MiB:.1f} MiB, bounded {(b - grad) / MiB:.1f} MiB" if train_head
            else "head frozen: only the body's gradient (e.g. LoRA on the body)")
    return a, b, f"n={n}, P+R={P + R}; {note}"


# ------------------------------------------------------------------------------------------ THR
@torch.no_grad()
def thr_before(hidden: Sequence[torch.Tensor], logits: Sequence[torch.Tensor], tokens: Sequence[torch.Tensor],
               rewards: torch.Tensor, *, temperature: float = 1.0, chunk_size: int = 4096) -> list[torch.Tensor]:
    """interp's token_hidden_reward before this change (one group, vocab="group", normalize="token",
    exclude_self=True), verbatim in its arithmetic: the self term through a [B, G, C, d] matrix per chunk."""
    G = len(hidden)
    B, device, d = 1, hidden[0].device, hidden[0].shape[-1]
    lengths = torch.tensor([t.shape[0] for t in tokens])
    T = int(lengths.max())
    adv = group_advantages(rewards, group_size=G).view(B, G)
    inv_t = 1.0 / temperature
    dt = hidden[0].dtype  # float32 as in interp; float64 for the reference below
    H = torch.zeros(B, G, T, d, dtype=dt)
    Y = torch.full((B, G, T), -1, dtype=torch.long)
    lse = torch.zeros(B, G, T, dtype=dt)
    for j in range(G):
        H[0, j, : lengths[j]] = hidden[j]
        Y[0, j, : lengths[j]] = tokens[j]
        lse[0, j, : lengths[j]] = torch.logsumexp(logits[j].to(dt) * inv_t, -1)
    valid = Y >= 0
    correct = (adv > 0).to(dt)
    n_corr = int(correct.sum(1).max())
    corr_idx = torch.argsort(correct, dim=1, descending=True, stable=True)[:, : max(n_corr, 1)]
    corr_w = correct.gather(1, corr_idx)
    uniq = torch.unique(torch.cat(list(tokens)))
    col_sets, n_cols = uniq[None], uniq.numel()
    s = torch.zeros(B, G, T, dtype=dt)
    for c0 in range(0, n_cols, chunk_size):
        c1 = min(c0 + chunk_size, n_cols)
        cols = col_sets[:, c0:c1]
        z = torch.zeros(B, G, T, c1 - c0, dtype=dt)
        for j, lg in enumerate(logits):
            z[0, j, : lengths[j]] = lg.index_select(1, cols[0]).to(dt)
        q = torch.exp(z * inv_t - lse[..., None])
        onehot = (Y[..., None] == cols[:, None, None, :]).to(dt)
        E = (onehot - q) * valid[..., None].to(dt)
        Ec = E.gather(1, corr_idx[:, :, None, None].expand(-1, -1, T, E.shape[-1]))
        Hc = H.gather(1, corr_idx[:, :, None, None].expand(-1, -1, T, d))
        M = torch.einsum("bgtc,bgtd,bg->bcd", Ec, Hc, corr_w)
        s += (torch.einsum("bgtc,bcd->bgtd", E, M) * H).sum(-1)
        M_own = torch.einsum("bgtc,bgtd->bgcd", E, H)                            # [B, G, C, d]
        self_term = (torch.einsum("bgtc,bgcd->bgtd", E, M_own) * H).sum(-1)
        s -= self_term * correct[..., None]
    thr = s * (inv_t * inv_t) * adv[..., None].to(dt) * (adv != 0).any(1).view(B, 1, 1).to(dt)
    return [thr[0, j, : int(lengths[j])] for j in range(G)]


def bench_thr(d: int, V: int, G: int, T: int) -> tuple[int, int, str]:
    g = torch.Generator().manual_seed(3)
    H = [torch.randn(T, d, generator=g) for _ in range(G)]
    L = list(fast_randn(G * T, V, std=2.0, seed=3).split(T))                  # the old policy's logits (input)
    Y = [torch.randint(0, V, (T,), generator=g) for _ in range(G)]
    r = torch.tensor([float(i % 2) for i in range(G)])
    a, _, ra = peak_above_inputs(lambda: thr_before(H, L, Y, r))
    b, _, rb = peak_above_inputs(lambda: token_hidden_reward(H, L, Y, r, exclude_self=True))
    # exclude_self subtracts a self term that dwarfs the result (the brief's point), so float32 rounding of the
    # large terms shows: check that the new path is as close to a float64 run as the old one
    ref = thr_before([x.double() for x in H], [x.double() for x in L], Y, r)
    err_old = max(float((x.double() - z).abs().max()) for x, z in zip(ra, ref))
    err_new = max(float((y.double() - z).abs().max()) for y, z in zip(rb, ref))
    scale = max(float(z.abs().max()) for z in ref)
    assert err_new <= 4 * err_old + 1e-6 * scale, (err_new, err_old, scale)
    n_cols = int(torch.unique(torch.cat(Y)).numel())
    return a, b, f"G={G}, T={T}, vocab='group' ({n_cols} columns)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smaller batches (under a minute)")
    ap.add_argument("--widths", nargs="*", default=list(WIDTHS), choices=list(WIDTHS))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    q = a.quick
    steps, B = (12, 4) if q else (32, 8)
    n, P, R = (2, 8, 16) if q else (2, 8, 40)
    G, T = (4, 32) if q else (8, 64)
    print(f"Peak memory above the inputs (RSS, this process), naive vs bounded; torch {torch.__version__}, "
          f"{a.threads} thread(s)")
    t0 = time.perf_counter()
    for width in a.widths:
        d, V = WIDTHS[width]
        for path, run in (("collect pooling", lambda: bench_collect(d, B, steps, 2)),
                          ("grpo scoring (log-probs + entropy)", lambda: bench_grpo_scoring(d, V, n, P, R)),
                          ("grpo loss + backward, head trained", lambda: bench_grpo_loss(d, V, n, P, R, train_head=True)),
                          ("grpo loss + backward, head frozen", lambda: bench_grpo_loss(d, V, n, P, R, train_head=False)),
                          ("thr exclude_self", lambda: bench_thr(d, V, G, T))):
            naive, bounded, note = run()
            print(line(f"{width}", f"{path} (d={d}, V={V})" if "collect" not in path else f"{path} (d={d})",
                       naive, bounded, note), flush=True)
            gc.collect()
            _libc.malloc_trim(0)
        _HEADS.clear()
    # what the naive GRPO scoring would need at the size, from its tensor sizes (not measured)
    rows = 16 * 8 * 300
    print(f"(computed, not measured: the naive scoring at 16 x 8 responses of 300 tokens and Qwen2.5's vocabulary "
          f"holds float32 [n, P+R, V] tensors of {rows * 152_064 * 4 / 2**30:.0f} GiB each)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
