"""The multilingual toy model of the zoo ("toy-translate"): a small Llama trained on a synthetic
word-translation corpus built from the bundled lexicon, designed so that the translation-barrier
pipeline (Bafna et al. 2025) has a chance to appear:

- one pivot language (English) dominates: most documents pair a language with English, and
  multi-language glosses always start from the English word;
- direct pairs between two non-pivot languages are rare, so most of them are never seen in
  training and the model has to route through what it knows;
- low-resource languages (Swahili, Telugu) are rare everywhere; mid-resource ones are in between.

The tokenizer is a byte-level BPE trained on the corpus with a small vocabulary, so most words
span several tokens (non-Latin scripts especially). ``train()`` writes the Hugging Face folder and
a ``card.json`` that records the corpus, the losses and the translation-probe numbers measured
on the trained model.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CorpusSpec", "build_corpus", "train", "PROBE_SOURCES", "DEFAULT_SPEC", "probe_pairs"]

PIVOT = "en"
TOY_TEMPLATE_KW = dict(instruction="Translate from {src} to {tgt}.", example="Word: {word}\nTranslation: {answer}")
"""The toy's prompt: the paper's layout with a shorter instruction (CPU training budget)."""
PROBE_SOURCES = ("es", "hi", "te")  # the paper's three source languages (high, mid, low)


@dataclass
class CorpusSpec:
    """How the synthetic corpus is drawn (every number is a sampling weight or a count)."""

    n_docs: int = 160_000
    seed: int = 0
    n_concepts: int = 64
    """Concepts drawn (seeded) from the lexicon: fewer concepts, more repetitions per word."""
    pivot: str = PIVOT
    p_pivot_pair: float = 0.62
    """Documents translating between the pivot and another language (either direction)."""
    p_direct_pair: float = 0.08
    """Documents translating between two non-pivot languages (rare; most such triples unseen)."""
    p_gloss: float = 0.30
    """Gloss lines ``dog (English) = perro (Spanish) = ...``, always starting from the pivot."""
    resource_weight: dict[str, float] = field(default_factory=lambda: {"high": 1.0, "mid": 0.5, "low": 0.12})

    def __post_init__(self) -> None:
        from interp.core.validate import Check
        from interp.zoo.errors import ZooConfigError

        c = Check(self, ZooConfigError)
        c.integer("n_docs", min=1)
        c.integer("seed", min=0)
        c.integer("n_concepts", min=1)
        c.text("pivot")
        for name in ("p_pivot_pair", "p_direct_pair", "p_gloss"):
            c.number(name, ge=0)
        c.require(self.p_pivot_pair + self.p_direct_pair + self.p_gloss > 0, "p_gloss", self.p_gloss,
                  "such that the three document weights p_pivot_pair, p_direct_pair, p_gloss have a positive sum")
        self.resource_weight = c.weights("resource_weight", keys=["high", "mid", "low", "unknown"])


DEFAULT_SPEC = CorpusSpec()


def _lexicon():
    from interp.translation.lexicon import Lexicon

    return Lexicon.bundled()


def build_corpus(spec: CorpusSpec = DEFAULT_SPEC, lexicon=None) -> list[str]:
    """The training documents (seeded, deterministic)."""
    from interp.translation.prompts import build_prompt

    lex = lexicon or _lexicon()
    template = toy_template()
    rng = random.Random(spec.seed)
    others = [c for c in lex.languages if c != spec.pivot]
    weights = [spec.resource_weight.get(lex.languages[c].resource.value, 0.1) for c in others]
    concepts = toy_concepts(spec, lex)
    name = {c: lex.languages[c].name for c in lex.languages}

    def word(concept: str, lang: str) -> str:
        return rng.choice(lex.entries[concept][lang])

    def translation(src: str, tgt: str) -> str:
        concept = rng.choice(concepts)
        prompt = build_prompt(template, src=name[src], tgt=name[tgt], word=word(concept, src))
        return f"{prompt} {word(concept, tgt)}"

    docs = []
    kinds = rng.choices(["pivot", "direct", "gloss"], [spec.p_pivot_pair, spec.p_direct_pair, spec.p_gloss],
                        k=spec.n_docs)
    for kind in kinds:
        if kind == "pivot":
            other = rng.choices(others, weights)[0]
            docs.append(translation(spec.pivot, other) if rng.random() < 0.5 else translation(other, spec.pivot))
        elif kind == "direct":
            a, b = rng.choices(others, weights, k=2)
            while b == a:
                b = rng.choices(others, weights)[0]
            docs.append(translation(a, b))
        else:
            concept = rng.choice(concepts)
            langs = []
            for lang in rng.choices(others, weights, k=2):
                if lang not in langs:
                    langs.append(lang)
            chain = [f"{word(concept, spec.pivot)} ({name[spec.pivot]})"]
            chain += [f"{word(concept, lang)} ({name[lang]})" for lang in langs]
            docs.append(" = ".join(chain))
    return docs


def toy_template():
    """The prompt template the toy was trained on (pass it to ``TranslationProbe``)."""
    from interp.translation.prompts import PromptTemplate

    return PromptTemplate(**TOY_TEMPLATE_KW)


def toy_concepts(spec: CorpusSpec = DEFAULT_SPEC, lexicon=None) -> list[str]:
    """The lexicon concepts the toy is trained on (a seeded sample, in lexicon order)."""
    lex = lexicon or _lexicon()
    every = list(lex.entries)
    chosen = set(random.Random(1000 + spec.seed).sample(every, min(spec.n_concepts, len(every))))
    return [c for c in every if c in chosen]


def probe_pairs(lexicon=None, sources=PROBE_SOURCES) -> list[tuple[str, str]]:
    """(source, target) pairs probed on the toy: the paper's sources x every other language."""
    lex = lexicon or _lexicon()
    return [(s, t) for s in sources for t in lex.languages_by_resource() if t != s]


