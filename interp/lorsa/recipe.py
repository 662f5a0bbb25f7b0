"""The recipe behind the bundled ``pretrained/stories260K-L2`` Lorsa, runnable end to end:

    python -m interp.lorsa.recipe --out interp/lorsa/pretrained/stories260K-L2

Tokens are sampled from stories260K itself (offline): 10 x 512 training sequences of 256 tokens
(seeds 1000-1009, ~1.3M tokens, the authors' comparison budget) and 256 held-out sequences (seed 12345); then one pass of training at layer 2
(512 OV heads, 8 QK heads of width 8, top-K 16, batch 8 x 256, lr 3e-3) and the evaluation.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from interp.activations import sample_tokens
from interp.lorsa.config import LorsaConfig
from interp.lorsa.evaluate import evaluate_lorsa
from interp.lorsa.train import TrainConfig, train_lorsa

TRAIN_SEEDS = tuple(range(1000, 1010))
EVAL_SEED = 12345


def main(argv: list[str] | None = None) -> dict:
    from interp.models import load_model, shared_model_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--layer", type=int, default=2)
    p.add_argument("--top-k", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--chunks", type=int, default=len(TRAIN_SEEDS), help="training chunks of 512 sequences")
    a = p.parse_args(argv)
    model = load_model(shared_model_dir())
    seeds = [1000 + i for i in range(a.chunks)]
    train = torch.cat([sample_tokens(model, 512, 256, batch_size=512, seed=s) for s in seeds])
    held_out = sample_tokens(model, 256, 256, batch_size=512, seed=EVAL_SEED)
    cfg = LorsaConfig.from_model(model, a.layer, expansion=8, top_k=a.top_k)
    start = time.time()
    result = train_lorsa(model, a.layer, train, cfg, TrainConfig(batch_size=8, n_steps=train.shape[0] // 8, lr=a.lr))
    seconds = time.time() - start
    ev = evaluate_lorsa(model, result.lorsa, held_out)
    summary = dict(train_tokens=result.tokens_seen, train_seconds=seconds, **ev.summary())
    result.lorsa.save(a.out, extra={"eval": summary, "training": {"log": result.log, "seeds": seeds, "lr": a.lr}})
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
