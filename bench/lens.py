"""Logit lens: ``interp.lens.decode_layers`` against its peers, on one GPT-2-small-shaped model (12 layers,
d_model 768, vocab 50257, random weights from a fixed seed, saved once as a Hugging Face folder so every
front-end loads the same weights), 32 prompts x 64 tokens, every layer decoded at the last position.

Measured in one run, interleaved (A B C A B C ...; medians), one long-lived process per method so each
method's peak memory is its own (resident set above what the process held before the call):
- ``lens``: ``decode_layers(model, tokens, positions=-1, k=10)`` on the HookedTransformer (13 lens layers:
  the embeddings and every block);
- ``nnsight``: nnsight's documented logit-lens recipe (nnsight.net, "Logit Lens" tutorial): inside
  ``model.trace``, ``lm_head(ln_f(layer.output))`` for every block, softmax, ``.save()``, then the max;
  run under ``torch.no_grad()`` (the tutorial does not; without it autograd would keep every layer's graph);
- ``nnsight_last``: the same recipe cut to the last position before ``ln_f`` (the fair form of it for a
  last-position question);
- ``tl_common``: TransformerLens's ``run_with_cache`` + ``cache.accumulated_resid(apply_ln=True)`` +
  unembedding of every layer and position, then the last position;
- ``per_layer``: one full forward per layer (what the translation-barrier reference code did);
- floors: ``tl_forward`` (one plain HookedTransformer forward, logits) and ``hf_forward`` (one plain
  Hugging Face forward of the same weights).
Before timing, the top-1 token of every block at the last position is compared across methods (the same
weights must decode to the same tokens).

    .venv/bin/python bench/lens.py --threads 1            # the issue's size
    .venv/bin/python bench/lens.py --quick --threads 1    # 8 prompts x 32 tokens, 4 layers (a smoke run)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

METHODS = ("lens", "nnsight", "nnsight_last", "tl_common", "per_layer", "tl_forward", "hf_forward")
NNSIGHT = {"nnsight", "nnsight_last"}
CACHE = H.ROOT / "bench" / ".cache"


def model_folder(n_layers: int) -> Path:
    """A GPT-2-small-shaped Hugging Face folder with seeded random weights (written once, then reused)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = CACHE / f"gpt2-small-shaped-L{n_layers}-seed0"
    if (folder / "model.safetensors").is_file():
        return folder
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=n_layers, n_embd=768, n_head=12, n_positions=1024, n_ctx=1024, vocab_size=50257)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    # the prompts are token ids, so any tokenizer serves the loaders; stories260K's is at hand offline
    from interp.app.paths import shared_model_dir

    AutoTokenizer.from_pretrained(shared_model_dir()).save_pretrained(folder)
    return folder


def _tokens(args):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 50257, (args.prompts, args.tokens), generator=g)


def nnsight_recipe(lm, tokens, last_only: bool):
    """nnsight's documented logit lens, verbatim but for two things said in the module docstring."""
    import torch

    probs_layers = []
    with torch.no_grad(), lm.trace(tokens):
        for layer in lm.transformer.h:
            hs = layer.output
            # the tutorial indexes layer.output[0], written when blocks returned tuples; transformers 5's
            # GPT-2 block returns the hidden-state tensor itself, where [0] would be the first prompt only
            hs = hs[0] if isinstance(hs, tuple) else hs
            if last_only:
                hs = hs[:, -1:]
            layer_output = lm.lm_head(lm.transformer.ln_f(hs))
            probs = torch.nn.functional.softmax(layer_output, dim=-1).save()
            probs_layers.append(probs)
    probs = torch.stack(probs_layers)  # [layers, batch, pos, vocab]
    max_probs, tokens_out = probs.max(dim=-1)
    return tokens_out[:, :, -1]  # [layers, batch]: top-1 at the last position


def setup_worker(args):
    import torch

    H.pin_threads(args.threads)
    torch.set_grad_enabled(False)
    folder = model_folder(args.layers)
    tokens = _tokens(args)
    name = args.worker
    if name in NNSIGHT or name == "hf_forward":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hf = AutoModelForCausalLM.from_pretrained(folder).eval()
        if name == "hf_forward":
            fn = lambda: hf(tokens).logits[:, -1].topk(10)  # noqa: E731
            return fn, {}
        nnsight, why = H.peer("nnsight")
        if nnsight is None:
            raise RuntimeError(f"peer not installed: {why}")
        lm = nnsight.LanguageModel(hf, tokenizer=AutoTokenizer.from_pretrained(folder))
        last = name == "nnsight_last"
        top1 = nnsight_recipe(lm, tokens, last)  # also the warm-up
        return (lambda: nnsight_recipe(lm, tokens, last)), {"top1": top1.tolist(), "version": why, "warm": True}

    from interp.core.models import load_model
    from interp.lens import decode_layers, layer_hook_name

    model = load_model(folder, frontend="hooked")  # the labels say HookedTransformer; the default is the bridge
    n = model.cfg.n_layers
    if name == "tl_forward":
        return (lambda: model(tokens)[:, -1].topk(10)), {}
    if name == "lens":
        top1 = decode_layers(model, tokens, positions=-1, k=10).top_ids[:, 1:, 0, 0].T  # blocks 1..n; the warm-up
        return (lambda: decode_layers(model, tokens, positions=-1, k=10)), {"top1": top1.tolist(), "warm": True}
    if name == "tl_common":
        def common():
            _, cache = model.run_with_cache(tokens)
            resid = cache.accumulated_resid(apply_ln=True)  # [layers+1, batch, pos, d_model]
            logits = model.unembed(resid)  # every layer, every position
            return logits[:, :, -1].log_softmax(-1).topk(10)

        top1 = common().indices[1:, :, 0]  # also the warm-up
        return common, {"top1": top1.tolist(), "warm": True}
    if name == "per_layer":
        def per_layer():
            out = []
            for i in range(n + 1):
                kept = {}

                def hook(act, hook):
                    kept["x"] = act[:, -1]

                model.run_with_hooks(tokens, fwd_hooks=[(layer_hook_name(i, n), hook)])  # a full forward each
                out.append(model.unembed(model.ln_final(kept["x"][:, None]))[:, 0].log_softmax(-1).topk(10))
            return out

        return per_layer, {}
    raise ValueError(name)


