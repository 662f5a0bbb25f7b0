"""Lorsa against planted heads: toy-lm-planted was trained on repeated random-token spans and ordinal runs, so
it has an induction head and successor behaviour; a Lorsa trained on that layer should have heads
that score at least as high, scored the same way (:func:`interp.lorsa.analyze.head_scores`).

    python -m interp.app.zoo_experiments recovery lorsa --out out/recovery_lorsa
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["planted_tokens", "host_scores", "fresh_probe_scores", "run", "train"]

EVAL_CORPUS_SEED = 7
"""Corpus seed of the documents Lorsa trains and is scored on (toy-lm-planted trained on corpus seeds 0 and 2)."""


def planted_tokens(model: "HookedTransformer", n_seq: int, ctx: int = 128, *, seed: int = EVAL_CORPUS_SEED
                   ) -> Int[Tensor, "n_seq ctx"]:
    """``n_seq`` rows of ``ctx`` tokens (BOS first) from unseen toy-lm-planted documents with repeated random
    spans planted the way the recipe plants them: the model's own training distribution."""
    from interp.zoo.corpus import PLANTED_MIX, CorpusConfig, generate_corpus
    from interp.zoo.toy_lm_planted import PlantedRecipe, _planted_sequences

    recipe = PlantedRecipe()
    rows: list[list[int]] = []
    n_docs = 2 * n_seq
    while len(rows) < n_seq:
        docs = generate_corpus(CorpusConfig(n_docs=n_docs, seed=seed, mix=dict(PLANTED_MIX)))
        seqs, _ = _planted_sequences(docs, model.tokenizer, 10_000, recipe.repeats, seed=seed)
        rows = [s[:ctx] for s in seqs if len(s) >= ctx]
        n_docs *= 2
    return torch.tensor(rows[:n_seq], dtype=torch.long)


def host_scores(model: "HookedTransformer", *, weighting: str = "output", n_random: int = 64) -> list[dict[str, Any]]:
    """Host head scores at every layer (a throwaway Lorsa supplies the layer; only host rows are kept)."""
    from interp.lorsa import Lorsa, LorsaConfig
    from interp.lorsa.analyze import head_scores

    rows = []
    for layer in range(model.cfg.n_layers):
        dummy = Lorsa(LorsaConfig.from_model(model, layer, expansion=1, top_k=1))
        s = head_scores(model, dummy, n_random=n_random, weighting=weighting)  # type: ignore[arg-type]
        for rec in s.host.drop(columns=["support"]).to_dict("records"):
            rows.append({"layer": layer, **rec})
    return rows


def fresh_probe_scores(model: "HookedTransformer", lorsa: Any, scores: dict[str, Any], *, seeds: tuple[int, ...] = (100, 101, 102, 103),
                       n_random: int = 16) -> dict[str, Any]:
    """The heads selected on the first probe (best Lorsa head, best host head), re-scored on fresh probe
    batches (``seeds``): the best of 1024 Lorsa heads on one probe is biased upward, its score on probes
    it was not selected on is not. Mean and standard error over the batches, per weighting and score."""
    import numpy as np

    from interp.lorsa.analyze import head_scores

    out: dict[str, Any] = {}
    for w in ("output", "uniform"):
        batches = [head_scores(model, lorsa, n_random=n_random, seed=sd, weighting=w) for sd in seeds]
        for score in ("induction", "successor"):
            head, hh = scores[w][score]["lorsa_head"], scores[w][score]["host_head"]
            lor = np.array([b.lorsa.loc[head, score] for b in batches], dtype=float)
            host = np.array([b.host.loc[hh, score] for b in batches], dtype=float)
            se = lambda a: float(a.std(ddof=1) / np.sqrt(len(a)))  # noqa: E731
            out[f"{w}/{score}"] = {"lorsa_head": head, "host_head": hh, "seeds": list(seeds), "n_random": n_random,
                                   "lorsa": lor.tolist(), "host": host.tolist(),
                                   "lorsa_mean": float(lor.mean()), "lorsa_se": se(lor),
                                   "host_mean": float(host.mean()), "host_se": se(host),
                                   "diff_mean": float((lor - host).mean()), "diff_se": se(lor - host)}
    return out


