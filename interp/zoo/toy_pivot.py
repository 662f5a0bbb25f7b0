"""``toy-pivot``: the zoo's multilingual toy with a planted English pivot (issue 14, item 1), on which
the translation-barrier probe (Bafna et al. 2025) should find English in the middle layers.

The corpus (:mod:`interp.zoo.pivot_corpus`) reaches every non-English language through English and
never translates the *bridge* concepts between two non-English languages; the probe asks for
exactly those translations. ``train`` writes the Hugging Face folder and a ``card.json`` with the
planted answer, every design tried and the measured numbers (``measure``); ``train_lens`` trains
the tuned lens on held-out corpus text (never on the probe's prompts) beside it.

>>> from interp import zoo
>>> zoo.train("toy-pivot")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from interp.zoo.pivot_corpus import TEMPLATE_KW, PivotSpec, build_corpus, plant_concepts, tokenizer_texts

__all__ = ["Design", "DESIGNS", "FINAL_DESIGN", "train", "train_lens", "measure", "probe_template", "load_plant",
           "lens_windows", "LENS_DIR"]

LENS_DIR = "tuned_lens"
LENS_SEED_OFFSET = 7919
"""Held-out text for the tuned lens: the same distribution, documents drawn with ``seed + 7919``."""


@dataclass
class Design:
    """One corpus + architecture + optimisation choice (a try of the experiment)."""

    name: str
    corpus: PivotSpec = field(default_factory=PivotSpec)
    d_model: int = 64
    n_layers: int = 8
    n_heads: int = 4
    d_mlp: int = 192
    tie_embeddings: bool = False
    vocab_size: int = 4096
    steps: int = 4000
    batch_size: int = 64
    lr: float = 3e-3
    note: str = ""


DESIGNS: dict[str, Design] = {
    d.name: d for d in [
        Design("A-untied", note="English hub + bridge concepts, untied embeddings."),
        Design("B-tied", tie_embeddings=True,
               note="As A with tied embeddings: the English word read in the context and the English word "
                    "predicted are one vector, so a concept computed as 'English' can feed the en->xx leg."),
        Design("C-many-direct", tie_embeddings=True, vocab_size=6144,
               corpus=PivotSpec(n_concepts=128, n_bridge=32, p_pivot_pair=0.60, p_direct_pair=0.20),
               note="As B with 96 direct concepts seen ~2 times per (pair, concept): too many to memorise, so "
                    "the direct pairs reward a composed src -> concept -> tgt path that the bridge concepts can reuse."),
    ]
}
FINAL_DESIGN = "B-tied"


def probe_template():
    """The prompt template the toy was trained on (pass it to ``TranslationProbe``)."""
    from interp.translation.prompts import PromptTemplate

    return PromptTemplate(**TEMPLATE_KW)


def load_plant(card: dict[str, Any]):
    """The planted structure recorded in a card (the known answer)."""
    from interp.zoo.pivot_corpus import Plant

    p = card["plant"]
    return Plant(concepts=tuple(p["direct_concepts"] + p["bridge_concepts"]), direct=tuple(p["direct_concepts"]),
                 bridge=tuple(p["bridge_concepts"]), pivot=p["pivot"], languages=tuple(p["languages"]),
                 resource=p["resource"])


def train(out_dir: Path, *, design: str | Design = FINAL_DESIGN, progress: bool = True, measure_probe: bool = True,
          lens: bool = True, **overrides: Any) -> Path:
    """Train ``toy-pivot`` with a design of ``DESIGNS`` into ``out_dir`` (HF folder + ``card.json``),
    then its tuned lens and the probe measurements (each can be skipped)."""
    from interp.zoo.bpe import train_bpe
    from interp.zoo.training import ModelConfig, TrainConfig, train_causal_lm

    d = DESIGNS[design] if isinstance(design, str) else design
    d = replace(d, **{k: v for k, v in overrides.items() if k in Design.__dataclass_fields__})
    train_kw = {k: v for k, v in overrides.items() if k not in Design.__dataclass_fields__}
    train_kw.setdefault("n_threads", 1)  # one thread: fastest for these sizes on a shared CPU
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    docs = build_corpus(d.corpus)
    tokenizer = train_bpe(tokenizer_texts(d.corpus, docs), vocab_size=d.vocab_size, marks_in_words=True)
    model_cfg = ModelConfig(d_model=d.d_model, n_layers=d.n_layers, n_heads=d.n_heads, n_kv_heads=d.n_heads,
                            d_mlp=d.d_mlp, max_len=32, tie_embeddings=d.tie_embeddings)
    train_cfg = TrainConfig(steps=d.steps, batch_size=d.batch_size, lr=d.lr, warmup_steps=100, **train_kw)
    stats = train_causal_lm(docs, tokenizer, model_cfg, train_cfg, out_dir, progress=progress)
    plant = plant_concepts(d.corpus)
    multi = [w for c in plant.concepts for ws in _lexicon().entries[c].values() for w in ws
             if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) != 1]
    card: dict[str, Any] = {
        "name": "toy-pivot",
        "description": "Toy multilingual Llama with a planted English pivot (translation-barrier demo).",
        "design": _design_dict(d),
        "plant": plant.to_dict(),
        "corpus": {"n_docs": len(docs), "example": docs[:4], "template": TEMPLATE_KW},
        "tokenizer": {"vocab_size": len(tokenizer), "words_not_one_token": multi},
        "model": asdict(model_cfg),
        "training": stats.to_dict(),
        "train_seconds_total": round(time.perf_counter() - t0, 1),
        "threads": train_cfg.n_threads,
    }
    _write_card(out_dir, card)
    if lens:
        train_lens(out_dir, progress=progress)
    if measure_probe:
        card["probe"] = measure(out_dir, progress=progress)
        _write_card(out_dir, card)
    return out_dir


def _design_dict(d: Design) -> dict[str, Any]:
    out = asdict(d)
    out["corpus"] = asdict(d.corpus)
    return out


def _lexicon():
    from interp.translation.lexicon import Lexicon

    return Lexicon.bundled()


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    (folder / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Cannot write {type(value).__name__} to the card.")


def _spec_from_card(card: dict[str, Any]) -> PivotSpec:
    return PivotSpec(**card["design"]["corpus"])


def lens_windows(model, card: dict[str, Any], *, n_docs: int = 6000, ctx: int = 15):
    """Tuned-lens training data: held-out documents of the training distribution (``seed + 7919``),
    tokenised as in training (BOS first), the first ``ctx`` tokens of each one at least that long
    (translation documents: the prompt and the answer). None of them is a probe prompt: the held-out
    text, like the training text, never translates a bridge concept between two non-English languages."""
    import torch

    spec = _spec_from_card(card)
    docs = build_corpus(spec, sample_seed=spec.seed + LENS_SEED_OFFSET)[:n_docs]
    tok = model.tokenizer
    ids = [seq for seq in tok(docs, add_special_tokens=True)["input_ids"] if len(seq) >= ctx]
    if not ids:
        raise ValueError(f"No held-out document has {ctx} tokens.")
    return torch.tensor([seq[:ctx] for seq in ids])


def train_lens(out_dir: Path, *, model_dir: Path | None = None, steps: int = 600, batch_size: int = 32,
               progress: bool = True) -> Path:
    """Train the tuned lens of a trained ``toy-pivot`` folder and save it in ``<folder>/tuned_lens``
    (the zoo's ``toy-pivot-lens`` recipe calls this on the committed checkpoint)."""
    import torch

    from interp.lens import TunedLens, TunedLensConfig
    from interp.models import load_model

    folder = Path(model_dir or out_dir)
    torch.set_num_threads(1)
    model = load_model(str(folder), device="cpu")
    card = json.loads((folder / "card.json").read_text())
    windows = lens_windows(model, card)
    t0 = time.perf_counter()
    lens = TunedLens.train(model, windows, TunedLensConfig(steps=steps, batch_size=batch_size, lr=1e-3),
                           progress=progress)
    lens.save(folder / LENS_DIR)
    card["tuned_lens"] = {"steps": steps, "batch_size": batch_size, "windows": int(windows.shape[0]),
                          "ctx": int(windows.shape[1]), "seconds": round(time.perf_counter() - t0, 1),
                          "final_kl": round(sum(lens.history[-20:]) / len(lens.history[-20:]), 4),
                          "data": "held-out corpus documents (seed + 7919), BOS-first, first 15 tokens"}
    _write_card(folder, card)
    return folder


def measure(folder: Path, *, lenses: tuple[str, ...] = ("logit", "tuned"), n_boot: int = 1000,
            progress: bool = True, save_reports: bool = False) -> dict[str, Any]:
    """Run the probe on every non-English pair of the bridge concepts (and the seen English legs,
    as a control) with each lens; return the card's ``probe`` section."""
    import torch

    from interp.lens import TunedLens
    from interp.models import load_model
    from interp.translation import ProbeConfig, TranslationProbe
    from interp.translation.barrier import barrier_stats

    folder = Path(folder)
    torch.set_num_threads(1)
    model = load_model(str(folder), device="cpu")
    card = json.loads((folder / "card.json").read_text())
    plant = load_plant(card)
    lex = _lexicon().subset(concepts=list(plant.concepts))
    out: dict[str, Any] = {"eval": "every ordered pair of two non-English languages x the bridge concepts "
                                   "(never translated directly in training)",
                           "n_pairs": len(plant.eval_pairs()), "n_concepts": len(plant.bridge)}
    legs = [(x, plant.pivot) for x in plant.others] + [(plant.pivot, x) for x in plant.others]
    for name in lenses:
        lens: Any = "logit"
        if name == "tuned":
            lens = TunedLens.load(folder / LENS_DIR, model)
        probe = TranslationProbe(model, lex, template=probe_template(),
                                 config=ProbeConfig(lens=lens, max_new_tokens=3, batch_size=64))
        t0 = time.perf_counter()
        report = probe.run(plant.eval_pairs(), concepts=list(plant.bridge), progress=progress)
        seconds = time.perf_counter() - t0
        stats = barrier_stats(report, pivot=plant.pivot, n_boot=n_boot)
        entry = stats.to_dict() | {
            "seconds": round(seconds, 1), "accuracy_by_pair": report.by_pair().set_index("pair")["accuracy"].round(4).to_dict(),
            "intermediate_languages": _intermediate(report),
            "by_source_resource": _by_source(report)}
        if name == "logit":
            leg_report = probe.run(legs, concepts=list(plant.bridge), progress=progress)
            entry["legs_accuracy"] = leg_report.by_pair().set_index("pair")["accuracy"].round(4).to_dict()
            entry["composition"] = _composition(report, leg_report, plant.pivot)
        if save_reports:
            report.save(folder / f"probe_{name}.json")
        out[f"{name}_lens"] = entry
    return out


def _intermediate(report) -> dict[str, float]:
    c = report._intermediate_languages(report.rows)
    n = len(report.rows)
    return {k: round(v / n, 4) for k, v in c.most_common()}


def _by_source(report) -> dict[str, dict[str, float]]:
    from collections import Counter

    out = {}
    for lvl in ("high", "mid", "low"):
        rows = [r for r in report.rows if report.meta["resource"][r["src"]] == lvl]
        if rows:
            c = Counter(r["outcome"] for r in rows)
            out[lvl] = {"n": len(rows), **{k: round(v / len(rows), 4) for k, v in c.items()}}
    return out


def _composition(report, legs, pivot: str) -> dict[str, Any]:
    """Accuracy on the unseen pairs split by whether the model gets both English legs right
    (``src -> en`` and ``en -> tgt`` of the same concept): composition needs both."""
    ok = {(r["src"], r["tgt"], r["concept"]): r["outcome"] == "correct" for r in legs.rows}
    groups: dict[str, list[bool]] = {"both_legs": [], "one_leg": [], "no_leg": []}
    for r in report.rows:
        n_ok = ok.get((r["src"], pivot, r["concept"]), False) + ok.get((pivot, r["tgt"], r["concept"]), False)
        groups[["no_leg", "one_leg", "both_legs"][n_ok]].append(r["outcome"] == "correct")
    return {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4) if v else None} for k, v in groups.items()}