def train(
    out_dir: Path,
    *,
    spec: CorpusSpec | None = None,
    steps: int = 5000,
    vocab_size: int = 1024,
    d_model: int = 96,
    n_layers: int = 6,
    batch_size: int = 32,
    probe_concepts: int = 32,
    progress: bool = True,
    **overrides: Any,
) -> Path:
    """Train the toy translation model into ``out_dir`` (HF folder + ``card.json``)."""
    from interp.zoo.bpe import train_bpe
    from interp.zoo.training import ModelConfig, LMTrainConfig, train_causal_lm

    spec = spec or CorpusSpec()
    out_dir = Path(out_dir)
    # one thread: on a shared, oversubscribed CPU two spinning OpenMP threads ran ~20x slower
    overrides.setdefault("n_threads", 1)
    t0 = time.perf_counter()
    lex = _lexicon()
    docs = build_corpus(spec, lex)
    tokenizer = train_bpe(docs, vocab_size=vocab_size)
    model_cfg = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=4, n_kv_heads=4, d_mlp=3 * d_model,
                            max_len=96)
    train_cfg = LMTrainConfig(steps=steps, batch_size=batch_size, lr=4e-3, warmup_steps=60, **overrides)
    stats = train_causal_lm(docs, tokenizer, model_cfg, train_cfg, out_dir, progress=progress)
    lengths = {}
    for lang in lex.languages:
        ids = [len(tokenizer(" " + w, add_special_tokens=False)["input_ids"])
               for refs in lex.entries.values() for w in refs.get(lang, ())]
        lengths[lang] = round(sum(ids) / max(1, len(ids)), 2)
    card: dict[str, Any] = {
        "name": "toy-translate",
        "description": "Toy multilingual Llama for the translation-barrier demo (English pivot).",
        "corpus": {**asdict(spec), "n_docs": len(docs), "example": docs[:3],
                   "concepts": toy_concepts(spec, lex), "template": TOY_TEMPLATE_KW},
        "tokenizer": {"vocab_size": len(tokenizer), "mean_tokens_per_word": lengths},
        "model": asdict(model_cfg),
        "training": stats.to_dict(),
        "train_seconds_total": round(time.perf_counter() - t0, 1),
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False))
    if probe_concepts:
        update_card(out_dir, n_concepts=probe_concepts, progress=progress)
    return out_dir


def _first_token_curves(report) -> dict[str, list[float]]:
    """Mean probability, by layer at the first answer step, of the first token of the English,
    target and source words (pairs without English only): does the pivot surface?"""
    rows = [r for r in report.rows if "en" not in (r["src"], r["tgt"])]
    if not rows:
        return {}
    n = len(report.layers)

    def mean(key) -> list[float]:
        return [round(sum(key(r)[i] for r in rows) / len(rows), 4) for i in range(n)]

    return {"layers": report.layers, "english": mean(lambda r: r["first_token_prob"]["en"]),
            "target": mean(lambda r: r["first_token_prob"][r["tgt"]]),
            "source": mean(lambda r: r["first_token_prob"][r["src"]])}


