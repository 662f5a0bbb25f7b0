"""The Lorsa authors' checkpoint (llamascopium format) on its host: how it reads, and how it scores.

    .venv/bin/python bench/lorsa_authors.py \
        --checkpoint ../shared/fixtures/lorsa-authors-stories260K-L2 --model ../shared/models/stories260K

Prints the reading the loader detects (explained variance of both readings on a few host-sampled
sequences, the stored vs measured mean activation norms), then ``evaluate_lorsa`` (explained variance,
loss recovered, dead heads) on fresh sampled sequences under each reading: the detected one and the one
the checkpoint's config.json literally describes.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--n-seq", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--seed", type=int, default=4242)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from interp import load_model
    from interp.core.activations import sample_tokens
    from interp.lorsa import evaluate_lorsa, read_authors_lorsa

    model = load_model(args.model)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = read_authors_lorsa(args.checkpoint, model=model)
    print(f"detected reading: {loaded.reading} ({time.perf_counter() - t0:.1f} s, shared CPU); {loaded.reason}")
    for w in caught:
        print("warning:", w.message)
    print("stored dataset norms:", loaded.dataset_norms, "measured:", loaded.mean_norms)
    tokens = sample_tokens(model, args.n_seq, args.ctx, seed=args.seed, progress=False)
    for reading in ("folded", "normalised"):
        lorsa = read_authors_lorsa(args.checkpoint, reading=reading).lorsa
        s = evaluate_lorsa(model, lorsa, tokens, progress=False).summary()
        print(f"{reading:10s} EV {s['explained_variance']:.3f}  loss recovered {100 * s['loss_recovered']:.1f}%  "
              f"L0 {s['l0']:.0f}  dead {s['dead_heads']}  ({s['n_tokens']} tokens)")


if __name__ == "__main__":
    main()
