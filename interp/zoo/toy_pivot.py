"""``toy-pivot``: the zoo's multilingual toy with a planted English pivot (issue 14, item 1), on which
the translation-barrier probe (Bafna et al. 2025; Wendler et al. 2024) is checked against a known answer.

The corpus (:mod:`interp.zoo.pivot_corpus`) reaches every non-English language through English and
holds out (language pair, concept) combinations from every direct translation; the probe asks for
exactly those. ``train`` (recipe of ``toy-pivot``) writes the Hugging Face folder and a ``card.json``
with the planted answer, every design tried (``DESIGNS``; numbers in ``pivot_designs.json``) and the
logit-lens measurements; ``train_tuned_lens`` (recipe of ``toy-pivot-tuned-lens``) trains the tuned
lens on held-out corpus text, never on the probe's prompts, and records the tuned-lens measurements
in its own card. ``python -m interp.app.zoo_experiments pivot-try DESIGN`` re-runs one try of the experiment;
``python -m interp.app.zoo_experiments pivot-time`` measures the recipe's single-thread CPU cost.

>>> from interp import zoo
>>> zoo.train("toy-pivot")   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.zoo.pivot_corpus import (IMPLICIT_TEMPLATE_KW, TEMPLATE_KW, Plant, PivotSpec, build_corpus,
                                     plant_concepts, tokenizer_texts)

__all__ = ["Design", "DESIGNS", "FINAL_DESIGN", "train", "train_tuned_lens", "measure", "probe_template",
           "load_plant", "lens_windows", "eval_sets", "run_triples", "design_summary", "DESIGNS_FILE", "headline",
           "make_probe", "train_model", "recorded_designs", "findings",
           "failure_outputs", "time_recipe"]

LENS_SEED_OFFSET = 7919
"""Held-out text for the tuned lens: the same distribution, documents drawn with ``seed + 7919``."""
DESIGNS_FILE = Path(__file__).resolve().parent / "pivot_designs.json"
"""The measured numbers of every design tried (``python -m interp.app.zoo_experiments pivot-try NAME`` appends)."""


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
        Design("D-held-out-triples", corpus=PivotSpec(n_bridge=8, p_holdout=0.5, p_pivot_pair=0.60,
                                                      p_direct_pair=0.25, p_english=0.10), steps=5000,
               note="Every direct concept is translated between some non-English pairs and held out from the "
                    "others (half of the (pair, concept) combinations); the probe asks for the held-out ones, "
                    "so both legs were used inside other direct translations (Wang et al. 2024's in-distribution "
                    "composition). 8 bridge concepts stay out of every direct pair (the out-of-distribution case)."),
        Design("E-english-outputs", corpus=PivotSpec(n_bridge=8, p_holdout=0.5, p_pivot_pair=0.55, p_to_pivot=0.75,
                                                     p_direct_pair=0.20, p_english=0.20), steps=5000,
               note="As D with English as the dominant OUTPUT, as in a large model's training text: three quarters "
                    "of the pivot pairs translate into English and English knowledge text doubles (about 62% of "
                    "the documents end in an English word), so a concept's default readout is its English word."),
        Design("F-implicit-target", corpus=PivotSpec(n_bridge=8, p_holdout=0.5, p_pivot_pair=0.55, p_to_pivot=0.75,
                                                     p_direct_pair=0.25, p_gloss=0.0, p_english=0.20,
                                                     layout="implicit"), steps=5000,
               note="As E, but no language is ever named: documents are lists of word pairs of one language pair "
                    "(the probe's 3-shot prompt), so the target language must be read off earlier answers, a "
                    "later computation than looking the source word up; until it is read, the best guess for a "
                    "concept's word is English, the dominant output."),
        Design("G-implicit-tied", corpus=PivotSpec(n_bridge=8, p_holdout=0.5, p_pivot_pair=0.55, p_to_pivot=0.75,
                                                   p_direct_pair=0.25, p_gloss=0.0, p_english=0.20,
                                                   layout="implicit"), steps=5000, tie_embeddings=True,
               note="As F with tied embeddings: the vector that predicts an English word is the one that embeds it, "
                    "so the concept computed for the dominant src -> en task is the same vector the en -> tgt "
                    "conversion reads from a copied English word, and one conversion can serve both."),
    ]
}
FINAL_DESIGN = "F-implicit-target"


def probe_template(layout: str = "named"):
    """The prompt template of a corpus layout (pass it to ``TranslationProbe``)."""
    from interp.translation.prompts import PromptTemplate

    return PromptTemplate(**(TEMPLATE_KW if layout == "named" else IMPLICIT_TEMPLATE_KW))


def load_plant(card: dict[str, Any]) -> Plant:
    """The planted structure recorded in a card (the known answer)."""
    p = card["plant"]
    return Plant(concepts=tuple(p["direct_concepts"] + p["bridge_concepts"]), direct=tuple(p["direct_concepts"]),
                 bridge=tuple(p["bridge_concepts"]), pivot=p["pivot"], languages=tuple(p["languages"]),
                 resource=p["resource"], held_out=frozenset(tuple(t.split("|")) for t in p.get("held_out", ())))


def _lexicon():
    from interp.translation.lexicon import Lexicon

    return Lexicon.bundled()


def _design_dict(d: Design) -> dict[str, Any]:
    out = asdict(d)
    out["corpus"] = asdict(d.corpus)
    return out


def _spec_from_card(card: dict[str, Any]) -> PivotSpec:
    return PivotSpec(**card["design"]["corpus"])


def _layout(card: dict[str, Any]) -> str:
    return card["design"]["corpus"].get("layout", "named")


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    from interp.zoo.training import json_default  # torch-heavy module: imported when writing

    (folder / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False, default=json_default))



def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def recorded_designs() -> dict[str, Any]:
    """Every design tried with its measured numbers (``pivot_designs.json``)."""
    return json.loads(DESIGNS_FILE.read_text()) if DESIGNS_FILE.is_file() else {}


# ---- recipes ---------------------------------------------------------------------------------
def train_model(out_dir: Path, design: Design, *, progress: bool = True, **train_kw: Any) -> dict[str, Any]:
    """Corpus, tokenizer and model of one design into ``out_dir``; returns the card (also written)."""
    from interp.zoo.bpe import train_bpe
    from interp.zoo.training import LMTrainConfig, ModelConfig, train_causal_lm

    train_kw.setdefault("n_threads", 1)  # one thread: fastest for these sizes on a shared CPU
    out_dir = Path(out_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    docs = build_corpus(design.corpus)
    tokenizer = train_bpe(tokenizer_texts(design.corpus, docs), vocab_size=design.vocab_size, marks_in_words=True)
    model_cfg = ModelConfig(d_model=design.d_model, n_layers=design.n_layers, n_heads=design.n_heads,
                            n_kv_heads=design.n_heads, d_mlp=design.d_mlp, max_len=32,
                            tie_embeddings=design.tie_embeddings)
    train_cfg = LMTrainConfig(steps=design.steps, batch_size=design.batch_size, lr=design.lr, warmup_steps=100,
                              **train_kw)
    stats = train_causal_lm(docs, tokenizer, model_cfg, train_cfg, out_dir, progress=progress)
    plant = plant_concepts(design.corpus)
    lex = _lexicon()
    multi = [w for c in plant.concepts for ws in lex.entries[c].values() for w in ws
             if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) != 1]
    card: dict[str, Any] = {
        "name": "toy-pivot",
        "description": "Toy multilingual Llama with a planted English pivot (translation-barrier demo).",
        "design": _design_dict(design),
        "plant": plant.to_dict(),
        "corpus": {"n_docs": len(docs), "example": docs[:4],
                   "template": TEMPLATE_KW if design.corpus.layout == "named" else IMPLICIT_TEMPLATE_KW},
        "tokenizer": {"vocab_size": len(tokenizer), "words_not_one_token": multi},
        "model": asdict(model_cfg),
        "training": stats.to_dict(),
        # wall time on a shared machine is inflated by other jobs; the process CPU time of this
        # single-threaded recipe is what it takes alone on one core
        "train_seconds_wall": round(time.perf_counter() - t0, 1),
        "train_seconds_cpu_one_thread": round(time.process_time() - c0, 1),
        "threads": train_cfg.n_threads,
    }
    _write_card(out_dir, card)
    return card


def train(out_dir: Path, *, design: str | Design = FINAL_DESIGN, progress: bool = True, measure_probe: bool = True,
          n_boot: int = 1000, **train_kw: Any) -> Path:
    """Recipe of ``toy-pivot``: train the final design into ``out_dir`` and measure it with the
    logit lens (``train_tuned_lens`` adds the tuned lens and its numbers)."""
    d = DESIGNS[design] if isinstance(design, str) else design
    card = train_model(out_dir, d, progress=progress, **train_kw)
    card["designs_tried"] = recorded_designs()
    if measure_probe:
        card["probe"] = measure(out_dir, lens="logit", n_boot=n_boot, progress=progress)
        card["findings"] = findings(card["probe"])
    card["reproduce"] = "interp zoo train toy-pivot && interp zoo train toy-pivot-tuned-lens"
    _write_card(Path(out_dir), card)
    return Path(out_dir)


def _probe_length(model, card: dict[str, Any]) -> int:
    """Tokens of one probe prompt with its answer (BOS included): the window a lens must cover."""
    from interp.translation.prompts import build_prompt

    lex = _lexicon()
    plant = load_plant(card)
    template = probe_template(_layout(card))
    c = list(plant.concepts)
    shots = [(lex.entries[x]["es"][0], lex.entries[x]["fr"][0]) for x in c[1:1 + template.n_shots]]
    text = build_prompt(template, src="Spanish", tgt="French", word=lex.entries[c[0]]["es"][0], shots=shots)
    return len(model.tokenizer(text + " " + lex.entries[c[0]]["fr"][0], add_special_tokens=True)["input_ids"])


def lens_windows(model, card: dict[str, Any], *, n_docs: int = 6000, ctx: int | None = None,
                 seed_offset: int = LENS_SEED_OFFSET):
    """Tuned-lens training data: held-out documents of the training distribution (``seed + 7919``),
    tokenised as in training (BOS first, one document per row, no packing), the first ``ctx`` tokens
    of each translation document at least that long (default: as long as a probe prompt with its
    answer). None is a probe prompt: held-out text, like training text, never translates a held-out
    combination."""
    import torch

    spec = _spec_from_card(card)
    docs = [d for d in build_corpus(spec, sample_seed=spec.seed + seed_offset)[:n_docs] if d.startswith("Translate")]
    ids = model.tokenizer(docs, add_special_tokens=True)["input_ids"]
    ctx = ctx or _probe_length(model, card)
    rows = [seq[:ctx] for seq in ids if len(seq) >= ctx]
    if not rows:
        raise ValueError(f"No held-out document has {ctx} tokens.")
    return torch.tensor(rows)


def train_tuned_lens(out_dir: Path, *, model_dir: Path | None = None, steps: int = 600, batch_size: int = 32,
                     measure_probe: bool = True, n_boot: int = 1000, progress: bool = True) -> Path:
    """Recipe of ``toy-pivot-tuned-lens``: a tuned lens for toy-pivot trained on held-out corpus
    documents (``lens_windows``), saved to ``out_dir`` with a card: the model file it belongs to
    (sha256), the held-out KL per layer of the tuned and the logit lens, and the probe's numbers
    measured through the tuned lens."""
    import torch

    from interp.core.models import load_model
    from interp.lens import TunedLens, TunedLensConfig, kl_by_layer
    from interp.zoo.registry import REGISTRY

    folder = Path(model_dir) if model_dir is not None else REGISTRY["toy-pivot"].path
    torch.set_num_threads(1)
    model = load_model(str(folder), device="cpu")
    card = json.loads((folder / "card.json").read_text())
    windows = lens_windows(model, card)
    held = lens_windows(model, card, n_docs=400, ctx=int(windows.shape[1]), seed_offset=LENS_SEED_OFFSET + 1)
    t0, c0 = time.perf_counter(), time.process_time()
    lens = TunedLens.train(model, windows, TunedLensConfig(steps=steps, batch_size=batch_size, lr=1e-3),
                           progress=progress)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out_dir = Path(out_dir)
    lens.save(out_dir)
    lens_card: dict[str, Any] = {
        "name": "toy-pivot-tuned-lens", "kind": "tuned_lens", "model": "toy-pivot",
        "model_sha256": _sha256(folder / "model.safetensors"),
        "data": {"corpus_seed": card["design"]["corpus"]["seed"] + LENS_SEED_OFFSET, "windows": int(windows.shape[0]),
                 "ctx": int(windows.shape[1]), "bos_first": True, "packed": False,
                 "what": "held-out translation documents of the training distribution, one per row"},
        "training": {"steps": steps, "batch_size": batch_size, "lr": 1e-3, "seconds_wall": round(seconds, 1),
                     "seconds_cpu_one_thread": round(cpu, 1)},
        "held_out_kl": {"tuned": [round(float(v), 4) for v in kl_by_layer(model, held, lens)],
                        "logit": [round(float(v), 4) for v in kl_by_layer(model, held, None)],
                        "n_windows": int(held.shape[0]), "corpus_seed": card["design"]["corpus"]["seed"] + LENS_SEED_OFFSET + 1},
        "reproduce": "interp zoo train toy-pivot-tuned-lens",
    }
    _write_card(out_dir, lens_card)
    if measure_probe:
        lens_card["probe"] = measure(folder, lens=lens, n_boot=n_boot, progress=progress)
        lens_card["findings"] = findings(lens_card["probe"])
        _write_card(out_dir, lens_card)
    return out_dir


# ---- measurement -----------------------------------------------------------------------------
def eval_sets(plant: Plant) -> dict[str, list[tuple[str, str, str]]]:
    """The probe's (source, target, concept) examples: ``held_out`` (direct concepts between a
    language pair they were never translated in) and ``bridge`` (concepts never translated between
    two non-English languages at all); the first present is the headline set."""
    sets: dict[str, list[tuple[str, str, str]]] = {}
    if plant.held_out:
        sets["held_out"] = plant.held_out_triples()
    if plant.bridge:
        sets["bridge"] = [(s, t, c) for s, t in plant.eval_pairs() for c in plant.bridge]
    return sets


def run_triples(probe, triples: list[tuple[str, str, str]], *, progress: bool = False):
    """``probe.run_triples`` (kept here for the scripts that call the zoo)."""
    return probe.run_triples(triples, progress=progress)


def make_probe(model, card: dict[str, Any], lens: Any = "logit"):
    """The ``TranslationProbe`` the card's numbers come from (the toy's template, 3 new tokens)."""
    from interp.translation import ProbeConfig, TranslationProbe

    plant = load_plant(card)
    lex = _lexicon().subset(concepts=list(plant.concepts))
    return TranslationProbe(model, lex, template=probe_template(_layout(card)),
                            config=ProbeConfig(lens=lens, max_new_tokens=3, batch_size=64))


def measure(folder: Path, *, lens: Any = "logit", n_boot: int = 1000, progress: bool = True,
            save_reports: bool = False) -> dict[str, Any]:
    """Probe a trained toy-pivot on every evaluation set (``eval_sets``) and, with the logit lens,
    on the English legs (a control); ``lens`` is ``"logit"`` or a ``TunedLens``. Returns a card section."""
    import torch

    from interp.core.models import load_model
    from interp.translation.barrier import barrier_stats

    folder = Path(folder)
    torch.set_num_threads(1)
    model = load_model(str(folder), device="cpu")
    card = json.loads((folder / "card.json").read_text())
    plant = load_plant(card)
    probe = make_probe(model, card, lens)
    name = "logit" if isinstance(lens, str) else "tuned"
    sets = eval_sets(plant)
    out: dict[str, Any] = {"lens": name, "sets": {k: len(v) for k, v in sets.items()}, "headline_set": next(iter(sets)),
                           "n_boot": n_boot}
    legs = None
    if name == "logit":
        pairs = [(x, plant.pivot) for x in plant.others] + [(plant.pivot, x) for x in plant.others]
        legs = probe.run(pairs, concepts=list(plant.concepts), progress=progress)
        out["legs_accuracy"] = legs.by_pair().set_index("pair")["accuracy"].round(4).to_dict()
    for set_name, triples in sets.items():
        t0 = time.perf_counter()
        report = run_triples(probe, triples, progress=progress)
        seconds = time.perf_counter() - t0
        entry = barrier_stats(report, pivot=plant.pivot, n_boot=n_boot).to_dict() | {
            "seconds": round(seconds, 1),
            "accuracy_by_pair": report.by_pair().set_index("pair")["accuracy"].round(4).to_dict(),
            "intermediate_languages": _intermediate(report), "by_source_resource": _by_source(report),
            "translation_failure_outputs": failure_outputs(report, probe.lexicon, plant.pivot)}
        if legs is not None:
            entry["composition"] = _composition(report, legs, plant.pivot)
        if save_reports:
            report.save(folder / f"probe_{name}_{set_name}.json")
        out[set_name] = entry
    return out


def _intermediate(report) -> dict[str, float]:
    """Share of examples with each non-target language in some intermediate layer."""
    from collections import Counter

    c: Counter = Counter()
    for r in report.rows:
        c.update({lang for lang in r["layer_languages"][:-1] if lang is not None and lang != r["tgt"]})
    return {k: round(v / len(report.rows), 4) for k, v in c.most_common()}


def _by_source(report) -> dict[str, dict[str, float]]:
    from collections import Counter

    out = {}
    for lvl in ("high", "mid", "low"):
        rows = [r for r in report.rows if report.meta["resource"][r["src"]] == lvl]
        if rows:
            c = Counter(r["outcome"] for r in rows)
            out[lvl] = {"n": len(rows), **{k: round(v / len(rows), 4) for k, v in c.items()}}
    return out


def failure_outputs(report, lexicon, pivot: str = "en") -> dict[str, dict[str, int]]:
    """What the translation failures end in, per target resource level: the concept's word in the
    pivot (``pivot``), in another low-resource language (``other_low``), in another language
    (``other_language``), or no word of the concept (``not_the_concept``). A translation failure whose
    answer is the concept in another language (exact match, case-insensitive) is the barrier itself:
    solved, emitted off-target."""
    from collections import Counter

    res = report.meta["resource"]
    out: dict[str, Counter] = {}
    for r in report.rows:
        if r["outcome"] != "translation_failure":
            continue
        answer = r["final"].strip().lower()
        langs = {lang for lang, ws in lexicon.entries[r["concept"]].items() if answer in (w.lower() for w in ws)}
        langs.discard(r["tgt"])
        kind = ("not_the_concept" if not langs else "pivot" if pivot in langs
                else "other_low" if any(res.get(x) == "low" for x in langs) else "other_language")
        out.setdefault(res[r["tgt"]], Counter())[kind] += 1
    return {lvl: dict(c.most_common()) for lvl, c in out.items()}


def _composition(report, legs, pivot: str) -> dict[str, Any]:
    """Accuracy on the evaluated pairs split by whether the model gets both English legs right
    (``src -> en`` and ``en -> tgt`` of the same concept): composition needs both."""
    ok = {(r["src"], r["tgt"], r["concept"]): r["outcome"] == "correct" for r in legs.rows}
    groups: dict[str, list[bool]] = {"both_legs": [], "one_leg": [], "no_leg": []}
    for r in report.rows:
        n_ok = ok.get((r["src"], pivot, r["concept"]), False) + ok.get((pivot, r["tgt"], r["concept"]), False)
        groups[["no_leg", "one_leg", "both_legs"][n_ok]].append(r["outcome"] == "correct")
    return {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4) if v else None} for k, v in groups.items()}


def design_summary(card: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """The numbers a try is judged by (what ``pivot_designs.json`` records per design)."""
    def share(s: dict[str, Any]) -> list[float]:
        return [s["value"], s["lo"], s["hi"]]

    out: dict[str, Any] = {"note": card["design"]["note"], "design": card["design"],
                           "train_seconds_wall": card.get("train_seconds_wall", card.get("train_seconds_total")),
                           "train_seconds_cpu_one_thread": card.get("train_seconds_cpu_one_thread"),
                           "val_loss": card["training"]["val_loss"], "legs_accuracy": probe.get("legs_accuracy")}
    for set_name in probe["sets"]:
        e = probe[set_name]
        out[set_name] = {
            "n": e["n_examples"], "accuracy": share(e["outcomes"]["all"]["correct"]),
            "pivot_in_middle": share(e["pivot_in_middle"]), "middle_layers": e["middle_layers"],
            "pivot_by_layer": [s["value"] for s in e["pivot_by_layer"]],
            "target_by_layer": [s["value"] for s in e["target_by_layer"]],
            "takeover_layer": e["takeover_layer"], "takeover_ci": e["takeover_ci"],
            "outcomes": {lvl: {o: share(s) for o, s in per.items()} for lvl, per in e["outcomes"].items()},
            "translation_failure_share_of_errors": {lvl: share(s) for lvl, s in e["translation_failure_share"].items()},
            "composition": e.get("composition"), "intermediate_languages": e["intermediate_languages"],
        }
    return out


def headline(probe: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a ``measure`` section (its headline set), compact: value [95% CI]."""
    e = probe[probe["headline_set"]]

    def fmt(x: dict[str, Any]) -> str:
        return f"{x['value']:.3f} [{x['lo']:.3f}, {x['hi']:.3f}] (n={x['n']})"

    return {
        "lens": probe["lens"], "set": probe["headline_set"], "n": e["n_examples"],
        "pivot_in_middle_layers": fmt(e["pivot_in_middle"]), "middle_layers": e["middle_layers"],
        "pivot_in_middle_by_target": {lvl: fmt(x) for lvl, x in e.get("pivot_in_middle_by_target", {}).items()},
        "takeover_layer": f"{e['takeover_layer']} {e['takeover_ci']}",
        "majority_layer": f"{e['majority_layer']} {e['majority_ci']}",
        "outcomes": {lvl: {o: fmt(x) for o, x in per.items()} for lvl, per in e["outcomes"].items()},
        "translation_failure_share_of_errors": {lvl: fmt(x) for lvl, x in e["translation_failure_share"].items()},
    }


