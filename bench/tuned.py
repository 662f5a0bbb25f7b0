"""Tuned lens: ``interp.lens.TunedLens.train`` with its default recipe against the ``tuned-lens`` package
(Belrose et al.'s own trainer) on the same tokens, in one run.

Model: the shared stories260K (a real pretrained tiny Llama: 5 layers, d_model 64, vocab 512), as a
HookedTransformer for ours and as the Hugging Face model for the package. Tokens: sequences sampled from
stories260K itself (the only offline text it knows), BOS-first windows of ``--ctx`` tokens; ``--tokens``
training tokens (256k by default) and ``--held-out`` windows from another seed. Both trainers read the
same windows in the same order (``interp.lens.tuned.batch_order``), ``--batch`` windows a step, so
``tokens / (batch x ctx)`` steps each.

- ours: ``TunedLens.train(model, windows, TunedLensConfig(steps=S))``, every other knob at its default;
- peer: ``tuned_lens.scripts.train_loop.Train.execute`` itself, with its defaults (SGD + Nesterov,
  lr_scale 1, momentum 0.9, weight decay 1e-3, linear decay, gradient clipping at 1, KL loss, bf16
  autocast), ``num_steps=S``, ``tokens_per_step = batch x ctx`` and ``per_gpu_batch_size = batch`` (one
  forward per step, as ours); only ``setup`` is replaced, to hand it our model and our batches instead of
  a hub download and its own shuffle of a dataset;
- ours again on the TransformerBridge front-end (``--no-bridge`` skips it);
- floor: the forward passes the trainer needs over the same batches (the lens layers' residuals and the
  final log-probs, no lens at all), for each front-end; and the package's own (transformers, hidden states).
Held-out KL(final || lens) per layer is measured for both lenses (and the logit lens) by one evaluator
on the Hugging Face model, and ours again by ``interp.lens.kl_by_layer`` on the HookedTransformer as a
cross-check. Training runs are interleaved (ours, peer, ours, peer, ...; medians), timed in CPU seconds of
this single-threaded process (the other jobs of a shared machine stretch the wall clock, not the work).

Then the same trainers' seconds per step at GPT-2-small width (12 layers, d_model 768, vocab 50257, seeded
random weights, so only time is compared), where the loss (every layer unembedded, forward and backward)
outweighs the model's forward (``--no-wide`` skips it).

    .venv/bin/python bench/tuned.py --threads 1
    .venv/bin/python bench/tuned.py --quick --threads 1     # 32k tokens, 1 repeat
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

CACHE = H.ROOT / "bench" / ".cache"


# ----------------------------------------------------------------------------------- data
def sampled_windows(hf, tok, n: int, ctx: int, seed: int):
    """``n`` BOS-first windows sampled from the model (temperature 1), cached under bench/.cache."""
    import torch
    from safetensors.torch import load_file, save_file

    from interp.core.generation import generate
    from interp.core.tokens import start_token_id

    path = CACHE / f"stories260K-samples-{n}x{ctx}-seed{seed}.safetensors"
    if path.is_file():
        return load_file(str(path))["tokens"]
    rows = []
    start = start_token_id(tok)
    for first in range(0, n, 256):
        b = min(256, n - first)
        prompts = torch.full((b, 1), start, dtype=torch.long)
        g = generate(hf, prompts, ctx - 1, temperature=1.0, seed=seed * 1_000_003 + first, stop_at_eos=False,
                     tokenizer=tok)
        rows.append(torch.cat([prompts, g.tokens], 1))
    tokens = torch.cat(rows).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"tokens": tokens}, str(path))
    return tokens


# ----------------------------------------------------------------------------------- the peer
def peer_trainer(hf, windows, order, micro_batch: int):
    """The package's ``Train`` with ``setup`` replaced: our model and batches, its defaults for the rest."""
    import torch

    with contextlib.redirect_stderr(io.StringIO()):  # torchdata's deprecation banner
        from tuned_lens.scripts import ingredients as ing
        from tuned_lens.scripts.train_loop import State, Train

    steps, batch = order.shape
    if batch % micro_batch:
        raise ValueError(f"micro_batch {micro_batch} must divide the batch {batch}")
    ctx = windows.shape[1]

    class SameTokensTrain(Train):
        def setup(self):
            self.dist.init()
            lens = self.get_lens(hf)
            params = [p for p in lens.parameters() if p.requires_grad]
            opt = self.opt.create_optim(params)
            scheduler = self.opt.create_scheduler(opt, self.num_steps)
            # the same windows in the same order, in micro-batches of per_gpu_batch_size
            flat = order.reshape(-1, micro_batch)
            batches = ({"input_ids": windows[flat[i]]} for i in range(flat.shape[0]))
            state = State(dataloader=batches, lens=self.dist.distribute_lens(lens), opt=opt, scheduler=scheduler,
                          wandb_id=None, nats_to_bpb=1.0)
            self.trained = lens
            return state, hf, self.calculate_gradient_accumulation_steps(ctx)

    def train():
        out = tempfile.mkdtemp(prefix="tuned-lens-peer-")
        dist = ing.Distributed(per_gpu_batch_size=micro_batch)
        t = SameTokensTrain(model=ing.Model(name="stories260K"), data=ing.Data(), opt=ing.Optimizer(), dist=dist,
                            output=Path(out), num_steps=steps, tokens_per_step=batch * ctx)
        with contextlib.redirect_stdout(io.StringIO()):  # its progress prints; tqdm is off (TQDM_DISABLE)
            t.execute()
        shutil.rmtree(out, ignore_errors=True)
        torch.set_grad_enabled(True)
        return t.trained

    return train


