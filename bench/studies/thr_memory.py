"""Benchmark of the THR core (interp.thr.token_hidden_reward), ratios measured in one run.

1. THR of one group (G responses of T tokens, width d, vocabulary V; random tensors) against the
   direct pairwise computation sum_{i,k'} <g_i,k', g_j,k> <h_i,k', h_j,k> (Gram matrices over all
   token pairs). Both must agree.
2. THR against one forward pass of a Llama-style model of the same width and vocabulary over the
   same G*T tokens (THR's cost as a fraction of the GRPO step, which needs >= 3 such passes).
3. Peak memory with V=150k, chunked over the vocabulary vs one chunk (each in a subprocess,
   peak RSS above the inputs).

    python bench/thr.py --threads 1        # G=8, T=512, d=1024, V=32000 (~2-4 min on a shared CPU core)
    python bench/thr.py --full-vocab       # also vocab="full" against its pairwise form (minutes more)
    python bench/thr.py --quick            # small sizes, under a minute
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from interp.thr import group_advantages, token_hidden_reward


def make_group(G: int, T: int, d: int, V: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    H = [torch.randn(T, d, generator=g) / d**0.5 for _ in range(G)]
    L = [torch.randn(T, V, generator=g) * 2 for _ in range(G)]
    Y = [torch.randint(0, V, (T,), generator=g) for _ in range(G)]
    r = torch.tensor([float(i % 2) for i in range(G)])  # half correct: the heaviest M
    return H, L, Y, r


@torch.no_grad()
def direct_pairwise(H, L, Y, r, vocab: str) -> list[torch.Tensor]:
    """Reference: Gram matrices of prediction errors and hidden states over all token pairs."""
    adv = group_advantages(r)
    ids = torch.unique(torch.cat(Y)) if vocab == "group" else None
    Hs = torch.cat(H)
    Ls = torch.cat(L)
    q = torch.softmax(Ls, -1)
    E = -q
    E[torch.arange(len(E)), torch.cat(Y)] += 1
    if ids is not None:
        E = E[:, ids]
    owner = torch.cat([torch.full((len(y),), i) for i, y in enumerate(Y)])
    corr = adv[owner] > 0
    pair = (E @ E[corr].T) * (Hs @ Hs[corr].T)          # [N, N_correct]: every token pair
    s = pair.sum(1) * adv[owner]
    return list(s.split([len(y) for y in Y]))


def forward_model(d: int, V: int, n_layers: int):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=d, d_head=64, n_heads=d // 64, d_mlp=4 * d // 1,
                                  d_vocab=V, n_ctx=4096, act_fn="silu", normalization_type="RMS",
                                  positional_embedding_type="rotary", gated_mlp=True)
    return HookedTransformer(cfg).eval()


def timeit(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    if first > 2.0:  # long calls: warm-up effects are negligible, keep the bench short
        return first
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memprobe(chunk: int, G: int, T: int, d: int, V: int) -> None:
    """Peak resident memory above the inputs while THR runs, sampled every millisecond."""
    import threading

    H, L, Y, r = make_group(G, T, d, V)
    base = _rss_mib()
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    token_hidden_reward(H, L, Y, r, vocab="full", chunk_size=chunk)
    done.set()
    th.join()
    peak[0] = max(peak[0], _rss_mib())
    print(json.dumps({"extra_mib": peak[0] - base, "inputs_mib": sum(x.numel() * 4 for x in L + H) / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--T", type=int, default=512)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--V", type=int, default=32000)
    ap.add_argument("--layers", type=int, default=2, help="layers of the model whose forward pass is timed")
    ap.add_argument("--full-vocab", action="store_true", help="also time vocab='full' against its pairwise form")
    ap.add_argument("--mem-V", type=int, default=150_000)
    ap.add_argument("--mem-T", type=int, default=64)
    ap.add_argument("--mem-d", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memprobe", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick:
        a.G, a.T, a.d, a.V, a.layers, a.mem_V, a.mem_T, a.mem_d = 4, 64, 128, 4000, 2, 20000, 32, 128
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.memprobe is not None:
        memprobe(a.memprobe, a.G, a.mem_T, a.mem_d, a.mem_V)
        return
    print(f"THR bench: G={a.G} T={a.T} d={a.d} V={a.V}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    H, L, Y, r = make_group(a.G, a.T, a.d, a.V)
    for vocab in ("group", "full") if a.full_vocab else ("group",):
        thr = token_hidden_reward(H, L, Y, r, vocab=vocab)
        ref = direct_pairwise(H, L, Y, r, vocab)
        err = max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-12)) for x, y in zip(thr, ref))
        t_thr = timeit(lambda: token_hidden_reward(H, L, Y, r, vocab=vocab))
        t_dir = timeit(lambda: direct_pairwise(H, L, Y, r, vocab))
        print(f"  vocab={vocab:5s}  THR {t_thr * 1e3:8.1f} ms | direct pairwise {t_dir * 1e3:8.1f} ms | "
              f"speed-up x{t_dir / t_thr:5.2f} | max rel. difference {err:.1e}")
        if vocab == "group":
            t_group = t_thr
    model = forward_model(a.d, a.V, a.layers)
    tokens = torch.stack(Y)
    with torch.no_grad():
        t_fwd = timeit(lambda: model(tokens))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"  forward pass of a {a.layers}-layer d={a.d} model ({n_params / 1e6:.0f}M params) on {tokens.numel()} tokens: "
          f"{t_fwd * 1e3:.1f} ms")
    print(f"  THR (vocab=group) / one forward = {t_group / t_fwd:.3f};  / GRPO step (>= 3 forwards: old policy, "
          f"policy fwd+bwd) <= {t_group / (3 * t_fwd):.3f}")
    print(f"Peak memory, vocab=full, V={a.mem_V}, G={a.G}, T={a.mem_T}, d={a.mem_d} (RSS above inputs, subprocess each):")
    results = {}
    for chunk in (4096, a.mem_V):
        args = [sys.executable, __file__, "--memprobe", str(chunk), "--G", str(a.G), "--mem-d", str(a.mem_d),
                "--mem-V", str(a.mem_V), "--mem-T", str(a.mem_T)] + (["--threads", str(a.threads)] if a.threads else [])
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[chunk] = json.loads(out)
        label = "chunked (4096)" if chunk == 4096 else "unchunked     "
        print(f"  {label}: +{results[chunk]['extra_mib']:8.0f} MiB (inputs {results[chunk]['inputs_mib']:.0f} MiB)")
    print(f"  unchunked / chunked peak = x{results[a.mem_V]['extra_mib'] / max(results[4096]['extra_mib'], 1):.1f}")


if __name__ == "__main__":
    main()
