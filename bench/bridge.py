"""Front-end overhead: the same forward, logit lens and CorrSteer collection through TransformerLens's
``TransformerBridge`` (wrapping the Hugging Face model; compatibility mode, no weight processing) and its
``HookedTransformer`` (TransformerLens's own re-implementation), side by side in one process, interleaved
(bridge, hooked, floor, bridge, hooked, floor, ...; medians). The floor is the plain Hugging Face model
doing the same job without any hooks: one forward (logits), or greedy generation of the same prompts.

Models: the shared stories260K (a real tiny Llama) for all three jobs, and a GPT-2-small-shaped model
(12 layers, d_model 768, vocab 50257, seeded random weights; the folder bench/lens.py writes) for the
forward and the lens at real width. Before timing, the two front-ends' outputs are compared.

The bridge is built here as ``TransformerBridge.boot_transformers(folder, hf_model=..., tokenizer=...)`` +
``enable_compatibility_mode(no_processing=True)`` (what ``interp.load_model`` returns by default), the
HookedTransformer by ``interp.core.models.load_model(folder, frontend="hooked")`` (without ``frontend=`` it would
be a second bridge: the bench compared the bridge with itself once the bridge became the default).

    .venv/bin/python bench/bridge.py --threads 1
    .venv/bin/python bench/bridge.py --quick --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402


def front_ends(folder: Path):
    import contextlib
    import io

    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.core.models import load_model

    tok = AutoTokenizer.from_pretrained(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        bridge = TransformerBridge.boot_transformers(str(folder), hf_model=AutoModelForCausalLM.from_pretrained(folder),
                                                     tokenizer=tok)
        bridge.enable_compatibility_mode(no_processing=True)
        hooked = load_model(folder, frontend="hooked")  # the default front-end is the bridge now
    plain = AutoModelForCausalLM.from_pretrained(folder).eval()  # its own copy: the bridge's carries hooks
    return bridge, hooked, plain, tok


def compare(label: str, fns: dict, repeats: int, *, floor_name: str, ours_key: str = "bridge") -> None:
    times = H.interleave(fns, repeats)
    med = {k: H.median(v) for k, v in times.items()}
    b, h, f = med["bridge"], med["hooked"], med["floor"]
    faster = "bridge" if b < h else "HookedTransformer"
    ratio = max(b, h) / min(b, h)
    print(f"  {label}: bridge {H.fmt_s(b)}, HookedTransformer {H.fmt_s(h)}, floor {H.fmt_s(f)} "
          f"({repeats} interleaved repeats each)")
    H.report(H.ratio_line(f"bridge vs HookedTransformer, {label}", b, peer_name="HookedTransformer", peer=h,
                          floor_name=floor_name, floor=f, extra=f"the {faster} is faster, by {ratio:.2f}x"))


def bench_model(name: str, folder: Path, args, *, collection: bool) -> None:
    import torch

    from interp.lens import decode_layers

    bridge, hooked, plain, tok = front_ends(folder)
    vocab = plain.config.vocab_size
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, min(vocab, 50257), (args.batch, args.ctx), generator=g)
    bos = tok.bos_token_id
    if bos is not None:
        tokens[:, 0] = bos
    print(f"## {name}: {plain.config.num_hidden_layers} layers, d_model {plain.config.hidden_size}, vocab {vocab}; "
          f"{args.batch} x {args.ctx} tokens")
    with torch.no_grad():
        a, b, c = bridge(tokens), hooked(tokens), plain(tokens).logits
    lp = [x.float().log_softmax(-1) for x in (a, b, c)]
    print(f"  check: max |log-prob difference| bridge vs transformers {(lp[0] - lp[2]).abs().max():.1e}, "
          f"HookedTransformer vs transformers {(lp[1] - lp[2]).abs().max():.1e}")
    ra, rb = decode_layers(bridge, tokens, k=5), decode_layers(hooked, tokens, k=5)
    same = (ra.top_ids[..., 0] == rb.top_ids[..., 0]).float().mean()
    print(f"  check: lens top-1 agreement bridge vs HookedTransformer {same:.4f} of {ra.top_ids[..., 0].numel()}")

    with torch.no_grad():
        compare("forward (logits)", {"bridge": lambda: bridge(tokens), "hooked": lambda: hooked(tokens),
                                     "floor": lambda: plain(tokens).logits}, args.repeats,
                floor_name="plain transformers forward")
        compare("logit lens (decode_layers, every layer, last position)",
                {"bridge": lambda: decode_layers(bridge, tokens, k=10), "hooked": lambda: decode_layers(hooked, tokens, k=10),
                 "floor": lambda: plain(tokens).logits}, args.repeats, floor_name="plain transformers forward")
    if not collection:
        return
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from interp.core.generation import generate
    from interp.steering.collect import collect
    from interp.zoo.stories import stories_recall_task

    torch.manual_seed(0)
    d = plain.config.hidden_size
    saes = [TopKSAE(TopKSAEConfig(d_in=d, d_sae=args.d_sae, k=16, metadata=SAEMetadata(hook_name=f"blocks.{i}.hook_resid_post")))
            for i in range(plain.config.num_hidden_layers)]
    task = stories_recall_task("name", n=args.samples)
    prompts = [e.prompt for e in task.examples]
    max_new = 8

    def run_collect(model):
        return collect(model, saes, task, max_new_tokens=max_new, batch_size=32, progress=False)

    def plain_generation():
        for i in range(0, len(prompts), 32):
            generate(plain, prompts[i:i + 32], max_new, tokenizer=tok, stop=getattr(task, "stop", ()))

    try:
        ca = run_collect(bridge)
    except Exception as err:  # a method that does not run on the bridge yet is reported, not fatal
        msg = f"{type(err).__name__}: {err}"
        print(f"  CorrSteer collection fails on the bridge: {msg}")
        H.report(f"RATIO bridge vs HookedTransformer, CorrSteer collection | bridge: failed ({msg})")
        return
    cb = run_collect(hooked)
    r_a, r_b = ca.correlations(), cb.correlations()
    diff = max(float((r_a[k] - r_b[k]).nan_to_num().abs().max()) for k in r_a)
    print(f"  check: collection labels equal {bool((ca.labels == cb.labels).all())}, "
          f"generations equal {sum(x == y for x, y in zip(ca.generations, cb.generations))}/{len(ca.generations)}, "
          f"max |r difference| {diff:.1e}")
    compare(f"CorrSteer collection ({len(prompts)} prompts, {max_new} new tokens, {len(saes)} SAEs x {args.d_sae})",
            {"bridge": lambda: run_collect(bridge), "hooked": lambda: run_collect(hooked), "floor": plain_generation},
            max(1, args.repeats - 1), floor_name="plain transformers greedy generation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--samples", type=int, default=128, help="prompts of the collection")
    ap.add_argument("--d-sae", type=int, default=1024)
    ap.add_argument("--gpt2-layers", type=int, default=12)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.batch, args.ctx, args.samples, args.gpt2_layers = 3, 4, 32, 32, 4
    H.pin_threads(args.threads)
    import torch

    torch.set_grad_enabled(False)
    H.header("front-end overhead: TransformerBridge vs HookedTransformer", args.threads)
    from interp.app.paths import shared_model_dir

    bench_model("stories260K", shared_model_dir(), args, collection=True)
    sys.path.insert(0, str(H.ROOT / "bench"))
    from lens import model_folder

    gpt2 = argparse.Namespace(**{**vars(args), "batch": max(1, args.batch // 2), "ctx": min(args.ctx, 64),
                                 "repeats": max(2, args.repeats - 2)})
    bench_model("GPT-2-small-shaped (random weights)", model_folder(args.gpt2_layers), gpt2, collection=False)
    print(f"# after the timed runs: {H.load_average()}")


if __name__ == "__main__":
    main()
