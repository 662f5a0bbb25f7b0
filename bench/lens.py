"""Benchmark of interp.lens.decode_layers against the common recipes, on a GPT-2-small-shaped
model built from a config (12 layers, d_model 768, vocab 50257, random weights), 32 prompts x 64
tokens, last position. Each method runs in its own subprocess so peak memory is its own.

Baselines measured in the same run:
- common: ``run_with_cache`` + ``cache.accumulated_resid(apply_ln=True)`` + unembedding of all
  positions (then top-k at the last one);
- per_layer: one full forward per layer (what the translation-barrier reference code did);
- plain: one ordinary forward pass (logits), for the lens's own overhead.
Then generation-time probing throughput (examples/second) on the toy-translate zoo model.

    python bench/lens.py            # the issue's size
    python bench/lens.py --quick    # 8 prompts x 32 tokens, 4 layers (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = ("plain", "lens", "common", "per_layer")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:  # Linux: writing 5 resets VmHWM (peak RSS) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def build_model(n_layers: int, device: str):
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257,
                                  n_ctx=1024, act_fn="gelu_new", normalization_type="LN", device=device, seed=0)
    model = HookedTransformer(cfg)
    model.eval()
    torch.set_grad_enabled(False)
    return model


def run_method(method: str, model, tokens, k: int = 10):

    from interp.lens import decode_layers, layer_hook_name

    n = model.cfg.n_layers
    if method == "plain":
        return model(tokens)[:, -1].topk(k)
    if method == "lens":
        return decode_layers(model, tokens, positions=-1, k=k).top_ids
    if method == "common":
        _, cache = model.run_with_cache(tokens)
        resid = cache.accumulated_resid(apply_ln=True)  # [layers+1, batch, pos, d_model]
        logits = model.unembed(resid)  # every layer, every position
        return logits[:, :, -1].log_softmax(-1).topk(k)
    if method == "per_layer":
        out = []
        for i in range(n + 1):
            kept = {}

            def hook(act, hook):
                kept["x"] = act[:, -1]

            model.run_with_hooks(tokens, fwd_hooks=[(layer_hook_name(i, n), hook)])  # a full forward each time
            out.append(model.unembed(model.ln_final(kept["x"][:, None]))[:, 0].log_softmax(-1).topk(k))
        return out
    raise ValueError(method)


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model = build_model(args.layers, args.device)
    tokens = torch.randint(0, 50257, (args.prompts, args.tokens), generator=torch.Generator().manual_seed(0)).to(args.device)
    run_method(args.worker, model, tokens[:2, :8])  # warm-up (allocator, kernels)
    cuda = args.device.startswith("cuda")
    times, peaks = [], []
    for _ in range(args.repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            _reset_peak()
            base = _rss_kb("VmRSS") * 1024
        t0 = time.perf_counter()
        run_method(args.worker, model, tokens)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() if cuda else _rss_kb("VmHWM") * 1024
        peaks.append(max(0, peak - base))
    print(json.dumps({"method": args.worker, "seconds": statistics.median(times), "peak_bytes": max(peaks)}))


def probe_throughput(threads: int) -> dict:
    import torch

    from interp import zoo
    from interp.translation import Lexicon, TranslationProbe
    from interp.zoo.toy_translate import probe_pairs, toy_template

    torch.set_num_threads(threads)
    model = zoo.load("toy-translate")
    lex = Lexicon.bundled().subset(concepts=zoo.card("toy-translate")["corpus"]["concepts"])
    probe = TranslationProbe(model, lex, template=toy_template())
    pairs = probe_pairs(lex)[:6]
    probe.run(pairs[:1], n_concepts=4, progress=False)  # warm-up
    t0 = time.perf_counter()
    report = probe.run(pairs, n_concepts=32, progress=False)
    seconds = time.perf_counter() - t0
    return {"examples": len(report), "seconds": round(seconds, 2), "examples_per_second": round(len(report) / seconds, 1),
            "layers_decoded": len(report.layers)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 prompts x 32 tokens, 4 layers")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--skip-probe", action="store_true")
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.tokens, args.layers = 8, 32, 4
    if args.worker:
        worker(args)
        return
    results = {}
    for method in args.methods:
        cmd = [sys.executable, __file__, "--worker", method, "--prompts", str(args.prompts), "--tokens", str(args.tokens),
               "--layers", str(args.layers), "--repeats", str(args.repeats), "--threads", str(args.threads),
               "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode:
            print(f"{method}: failed\n{proc.stderr[-2000:]}")
            continue
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"GPT-2-small-shaped ({args.layers} layers, d_model 768, vocab 50257), {args.prompts} prompts x "
          f"{args.tokens} tokens, last position, device {args.device}, {args.threads} thread(s)")
    for m, r in results.items():
        print(f"  {m:10s} {r['seconds']:8.3f} s   peak extra memory {r['peak_bytes'] / 2**20:9.1f} MiB")
    lens = results.get("lens")
    if lens:
        for base, label in (("common", "common recipe (run_with_cache + accumulated_resid + unembed all)"),
                            ("per_layer", "one full forward per layer (reference code)"),
                            ("plain", "plain forward pass (lens overhead)")):
            if base in results:
                b = results[base]
                print(f"  lens vs {label}: {b['seconds'] / lens['seconds']:.2f}x faster, "
                      f"{b['peak_bytes'] / max(1, lens['peak_bytes']):.1f}x less peak memory")
        if "plain" in results:
            print(f"  lens time / plain forward time: {lens['seconds'] / results['plain']['seconds']:.2f}x")
    if not args.skip_probe:
        try:
            tp = probe_throughput(args.threads)
            print(f"Generation-time probing on toy-translate: {tp['examples']} examples in {tp['seconds']} s = "
                  f"{tp['examples_per_second']} examples/s ({tp['layers_decoded']} layers decoded per step)")
        except FileNotFoundError as err:
            print(f"Generation-time probing skipped: {err}")


if __name__ == "__main__":
    main()
