"""Held-out KL(model || lens) per layer of the logit, tuned and Jacobian lenses on a real small model.

toy-translate: the tuned lens is the zoo's (``toy-translate-tuned-lens``, 300 steps on held-out corpus
documents, seed+1) when it is present, else trained here the same way; the Jacobian lens is fitted on the
first ``--fit-windows`` of those same windows; the KL is measured on the tuned-lens card's held-out windows
(corpus seed+2, 400 documents, the first 256 BOS-first windows of 32 tokens), which neither lens saw.
stories260K: no text is bundled, so both lenses are fitted on text sampled from the model (seed 0) and
measured on other samples (seed 1).

    python bench/lens_compare.py --model toy-translate
    python bench/lens_compare.py --model stories260K --host /work/shared/models/stories260K
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import torch

    from interp.core.models import load_model
    from interp.lens import JacobianLens, JacobianLensConfig, TunedLens, TunedLensConfig
    from interp.lens.compare import compare_lenses

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy-translate", choices=("toy-translate", "stories260K"))
    ap.add_argument("--host", default="/work/shared/models/stories260K", help="stories260K's folder")
    ap.add_argument("--fit-windows", type=int, default=512)
    ap.add_argument("--skip-first", type=int, nargs="+", default=[16, 1])
    ap.add_argument("--tuned-steps", type=int, default=300)
    ap.add_argument("--ctx", type=int, default=32)
    ap.add_argument("--out", default=None, help="write the frames and timings as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if a.model == "toy-translate":
        from interp.core.activations import text_tokens
        from interp.zoo.registry import REGISTRY
        from interp.zoo.toy_translate import CorpusSpec, _lexicon, build_corpus

        folder = REGISTRY["toy-translate"].path
        model = load_model(folder)
        corpus = json.loads((folder / "card.json").read_text())["corpus"]
        spec = CorpusSpec(n_docs=4000, seed=corpus["seed"] + 1, n_concepts=corpus["n_concepts"])
        fit = text_tokens(model, build_corpus(spec, _lexicon()), a.ctx)
        held = text_tokens(model, build_corpus(CorpusSpec(n_docs=400, seed=corpus["seed"] + 2,
                                                          n_concepts=corpus["n_concepts"]), _lexicon()), a.ctx)[:256]
        lens_dir = REGISTRY["toy-translate-tuned-lens"].path
        t0 = time.perf_counter()
        if (lens_dir / "tuned_lens.safetensors").is_file():
            tuned, tuned_src = TunedLens.load(lens_dir, model, attach=False), f"zoo {lens_dir.name}"
        else:
            tuned = TunedLens.train(model, fit, TunedLensConfig(steps=a.tuned_steps), attach=False)
            tuned_src = f"trained here, {a.tuned_steps} steps"
        tuned_s = time.perf_counter() - t0
    else:
        from interp.core.activations import sample_tokens

        model = load_model(a.host)
        fit = sample_tokens(model, a.fit_windows, a.ctx, seed=0)
        held = sample_tokens(model, 256, a.ctx, seed=1)
        t0 = time.perf_counter()
        tuned = TunedLens.train(model, fit, TunedLensConfig(steps=a.tuned_steps), attach=False)
        tuned_s, tuned_src = time.perf_counter() - t0, f"trained here, {a.tuned_steps} steps"
    out = dict(model=a.model, ctx=a.ctx, held_out_windows=int(held.shape[0]), tuned=tuned_src,
               tuned_seconds=round(tuned_s, 1), runs=[])
    for skip in a.skip_first:
        t0 = time.perf_counter()
        jac = JacobianLens.fit(model, fit[: a.fit_windows], JacobianLensConfig(skip_first=skip), attach=False)
        fit_s = time.perf_counter() - t0
        print(f"\n{a.model}: Jacobian lens skip_first={skip}, fitted on {min(a.fit_windows, fit.shape[0])} windows "
              f"in {fit_s:.1f} s; tuned lens: {tuned_src}")
        run = dict(skip_first=skip, fit_seconds=round(fit_s, 1))
        for start in sorted({0, skip}):  # every position, and only those the Jacobian lens was fitted on
            cmp = compare_lenses(model, held, tuned=tuned, jacobian=jac, from_position=start)
            print(f"KL averaged over positions {start}..{a.ctx - 1}:")
            print(cmp.table().round(4).to_string())
            print(cmp)
            run[f"table_from_{start}"] = cmp.table().round(4).to_dict()
        out["runs"].append(run)
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
