"""Every result object a user gets back shows itself: a short ``__repr__`` (no ``<... object at 0x...>``, no raw
tensor dump), ``_repr_html_``, ``.to_frame()`` (a DataFrame) and ``.plot()`` (a plotly figure with traces).

The table below builds each one from a tiny model; a second test walks interp for result-like classes, so a new
one must either join the table or say in ``NOT_RESULTS`` why it is not a result."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

import interp
from test_steering_fixtures import make_sae, random_prompts, tiny_llama_with_tokenizer, word_tokenizer

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


@functools.cache
def lorsa_setup():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp.lorsa import Lorsa, LorsaConfig

    model = HookedTransformer(HookedTransformerConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, n_ctx=32, d_vocab=38, act_fn="gelu", normalization_type="RMS",
        positional_embedding_type="rotary", rotary_dim=8, seed=0)).eval()
    model.set_tokenizer(word_tokenizer(), default_padding_side="left")  # ZPattern shows the context's text
    cfg = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, rotary=True, rotary_dim=8,
                      layer=1, hook_in="blocks.1.ln1.hook_normalized", hook_out="blocks.1.hook_attn_out")
    tokens = torch.randint(3, 38, (8, 12), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 0
    return model, Lorsa(cfg), tokens


@functools.cache
def word_task(n=12):
    """A task the tiny model solves about half the time: every other answer is its own greedy continuation (so
    CorrSteer has both labels to correlate with)."""
    from interp.core.tasks import Example, ExactMatchTask
    from interp.steering import evaluate_vectors

    prompts = random_prompts(n, seed=1, lo=3, hi=4)
    probe = ExactMatchTask("probe", [Example(p, "x") for p in prompts], max_new_tokens=1)
    _, texts = evaluate_vectors(tiny(), probe, [])
    answers = [t.strip().split()[0] if i % 2 == 0 and t.strip() else "zzz" for i, t in enumerate(texts)]
    return ExactMatchTask("words", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=1)


@functools.cache
def thr_task():
    from interp.core.tasks import Example
    from interp.thr.tasks import VerifiableTask

    prompts = list(dict.fromkeys(random_prompts(16, seed=3, lo=3, hi=4)))
    return VerifiableTask("len", [Example(p, "the") for p in prompts[:6]], [Example(p, "the") for p in prompts[6:9]],
                          lambda item, text: float(len(text)), max_new_tokens=2)


def _generation():
    from interp.core.generation import generate

    return generate(tiny(), ["the cat", "a dog"], 2)


def _lens_result():
    from interp.lens import decode_layers

    return decode_layers(tiny(), "the cat sat")


def _probe_report():
    from interp.translation import Lexicon, TranslationProbe

    lex = Lexicon.bundled().subset(languages=["en", "es", "hi"])
    return TranslationProbe(tiny(), lex).run([("es", "hi")], n_concepts=3, progress=False)


def _generation_trace():
    from interp.translation import generate_with_lens

    return generate_with_lens(tiny(), ["the cat"], max_new_tokens=2)


def _lorsa_eval():
    from interp.lorsa import evaluate_lorsa

    model, lorsa, tokens = lorsa_setup()
    return evaluate_lorsa(model, lorsa, tokens, progress=False)


def _lorsa_train_result():
    from interp.lorsa import LorsaTrainConfig, train_lorsa

    model, lorsa, tokens = lorsa_setup()
    return train_lorsa(model, 1, tokens, lorsa.cfg, LorsaTrainConfig(batch_size=4, n_steps=2, log_every=1,
                                                                     buffer_sequences=8, norm_sequences=4,
                                                                     progress=False, bos_token_id=0))


def _top_contexts():
    from interp.lorsa import top_contexts

    model, lorsa, tokens = lorsa_setup()
    return top_contexts(model, lorsa, tokens, k=3, progress=False)


def _head_scores():
    from interp.lorsa import head_scores

    model, lorsa, _ = lorsa_setup()
    return head_scores(model, lorsa, n_random=2, half=4)


def _z_pattern():
    from interp.lorsa.analyze import context_z_pattern

    model, lorsa, tokens = lorsa_setup()
    return context_z_pattern(model, lorsa, tokens, 0, 5, 0)


def _collection():
    from interp.steering import collect

    return collect(tiny(), [make_sae(HOOK, d_sae=8)], word_task(), progress=False)


def _steering_report():
    from interp.steering import CorrSteerConfig, run_corrsteer

    return run_corrsteer(tiny(), [make_sae(HOOK, d_sae=8)], word_task().split(6, 3),
                         CorrSteerConfig(n_random=1, n_boot=20, progress=False))


def _sae_quality():
    from interp.steering.sae_training import evaluate_sae

    tokens = torch.randint(3, 38, (4, 8), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 0
    return evaluate_sae(tiny(), make_sae(HOOK, d_sae=8), tokens)


def _thr_result():
    from interp.thr import rollout_thr

    return rollout_thr(tiny(), thr_task(), n_prompts=2, group_size=4)


def _grpo_log():
    from interp.thr.grpo import GRPOConfig, GRPOTrainer

    t = GRPOTrainer(tiny(), thr_task(), GRPOConfig(group_size=2, prompts_per_step=1, max_new_tokens=2))
    return t.train(1, progress=False)


def _eval_result():
    from interp.thr.experiment import evaluate_policy

    return evaluate_policy(tiny(), thr_task(), n_samples=2, ks=(1, 2))


@functools.cache
def _experiment():
    from interp.core.models import copy_model
    from interp.thr.experiment import run_experiment, variants_for
    from interp.thr.grpo import GRPOConfig

    return run_experiment(lambda: (copy_model(tiny()), None), thr_task(),
                          base=GRPOConfig(group_size=2, prompts_per_step=1, max_new_tokens=2), steps=1,
                          variants=variants_for(0.5)[:2], n_samples=2, ks=(1, 2), progress=False)


def _train_stats():
    from interp.zoo.training import TrainStats

    # training even the smallest model takes minutes here; the object is plain numbers
    return TrainStats(steps=20, tokens=12_800, seconds=3.5, final_train_loss=2.31, val_loss=2.40, n_params=40_000,
                      loss_curve=[(0, 4.1), (10, 2.9), (20, 2.31)])


def _barrier_stats():
    from interp.translation.barrier import barrier_stats

    return barrier_stats(_probe_report(), pivot="en")


def _thr_training_log():
    from interp.thr.training_log import THRTrainingLog

    log = THRTrainingLog()
    log.add_rollout(0, 2, ["p", "p"], [["a", "b"], ["c"]], [[0.1, -0.2], [0.3]], [[1.0, 1.0], [-1.0]],
                    [[0.5, 0.4], [0.2]], None, [1.0, 0.0], [1.0, -1.0], stats={"thr_mean": 0.1})
    return log


BUILDERS = {
    "Generation": _generation,
    "LensResult": _lens_result,
    "ProbeReport": _probe_report,
    "GenerationTrace": _generation_trace,
    "LorsaEval": _lorsa_eval,
    "LorsaTrainResult": _lorsa_train_result,
    "TopContexts": _top_contexts,
    "HeadScores": _head_scores,
    "ZPattern": _z_pattern,
    "Collection": _collection,
    "SteeringReport": _steering_report,
    "SAEQuality": _sae_quality,
    "THRResult": _thr_result,
    "GRPOLog": _grpo_log,
    "EvalResult": _eval_result,
    "RunResult": lambda: _experiment().runs[0],
    "ExperimentResult": _experiment,
    "TrainStats": _train_stats,
    "BarrierStats": _barrier_stats,
    "THRTrainingLog": _thr_training_log,
}

# result-like names that are not results a user displays, and why
NOT_RESULTS = {
    "DemoResult": "the CLI's list of written files, printed by `make demo` with its own __str__",
    "NotebookRun": "the notebook runner's record of one executed notebook (app layer)",
    "Unembedded": "the lens's internal top-k buffer; decode_layers wraps it in a LensResult",
    "RunningPool": "CorrSteer's running pooling accumulator (internal)",
    "CorrelationStats": "a streaming accumulator; its results are read through SteeringReport / Collection",
    "_ResponseScores": "private",
    "_TokenLogprob": "private (an autograd Function)",
    "SAESet": "a bundle of loaded SAEs (inputs, not results); .quality(model) returns a DataFrame",
    "ActivationBatch": "one batch of an activation stream (inputs to training)",
    "ScoredBatch": "GRPO's internal scored rollouts; its THR is the THRResult in .result",
    "StopSet": "generation's stop strings (an input)",
    "_Batch": "private",
}

_RESULT_WORDS = ("Result", "Report", "Eval", "Log", "Quality", "Stats", "Scores", "Contexts", "Pattern", "Trace",
                 "Generation", "Collection", "Run", "Unembedded", "Batch", "Set", "Pool")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_result_shows_itself(name):
    obj = BUILDERS[name]()
    assert type(obj).__name__ == name
    text = repr(obj)
    assert text.startswith(name) and len(text) <= 240, text
    assert " object at 0x" not in text and "tensor(" not in text, text
    page = obj._repr_html_()
    assert isinstance(page, str) and page.strip() and len(page) < 200_000
    frame = obj.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    fig = obj.plot()
    assert isinstance(fig, go.Figure) and len(fig.data) > 0


def test_every_result_class_is_listed_or_explained():
    found = set()
    for info in pkgutil.walk_packages(interp.__path__, "interp."):
        module = importlib.import_module(info.name)
        for cname, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == module.__name__ and not issubclass(obj, BaseException)
                    and any(cname.endswith(w) for w in _RESULT_WORDS)):
                found.add(cname)
    missing = sorted(found - set(BUILDERS) - set(NOT_RESULTS))
    assert missing == [], f"result-like classes neither tested for their display nor explained: {missing}"
