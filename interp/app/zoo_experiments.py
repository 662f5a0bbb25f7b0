"""Command line of the zoo's planted-structure experiments (issue 14): re-run one toy-pivot design, time
the toy-pivot recipe, or re-measure a recovery of toy-lm-planted. The library functions do the work
(:mod:`interp.zoo.toy_pivot`, :mod:`interp.zoo.recovery`); this module only parses and prints.

    python -m interp.app.zoo_experiments pivot-try F-implicit-target
    python -m interp.app.zoo_experiments pivot-time 50 300
    python -m interp.app.zoo_experiments recovery lorsa --out out/recovery_lorsa
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _show(obj: Any) -> None:
    from interp.zoo.training import json_default

    print(json.dumps(obj, indent=1, ensure_ascii=False, default=json_default))


def _parser() -> argparse.ArgumentParser:
    from interp.zoo.toy_pivot import DESIGNS

    parser = argparse.ArgumentParser(prog="python -m interp.app.zoo_experiments", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("pivot-try", help="train + measure one toy-pivot design into a scratch folder, record its numbers")
    t.add_argument("design", choices=list(DESIGNS))
    t.add_argument("--out", default=None, help="scratch folder (default: /tmp/toy-pivot-<design>)")
    t.add_argument("--no-record", action="store_true", help="do not write pivot_designs.json")
    tm = sub.add_parser("pivot-time", help="single-thread CPU time of toy-pivot's recipe (two short runs)")
    tm.add_argument("short", type=int, nargs="?", default=50)
    tm.add_argument("long", type=int, nargs="?", default=300)
    r = sub.add_parser("recovery", help="re-measure one planted recovery (corrsteer: toy-mode; lorsa, thr: "
                                        "toy-lm-planted; lorsa --host: another host)")
    which = r.add_subparsers(dest="method", required=True)
    cs = which.add_parser("corrsteer")
    cs.add_argument("--out", type=Path, default=Path("out/recovery_corrsteer"))
    cs.add_argument("--n-random", type=int, default=12)
    cs.add_argument("--seed", type=int, default=0)
    lo = which.add_parser("lorsa")
    lo.add_argument("--out", type=Path, default=Path("out/recovery_lorsa"))
    lo.add_argument("--layer", type=int, default=None)
    lo.add_argument("--n-train-seq", type=int, default=None, help="default: the host's recipe (1024)")
    lo.add_argument("--host", default="toy-lm-planted", choices=["toy-lm-planted", "toy-induction"],
                    help="the zoo model (its Lorsa is the artefact <host>-lorsa; toy-induction is not bundled yet)")
    th = which.add_parser("thr")
    th.add_argument("--out", type=Path, default=Path("out/recovery_thr"))
    th.add_argument("--steps", type=int, default=40)
    th.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    th.add_argument("--lr", type=float, default=None)
    th.add_argument("--eval-every", type=int, default=10)
    th.add_argument("--n-samples", type=int, default=128)
    th.add_argument("--variants", nargs="+", default=["plain", "p=+0.5", "p=-0.5"])
    th.add_argument("--prompts", type=int, default=16, help="prompts per GRPO step (G responses each)")
    th.add_argument("--train-band", default=None, choices=["hard", "easy"], help="train only on this band's holders")
    th.add_argument("--easy-samples", type=int, default=None, help="samples per prompt on the easy sets")
    th.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    for p in (cs, lo, th):
        p.add_argument("--record", action="store_true", help="write the summary into the model's card.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "pivot-time":
        from interp.zoo.toy_pivot import time_recipe

        _show(time_recipe(args.short, args.long))
        return 0
    if args.command == "pivot-try":
        from interp.zoo.toy_pivot import try_design

        summary = try_design(args.design, Path(args.out or f"/tmp/toy-pivot-{args.design}"), record=not args.no_record)
        _show({k: v for k, v in summary.items() if k != "design"})
        return 0
    from interp.zoo import recovery
    from interp.zoo.recovery import corrsteer, lorsa, thr

    if args.method == "corrsteer":
        s = corrsteer.run(n_random=args.n_random, seed=args.seed, out=args.out, progress=True)
        shown = {"latent": s["latent"], "best_cosine_any_feature": s["best_cosine_any_feature"],
                 **{p: {k: v for k, v in d.items() if k not in ("conditions", "selected", "by_evidence")}
                    for p, d in s["poolings"].items()},
                 "selectors": [{k: r[k] for k in ("rank", "condition", "delta", "delta_low", "delta_high", "ser",
                                                   "beats_random")} for r in s.get("selectors", {}).get("ranking", [])]}
        recorded = s
    elif args.method == "lorsa":
        kw = {**(lorsa.TOY_INDUCTION_LORSA if args.host == "toy-induction" else {}),
              **({"n_train_seq": args.n_train_seq} if args.n_train_seq else {})}
        s = lorsa.run(host=args.host, layer=args.layer, out=args.out, progress=True, **kw)
        shown, recorded = {k: v for k, v in s.items() if k != "host_all_layers"}, s
    else:
        r = thr.run(steps=args.steps, seeds=tuple(args.seeds), lr=args.lr, eval_every=args.eval_every,
                    n_samples=args.n_samples, variants=tuple(args.variants), out=args.out, prompts=args.prompts,
                    train_band=args.train_band, easy_samples=args.easy_samples, ks=tuple(args.ks), progress=False)
        shown, recorded = r["summary"], {k: v for k, v in r.items() if k != "runs"}
    _show(shown)
    if args.record:
        name, section = card_target(args)
        recovery.record(section, recorded, name=name)
    return 0


def card_target(args: argparse.Namespace) -> tuple[str, str]:
    """(zoo model, card ``recovery`` section) a ``recovery --record`` run writes: CorrSteer's latent is planted
    in toy-mode, Lorsa's heads in ``--host``, THR's codes in toy-lm-planted, whose card keeps the base model's
    pass@k under ``thr_base`` and the GRPO runs under ``thr_grpo``."""
    if args.method == "corrsteer":
        return "toy-mode", "corrsteer"
    if args.method == "lorsa":
        return getattr(args, "host", "toy-lm-planted"), "lorsa"
    return "toy-lm-planted", "thr_grpo"


if __name__ == "__main__":
    raise SystemExit(main())