def measure_probe(folder: Path, *, n_concepts: int = 32, tuned_steps: int = 300, progress: bool = True) -> dict[str, Any]:
    """Run the translation probe on a trained toy (logit lens, then a tuned lens trained on fresh
    corpus documents and saved beside the weights) and summarise both for the card."""
    from interp.lens import TunedLens, TunedLensConfig
    from interp.core.models import load_model
    from interp.translation import ProbeConfig, TranslationProbe

    folder = Path(folder)
    model = load_model(str(folder))
    card = json.loads((folder / "card.json").read_text())
    lex = _lexicon().subset(concepts=card["corpus"]["concepts"])
    out: dict[str, Any] = {"pairs": [f"{s}-{t}" for s, t in probe_pairs(lex)], "n_concepts_per_pair": n_concepts}
    for name in ("logit", "tuned"):
        lens: Any = "logit"
        if name == "tuned":
            spec = CorpusSpec(n_docs=4000, seed=card["corpus"]["seed"] + 1,
                              n_concepts=card["corpus"]["n_concepts"])
            lens = TunedLens.train(model, build_corpus(spec, _lexicon()), TunedLensConfig(steps=tuned_steps),
                                   ctx=32, progress=progress)
            lens.save(folder / "tuned_lens")
        probe = TranslationProbe(model, lex, template=toy_template(), config=ProbeConfig(lens=lens))
        t0 = time.perf_counter()
        report = probe.run(probe_pairs(lex), n_concepts=n_concepts, progress=progress)
        seconds = time.perf_counter() - t0
        out[f"{name}_lens"] = report.summary() | {
            "n_examples": len(report), "seconds": round(seconds, 1),
            "examples_per_second": round(len(report) / seconds, 1),
            "first_token_prob_by_layer": _first_token_curves(report),
            "by_pair": report.by_pair().round(4).to_dict("records"),
        }
    return out


def update_card(folder: Path, **kwargs: Any) -> dict[str, Any]:
    """Measure the probe on a trained checkpoint and record it in its ``card.json``."""
    folder = Path(folder)
    card = json.loads((folder / "card.json").read_text())
    card["probe"] = measure_probe(folder, **kwargs)
    from interp.zoo.training import json_default  # torch-heavy module: imported when writing

    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False, default=json_default))
    return card



def train_tuned_lens(out_dir: Path, *, model_dir: Path | None = None, steps: int = 300, n_docs: int = 4000,
                     ctx: int = 32, progress: bool = True) -> Path:
    """Recipe of ``toy-translate-tuned-lens``: a tuned lens for toy-translate trained on held-out corpus
    documents (a seed the model never saw) cut into BOS-first windows, never on probe prompts; its card
    records the held-out KL per layer of the tuned and the logit lens."""
    from interp.core.activations import text_tokens
    from interp.core.models import load_model
    from interp.lens import TunedLens, TunedLensConfig, kl_by_layer
    from interp.zoo.registry import REGISTRY

    folder = Path(model_dir) if model_dir is not None else REGISTRY["toy-translate"].path
    model = load_model(folder)
    card = json.loads((folder / "card.json").read_text())
    spec = CorpusSpec(n_docs=n_docs, seed=card["corpus"]["seed"] + 1, n_concepts=card["corpus"]["n_concepts"])
    windows = text_tokens(model, build_corpus(spec, _lexicon()), ctx)
    held_out = text_tokens(model, build_corpus(CorpusSpec(n_docs=400, seed=card["corpus"]["seed"] + 2,
                                                          n_concepts=card["corpus"]["n_concepts"]), _lexicon()), ctx)[:256]
    t0 = time.perf_counter()
    lens = TunedLens.train(model, windows, TunedLensConfig(steps=steps), progress=progress)
    seconds = time.perf_counter() - t0
    out = lens.save(out_dir)
    lens_card = {"name": "toy-translate-tuned-lens", "kind": "tuned_lens", "model": "toy-translate",
                 "data": {"corpus_seed": spec.seed, "n_docs": n_docs, "ctx": ctx, "windows": int(windows.shape[0]),
                          "bos_first": True},
                 "training": {"steps": steps, "seconds": round(seconds, 1)},
                 "held_out_kl": {"tuned": [round(float(v), 4) for v in kl_by_layer(model, held_out, lens)],
                                 "logit": [round(float(v), 4) for v in kl_by_layer(model, held_out, None)],
                                 "n_windows": int(held_out.shape[0])},
                 "reproduce": "interp zoo train toy-translate-tuned-lens"}
    (Path(out) / "card.json").write_text(json.dumps(lens_card, indent=2))
    return Path(out)
