"""Ours only, on bench/lorsa.py's setting and cached tokens: train LorsaTrainConfig variants and print held-out
explained variance, loss recovered and dead heads, to compare with the peer numbers bench/lorsa.py prints
(no peer here: a variant sweep takes ~20 CPU s a variant instead of a minute with the peer).

    .venv-bench/bin/python bench/lorsa_variants.py --threads 1 default ov_init=host,cooldown_frac=0.2
    .venv-bench/bin/python bench/lorsa_variants.py --threads 1 'decoder_scales=0.5;1;2' aux_detach=False
"""

from __future__ import annotations

import argparse
import time
import warnings

import _harness as H
import lorsa as B


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="*", default=["default"],
                   help="comma-separated LorsaTrainConfig overrides per variant ('default': none), as bench/lorsa.py --variant")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=327_680, help="training tokens (multiple of 8 x 256)")
    p.add_argument("--held-out", type=int, default=64)
    p.add_argument("--model", default=str(H.ROOT.parent.parent / "shared" / "models" / "stories260K"))
    p.add_argument("--quick", action="store_true", help="40 steps, 16 held-out sequences")
    a = p.parse_args()
    H.pin_threads(a.threads)
    warnings.filterwarnings("ignore")
    from interp.core.models import load_model
    from interp.lorsa import evaluate_lorsa

    if a.quick:
        a.tokens, a.held_out = 40 * B.BATCH * B.CTX, 16
    folder = B.model_folder(a.model)
    model = load_model(folder, device="cpu", frontend="hooked")
    train = B.sampled(folder, a.tokens // B.CTX, seed=0)
    held = B.sampled(folder, a.held_out, seed=1)
    H.header(f"Lorsa variants (ours only): stories260K L{B.LAYER}, {train.numel():,} training tokens", a.threads)
    for v in a.variants:
        overrides = {} if v == "default" else B.parse_variant(v)
        t0 = time.process_time()
        result = B.ours_train(model, train, train.shape[0] // B.BATCH, **overrides)
        seconds = time.process_time() - t0
        ev = evaluate_lorsa(model, result.lorsa, held, progress=False)
        print(f"VARIANT {v}: EV {ev.explained_variance:.4f}, loss recovered {ev.loss_recovered:.2%}, dead {ev.dead_heads}, "
              f"L0 {ev.l0:.1f}, train {seconds:.1f} CPU s; {H.load_average()}", flush=True)


if __name__ == "__main__":
    main()