# ----------------------------------------------------------------------------------- evaluation
def held_out_kl(hf, windows, translate):
    """Mean KL(final || lens) per lens layer on ``windows``, on the Hugging Face model; ``translate(h, i)``
    maps layer ``i``'s hidden state before the final norm (identity = the logit lens)."""
    import torch

    with torch.no_grad():
        out = hf(windows, output_hidden_states=True)
        final = out.logits.float().log_softmax(-1)
        p = final.exp()
        kls = []
        for i, h in enumerate(out.hidden_states[:-1]):  # the last entry is already normed: the output
            lp = hf.lm_head(hf.model.norm(translate(h, i))).float().log_softmax(-1)
            kls.append(float((p * (final - lp)).sum(-1).mean()))
    return kls


def ours_translate(lens):
    def f(h, i):
        return h + h @ lens.weight[i] + lens.bias[i]

    return f


# ----------------------------------------------------------------------------------- main
def timed_rounds(fns: dict, repeats: int) -> tuple[dict[str, list[float]], dict]:
    """Interleaved rounds (every function once per round); the first round's return values are kept."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    first = {}
    for r in range(repeats):
        for key, fn in fns.items():
            t0 = time.process_time()  # CPU seconds: the other jobs of a shared machine do not stretch them
            out = fn()
            times[key].append(time.process_time() - t0)
            if r == 0:
                first[key] = out
    return times, first


def wide_timing(args, tl_ok: bool, why: str) -> None:
    """Seconds per training step at GPT-2-small width (random weights; only time is compared here): the loss
    (every layer unembedded over a 50k vocabulary, forward and backward) outweighs the model's forward."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp.core.models import load_model
    from interp.lens import TunedLens, TunedLensConfig
    from interp.lens.kl import _residuals_and_final
    from interp.lens.tuned import batch_order
    from lens import model_folder

    folder = model_folder(args.wide_layers)
    hf = AutoModelForCausalLM.from_pretrained(folder).eval().requires_grad_(False)
    model = load_model(folder, frontend="hooked")  # the default front-end is the bridge
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(0, 50257, (args.wide_batch * args.wide_steps, args.wide_ctx), generator=g)
    order = batch_order(windows.shape[0], args.wide_steps, args.wide_batch, 0)
    cfg = TunedLensConfig(steps=args.wide_steps, batch_size=args.wide_batch)
    fns = {"ours": lambda: TunedLens.train(model, windows, cfg, progress=False, attach=False)}
    if tl_ok:
        fns["peer"] = peer_trainer(hf, windows, order, 1)
        fns["peer_b"] = peer_trainer(hf, windows, order, args.wide_batch)

    def floor():
        with torch.no_grad():
            for pick in order:
                _residuals_and_final(model, windows[pick])

    fns["floor"] = floor
    times, _ = timed_rounds(fns, args.wide_repeats)
    med = {k: H.median(v) / args.wide_steps for k, v in times.items()}
    print(f"## GPT-2-small width ({args.wide_layers} layers, d_model 768, vocab 50257, random weights): "
          f"{args.wide_steps} steps x {args.wide_batch} windows x {args.wide_ctx} tokens, seconds per step "
          f"(medians of {args.wide_repeats}): " + ", ".join(f"{k} {H.fmt_s(v)}" for k, v in med.items()))
    labels = {"peer": "tuned-lens defaults (per_gpu_batch_size=1)",
              "peer_b": f"tuned-lens with per_gpu_batch_size={args.wide_batch}"}
    for key in ("peer", "peer_b") if tl_ok else ("peer",):
        H.report(H.ratio_line("tuned lens training step at GPT-2-small width", med["ours"], peer_name=labels[key],
                              peer=med.get(key), peer_missing=why,
                              floor_name="the HookedTransformer forward the step needs", floor=med["floor"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=256_000, help="training tokens, the same for both")
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="windows per step, the same for both")
    ap.add_argument("--held-out", type=int, default=64, help="held-out windows")
    ap.add_argument("--repeats", type=int, default=2, help="training runs per side, interleaved")
    ap.add_argument("--floor-batches", type=int, default=50, help="batches timed for the forward-only floors")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-bridge", action="store_true", help="skip ours on the TransformerBridge front-end")
    ap.add_argument("--wide-layers", type=int, default=12)
    ap.add_argument("--wide-steps", type=int, default=3)
    ap.add_argument("--wide-batch", type=int, default=2)
    ap.add_argument("--wide-ctx", type=int, default=64)
    ap.add_argument("--wide-repeats", type=int, default=2)
    ap.add_argument("--no-wide", action="store_true", help="skip the GPT-2-small-width step timing")
    ap.add_argument("--quick", action="store_true", help="32k tokens, 1 repeat, 4-layer wide model")
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.repeats, args.floor_batches, args.wide_layers, args.wide_repeats = 32_768, 1, 10, 4, 1
    os.environ.setdefault("TQDM_DISABLE", "1")
    H.pin_threads(args.threads)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.app.paths import shared_model_dir
    from interp.core.models import load_model
    from interp.lens import TunedLens, TunedLensConfig, kl_by_layer
    from interp.lens.kl import _residuals_and_final
    from interp.lens.tuned import batch_order

    folder = shared_model_dir()
    hf = AutoModelForCausalLM.from_pretrained(folder).eval().requires_grad_(False)
    tok = AutoTokenizer.from_pretrained(folder)
    model = load_model(folder, frontend="hooked")  # the default front-end is the bridge; ours_bridge is the bridge
    fronts = {"ours": model}
    if not args.no_bridge:
        from bridge import front_ends

        fronts["ours_bridge"] = front_ends(folder)[0]
    steps = args.tokens // (args.batch * args.ctx)
    n_train = steps * args.batch  # as many distinct windows as the budget reads
    H.header(f"tuned lens: stories260K ({model.cfg.n_layers} layers, d_model {model.cfg.d_model}, vocab "
             f"{model.cfg.d_vocab}), {steps} steps x {args.batch} windows x {args.ctx} tokens = "
             f"{steps * args.batch * args.ctx:,} training tokens from {n_train} sampled windows, "
             f"{args.held_out} held-out windows", args.threads)
    train = sampled_windows(hf, tok, n_train, args.ctx, seed=1)
    held = sampled_windows(hf, tok, args.held_out, args.ctx, seed=2)
    defaults = TunedLensConfig()
    cfg = TunedLensConfig(steps=steps, batch_size=args.batch)
    order = batch_order(train.shape[0], steps, args.batch, cfg.seed)
    print(f"# our recipe: {cfg.recipe()}")

    tl_pkg, why = H.peer("tuned_lens", "tuned-lens")
    runs = {k: (lambda m=m: TunedLens.train(m, train, cfg, progress=False, attach=False)) for k, m in fronts.items()}
    names = {"ours": "ours (HookedTransformer)", "ours_bridge": "ours (TransformerBridge)",
             "peer": f"tuned-lens defaults (per_gpu_batch_size=1, {args.batch} micro-batches a step)",
             "peer_b": f"tuned-lens with per_gpu_batch_size={args.batch} (one forward a step, as ours)"}
    if tl_pkg is not None:
        try:
            runs["peer"] = peer_trainer(hf, train, order, 1)
            if args.batch > 1:
                runs["peer_b"] = peer_trainer(hf, train, order, args.batch)
        except Exception as err:  # e.g. its training loop's torchdata import
            tl_pkg, why = None, f"tuned-lens {why} installed but its trainer does not load: {type(err).__name__}: {err}"
            runs = {k: v for k, v in runs.items() if k.startswith("ours")}

    floor_batches = order[: min(args.floor_batches, steps)]

    def floor_of(m):  # the forward the trainer needs: the lens layers' residuals and the final log-probs
        def run():
            with torch.no_grad():
                for pick in floor_batches:
                    _residuals_and_final(m, train[pick])
        return run

    def hf_forward():
        with torch.no_grad():
            for pick in floor_batches:
                hf(train[pick], output_hidden_states=True)

    floors = {f"floor_{k}": floor_of(m) for k, m in fronts.items()}
    floors["floor_hf"] = hf_forward
    times, first = timed_rounds({**runs, **floors}, args.repeats)  # ours, peer, floors, ours, peer, floors, ...
    print(f"# after the timed runs: {H.load_average()}")
    scale = steps / len(floor_batches)
    med = {k: H.median(v) * (scale if k.startswith("floor") else 1) for k, v in times.items()}
    for k, v in times.items():
        extra = f" (x{scale:.0f}: {len(floor_batches)} of {steps} batches timed)" if k.startswith("floor") else ""
        print(f"  {k:12s} " + "  ".join(H.fmt_s(x) for x in v) + f"   median {H.fmt_s(med[k])}{extra}")

    logit = held_out_kl(hf, held, lambda h, i: h)
    kls = {k: held_out_kl(hf, held, ours_translate(first[k])) for k in fronts}
    for key in ("peer", "peer_b"):
        if key in first:
            kls[key] = held_out_kl(hf, held, first[key].transform_hidden)
    check = kl_by_layer(model, held, first["ours"]).tolist()
    print(f"  held-out KL(final || lens) per layer, nats ({held.shape[0]} windows x {held.shape[1]} tokens):")
    cols = [k for k in kls if k != "ours"]
    print("    layer  logit lens      ours" + "".join(f"  {k:>11s}" for k in cols) + "   ours/peer")
    ref = "peer" if "peer" in kls else None
    for i in range(len(logit)):
        print(f"    {i:5d}  {logit[i]:10.4f}  {kls['ours'][i]:8.4f}" + "".join(f"  {kls[k][i]:11.4f}" for k in cols)
              + (f"   {kls['ours'][i] / kls[ref][i]:9.3f}" if ref else ""))
    print(f"  cross-check: interp.lens.kl_by_layer on the HookedTransformer differs from the evaluator by at most "
          f"{max(abs(a - b) for a, b in zip(check, kls['ours'])):.1e} nats")
    for ours_key, floor_name in (("ours", "HookedTransformer run_with_cache"), ("ours_bridge", "TransformerBridge run_with_cache")):
        if ours_key not in med:
            continue
        for key in ("peer", "peer_b") if tl_pkg is not None else ("peer",):
            r = [o / p for o, p in zip(kls[ours_key], kls[key])] if key in kls else []
            extra = f"held-out KL ours/peer per layer {min(r):.3f}-{max(r):.3f} (aim <= 1.02)" if r else ""
            H.report(H.ratio_line(f"tuned lens training, {names[ours_key]}, {steps * args.batch * args.ctx:,} tokens",
                                  med[ours_key], peer_name=names[key], peer=med.get(key), peer_missing=why,
                                  floor_name=f"the forwards it needs alone, {floor_name} of the lens hooks",
                                  floor=med[f"floor_{ours_key}"], extra=extra))
    print(f"  (the package's own forward-only floor, transformers with output_hidden_states: {H.fmt_s(med['floor_hf'])};"
          f" no trainer that runs the model on every token can beat it)")
    if defaults.steps * defaults.batch_size != steps * args.batch:
        print(f"  (steps set to {steps} for equal tokens; the default is {defaults.steps} steps x {defaults.batch_size})")
    if not args.no_wide:
        wide_timing(args, tl_pkg is not None, why)


if __name__ == "__main__":
    main()
