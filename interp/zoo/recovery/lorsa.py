"""Lorsa against planted heads: toy-lm-planted was trained on repeated random-token spans and ordinal runs, so
it has an induction head and successor behaviour; a Lorsa trained on that layer should have heads
that score at least as high, scored the same way (:func:`interp.lorsa.analyze.head_scores`).

    python -m interp.app.zoo_experiments recovery lorsa --out out/recovery_lorsa
    python -m interp.app.zoo_experiments recovery lorsa --host toy-induction --out out/recovery_lorsa_ti

Every function takes the host by name where it needs the host's data (``host=``, one of :data:`HOSTS`; its
recipe supplies the corpus mix and the repeats); ``toy-induction`` is not bundled yet (no design grew a
content-based induction head, see :mod:`interp.zoo.toy_induction`), so pass its model folder as ``model=``.
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

__all__ = ["HOSTS", "host_recipe", "planted_tokens", "host_scores", "compare_heads", "fresh_probe_scores", "comparison_frame",
           "induction_control", "induction_control_summary", "copy_losses", "designs_tried", "run", "train",
           "TOY_INDUCTION_LORSA"]

SCORES = ("induction", "successor", "previous_token", "sink")

EVAL_CORPUS_SEED = 7
"""Corpus seed of the documents Lorsa trains and is scored on (toy-lm-planted trained on corpus seeds 0 and 2)."""


HOSTS = ("toy-lm-planted", "toy-induction")
"""The zoo models with planted heads this module trains a Lorsa for (the artefact is ``<host>-lorsa``)."""


def host_recipe(host: str = "toy-lm-planted") -> Any:
    """The :class:`interp.zoo.toy_lm_planted.PlantedRecipe` a host of :data:`HOSTS` was trained with."""
    if host == "toy-induction":
        from interp.zoo.toy_induction import default_recipe

        return default_recipe()
    if host == "toy-lm-planted":
        from interp.zoo.toy_lm_planted import PlantedRecipe

        return PlantedRecipe()
    raise ValueError(f"host={host!r}: use one of {HOSTS}.")


def planted_tokens(model: "HookedTransformer", n_seq: int, ctx: int = 128, *, seed: int = EVAL_CORPUS_SEED,
                   host: str = "toy-lm-planted") -> Int[Tensor, "n_seq ctx"]:
    """``n_seq`` rows of ``ctx`` tokens (BOS first) from unseen documents of ``host``'s corpus (its recipe's
    mix, corpus seed ``seed``) with repeated random spans planted the way its recipe plants them: the
    model's own training distribution (documents shorter than ``ctx`` tokens are left out)."""
    from dataclasses import replace

    from interp.zoo.corpus import generate_corpus
    from interp.zoo.toy_lm_planted import _planted_sequences

    recipe = host_recipe(host)
    rows: list[list[int]] = []
    n_docs = 2 * n_seq
    while len(rows) < n_seq:
        docs = generate_corpus(replace(recipe.corpus, n_docs=n_docs, seed=seed))
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


