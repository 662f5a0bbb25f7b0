"""Random-init twins of real models at their real width (2 layers, real vocabularies), and one end-to-end
run of every method on a model, timed, with peak GPU memory.

``make gpu-check`` runs this on a CUDA GPU through tests/gpu/ (Llama-3.1-8B and Gemma-2-2B shapes, bf16 and
fp32). tests/test_real_width_dryrun.py runs the same code on the CPU with the twins shrunk, under a
simulated CUDA device, so the runner itself is tested everywhere.

Nothing here downloads anything: configs are written out below (the shapes of the public config.json
files), weights are random, and the tokenizer is a byte-level BPE trained on a few sentences and padded with
filler tokens up to the model's vocabulary, so that every id the model can emit decodes to a word.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

FAMILIES: dict[str, dict[str, Any]] = {
    # meta-llama/Llama-3.1-8B: GQA 32/8, llama3 RoPE scaling, untied 128k head
    "llama-3.1-8b": dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                         rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192, "rope_type": "llama3"}),
    # google/gemma-2-2b: head_dim 256, soft-caps, sliding window, tied 256k head
    "gemma-2-2b": dict(model_type="gemma2", vocab_size=256000, hidden_size=2304, intermediate_size=9216,
                       num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                       sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                       max_position_embeddings=8192, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True),
}

# Llama-3-8B: Llama-3.1-8B without its RoPE scaling, which every front-end loads; the dry run's control
CONTROL = "llama-3-8b"
FAMILIES_AND_CONTROL = {**FAMILIES, CONTROL: {k: v for k, v in FAMILIES["llama-3.1-8b"].items() if k != "rope_scaling"}
                        | {"max_position_embeddings": 8192}}

# the same families shrunk for the CPU dry run (every feature kept: scaling, soft-caps, GQA, head_dim)
SHRUNK: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                         num_key_value_heads=2),
    "gemma-2-2b": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16),
}
SHRUNK[CONTROL] = SHRUNK["llama-3.1-8b"]

CORPUS = [
    "Once upon a time there was a little cat named Tom.",
    "The dog ran to the park and saw a big red ball.",
    "Sue liked to read books about the sea and the stars.",
    "In the morning the sun was warm and the sky was blue.",
    "The old man sat under the tree and told a long story.",
    "A small bird sang a song on the roof of the house.",
    "They went to the market to buy apples, bread and milk.",
    "The train left the station at nine and arrived at noon.",
    "El gato duerme en la casa. La niña come una manzana.",
    "Le chien court dans le jardin. Il fait beau aujourd'hui.",
    "Der Hund spielt im Garten und die Katze schläft.",
    "Water, fire, earth and air are the four old elements.",
]
N_LAYERS = 2
ROWS: list["Row"] = []  # what tests/gpu/ measured in this run (printed by tests/gpu/conftest.py)


@dataclass
class Sizes:
    """How much work each method does (real widths on a GPU; tiny on the CPU dry run)."""

    batch: int = 8
    new_tokens: int = 32
    ctx: int = 64
    d_sae: int = 65536
    n_examples: int = 48
    lorsa_steps: int = 4
    grpo_group: int = 4
    grpo_prompts: int = 4


@dataclass
class Row:
    family: str
    dtype: str
    method: str
    seconds: float
    work: float
    unit: str
    peak_gib: float
    status: str = "ok"
    note: str = ""

    @property
    def throughput(self) -> float:
        return self.work / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        peak = f"{self.peak_gib:7.2f} GiB" if math.isfinite(self.peak_gib) else "      - GiB"
        return (f"{self.family:14s} {self.dtype:9s} {self.method:24s} {self.status:8s} {self.seconds:8.2f} s "
                f"{self.throughput:12.1f} {self.unit + '/s':12s} peak {peak}  {self.note}")


def _pad_tokenizer(tok: Any, vocab_size: int) -> Any:
    """The trained BPE with filler words appended to its vocabulary up to ``vocab_size`` (never produced by
    encoding; they only give every id a text)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    n = len(vocab)
    for i in range(n, vocab_size):
        vocab[f"Ġw{i}"] = i  # "Ġ" is the byte-level space: filler id i decodes to " w<i>"
    padded = Tokenizer.from_str(json.dumps(spec))
    return PreTrainedTokenizerFast(tokenizer_object=padded, bos_token=tok.bos_token, eos_token=tok.eos_token,
                                   pad_token=tok.pad_token, unk_token=None, clean_up_tokenization_spaces=False,
                                   padding_side="right", model_max_length=1_000_000)


