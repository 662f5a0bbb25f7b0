"""Recipe of the ``stories260K-lorsa-L2`` zoo artefact: a Lorsa for attention layer 2 of the shared
stories260K model at the Lorsa authors' comparison budget.

Tokens are sampled from stories260K itself (offline): 10 x 512 training sequences of 256 tokens
(seeds 1000-1009, ~1.3M tokens) and 256 held-out sequences (seed 12345); then one pass of training
(512 OV heads, 8 QK heads of width 8, top-K 16, batch 8 x 256, lr 3e-3) and the evaluation.

    interp zoo train stories260K-lorsa-L2          # finds ../shared/models/stories260K
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from interp.core.activations import sample_tokens
from interp.core.models import load_model
from interp.lorsa import LorsaConfig, LorsaTrainConfig, evaluate_lorsa, train_lorsa

__all__ = ["TRAIN_SEEDS", "EVAL_SEED", "train"]

BUNDLED_RECIPE = {"ov_init": "host", "cooldown_frac": 0.2}
"""Settings of the bundled checkpoint, trained before the defaults moved to the authors' OV init and a short cool-down."""

TRAIN_SEEDS = tuple(range(1000, 1010))
EVAL_SEED = 12345


def train(out_dir: Path, *, host: str | Path, layer: int = 2, top_k: int = 16, lr: float = 3e-3,
          chunks: int = len(TRAIN_SEEDS), progress: bool = True) -> Path:
    """Train the Lorsa on ``host`` (the stories260K folder) and write it with its card into ``out_dir``."""
    model = load_model(host)
    seeds = [TRAIN_SEEDS[0] + i for i in range(chunks)]
    train_tokens = torch.cat([sample_tokens(model, 512, 256, batch_size=512, seed=s, progress=progress) for s in seeds])
    held_out = sample_tokens(model, 256, 256, batch_size=512, seed=EVAL_SEED, progress=progress)
    cfg = LorsaConfig.from_model(model, layer, expansion=8, top_k=top_k)
    start = time.time()
    result = train_lorsa(model, layer, train_tokens, cfg,
                         LorsaTrainConfig(batch_size=8, n_steps=train_tokens.shape[0] // 8, lr=lr, progress=progress,
                                          **BUNDLED_RECIPE))
    seconds = time.time() - start
    ev = evaluate_lorsa(model, result.lorsa, held_out, progress=progress)
    summary: dict[str, Any] = dict(train_tokens=result.tokens_seen, train_seconds=seconds, **ev.summary())
    out = Path(out_dir)
    result.lorsa.save(out, extra={"eval": summary, "training": {"log": result.log, "seeds": seeds, "lr": lr}})
    card = {"name": "stories260K-lorsa-L2", "kind": "lorsa", "host": "stories260K", "layer": layer,
            "config": cfg.to_dict(), "data": {"train_seeds": seeds, "eval_seed": EVAL_SEED, "ctx": 256},
            "training": {"lr": lr, "steps": train_tokens.shape[0] // 8, "tokens_seen": result.tokens_seen,
                         "seconds": round(seconds, 1)},
            "evaluation": summary, "reproduce": "interp zoo train stories260K-lorsa-L2"}
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return out
