"""Command line of the THR experiment (:func:`interp.thr.experiment.run_experiment`) on the bundled
models: plain GRPO against THR p = +/-P from the same start, several seeds, held-out pass@k.

    python -m interp.app.thr_experiment --model toy-lm --steps 40 --seeds 0 1 2 --out out/thr_exp
    python -m interp.app.thr_experiment --summarize out/thr_exp/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stories260K", help="stories260K (the shared folder) or a zoo name (toy-lm)")
    ap.add_argument("--task", default="arith", help="the planted task of a zoo model")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=None, help="default: the model card's suggested GRPO rate")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--n-samples", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--exclude-self", action="store_true")
    ap.add_argument("--loss-type", default="grpo")
    ap.add_argument("--variants", nargs="+", default=["plain", "p=+0.5", "p=-0.5"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/thr_experiment"))
    ap.add_argument("--summarize", type=Path, default=None, help="print the summary of a results.json and exit")
    a = ap.parse_args(argv)

    from interp.thr.experiment import DEFAULT_VARIANTS, Variant, run_experiment, summarize

    if a.summarize is not None:
        import pandas as pd

        with pd.option_context("display.width", 250, "display.max_columns", 40, "display.precision", 3):
            evals, train = summarize(json.loads(a.summarize.read_text()))
            print(evals.to_string(), "\n\nTraining-time means over steps:\n", train.to_string(), sep="")
        return 0
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp import zoo
    from interp.app.paths import shared_model_dir
    from interp.thr.grpo import GRPOConfig

    torch.set_num_threads(a.threads)  # one thread per process is fastest on a shared CPU
    if a.model in zoo.names():
        folder = zoo.model_dir(a.model)
        task = zoo.tasks.planted_grpo_task(a.task)
    else:
        folder = shared_model_dir() if a.model == "stories260K" else Path(a.model)
        task = zoo.stories.story_word_task(max_new_tokens=a.max_new_tokens)

    def make_model():
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

    table = {v.name: v for v in DEFAULT_VARIANTS}
    variants = [table[name] if name in table else Variant(name, {"thr": True, "thr_p": float(name.split("=")[1])})
                for name in a.variants]
    lr = a.lr if a.lr is not None else zoo.suggested_grpo_lr(a.model)
    base = GRPOConfig(group_size=a.group_size, prompts_per_step=a.prompts, lr=lr, loss_type=a.loss_type,
                      thr_exclude_self=a.exclude_self, max_new_tokens=a.max_new_tokens)
    run_experiment(make_model, task, base=base, steps=a.steps, seeds=tuple(a.seeds), variants=tuple(variants),
                   eval_every=a.eval_every, n_samples=a.n_samples, out=a.out)
    print(f"results: {a.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
