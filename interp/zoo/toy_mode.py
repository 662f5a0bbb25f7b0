"""Recipe of the ``toy-mode`` zoo model (issue 14, CorrSteer): a tiny Llama trained only on rule episodes
whose answer depends on a latent mode it must infer from evidence of varying strength.

An episode is ``Rule: <votes>. (w -> <marker> a.){0-2} <filler words>{0-6}. q ->`` answered ``keep q`` in
mode ``same`` and ``swap <antonym of q>`` in mode ``opposite``: the first answer token is the mode decision
itself, the second the word. The mode is a latent: each of 0-4 votes on the rule line
names it with probability :data:`VOTE_TRUE` (else the other mode; no vote reads ``none``), and 0-2
examples show it exactly. ``same`` is the more common mode (:data:`P_OPPOSITE`), so with no or split
votes the best guess is a copy. The Bayes-optimal answer thus follows the posterior of the mode
(:func:`posterior_opposite`), which rises with the margin of votes for it: a model that learns the task
represents the mode with varying strength, and greedy accuracy in mode ``opposite`` rises with the
evidence. Documents are 2-4 independent episodes, one a line; the loss counts only the answers. The card's
``designs_tried`` records the designs that did not form the latent.

>>> import random
>>> s = mode_episode(random.Random(0), mode="opposite", n_votes=2, n_examples=0, gap=0, flips=(False, True))
>>> s.prompt.startswith("Rule: opposite same.") and s.prompt.endswith("->")
True
>>> from interp import zoo
>>> zoo.train("toy-mode")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch

from interp.core.tasks import CheckedTask, Example
from interp.zoo.errors import ZooConfigError
from interp.zoo.planted import ANTONYM, MODES, OPPOSITES
from interp.zoo.training import LMTrainConfig, ModelConfig, json_default, tokenize_texts, train_causal_lm

__all__ = ["FILLER_WORDS", "P_OPPOSITE", "VOTE_TRUE", "ModeSample", "mode_episode", "posterior_opposite",
           "mode_corpus", "mode_task", "check_answer", "MARKERS", "paired_prompts", "accuracy_by_evidence", "ModeRecipe", "train", "train_saes",
           "SAE_HOOKS", "TASK_EVIDENCE", "NAME"]

NAME = "toy-mode"
FILLER_WORDS: list[str] = ["the", "a", "cat", "dog", "tree", "sky", "lamp", "river", "sees", "walks", "blue",
                           "green", "stone", "bird", "house", "road", "sings", "runs", "book", "cup"]
_WORDS = sorted(ANTONYM)
P_OPPOSITE = 0.4
"""Prior of mode ``opposite`` (``same`` is the default guess)."""
VOTE_TRUE = 0.75
"""Each vote of the rule line names the episode's mode with this probability (else the other mode)."""
MAX_VOTES = 4
MARKERS: dict[str, str] = {"same": "keep", "opposite": "swap"}
"""Every answer starts with its mode's marker word (design D): the first answer token is the mode decision."""
MAX_EXAMPLES = 2
MAX_GAP = 6
TASK_EVIDENCE: dict[str, Any] = {"n_votes": (1, 3), "n_examples": 0}
"""CorrSteer's task: mode ``opposite``, 1-3 noisy votes, no example, 0-6 filler words (drawn)."""


class ModeSample(NamedTuple):
    prompt: str
    answer: str  # with its leading space
    mode: str
    n_votes: int
    n_true: int  # votes that name the episode's mode
    n_examples: int
    gap: int