def compare_heads(model: "HookedTransformer", lorsa: Any, tokens: Int[Tensor, "n_seq ctx"] | None, *, n_random: int = 64,
                  min_support: float = 0.01, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best Lorsa head and the best host head at the Lorsa's layer per score, scored like for like by
    :func:`interp.lorsa.analyze.head_scores` (same probes, positions and weighting) with both weightings;
    Lorsa heads firing on fewer than ``min_support`` of the induction probe's positions are left out of the
    output-weighted choice (a head firing once can score anything). Returns (the card's ``scores`` dict,
    the :class:`HeadScores` per weighting)."""
    from interp.lorsa.analyze import head_scores

    out: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for w in ("output", "uniform"):
        s = head_scores(model, lorsa, tokens, n_random=n_random, seed=seed, weighting=w)  # type: ignore[arg-type]
        raw[w] = s
        rec: dict[str, Any] = {}
        for score in SCORES:
            ms = min_support if w == "output" else 0.0
            best = s.best(score, min_support=ms)
            head = s.best_head(score, min_support=ms)
            rec[score] = {"best_lorsa": best["lorsa"], "best_host": best["host"], "lorsa_head": head,
                          "lorsa_head_support": float(s.lorsa.loc[head, "support"]),
                          "host_head": int(s.host[score].fillna(-1).to_numpy().argmax()),
                          "lorsa_heads_above_host": int((s.lorsa.loc[s.lorsa["support"] >= ms, score] >= best["host"]).sum())}
        out[w] = rec
    return out, raw


def comparison_frame(scores: dict[str, Any], fresh: dict[str, Any] | None = None) -> Any:
    """One row per (weighting, score) of :func:`compare_heads`'s dict, with the fresh-probe re-scores of
    :func:`fresh_probe_scores` (mean and standard error over the batches) where given."""
    import pandas as pd

    rows = []
    for w, recs in scores.items():
        for score, r in recs.items():
            row = {"weighting": w, "score": score, "lorsa_head": r["lorsa_head"], "lorsa_support": r["lorsa_head_support"],
                   "best_lorsa": r["best_lorsa"], "host_head": r["host_head"], "best_host": r["best_host"],
                   "lorsa_heads_above_host": r["lorsa_heads_above_host"]}
            f = (fresh or {}).get(f"{w}/{score}")
            if f is not None:
                row.update({"fresh_lorsa": f["lorsa_mean"], "fresh_lorsa_se": f["lorsa_se"], "fresh_host": f["host_mean"],
                            "fresh_host_se": f["host_se"], "fresh_diff": f["diff_mean"], "fresh_diff_se": f["diff_se"],
                            "fresh_batches": len(f["seeds"])})
            rows.append(row)
    return pd.DataFrame(rows)


@torch.no_grad()
def induction_control(model: "HookedTransformer", lorsa: Any, lorsa_heads: "list[int] | tuple[int, ...]" = (), *,
                      n_random: int = 64, half: int = 32, seed: int = 0, weighting: str = "output") -> Any:
    """Is an induction score content or position? Each host head at the Lorsa's layer and each of
    ``lorsa_heads``, scored as :func:`interp.lorsa.analyze.head_scores` scores induction (attention from
    the second half's positions t to t - half + 1, the same positions, the same ``weighting``) on the
    repeated probe [BOS, r, r] and on a control [BOS, r, r'] whose second half is fresh random tokens, so
    nothing repeats. A content-based induction head scores far higher on the first; a head that attends
    ``half - 1`` tokens back whatever the tokens scores the same on both. Also the attention to t - half
    (the earlier copy of the current token itself) on the repeated probe.

    Returns a DataFrame: ``source`` (host / lorsa), ``head``, ``repeated``, ``control``, ``content``
    (repeated - control), ``same_token`` and, for Lorsa heads, ``support_repeated`` / ``support_control``.
    """
    import pandas as pd

    from interp.lorsa.analyze import repeated_random_tokens

    if weighting not in ("output", "uniform"):
        raise ValueError(f"weighting={weighting!r}: use 'output' or 'uniform'.")
    lorsa.check_host(model)
    layer, G = lorsa.cfg.layer, lorsa.cfg.group_size
    half = min(half, (model.cfg.n_ctx - 1) // 2)
    rep = repeated_random_tokens(model, n_random, half, seed=seed)
    fresh = repeated_random_tokens(model, n_random, half, seed=seed + 10_007)
    control = rep.clone()
    control[:, half + 1:] = fresh[:, 1:half + 1]
    heads = [int(h) for h in lorsa_heads]
    hook_pat, hook_z = f"blocks.{layer}.attn.hook_pattern", f"blocks.{layer}.attn.hook_z"
    W_O = model.blocks[layer].attn.W_O.float()
    w_o_norm = lorsa.W_O.float().norm(dim=-1)[heads]
    dev = model.cfg.device
    t = torch.arange(half + 1, 2 * half + 1, device=dev)  # the second half's positions
    q = torch.arange(len(t), device=dev)

    def measure(toks: Tensor) -> dict[str, Tensor]:
        _, cache = model.run_with_cache(toks.to(dev), names_filter=[lorsa.cfg.hook_in, hook_pat, hook_z],
                                        stop_at_layer=layer + 1)
        x = cache[lorsa.cfg.hook_in].float()
        host_p = cache[hook_pat].float()[:, :, t]  # [b, heads, q, k]
        z = lorsa.encode(x)[:, t][..., heads]  # [b, q, n_selected]
        lor_p = lorsa.attention_pattern(x)[:, [h // G for h in heads]][:, :, t]
        if weighting == "output":
            w_host = torch.einsum("bphe,hem->bphm", cache[hook_z].float(), W_O).norm(dim=-1)[:, t]
            w_lor = z.abs() * w_o_norm
        else:
            w_host, w_lor = torch.ones(toks.shape[0], len(t), model.cfg.n_heads, device=dev), torch.ones_like(z)

        def score(pattern: Tensor, w: Tensor, offset: int) -> Tensor:
            a = pattern[:, :, q, t - offset].transpose(1, 2)  # [b, q, heads]
            total = w.sum((0, 1))
            return torch.where(total > 0, (a * w).sum((0, 1)) / total.clamp_min(1e-30), torch.full_like(total, float("nan"))).cpu()

        return {"host": score(host_p, w_host, half - 1), "lorsa": score(lor_p, w_lor, half - 1),
                "host_same": score(host_p, w_host, half), "lorsa_same": score(lor_p, w_lor, half),
                "support": (z != 0).float().mean((0, 1)).cpu()}

    a, b = measure(rep), measure(control)
    rows = [{"source": "host", "head": h, "repeated": float(a["host"][h]), "control": float(b["host"][h]),
             "same_token": float(a["host_same"][h])} for h in range(model.cfg.n_heads)]
    rows += [{"source": "lorsa", "head": h, "repeated": float(a["lorsa"][i]), "control": float(b["lorsa"][i]),
              "same_token": float(a["lorsa_same"][i]), "support_repeated": float(a["support"][i]),
              "support_control": float(b["support"][i])} for i, h in enumerate(heads)]
    df = pd.DataFrame(rows)
    df.insert(4, "content", df["repeated"] - df["control"])
    return df


@torch.no_grad()
def copy_losses(model: "HookedTransformer", *, n_random: int = 64, half: int = 32, seed: int = 0) -> dict[str, float]:
    """The host's mean next-token loss (nats) on the probe [BOS, r, r] of :func:`interp.lorsa.analyze.head_scores`:
    on the first copy (predicting r_2..r_half, nothing to copy: about ln(vocabulary)), on the second copy
    (r_2..r_half again, predictable by induction) and on the same positions of the control [BOS, r, r']
    (nothing repeats). Induction shows as a second-copy loss far below the other two."""
    from interp.lorsa.analyze import repeated_random_tokens

    half = min(half, (model.cfg.n_ctx - 1) // 2)
    rep = repeated_random_tokens(model, n_random, half, seed=seed)
    control = rep.clone()
    control[:, half + 1:] = repeated_random_tokens(model, n_random, half, seed=seed + 10_007)[:, 1:half + 1]

    def nll(toks: Tensor) -> Tensor:
        logits = model(toks.to(model.cfg.device)).float()
        return -logits[:, :-1].log_softmax(-1).gather(-1, toks[:, 1:, None].to(logits.device))[..., 0].cpu()

    a, b = nll(rep), nll(control)
    second = slice(half + 1, 2 * half)  # predictions of r_2..r_half of the second half
    return {"first_copy": float(a[:, 1:half].mean()), "second_copy": float(a[:, second].mean()),
            "control_second_half": float(b[:, second].mean()), "second_copy_se": float(a[:, second].mean(1).std() / n_random ** 0.5),
            "n_random": n_random, "half": half, "seed": seed}


def induction_control_summary(model: "HookedTransformer", lorsa: Any, lorsa_head: int, host_head: int, *,
                              seeds: tuple[int, ...] = (0, 1, 2, 3), n_random: int = 64) -> dict[str, Any]:
    """:func:`induction_control` of one Lorsa head and one host head over probe ``seeds``, both weightings:
    mean, standard error over the seeds and values of ``repeated``, ``control``, ``content`` and
    ``same_token``; plus, uniformly weighted, the host head at any layer with the largest content part."""
    import numpy as np

    from interp.lorsa import Lorsa, LorsaConfig

    def agg(values: list[float]) -> dict[str, Any]:
        a = np.asarray(values, dtype=float)
        return {"mean": float(a.mean()), "se": float(a.std(ddof=1) / np.sqrt(len(a))), "values": [round(float(v), 5) for v in a]}

    keys = ("repeated", "control", "content", "same_token")
    out: dict[str, Any] = {"lorsa_head": int(lorsa_head), "host_head": int(host_head), "layer": lorsa.cfg.layer,
                           "seeds": list(seeds), "n_random": n_random}
    for w in ("output", "uniform"):
        frames = [induction_control(model, lorsa, [lorsa_head], n_random=n_random, seed=sd, weighting=w) for sd in seeds]
        for src, head in (("host", host_head), ("lorsa", lorsa_head)):
            rows = [f[(f["source"] == src) & (f["head"] == head)].iloc[0] for f in frames]
            out[f"{w}/{src}"] = {k: agg([float(r[k]) for r in rows]) for k in keys}
    best: dict[str, Any] | None = None
    for layer in range(model.cfg.n_layers):
        dummy = Lorsa(LorsaConfig.from_model(model, layer, expansion=1, top_k=1))
        frames = [induction_control(model, dummy, [], n_random=n_random, seed=sd, weighting="uniform") for sd in seeds]
        for h in range(model.cfg.n_heads):
            rec = {"layer": layer, "head": h, **{k: agg([float(f.loc[f["head"] == h, k].iloc[0]) for f in frames])
                                                 for k in ("repeated", "content")}}
            if best is None or rec["content"]["mean"] > best["content"]["mean"]:
                best = rec
    out["uniform/host_max_content_any_layer"] = best
    return out


def designs_tried(model_name: str = "toy-lm-planted") -> Any:
    """The designs a zoo model's card lists (``designs_tried``): design, verdict and the best host induction
    score like for like (uniform weighting, [score, layer, head]); ``None`` when the card lists none."""
    import pandas as pd

    from interp import zoo

    if not isinstance(model_name, str) or model_name not in zoo.names(None):
        return None
    try:
        card = zoo.card(model_name)
    except FileNotFoundError:
        return None
    designs = card.get("designs_tried")
    if not designs:
        return None
    rows = []
    for d in designs:
        best = (d.get("host_scores_like_for_like") or {}).get("values", {}).get("uniform/induction")
        rows.append({"design": d.get("design"), "verdict": d.get("verdict", ""),
                     "best_host_induction": best[0] if best else None,
                     "at_layer_head": f"L{best[1]}H{best[2]}" if best and len(best) > 2 else None,
                     "what": d.get("what", "")})
    return pd.DataFrame(rows)


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


def run(model: "HookedTransformer | None" = None, *, host: str = "toy-lm-planted", layer: int | None = None,
        n_train_seq: int = 1024, ctx: int = 128, expansion: int = 8, top_k: int = 16, lr: float = 2e-3,
        n_random: int = 64, min_support: float = 0.01, seed: int = 0, out: str | Path | None = None,
        progress: bool = False) -> dict[str, Any]:
    """Host scores at every layer, a Lorsa at ``layer`` (default: the host's best induction layer),
    and both scored like for like with both weightings. JSON-able summary; the Lorsa goes to ``out``
    (the zoo artefact ``<host>-lorsa``; ``model`` defaults to the zoo's ``host``)."""
    from interp import zoo
    from interp.lorsa import LorsaConfig, evaluate_lorsa, train_lorsa
    from interp.lorsa.train import LorsaTrainConfig

    torch.manual_seed(seed)
    if host not in HOSTS:
        raise ValueError(f"host={host!r}: use one of {HOSTS}.")
    model = model if model is not None else zoo.load(host, device="cpu")
    hosts = {w: host_scores(model, weighting=w, n_random=n_random) for w in ("output", "uniform")}
    if layer is None:
        layer = int(max(hosts["output"], key=lambda r: r["induction"])["layer"])
    tokens = planted_tokens(model, n_train_seq + 256, ctx, host=host)
    train, held = tokens[:n_train_seq], tokens[n_train_seq:]
    cfg = LorsaConfig.from_model(model, layer, expansion=expansion, top_k=top_k)
    # the bundled checkpoints were trained before the defaults moved to the authors' init: their recipe keeps its own
    tc = LorsaTrainConfig(batch_size=16, n_steps=n_train_seq // 16, lr=lr, seed=seed, progress=progress,
                          ov_init="host", cooldown_frac=0.2)
    t0 = time.perf_counter()
    result = train_lorsa(model, layer, train, cfg, tc)
    seconds = time.perf_counter() - t0
    ev = evaluate_lorsa(model, result.lorsa, held)
    summary: dict[str, Any] = {"layer": layer, "lorsa_config": cfg.to_dict(), "train": {**asdict(tc), "seconds": round(seconds, 1),
                               "tokens": result.tokens_seen}, "eval": ev.summary(), "host_all_layers": hosts,
                               "min_support": min_support, "n_random": n_random, "scores": {}}
    summary["scores"], _ = compare_heads(model, result.lorsa, held[:64], n_random=n_random, min_support=min_support)
    summary["fresh_probes"] = fresh_probe_scores(model, result.lorsa, summary["scores"])
    ind = summary["scores"]["output"]["induction"]
    summary["induction_control"] = induction_control_summary(model, result.lorsa, ind["lorsa_head"], ind["host_head"])
    summary["copy_losses"] = copy_losses(model, n_random=n_random)
    if out is not None:  # the Lorsa folder with its card (the zoo artefact <host>-lorsa)
        out = Path(out)
        result.lorsa.save(out, extra={"eval": ev.summary(), "log": result.log})
        recipe = "interp.zoo.recovery.lorsa:train" if host == "toy-lm-planted" else f"interp.zoo.recovery.lorsa:run(host={host!r})"
        card = {"name": f"{host}-lorsa", "kind": "lorsa", "host": host, "recipe": recipe,
                "reproduce": f"interp zoo train {host}-lorsa",
                "data": {"tokens": f"planted_tokens(model, n_train_seq + 256, ctx, host={host!r}): unseen {host} documents "
                         f"(corpus seed {EVAL_CORPUS_SEED}) with repeats planted like the recipe; the last 256 rows held out",
                         "n_train_seq": n_train_seq, "ctx": ctx},
                **summary}
        (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return summary


def train(out_dir: Path, *, progress: bool = False, **kwargs: Any) -> Path:
    """Zoo recipe of ``toy-lm-planted-lorsa``: :func:`run` on the bundled toy-lm-planted, written to ``out_dir``."""
    run(out=out_dir, progress=progress, **kwargs)
    return Path(out_dir)


TOY_INDUCTION_LORSA: dict[str, Any] = {"ctx": 96}
""":func:`run`'s settings for ``toy-induction-lorsa`` beyond the defaults (its documents are shorter)."""
