"""The ``interp`` command: ``interp zoo list|card|train``, ``interp demo``. App layer: it finds the shared
models and the notebooks (:mod:`interp.app.paths`) and passes them down."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _zoo_list(_: argparse.Namespace) -> int:
    from interp import zoo
    from interp.zoo.registry import REGISTRY

    for name, entry in REGISTRY.items():
        try:
            zoo.artefact_dir(name)
            state = "trained"
        except FileNotFoundError:
            state = "not trained"
        print(f"{name:24s} {entry.kind:10s} [{state}] {entry.description}")
    return 0


def _zoo_card(args: argparse.Namespace) -> int:
    from interp import zoo

    print(json.dumps(zoo.card(args.name), indent=2))
    return 0


def _recipe_inputs(needs: tuple[str, ...]) -> dict[str, object]:
    """What a recipe reads that is not in the zoo: the shared stories260K folder, found by the app layer."""
    from interp.app.paths import shared_model_dir

    kwargs: dict[str, object] = {}
    if "stories260K" in needs:
        host = shared_model_dir()
        if not (host / "config.json").is_file():
            raise FileNotFoundError(f"This recipe needs stories260K, not found at {host}; set INTERP_STORIES260K.")
        kwargs["host"] = host
    return kwargs


def _zoo_train(args: argparse.Namespace) -> int:
    from interp import zoo

    names = zoo.names(kind=None) if args.all else [args.name]
    if not names or names == [None]:
        print("Name a zoo artefact or pass --all.", file=sys.stderr)
        return 2
    for name in names:  # registry order: what an artefact needs is trained before it
        entry = zoo.entry(name)
        start = time.perf_counter()
        path = zoo.train(name, **_recipe_inputs(entry.needs))
        print(f"{name}: trained in {time.perf_counter() - start:.0f} s -> {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from interp.app.demo import run_demo

    print(run_demo(args.out, notebooks=args.notebooks or None, model=args.model, gallery_dir=args.gallery,
                   notebook_dir=args.notebook_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interp", description="interp: interpretability toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    zoo_p = sub.add_parser("zoo", help="the bundled model zoo")
    zoo_sub = zoo_p.add_subparsers(dest="zoo_command", required=True)
    zoo_sub.add_parser("list", help="list zoo models").set_defaults(func=_zoo_list)
    card = zoo_sub.add_parser("card", help="print a model card")
    card.add_argument("name")
    card.set_defaults(func=_zoo_card)
    train = zoo_sub.add_parser("train", help="rebuild a zoo artefact with its recipe")
    train.add_argument("name", nargs="?")
    train.add_argument("--all", action="store_true", help="rebuild every zoo artefact (models, SAEs, Lorsa, lens)")
    train.set_defaults(func=_zoo_train)
    demo = sub.add_parser("demo", help="run the notebooks headless and export every figure")
    demo.add_argument("--out", default="out")
    demo.add_argument("--model", default="toy-lm")
    demo.add_argument("--gallery", default=None, help="where the README gallery PNGs go (default: OUT/gallery)")
    demo.add_argument("--notebook-dir", default=None, help="folder of the NN_*.ipynb notebooks (default: ./notebooks)")
    demo.add_argument("notebooks", nargs="*", help="substrings of notebook names to run (default: all)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, FileNotFoundError, ValueError) as err:
        print(f"interp: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