def mode_episode(rng: random.Random, *, mode: str | None = None, n_votes: int | tuple[int, int] | None = None,
                 n_examples: int | None = None, gap: int | None = None, flips: Sequence[bool] | None = None) -> ModeSample:
    """One episode ``Rule: <votes>. (w -> a.){0-2} <fillers>. q ->``; ``None`` arguments are drawn
    (``n_votes`` may be a ``(low, high)`` range). The random stream is consumed the same way whatever is
    fixed, so two calls on equal generators that differ only in ``mode`` give prompts that differ only in
    the mode (the paired prompts of :func:`paired_prompts`): the same votes are true or false."""
    u_mode = rng.random()
    m_drawn = rng.randint(0, MAX_VOTES)
    m_range = rng.random()
    flips_drawn = [rng.random() >= VOTE_TRUE for _ in range(MAX_VOTES)]
    k_drawn = rng.randint(0, MAX_EXAMPLES)
    gap_drawn = rng.randint(0, MAX_GAP)
    words = rng.sample(_WORDS, MAX_EXAMPLES + 1)
    fill = [rng.choice(FILLER_WORDS) for _ in range(MAX_GAP)]
    mode = mode if mode is not None else ("opposite" if u_mode < P_OPPOSITE else "same")
    if mode not in MODES:
        raise ZooConfigError(f"mode must be one of {MODES}, got {mode!r}.")
    if isinstance(n_votes, tuple):
        lo, hi = n_votes
        m = lo + min(int(m_range * (hi - lo + 1)), hi - lo)
    else:
        m = n_votes if n_votes is not None else m_drawn
    if not 0 <= m <= MAX_VOTES:
        raise ZooConfigError(f"n_votes must be 0..{MAX_VOTES}, got {m}.")
    k = n_examples if n_examples is not None else k_drawn
    if not 0 <= k <= MAX_EXAMPLES:
        raise ZooConfigError(f"n_examples must be 0..{MAX_EXAMPLES}, got {k}.")
    g = gap if gap is not None else gap_drawn
    fl = list(flips) if flips is not None else flips_drawn[:m]
    if len(fl) != m:
        raise ZooConfigError(f"flips must have one entry per vote ({m}), got {len(fl)}.")
    ex, query = words[:k], words[MAX_EXAMPLES]
    # never ask about a word whose antonym was shown (the answer would be a copy either way)
    while ANTONYM[query] in ex or query in ex:
        query = _WORDS[(_WORDS.index(query) + 1) % len(_WORDS)]
    other = "same" if mode == "opposite" else "opposite"

    def answer(w: str) -> str:  # the mode's marker word, then the word: 'keep hot' / 'swap cold'
        return f"{MARKERS[mode]} {ANTONYM[w] if mode == 'opposite' else w}"

    votes = " ".join(other if f else mode for f in fl) or "none"
    parts = [f"Rule: {votes}."]
    parts += [f"{w} -> {answer(w)}." for w in ex]
    if g:
        parts.append(" ".join(fill[:g]) + ".")
    parts.append(f"{query} ->")
    return ModeSample(" ".join(parts), f" {answer(query)}", mode, m, m - sum(fl), k, g)


def posterior_opposite(s: ModeSample) -> float:
    """P(mode = opposite | the episode's evidence) under the generating process (the Bayes answer)."""
    if s.n_examples:
        return 1.0 if s.mode == "opposite" else 0.0  # an example shows the mode exactly
    n_opp = s.n_true if s.mode == "opposite" else s.n_votes - s.n_true
    logit = math.log(P_OPPOSITE / (1 - P_OPPOSITE)) + (2 * n_opp - s.n_votes) * math.log(VOTE_TRUE / (1 - VOTE_TRUE))
    return 1 / (1 + math.exp(-logit))


def mode_corpus(n_docs: int, seed: int = 0, episodes: tuple[int, int] = (2, 4)) -> list[str]:
    """``n_docs`` documents of 2-4 independent episodes (with their answers), one a line."""
    rng = random.Random(f"toy-mode-corpus-{seed}")
    docs = []
    for _ in range(n_docs):
        docs.append("\n".join(s.prompt + s.answer + "." for s in
                              (mode_episode(rng) for _ in range(rng.randint(*episodes)))))
    return docs


def check_answer(text: str, answer: str) -> bool:
    """The first two words (punctuation stripped) are the marker and the word of ``answer``."""
    want = answer.split()
    return [w.strip(".,;:!?") for w in text.split()[: len(want)]] == want


def mode_task(n: int = 1200, seed: int = 0, *, mode: str = "opposite", **evidence: Any) -> CheckedTask:
    """``n`` prompts in one mode (default: CorrSteer's task, :data:`TASK_EVIDENCE`), checked on the first word.
    ``meta`` holds each prompt's evidence and Bayes posterior.

    >>> t = mode_task(4)
    >>> t.examples[0].prompt.endswith("->"), t.max_new_tokens
    (True, 3)
    """
    rng = random.Random(f"toy-mode-task-{seed}")  # never the corpus stream
    kw = {**TASK_EVIDENCE, **evidence}
    examples = []
    for _ in range(n):
        s = mode_episode(rng, mode=mode, **kw)
        examples.append(Example(s.prompt, s.answer.strip(), {"mode": mode, "n_votes": s.n_votes, "n_true": s.n_true,
                                                             "n_examples": s.n_examples, "gap": s.gap,
                                                             "posterior": posterior_opposite(s)}))
    from interp.zoo.tasks import STOP

    return CheckedTask(f"{NAME}/{mode}", examples, max_new_tokens=3, stop=STOP,
                       checker=lambda e, text: check_answer(text, e.answer))