def build_twin(family: str, folder: str | Path, *, shrink: bool = False, device: str = "cpu",
               dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write a random-init Hugging Face folder of ``family`` (config.json, safetensors, tokenizer)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from interp.zoo.bpe import train_bpe

    kw = dict(FAMILIES_AND_CONTROL[family])
    if shrink:
        kw.update(SHRUNK[family])
    model_type = kw.pop("model_type")
    config = AutoConfig.for_model(model_type, num_hidden_layers=N_LAYERS, bos_token_id=1, eos_token_id=2,
                                  pad_token_id=0, **kw)
    folder = Path(folder)
    tok = _pad_tokenizer(train_bpe(CORPUS * 4, vocab_size=400), config.vocab_size)
    assert len(tok) == config.vocab_size
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    return folder


def load_twin(folder: Path, *, device: str, dtype: torch.dtype) -> Any:
    """The twin through interp's own loader (whatever front-end it returns by default)."""
    import inspect

    from interp import load_model

    kwargs: dict[str, Any] = dict(device=device, dtype=dtype)
    if "n_ctx" in inspect.signature(load_model).parameters:
        kwargs["n_ctx"] = 2048  # TransformerLens allocates n_ctx x n_ctx masks: not Llama-3.1's 131072
    return load_model(folder, **kwargs)


# ----------------------------------------------------------------------------------------- the run
def _checker(example: Any, generated: str) -> bool:
    # a deterministic label that depends on the prompt and the text, so both classes occur on a random model
    return (len(example.prompt) + sum(map(ord, generated))) % 2 == 0


@contextmanager
def _measure(rows: list[Row], base: dict[str, str], method: str, unit: str, work: Callable[[], float] | float):
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    row = Row(base["family"], base["dtype"], method, 0.0, 0.0, unit, float("nan"))
    try:
        yield row
    except Exception as err:  # recorded, then re-raised: the test fails with the original traceback
        row.status, row.note = "FAILED", f"{type(err).__name__}: {str(err)[:200]}"
        raise
    finally:
        if cuda:
            torch.cuda.synchronize()
            row.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        row.seconds = time.perf_counter() - t0
        if row.status == "ok":
            row.work = float(work() if callable(work) else work)
        rows.append(row)


def method_runs(model: Any, sizes: Sizes) -> dict[str, Callable[[list[Row], dict[str, str]], None]]:
    """One callable per method; each runs it end to end on ``model`` and appends its :class:`Row`."""
    from interp.core.frontend import input_device
    from interp.core.tasks import CheckedTask, Example

    device = input_device(model)
    prompts = (CORPUS * 8)[: sizes.batch]
    tok = model.tokenizer
    ids = tok(" ".join(CORPUS * 20))["input_ids"]
    n_seq = 16
    rows_needed = n_seq * sizes.ctx
    ids = (ids * (rows_needed // len(ids) + 2))[:rows_needed]
    tokens = torch.tensor(ids).view(n_seq, sizes.ctx)
    tokens[:, 0] = tok.bos_token_id
    examples = [Example(f"{CORPUS[i % len(CORPUS)]} ({i})", "") for i in range(sizes.n_examples)]
    task = CheckedTask("parity", examples, max_new_tokens=sizes.new_tokens // 2, checker=_checker)

    def generation(rows, base):
        from interp.core.generation import generate

        with _measure(rows, base, "generate (KV cache)", "tok", sizes.batch * sizes.new_tokens):
            generate(model, prompts, sizes.new_tokens, stop_at_eos=False)
        with _measure(rows, base, "generate sampled", "tok", sizes.batch * sizes.new_tokens):
            generate(model, prompts, sizes.new_tokens, temperature=1.0, seed=0, stop_at_eos=False)

    def lens(rows, base):
        from interp.lens import decode_layers

        with _measure(rows, base, "logit lens (all layers)", "prompt", sizes.batch):
            decode_layers(model, prompts, k=10)

    def translation(rows, base):
        from interp.translation import Lexicon, ProbeConfig, TranslationProbe

        lexicon = Lexicon.bundled().subset(languages=["en", "es", "fr"])
        with _measure(rows, base, "translation probe", "prompt", 8):
            TranslationProbe(model, lexicon, config=ProbeConfig(max_new_tokens=4, batch_size=8)).run(
                [("es", "en"), ("fr", "en")], n_concepts=4, progress=False)

    def lorsa(rows, base):
        from interp.lorsa import LorsaConfig, UnsupportedModelError
        from interp.lorsa.analyze import head_scores, ov_readout, top_contexts
        from interp.lorsa.evaluate import evaluate_lorsa
        from interp.lorsa.train import LorsaTrainConfig, train_lorsa

        try:
            cfg = LorsaConfig.from_model(model, 1, expansion=2, top_k=16)
        except UnsupportedModelError as err:  # a tested refusal (issue 12), not a crash: report it
            rows.append(Row(base["family"], base["dtype"], "lorsa", 0.0, 0.0, "tok", float("nan"), "refused",
                            str(err)[:200]))
            return
        with _measure(rows, base, "lorsa train", "tok", sizes.lorsa_steps * 4 * sizes.ctx):
            res = train_lorsa(model, 1, tokens, cfg, LorsaTrainConfig(batch_size=4, n_steps=sizes.lorsa_steps,
                                                                      norm_sequences=4, buffer_sequences=16,
                                                                      model_batch_size=8, progress=False))
        lor = res.lorsa
        with _measure(rows, base, "lorsa evaluate", "tok", 8 * sizes.ctx):
            evaluate_lorsa(model, lor, tokens[:8], batch_size=4, progress=False)
        with _measure(rows, base, "lorsa analyze", "tok", 8 * sizes.ctx):
            top_contexts(model, lor, tokens[:8], k=4, batch_size=4, progress=False)
            head_scores(model, lor, tokens[:4], n_random=4, half=16)
            ov_readout(model, lor, 0, k=5)

    def corrsteer(rows, base):
        from sae_lens import StandardSAE, StandardSAEConfig
        from sae_lens.saes.sae import SAEMetadata

        from interp.steering import CorrSteerConfig, collect, run_corrsteer
        from interp.steering.sae_training import evaluate_sae

        d = int(model.cfg.d_model)
        saes = []
        for i, hook in enumerate(("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")):
            torch.manual_seed(i)
            sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=sizes.d_sae, metadata=SAEMetadata(hook_name=hook)))
            with torch.no_grad():
                for p in sae.parameters():
                    p.normal_(0, 1 / math.sqrt(d))
            saes.append(sae.to(device).eval())
        splits = task.split(train=0.5, val=0.25, seed=0)
        with _measure(rows, base, f"corrsteer collect d_sae={sizes.d_sae}", "sample", len(splits.train)):
            col = collect(model, saes, splits.train, batch_size=16, progress=False)
        with _measure(rows, base, "corrsteer run (steered)", "sample", len(splits.val) + len(splits.test)):
            run_corrsteer(model, saes, splits, CorrSteerConfig(batch_size=16, n_random=1, n_boot=200,
                                                               progress=False), collection=col)
        with _measure(rows, base, "sae evaluate (spliced)", "tok", 8 * sizes.ctx):
            evaluate_sae(model, saes[0], tokens[:8], batch_size=4)

    def thr(rows, base):
        from interp.thr.grpo import GRPOConfig, GRPOTrainer, rollout_thr
        from interp.thr.tasks import VerifiableTask

        n = len(examples) // 2
        vtask = VerifiableTask("parity", examples[:n], examples[n:], lambda e, c: float(_checker(e, c)),
                               max_new_tokens=sizes.new_tokens // 2)
        g = sizes.grpo_group
        with _measure(rows, base, "thr rollout", "response", 2 * g):
            rollout_thr(model, vtask, n_prompts=2, group_size=g, exclude_self=True)
        trainer = GRPOTrainer(model, vtask, GRPOConfig(group_size=g, prompts_per_step=sizes.grpo_prompts,
                                                       thr=True, thr_p=0.5, lr=1e-6, seed=0),
                              in_place=True)  # no second copy of a real-width model: the GPU memory is the budget
        with _measure(rows, base, "grpo step with thr", "response", g * sizes.grpo_prompts):
            trainer.step()

    return dict(generation=generation, lens=lens, translation=translation, lorsa=lorsa, corrsteer=corrsteer,
                thr=thr)


def report(rows: list[Row]) -> str:
    head = (f"{'family':14s} {'dtype':9s} {'method':24s} {'status':8s} {'time':>10s} {'throughput':>12s} "
            f"{'':12s} peak GPU memory")
    return "\n".join([head] + [r.line() for r in rows])


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps([{**r.__dict__, "throughput": r.throughput} for r in self.rows], indent=1))
