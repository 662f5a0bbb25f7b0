"""CorrSteer against the other feature-selection rules, in one run, on a zoo model and task.

    .venv/bin/python bench/selection_rules.py                       # toy-lm, planted QA task, 1500 samples
    .venv/bin/python bench/selection_rules.py --n 600 --train 360   # smaller
    .venv/bin/python bench/selection_rules.py --model ../shared/models/stories260K --task stories-name \
        --train-sae-tokens 300000 --out out/selectors_stories_name    # trains 3 residual SAEs first

Collects correlation statistics on the train split, scores each hook's candidate features by output
score (Arad et al. 2025) and Delta token confidence (Wang et al. 2025), steers with each rule's S
feature, difference of means and random controls on the held-out split, and writes the ranking
(CSV + JSON report) and the figure (PNG/PDF/SVG when a Chromium is present, HTML always) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="toy-lm")
    ap.add_argument("--task", default="qa")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--train", type=int, default=900)
    ap.add_argument("--val", type=int, default=150, help="held back (unused by the selectors), so the test split "
                                                            "equals notebook 03's")
    ap.add_argument("--pooling", default=None)
    ap.add_argument("--n-random", type=int, default=5)
    ap.add_argument("--pool", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/selectors")
    ap.add_argument("--sae-dir", default=None, help="a folder of saved SAEs (one sub-folder per hook)")
    ap.add_argument("--train-sae-tokens", type=int, default=0,
                    help="train SAEs here (tokens per hook) when the model has none bundled; 0: never")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from interp import load_model
    from interp.steering.selectors import SelectorConfig, compare_selectors
    from interp.zoo import sources

    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    saes = sources.saes_for(args.model, model, folder=args.sae_dir, train_if_missing=args.train_sae_tokens > 0,
                            train_tokens=max(args.train_sae_tokens, 1), out_dir=out, seed=args.seed).saes
    task = sources.corrsteer_task(args.task, args.n, seed=args.seed)
    splits = task.split(args.train, args.val, seed=args.seed)
    cfg = SelectorConfig(pooling=args.pooling, batch_size=args.batch_size, n_random=args.n_random, pool=args.pool,
                         seed=args.seed, progress=False)
    t0 = time.perf_counter()
    cmp = compare_selectors(model, saes, splits, cfg)
    seconds = time.perf_counter() - t0
    ranking = cmp.ranking()
    ranking.to_csv(out / "ranking.csv", index=False)
    cmp.report.to_frame().to_csv(out / "conditions.csv", index=False)
    cmp.candidates.to_frame().to_csv(out / "candidates.csv", index=False)
    (out / "comparison.json").write_text(json.dumps(cmp.to_dict(), indent=1))
    fig = cmp.plot()
    fig.write_html(out / "selectors.html", include_plotlyjs=True)
    from interp.viz.figures import find_chromium

    if find_chromium() is not None:
        from interp.viz.figures import export

        export(fig, out / "selectors")
    print(f"{task.name}: train {len(splits.train)}, test {len(splits.test)}, train accuracy {cmp.meta['train_accuracy']:.3f}, "
          f"pooling {cmp.meta['pooling']}, {seconds:.0f} s (shared, loaded CPU)")
    cols = ["rank", "condition", "accuracy", "delta", "delta_low", "delta_high", "ser", "n_changed", "beats_random", "features"]
    print(ranking[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    r = cmp.report.to_frame()
    rnd = r[r["kind"] == "random"]
    print(f"random controls: delta {rnd['delta'].min():+.3f} .. {rnd['delta'].max():+.3f}")
    for rule, feats in cmp.chosen.items():
        print(rule, [(f.hook, f.feature, round(f.r, 3), round(f.coefficient, 3)) for f in feats])


if __name__ == "__main__":
    main()