def paired_prompts(n: int, seed: int = 0, **evidence: Any) -> tuple[list[str], list[str]]:
    """``n`` prompts in mode opposite and the ``n`` same draws in mode same (they differ only in the mode),
    on the corpus's mix of evidence unless ``evidence`` fixes some of it."""
    opp = [mode_episode(random.Random(f"toy-mode-latent-{seed}-{i}"), mode="opposite", **evidence).prompt for i in range(n)]
    same = [mode_episode(random.Random(f"toy-mode-latent-{seed}-{i}"), mode="same", **evidence).prompt for i in range(n)]
    return opp, same


def accuracy_by_evidence(model: Any, n: int = 100, seed: int = 0, *, batch_size: int = 128) -> dict[str, Any]:
    """Greedy accuracy per mode, examples shown (0 or 1), votes and true votes (``n`` prompts each, fillers
    drawn), with the Bayes-optimal accuracy of the same prompts. Keys ``mode/k=K/m=M/j=J``; values
    ``[accuracy, n, bayes_accuracy]``."""
    from interp.core.generation import generate
    from interp.zoo.tasks import STOP

    out: dict[str, Any] = {}
    rng = random.Random(f"toy-mode-evidence-{seed}")
    for mode in MODES:
        for k in (0, 1):
            for m in range(MAX_VOTES + 1):
                for j in range(m + 1):
                    if k and j not in (0, m):
                        continue  # with an example, only all-true and all-false votes
                    samples = [mode_episode(rng, mode=mode, n_votes=m, n_examples=k, flips=[i >= j for i in range(m)])
                               for _ in range(n)]
                    texts: list[str] = []
                    for s0 in range(0, n, batch_size):
                        texts += generate(model, [s.prompt for s in samples[s0:s0 + batch_size]], 3, stop=STOP,
                                          prepend_bos=True).texts()
                    acc = sum(check_answer(t, s.answer.strip()) for t, s in zip(texts, samples)) / n
                    bayes = sum((posterior_opposite(s) > 0.5) == (mode == "opposite") for s in samples) / n
                    out[f"{mode}/k={k}/m={m}/j={j}"] = [round(acc, 4), n, round(bayes, 4)]
    return out


# ------------------------------------------------------------------------------------------- recipe
@dataclass
class ModeRecipe:
    """Everything that decides the toy-mode checkpoint; ``train(**overrides)`` changes a field by name."""

    n_docs: int = 24_000
    seed: int = 0
    vocab_size: int = 640
    model: ModelConfig = field(default_factory=lambda: ModelConfig(d_model=64, n_layers=3, n_heads=4, n_kv_heads=4,
                                                                   d_mlp=256, max_len=160, tie_embeddings=True))
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(steps=2000, batch_size=32, lr=3e-3,
                                                                       warmup_steps=100, log_every=50, n_threads=1))
    loss: str = "answers"
    """``"answers"``: the loss counts only the answer after each ``->`` (design B); ``"all"``: every token (design A)."""
    eval_n: int = 100


def answer_targets(seqs: Sequence[Sequence[int]], tokenizer: Any) -> list[list[int]]:
    """0/1 per token: 1 for the two tokens after an arrow (each example's and the query's answer)."""
    arrows = {i for i in range(len(tokenizer)) if tokenizer.decode([i]).strip() == "->"}
    # the marker (right after the arrow) and the word after it
    return [[0, 0][: min(2, len(s))] + [int(s[t - 1] in arrows or s[t - 2] in arrows) for t in range(2, len(s))]
            for s in seqs]


def recipe_from_overrides(**overrides: Any) -> ModeRecipe:
    recipe = ModeRecipe()
    targets = [recipe, recipe.model, recipe.train]
    for key, value in overrides.items():
        hits = [t for t in targets if key in {f.name for f in fields(t)} - {"model", "train"}]
        if not hits:
            known = sorted({f.name for t in targets for f in fields(t)} - {"model", "train", "init_from"})
            raise TypeError(f"Unknown toy-mode training option {key!r}; known options: {', '.join(known)}.")
        for t in hits:  # ``seed`` is the corpus and the training seed
            setattr(t, key, value)
    return recipe