def probe_throughput(threads: int) -> dict:
    import time

    from interp import zoo
    from interp.translation import Lexicon, TranslationProbe
    from interp.zoo.toy_translate import probe_pairs, toy_template

    H.pin_threads(threads)
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
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--skip-probe", action="store_true")
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.tokens, args.layers, args.repeats = 8, 32, 4, 3
    if args.worker:
        H.serve(lambda: setup_worker(args))
        return
    H.pin_threads(args.threads)
    H.header(f"logit lens: GPT-2-small-shaped ({args.layers} layers, d_model 768, vocab 50257, random weights), "
             f"{args.prompts} prompts x {args.tokens} tokens, last position", args.threads)
    model_folder(args.layers)  # written once, before the workers read it
    nnsight, nn_why = H.peer("nnsight")
    methods = [m for m in args.methods if m not in NNSIGHT or nnsight is not None]
    workers = H.Workers(__file__, methods, ["--prompts", str(args.prompts), "--tokens", str(args.tokens),
                                            "--layers", str(args.layers), "--threads", str(args.threads)])
    for name, err in workers.failed.items():
        if not name.endswith(":stderr"):
            print(f"  {name}: failed: {err}")
    runs = workers.run(args.repeats)
    workers.close()
    print(f"# after the timed runs: {H.load_average()}")
    med = {m: H.median([r["seconds"] for r in rs]) for m, rs in runs.items()}
    peak = {m: max(r["peak_mib"] for r in rs) for m, rs in runs.items()}
    for m in runs:
        print(f"  {m:13s} median {H.fmt_s(med[m]):>10s} of {len(runs[m])}   peak extra memory {peak[m]:9.1f} MiB")

    # the same weights must give the same top-1 token at every block (ties aside)
    ref = workers.info.get("lens", {}).get("top1")
    for m in ("nnsight", "nnsight_last", "tl_common"):
        other = workers.info.get(m, {}).get("top1")
        if ref is not None and other is not None:
            a = [x for row in ref for x in row]
            b = [x for row in other for x in row]
            same = sum(int(x == y) for x, y in zip(a, b)) / len(a)
            print(f"  top-1 agreement lens vs {m}: {same:.4f} of {len(a)} (layer, prompt) pairs")

    if "lens" not in med:
        H.report("RATIO logit lens | ours: failed (see above)")
        return
    ours, floor = med["lens"], med.get("tl_forward")
    floor_name = "one plain HookedTransformer forward"
    peers = [("nnsight", "nnsight's documented recipe (all positions)"),
             ("nnsight_last", "nnsight's recipe cut to the last position"),
             ("tl_common", "TransformerLens run_with_cache + accumulated_resid"),
             ("per_layer", "one full forward per layer (reference code)")]
    for key, label in peers:
        if key not in args.methods:
            continue
        missing = nn_why if (key in NNSIGHT and nnsight is None) else workers.failed.get(key, "")
        mem = (f"peak memory {peak['lens']:.1f} MiB vs {peak[key]:.1f} MiB "
               f"({peak[key] / max(peak['lens'], 0.1):.1f}x leaner)") if key in peak else ""
        H.report(H.ratio_line(f"logit lens (decode_layers, {args.layers + 1} layers, last position)", ours,
                           peer_name=label, peer=med.get(key), peer_missing=missing,
                           floor_name=floor_name, floor=floor, extra=mem))
    if "hf_forward" in med and floor:
        print(f"  (one plain Hugging Face forward of the same weights: {H.fmt_s(med['hf_forward'])}, "
              f"{med['hf_forward'] / floor:.2f}x the HookedTransformer forward)")
    if not args.skip_probe and not args.quick:
        try:
            tp = probe_throughput(args.threads)
            print(f"Generation-time probing on toy-translate: {tp['examples']} examples in {tp['seconds']} s = "
                  f"{tp['examples_per_second']} examples/s ({tp['layers_decoded']} layers decoded per step)")
        except FileNotFoundError as err:
            print(f"Generation-time probing skipped: {err}")


if __name__ == "__main__":
    main()
