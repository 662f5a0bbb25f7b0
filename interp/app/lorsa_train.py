"""Train a Lorsa from the command line, in one process or data parallel under torchrun (gloo on CPU,
NCCL on GPUs); every rank ends with the parameters a single process would have.

    python -m interp.app.lorsa_train --model toy-lm --layer 1 --tokens tokens.safetensors --out lorsa-L1
    torchrun --nproc_per_node=8 -m interp.app.lorsa_train --model MODEL --layer L --tokens t.safetensors --out DIR
"""

from __future__ import annotations

import argparse
import os

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """``torchrun --nproc_per_node=2 -m interp.app.lorsa_train --model M --layer 2 --tokens t.safetensors --out dir``"""
    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file

    from interp import load_model
    from interp.lorsa import LorsaConfig, LorsaTrainConfig, train_lorsa
    from interp.lorsa.train import distributed_rank

    p = argparse.ArgumentParser(description="Train a Lorsa (single process or under torchrun).")
    p.add_argument("--model", required=True, help="zoo name, local HF folder or hub name")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--tokens", required=True, help="safetensors file with a 'tokens' LongTensor [n_seq, ctx]")
    p.add_argument("--out", required=True, help="folder for the trained Lorsa (written by rank 0)")
    p.add_argument("--expansion", type=int, default=8)
    p.add_argument("--top-k", type=int, default=16)
    p.add_argument("--activation", default="relu", choices=["relu", "signed"])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--init", default="model", choices=["model", "random"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rank, world = distributed_rank()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    model = load_model(a.model, device=device)
    tokens = load_file(a.tokens)["tokens"]
    cfg = LorsaConfig.from_model(model, a.layer, expansion=a.expansion, top_k=a.top_k, activation=a.activation)
    tc = LorsaTrainConfig(batch_size=a.batch_size, n_steps=a.steps, lr=a.lr, checkpoint_dir=a.checkpoint_dir,
                     checkpoint_every=a.checkpoint_every, init=a.init, seed=a.seed)
    result = train_lorsa(model, a.layer, tokens, cfg, tc)
    if rank == 0:
        result.lorsa.save(a.out, extra={"log": result.log, "tokens_seen": result.tokens_seen, "world_size": world})
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