def findings(probe: dict[str, Any]) -> list[str]:
    """What a ``measure`` section shows, in sentences built from its numbers (the card's summary; nothing
    here is typed in by hand, so a retrained model's card says what that model does)."""
    def pct(x: dict[str, Any]) -> str:
        return f"{100 * x['value']:.1f}% [{100 * x['lo']:.1f}, {100 * x['hi']:.1f}] (n={x['n']})"

    out = []
    for set_name in probe["sets"]:
        e = probe[set_name]
        what = ("direct concepts between a language pair they were never translated in" if set_name == "held_out"
                else "bridge concepts, never translated between two non-English languages")
        out.append(f"{probe['lens']} lens, {set_name} set ({what}), n={e['n_examples']}: accuracy "
                   f"{pct(e['outcomes']['all']['correct'])}; English decodes in a middle layer "
                   f"({e['middle_layers'][0]}-{e['middle_layers'][-1]}) in {pct(e['pivot_in_middle'])} of examples"
                   + "".join(f", {lvl}-resource targets {pct(x)}"
                             for lvl, x in e.get("pivot_in_middle_by_target", {}).items())
                   + (f"; the target is decoded in most examples from layer {e['majority_layer']} "
                      f"(95% bootstrap {e['majority_ci']}) of {e['n_layers']}" if e["majority_layer"] is not None
                      else "; the target is decoded in most examples at no layer")
                   + "; translation failures are "
                   + ", ".join(f"{pct(x)} of the {lvl}-resource errors"
                               for lvl, x in e["translation_failure_share"].items() if lvl != "all" and x["n"])
                   + ".")
    return out