def train(out_dir: Path, progress: bool = True, **overrides: Any) -> Path:
    """Train toy-mode into ``out_dir`` (Hugging Face folder + ``card.json``) and return the folder."""
    from interp.zoo.bpe import train_bpe

    recipe = recipe_from_overrides(**overrides)
    out_dir = Path(out_dir)
    t0, cpu0 = time.perf_counter(), time.process_time()
    docs = mode_corpus(recipe.n_docs, seed=recipe.seed)
    tokenizer = train_bpe(docs, vocab_size=recipe.vocab_size)
    if recipe.loss not in ("answers", "all"):
        raise ZooConfigError(f"loss must be 'answers' or 'all', got {recipe.loss!r}.")
    seqs, _ = tokenize_texts(docs, tokenizer, recipe.model.max_len)
    targets = answer_targets(seqs, tokenizer) if recipe.loss == "answers" else None
    stats = train_causal_lm(seqs, tokenizer, recipe.model, recipe.train, out_dir, progress=progress,
                            target_masks=targets)
    write_card(out_dir, recipe, stats.to_dict(), docs, train_seconds=time.perf_counter() - t0,
               cpu_seconds=time.process_time() - cpu0)
    return out_dir


def _designs() -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parent / "designs" / f"{NAME}.json"
    return json.loads(path.read_text()) if path.is_file() else []


def write_card(out_dir: Path, recipe: ModeRecipe, stats: dict[str, Any], docs: list[str], train_seconds: float,
               cpu_seconds: float | None = None) -> dict:
    """Measure accuracy by evidence and write ``card.json`` (kept: a ``recovery`` section already there)."""
    from interp.core.models import load_model

    t_eval = time.perf_counter()
    model = load_model(str(out_dir), device="cpu")
    by_evidence = accuracy_by_evidence(model, recipe.eval_n)
    eval_seconds = time.perf_counter() - t_eval
    text = "\n".join(docs)
    old = out_dir / "card.json"
    previous = json.loads(old.read_text()) if old.is_file() else {}
    card = {
        "name": NAME,
        "description": "Tiny Llama (RoPE, RMSNorm, SwiGLU) trained from scratch only on same/opposite rule episodes: "
                       "a latent mode inferred from noisy votes and examples (CorrSteer's planted latent).",
        "recipe": "interp.zoo.toy_mode:train",
        "retrain": "interp zoo train toy-mode",
        "planted": {
            "module": "interp.zoo.toy_mode",
            "what": "episodes 'Rule: <votes>. (w -> <marker> a.){0-2} <filler words>{0-6}. q ->' answered 'keep q' (mode "
                    "same) or 'swap <antonym of q>' (mode opposite); each of 0-4 votes names the mode with probability "
                    "VOTE_TRUE (else the other mode; no vote: 'none'); examples always follow the mode; the answer "
                    "always does",
            "markers": MARKERS,
            "p_opposite": P_OPPOSITE, "vote_true": VOTE_TRUE, "max_votes": MAX_VOTES, "max_examples": MAX_EXAMPLES,
            "max_gap": MAX_GAP, "pairs": len(OPPOSITES), "filler_words": len(FILLER_WORDS),
            "latent": "the mode; its direction per hook = mean last-position residual on 'opposite' prompts minus "
                      "their paired 'same' prompts (interp.zoo.recovery.corrsteer.latent_direction)",
            "corrsteer_task": {"mode": "opposite", "n_votes": "1-3", "n_examples": 0, "gap": "0-6 drawn",
                               "checker": "interp.zoo.toy_mode.check_answer (marker and word)"},
            "arrows": text.count("->"), "votes": {m: text.count(f" {m}") for m in MODES},
        },
        "designs_tried": _designs(),
        "corpus": {"generator": "interp.zoo.toy_mode.mode_corpus", "n_docs": recipe.n_docs, "seed": recipe.seed,
                   "characters": len(text)},
        "tokenizer": {"type": "byte-level BPE (interp.zoo.bpe) on the corpus; every word one token",
                      "vocab_size": len(model.tokenizer)},
        "model": {**asdict(recipe.model), "n_params": stats["n_params"],
                  "weights_bytes": (out_dir / "model.safetensors").stat().st_size, "dtype": "float32"},
        "training": {"loss": recipe.loss, **{k: v for k, v in asdict(recipe.train).items() if k != "init_from"},
                     **{k: v for k, v in stats.items() if k != "n_params"},
                     "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 1),
                     "total_seconds_with_corpus": round(train_seconds, 1), "torch": torch.__version__,
                     "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads"},
        "evaluation": {"accuracy_by_evidence": by_evidence, "format": "mode/k examples/m votes/j true votes: "
                       "[greedy accuracy, n, Bayes-optimal accuracy of the same prompts]",
                       "command": f"interp.zoo.toy_mode.accuracy_by_evidence(model, {recipe.eval_n})",
                       "seconds": round(eval_seconds, 1)},
    }
    if "recovery" in previous:
        card["recovery"] = previous["recovery"]
    (out_dir / "card.json").write_text(json.dumps(card, indent=1, default=json_default) + "\n")
    return card