def run(model: "HookedTransformer | None" = None, *, layer: int | None = None, n_train_seq: int = 1024, ctx: int = 128,
        expansion: int = 8, top_k: int = 16, lr: float = 2e-3, n_random: int = 64, min_support: float = 0.01,
        seed: int = 0, out: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Host scores at every layer, a Lorsa at ``layer`` (default: the host's best induction layer),
    and both scored like for like with both weightings. JSON-able summary; the Lorsa goes to ``out``."""
    from interp import zoo
    from interp.lorsa import LorsaConfig, evaluate_lorsa, train_lorsa
    from interp.lorsa.analyze import head_scores
    from interp.lorsa.train import LorsaTrainConfig

    torch.manual_seed(seed)
    model = model if model is not None else zoo.load("toy-lm-planted", device="cpu")
    hosts = {w: host_scores(model, weighting=w, n_random=n_random) for w in ("output", "uniform")}
    if layer is None:
        layer = int(max(hosts["output"], key=lambda r: r["induction"])["layer"])
    tokens = planted_tokens(model, n_train_seq + 256, ctx)
    train, held = tokens[:n_train_seq], tokens[n_train_seq:]
    cfg = LorsaConfig.from_model(model, layer, expansion=expansion, top_k=top_k)
    tc = LorsaTrainConfig(batch_size=16, n_steps=n_train_seq // 16, lr=lr, seed=seed, progress=progress)
    t0 = time.perf_counter()
    result = train_lorsa(model, layer, train, cfg, tc)
    seconds = time.perf_counter() - t0
    ev = evaluate_lorsa(model, result.lorsa, held)
    summary: dict[str, Any] = {"layer": layer, "lorsa_config": cfg.to_dict(), "train": {**asdict(tc), "seconds": round(seconds, 1),
                               "tokens": result.tokens_seen}, "eval": ev.summary(), "host_all_layers": hosts,
                               "min_support": min_support, "n_random": n_random, "scores": {}}
    for w in ("output", "uniform"):
        s = head_scores(model, result.lorsa, held[:64], n_random=n_random, weighting=w)  # type: ignore[arg-type]
        rec: dict[str, Any] = {}
        for score in ("induction", "successor", "previous_token", "sink"):
            ms = min_support if w == "output" else 0.0
            best = s.best(score, min_support=ms)
            head = s.best_head(score, min_support=ms)
            rec[score] = {"best_lorsa": best["lorsa"], "best_host": best["host"], "lorsa_head": head,
                          "lorsa_head_support": float(s.lorsa.loc[head, "support"]),
                          "host_head": int(s.host[score].fillna(-1).to_numpy().argmax()),
                          "lorsa_heads_above_host": int((s.lorsa.loc[s.lorsa["support"] >= ms, score] >= best["host"]).sum())}
        summary["scores"][w] = rec
    summary["fresh_probes"] = fresh_probe_scores(model, result.lorsa, summary["scores"])
    if out is not None:  # the Lorsa folder with its card (the zoo artefact toy-lm-planted-lorsa)
        out = Path(out)
        result.lorsa.save(out, extra={"eval": ev.summary(), "log": result.log})
        card = {"name": "toy-lm-planted-lorsa", "kind": "lorsa", "host": "toy-lm-planted", "recipe":
                "interp.zoo.recovery.lorsa:train", "reproduce": "interp zoo train toy-lm-planted-lorsa",
                "data": {"tokens": "planted_tokens(model, n_train_seq + 256, ctx): unseen toy-lm-planted documents "
                         f"(corpus seed {EVAL_CORPUS_SEED}) with repeats planted like the recipe; the last 256 rows held out",
                         "n_train_seq": n_train_seq, "ctx": ctx},
                **summary}
        (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return summary


def train(out_dir: Path, *, progress: bool = False, **kwargs: Any) -> Path:
    """Zoo recipe of ``toy-lm-planted-lorsa``: :func:`run` on the bundled toy-lm-planted, written to ``out_dir``."""
    run(out=out_dir, progress=progress, **kwargs)
    return Path(out_dir)