def try_design(name: str, out_dir: Path, *, progress: bool = True, record: bool = True, n_boot: int = 1000) -> dict:
    """Train and measure one design of ``DESIGNS`` into a scratch folder (logit lens) and record
    its numbers in ``pivot_designs.json``."""
    card = train_model(Path(out_dir), DESIGNS[name], progress=progress)
    probe = measure(out_dir, lens="logit", n_boot=n_boot, progress=progress)
    summary = design_summary(card, probe)
    if record:
        designs = recorded_designs()
        designs[name] = summary
        from interp.zoo.training import json_default  # torch-heavy module: imported when writing

        DESIGNS_FILE.write_text(json.dumps(designs, indent=1, ensure_ascii=False, default=json_default))
    return summary


def time_recipe(short: int = 50, long: int = 300, *, design: str = FINAL_DESIGN,
                scratch: Path = Path("/tmp/toy-pivot-timing")) -> dict[str, float]:
    """Single-thread CPU seconds of the model recipe without running all of it: corpus and tokenizer
    in full, the training loop at ``short`` and ``long`` steps so that the per-step cost separates from
    the fixed cost (model build, tokenising the corpus, validation loss); the estimate is fixed +
    ``steps`` x per step. CPU time of one thread is what the recipe costs alone on one core (on a
    shared machine the wall time is inflated by the other jobs; both are returned)."""
    import torch

    from interp.zoo.bpe import train_bpe
    from interp.zoo.training import LMTrainConfig, ModelConfig, train_causal_lm

    if not 0 < short < long:
        raise ValueError(f"Need 0 < short < long; got {short}, {long}.")
    torch.set_num_threads(1)
    d = DESIGNS[design]
    out: dict[str, float] = {}
    w, c = time.perf_counter(), time.process_time()
    docs = build_corpus(d.corpus)
    tok = train_bpe(tokenizer_texts(d.corpus, docs), vocab_size=d.vocab_size, marks_in_words=True)
    out["corpus_and_bpe_cpu"], out["corpus_and_bpe_wall"] = time.process_time() - c, time.perf_counter() - w
    mc = ModelConfig(d_model=d.d_model, n_layers=d.n_layers, n_heads=d.n_heads, n_kv_heads=d.n_heads, d_mlp=d.d_mlp,
                     max_len=32, tie_embeddings=d.tie_embeddings)
    for steps in (short, long):
        w, c = time.perf_counter(), time.process_time()
        train_causal_lm(docs, tok, mc, LMTrainConfig(steps=steps, batch_size=d.batch_size, lr=d.lr, warmup_steps=100,
                                                     n_threads=1), Path(scratch) / f"s{steps}", progress=False)
        out[f"train_{steps}_cpu"], out[f"train_{steps}_wall"] = time.process_time() - c, time.perf_counter() - w
    per = (out[f"train_{long}_cpu"] - out[f"train_{short}_cpu"]) / (long - short)
    out["per_step_cpu"], out["train_fixed_cpu"] = per, out[f"train_{short}_cpu"] - short * per
    out["recipe_cpu_estimate"] = out["corpus_and_bpe_cpu"] + out["train_fixed_cpu"] + d.steps * per
    return {k: round(v, 3) for k, v in out.items()}