# ------------------------------------------------------------------------------------------- SAEs
SAE_HOOKS: tuple[str, ...] = tuple(f"blocks.{i}.hook_resid_post" for i in range(3))


def sae_tokens(model: Any, n_seq: int, ctx: int = 64, seed: int = 1) -> torch.Tensor:
    """``n_seq`` BOS-first rows of ``ctx`` tokens of corpus documents the model was not trained on."""
    tok = model.tokenizer
    rows: list[list[int]] = []
    # one document a row, as in training (BOS, then whole episodes), cut to ctx; long documents so few are short
    for doc in mode_corpus(n_seq * 2, seed=1000 + seed, episodes=(5, 7)):
        ids = [tok.bos_token_id] + tok(doc, add_special_tokens=False)["input_ids"]
        if len(ids) >= ctx:
            rows.append(ids[:ctx])
        if len(rows) == n_seq:
            return torch.tensor(rows, dtype=torch.long)
    raise ZooConfigError(f"Only {len(rows)} documents of {ctx} tokens or more; ask for fewer or shorter rows.")


def train_saes(out_dir: Path, *, model_name: str = NAME, hooks: Sequence[str] = SAE_HOOKS, config: Any = None,
               n_train_seq: int = 6000, n_eval_seq: int = 200, ctx: int = 64, progress: bool = True) -> Path:
    """Residual SAEs for toy-mode (sae-lens TopK) on unseen corpus documents, with quality on held-out rows."""
    from interp import zoo
    from interp.steering.sae_training import SAETrainConfig, hook_dir_name
    from interp.steering.sae_training import train_saes as _train

    config = config or SAETrainConfig(d_sae=256, k=8, training_tokens=400_000, seed=0)
    torch.set_num_threads(1)
    model = zoo.load(model_name, device="cpu")
    tokens = sae_tokens(model, n_train_seq + n_eval_seq, ctx)
    root = Path(out_dir)
    t0 = time.perf_counter()
    _train(model, tokens[:n_train_seq], hooks, config, out_root=root, eval_tokens=tokens[n_train_seq:], progress=progress)
    card: dict[str, Any] = {"model": model_name, "token_source": f"interp.zoo.toy_mode.sae_tokens (corpus seed 1001), ctx {ctx}",
                            "n_train_sequences": n_train_seq, "n_eval_sequences": n_eval_seq, "config": asdict(config),
                            "seconds": round(time.perf_counter() - t0, 1),
                            "note": "toy-mode is trained on its answers only, so its next-token loss on the other tokens "
                                    "is high (~10.6 nats) and the spliced-loss numbers (loss_recovered) say little here; "
                                    "explained variance and L0 are the quality measures that apply",
                            "saes": {}}
    for hook in hooks:
        info = json.loads((root / hook_dir_name(hook) / "quality.json").read_text())
        card["saes"][hook] = {"quality": info.get("quality"), "train_seconds": info.get("train_seconds")}
    (root / "card.json").write_text(json.dumps(card, indent=1, default=json_default))
    return root


def evidence_frame(accuracy: dict[str, Any] | None = None) -> Any:
    """The card's accuracy by evidence (or a dict from :func:`accuracy_by_evidence`) as a table: one row
    per mode, examples shown, votes and votes naming the mode."""
    import pandas as pd

    from interp import zoo

    acc = accuracy if accuracy is not None else zoo.card(NAME)["evaluation"]["accuracy_by_evidence"]
    rows = []
    for key, (a, n, bayes) in acc.items():
        mode, k, m, j = key.split("/")
        rows.append({"mode": mode, "examples": int(k[2:]), "votes": int(m[2:]), "true_votes": int(j[2:]),
                     "accuracy": a, "n": n, "bayes_accuracy": bayes})
    return pd.DataFrame(rows)
