"""Every method keeps every tensor and generator on the model's device, checked on the CPU with a simulated
CUDA device (tests/simcuda.py): tensors carry a virtual ``cuda:0`` and any op that a CUDA build would refuse
(mixed devices, a CPU generator sampling CUDA probabilities, ``.numpy()`` of a CUDA tensor) raises. Each
method runs end to end on the "GPU" and must give the numbers of the CPU run.

What this cannot check is listed in tests/simcuda.py; tests/gpu/ runs the same methods on a real GPU.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import shared_model_dir
from simcuda import CUDA, DeviceMismatch, SimulatedCuda

_NEEDS_STORIES = pytest.mark.skipif(not (shared_model_dir() / "config.json").is_file(),
                                    reason="stories260K is not present at ../shared/models/stories260K")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest single-threaded


# ----------------------------------------------------------------------------------------- the harness
def test_simulated_cuda_refuses_what_cuda_refuses():
    with SimulatedCuda():
        x = torch.randn(3, 4).to("cuda")
        assert x.device == CUDA and x.is_cuda
        for bad in (lambda: x @ torch.randn(4, 2), lambda: torch.cat([x, torch.zeros(3, 4)]),
                    lambda: torch.nn.Linear(4, 2)(x), lambda: torch.zeros(4)[torch.tensor([0]).cuda()],
                    lambda: torch.einsum("ij,jk->ik", x, torch.randn(4, 2)),
                    lambda: torch.multinomial(torch.softmax(x, -1), 1, generator=torch.Generator().manual_seed(0)),
                    lambda: torch.randn(3, device="cuda", generator=torch.Generator().manual_seed(0))):
            with pytest.raises(DeviceMismatch):
                bad()
        with pytest.raises(TypeError, match="numpy"):
            x.numpy()
        with pytest.raises(TypeError, match="numpy"):
            np.asarray(x)


def test_simulated_cuda_allows_what_cuda_allows_and_computes_real_numbers():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    ref = lin(x).detach()
    with SimulatedCuda() as sim:
        lin.to("cuda")
        xc = x.cuda()
        y = lin(xc) * torch.tensor(2.0)                    # a 0-dim CPU tensor is fine
        assert y.device == CUDA and torch.equal(y.detach().cpu(), ref * 2)
        assert xc[torch.tensor([0, 2])].device == CUDA     # CPU indices are fine
        out = torch.zeros(3, 2)
        out.copy_(y.detach())                              # copies across devices
        assert out.device.type == "cpu"
        g = torch.Generator(device="cuda").manual_seed(0)
        assert torch.multinomial(torch.softmax(y.detach(), -1), 1, generator=g).device == CUDA
        y.sum().backward()
        assert lin.weight.grad.device == CUDA
        torch.optim.Adam(lin.parameters()).step()
        assert torch.zeros(2, device=xc.device).device == CUDA
        assert y.detach().cpu().numpy().shape == (3, 2)
    assert sim.checked > 20
    assert torch.Generator is not type(g)  # the real class is back after the block


# ----------------------------------------------------------------------------------------- methods
@pytest.fixture(scope="module")
def stories():
    from interp import load_model

    if not (shared_model_dir() / "config.json").is_file():
        pytest.skip("stories260K is not present at ../shared/models/stories260K")
    return load_model(shared_model_dir(), device="cpu")


def _on_cuda(model):
    m = copy.deepcopy(model)
    m.to("cuda")
    assert m.W_U.device == CUDA
    return m


@_NEEDS_STORIES
def test_generation_and_lens_on_cuda(stories):
    from interp.core.generation import generate
    from interp.lens import decode_layers

    prompts = ["Once upon a time", "Tom had a big"]
    ref = generate(stories, prompts, 6, temperature=1.0, seed=3)
    ref_lens = decode_layers(stories, prompts, k=3)
    with SimulatedCuda():
        model = _on_cuda(stories)
        out = generate(model, prompts, 6, temperature=1.0, seed=3)
        assert out.tokens.device == CUDA and torch.equal(out.tokens.cpu(), ref.tokens)
        with pytest.raises(ValueError, match="generator"):
            generate(model, prompts, 2, temperature=1.0, generator=torch.Generator().manual_seed(0))
        lens = decode_layers(model, prompts, k=3)
    assert torch.equal(lens.top_ids, ref_lens.top_ids)
    torch.testing.assert_close(lens.top_logprobs, ref_lens.top_logprobs)


@_NEEDS_STORIES
def test_tuned_lens_and_translation_probe_on_cuda(stories):
    from interp.lens import TunedLens, TunedLensConfig, decode_layers
    from interp.translation import Lexicon, ProbeConfig, TranslationProbe

    toks = torch.randint(3, 512, (6, 16), generator=torch.Generator().manual_seed(1))
    toks[:, 0] = 1
    lexicon = Lexicon.bundled().subset(languages=["en", "es"])

    def run(model):
        # float32 loss matmuls on both: "auto" picks bf16 on a CPU with native bf16 and not on the simulated GPU
        lens = TunedLens.train(model, toks, TunedLensConfig(steps=3, batch_size=2, seed=0, loss_precision="float32"))
        decoded = decode_layers(model, ["Once upon a time"], lens=lens, k=2)
        report = TranslationProbe(model, lexicon, config=ProbeConfig(max_new_tokens=3, batch_size=3)).run(
            [("es", "en")], n_concepts=3, progress=False)
        return lens.weight.detach().cpu(), decoded.top_ids, report.to_frame()

    ref = run(copy.deepcopy(stories))
    with SimulatedCuda():
        got = run(_on_cuda(stories))
    torch.testing.assert_close(got[0], ref[0])
    assert torch.equal(got[1], ref[1])
    import pandas as pd

    pd.testing.assert_frame_equal(got[2], ref[2])


@_NEEDS_STORIES
def test_lorsa_init_train_evaluate_and_analyze_on_cuda(stories):
    """init_from_host drew its random projection on the CPU and multiplied it with the host's weights on the
    model's device; the analyses mixed .cpu() weights with device embeddings."""
    from interp.lorsa import Lorsa, LorsaConfig, init_from_host
    from interp.lorsa.analyze import head_loss_attribution, head_scores, ov_readout, top_contexts
    from interp.lorsa.evaluate import evaluate_lorsa
    from interp.lorsa.train import LorsaTrainConfig, train_lorsa

    toks = torch.randint(3, 512, (8, 24), generator=torch.Generator().manual_seed(0))
    toks[:, 0] = 1

    def run(model):
        cfg = LorsaConfig.from_model(model, 2, expansion=2, top_k=4)
        lorsa = init_from_host(Lorsa(cfg, seed=0).to(model.W_U.device), model, 2, seed=5)
        trained = train_lorsa(model, 2, toks, LorsaConfig.from_model(model, 2, expansion=2, top_k=4),
                              LorsaTrainConfig(batch_size=4, n_steps=2, norm_sequences=4, progress=False)).lorsa
        ev = evaluate_lorsa(model, lorsa, toks, batch_size=4, progress=False)
        tops = top_contexts(model, lorsa, toks, k=3, batch_size=4, progress=False)
        scores = head_scores(model, lorsa, toks[:4], n_random=2, half=6)
        readout = ov_readout(model, lorsa, 0, k=3)
        attribution = head_loss_attribution(model, lorsa, toks[:4], batch_size=2, progress=False)
        return (lorsa.W_V.detach().cpu(), trained.W_O.detach().cpu(), ev.summary(), tops.values, scores.to_frame(),
                readout, attribution)

    ref = run(stories)
    with SimulatedCuda():
        got = run(_on_cuda(stories))
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    assert got[2] == pytest.approx(ref[2], rel=1e-5, nan_ok=True)
    torch.testing.assert_close(got[3], ref[3])
    import pandas as pd

    pd.testing.assert_frame_equal(got[4], ref[4])
    pd.testing.assert_frame_equal(got[5], ref[5])
    torch.testing.assert_close(got[6], ref[6])


@pytest.fixture(scope="module")
def steering_setup():
    from interp.core.generation import generate
    from interp.core.tasks import Example, ExactMatchTask

    from test_steering_fixtures import make_sae, random_prompts, tiny_llama_with_tokenizer

    model = tiny_llama_with_tokenizer()
    hooks = ("blocks.0.hook_resid_post", "blocks.2.hook_resid_pre")
    saes = [make_sae(hooks[0]), make_sae(hooks[1], kind="topk", seed=1)]
    prompts = random_prompts(24, seed=2)
    first = [t.split(" ")[0] if t else "" for t in generate(model, prompts, 1).texts()]
    answers = [f if i % 2 == 0 else "zzz" for i, f in enumerate(first)]
    task = ExactMatchTask("toy", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=4,
                          match="first_word")
    return model, saes, task


@pytest.mark.parametrize("sae_device", ["cuda", "cpu"])
def test_corrsteer_on_cuda(steering_setup, sae_device):
    """Collection, steering, evaluation and SAE quality with the model on CUDA; SAEs on CUDA, or left on the
    CPU (the activations go to the SAE's device and back)."""
    from interp.steering import CorrSteerConfig, collect, run_corrsteer
    from interp.steering.sae_training import evaluate_sae

    model, saes, task = steering_setup
    splits = task.split(train=0.5, val=0.25, seed=0)
    cfg = CorrSteerConfig(batch_size=8, n_random=1, seed=0)
    ref_col = collect(model, saes, splits.train, batch_size=8, progress=False)
    ref = run_corrsteer(model, saes, splits, cfg, collection=ref_col).to_frame()
    tokens = torch.randint(3, 38, (4, 10), generator=torch.Generator().manual_seed(0))
    ref_q = evaluate_sae(model, saes[0], tokens).to_dict()
    with SimulatedCuda():
        m = copy.deepcopy(model).to("cuda")
        s = [copy.deepcopy(x).to(sae_device) for x in saes]
        col = collect(m, s, splits.train, batch_size=8, progress=False)
        got = run_corrsteer(m, s, splits, cfg, collection=col).to_frame()
        q = evaluate_sae(m, s[0], tokens).to_dict()
    for h in ref_col.hooks:
        torch.testing.assert_close(col.stats[h].correlation(), ref_col.stats[h].correlation())
    import pandas as pd

    pd.testing.assert_frame_equal(got, ref)
    assert q.pop("hook_name") == ref_q.pop("hook_name")
    assert q == pytest.approx(ref_q, rel=1e-5)


@_NEEDS_STORIES
@pytest.mark.parametrize("kind", ["tl", "hf"])
def test_grpo_with_thr_on_cuda(stories, kind):
    """A GRPO step with THR (sampling generator, prompt draws, chunked scoring, loss, optimizer) and
    rollout_thr, on CUDA, give the CPU run's numbers (the simulated generator draws what a CPU one does)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.core.tasks import Example
    from interp import load_model
    from interp.thr.grpo import GRPOConfig, GRPOTrainer, rollout_thr
    from interp.thr.tasks import VerifiableTask

    items = [Example(p, "e") for p in ("Once upon a time", "Tom had a dog", "Sue saw")]
    task = VerifiableTask("e", items, [Example("Lily ran", "e")], lambda it, c: float(c.count("e")), max_new_tokens=5)
    cfg = GRPOConfig(group_size=3, prompts_per_step=2, lr=1e-3, thr=True, thr_p=0.5, thr_exclude_self=True, seed=1)

    def make():
        if kind == "tl":
            return load_model(shared_model_dir(), device="cpu"), None  # fresh: the shared fixture has been run
        d = shared_model_dir()
        return AutoModelForCausalLM.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)

    def run(model, tok):
        # in place: this test is about devices (deep-copying a model under the simulated device is not supported)
        tr = GRPOTrainer(model, task, cfg, tokenizer=tok, in_place=True)
        rec = tr.step()
        res = rollout_thr(model, task, n_prompts=1, group_size=3, tokenizer=tok, seed=2)
        return rec, [p.detach().cpu() for p in model.parameters()], res.thr

    ref = run(*make())
    with SimulatedCuda():
        model, tok = make()
        model.to("cuda")
        got = run(model, tok)
    keys = [k for k in ref[0] if not k.startswith("time_")]
    assert {k: got[0][k] for k in keys} == pytest.approx({k: ref[0][k] for k in keys}, rel=1e-5, abs=1e-7)
    for a, b in zip(got[1], ref[1]):
        torch.testing.assert_close(a, b)
    for a, b in zip(got[2], ref[2]):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------------------- a static audit
# Functions that build tensors or generators without device=, each for a reason; any other such call fails.
HOST_SIDE = {
    ("lorsa/init.py", "init_ov_active_subspace"): "a CPU generator draws the heads (the same Lorsa on every device), moved to the Lorsa's device",
    ("lorsa/model.py", "_flush_denormals"): "probes the CPU's flush-to-zero mode; it returns at once on any other device",
    ("core/activations.py", "_buffers"): "CPU RNG shuffling the rows of a CPU token tensor (same order on every device)",
    ("core/activations.py", "__iter__"): "CPU RNG shuffling rows of a CPU token buffer",
    ("core/activations.py", "sample_tokens"): "token ids on the host; the model call moves them",
    ("core/activations.py", "text_tokens"): "token ids on the host; the model call moves them",
    ("core/tokens.py", "left_pad"): "built on the host, moved to device= at the end",
    ("core/tokens.py", "encode_prompts"): "moved to the model's input device on the next line",
    ("core/tokens.py", "stop_set"): "host lookup tables; generate() moves them to the model's device",
    ("lens/decode.py", "_check_decode_args"): "validates the caller's target ids before anything runs; not used after",
    ("lens/result.py", "to_frame"): "result tables on the host",
    ("lens/compare.py", "compare_lenses"): "host accumulators fed with .cpu() values",
    ("lens/jacobian.py", "__init__"): "module buffer (the identity); fit/load move the lens to the model's device",
    ("lens/tuned.py", "batch_order"): "CPU RNG choosing window indices of a CPU tensor (moved per batch)",
    ("lorsa/authors.py", "authors_tensors"): "tensors written to a checkpoint file (host side)",
    ("steering/selectors.py", "feature_effects"): "host feature ids and float64 score accumulators fed with .item() values",
    ("thr/trl_callback.py", "_sequence_advantages"): "advantages logged by TRL, read back on the host for the log",
    ("zoo/toy_pivot.py", "lens_windows"): "host token ids; the lens training moves each batch",
    ("lens/tuned.py", "__init__"): "module parameters; for_model/load move the lens to the model's device",
    ("lorsa/analyze.py", "to_frame"): "result tables on the host",
    ("lorsa/analyze.py", "repeated_random_tokens"): "host token ids (CPU RNG: the same probe on every device); moved by the caller",
    ("lorsa/analyze.py", "successor_probe"): "host id lists of the ordinal probe (strings decoded one id at a time); moved by the scorer",
    ("lorsa/analyze.py", "stack"): "host id lists padded into the probe's position tensors; moved by the scorer",
    ("zoo/recovery/corrsteer.py", "last_position_resid"): "host accumulator of .cpu() residuals (a zoo measurement)",
    ("zoo/recovery/lorsa.py", "planted_tokens"): "host token ids; the measurement moves each batch",
    ("lorsa/init.py", "init_from_host"): "CPU RNG for a device-independent init, moved to the host weights' device",
    ("lorsa/model.py", "__init__"): "module parameters; callers move the Lorsa with .to(device)",
    ("lorsa/model.py", "rand"): "module parameters (CPU RNG: the same init on every device)",
    ("steering/baselines.py", "random_features"): "CPU RNG choosing feature indices (Python ints)",
    ("steering/collect.py", "collect"): "statistics, labels and top examples live on the host",
    ("steering/sae_training.py", "evaluate_sae"): "host accumulators fed with .cpu() values",
    ("steering/stats.py", "update"): "labels moved to the statistics' device on the next line",
    ("steering/stats.py", "state_dict"): "host metadata for saving",
    ("thr/core.py", "group_advantages"): "rewards are a host-side [n] vector",
    ("thr/core.py", "token_hidden_reward"): "rewards are a host-side [n] vector (advantages are moved)",
    ("thr/core.py", "dominant_threshold"): "rewards are a host-side [n] vector",
    ("thr/core.py", "thr_weights"): "rewards are a host-side [n] vector",
    ("thr/grpo.py", "score_rollouts"): "rewards from the checker, host-side",
    ("thr/result.py", "overlap_top_fraction"): "result statistics on the host",
    ("translation/probe.py", "run"): "host target ids; generate_with_lens moves them to the residual's device",
    ("zoo/corpus.py", "corpus_tokens"): "host token data",
    ("zoo/training.py", "_collate"): "host batches, moved by the training loop",
    ("zoo/toy_induction.py", "copy_diagnostic"): "a CPU-only training diagnostic (the zoo trains on the CPU): host probe ids for a CPU model",
    ("zoo/training.py", "_target_mask"): "host loss masks beside the host batches of _collate",
    ("zoo/toy_mode.py", "sae_tokens"): "host token ids for SAE training (sae-lens moves each batch)",
}
_FACTORIES = {"zeros", "ones", "full", "empty", "arange", "randn", "rand", "randint", "randperm", "tensor",
              "as_tensor", "eye", "linspace", "Generator", "normal"}


def _calls_without_device():
    import ast

    from conftest import PROJECT_ROOT

    found = {}
    for path in sorted((PROJECT_ROOT / "interp").rglob("*.py")):
        rel = str(path.relative_to(PROJECT_ROOT / "interp"))
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Name) and call.func.value.id == "torch"
                        and call.func.attr in _FACTORIES
                        and not any(k.arg in ("device", None) for k in call.keywords)):  # None: **kwargs
                    found.setdefault((rel, fn.name), []).append(call.lineno)
    return found


def test_every_tensor_factory_names_a_device_or_is_host_side_by_design():
    found = _calls_without_device()
    new = {k: v for k, v in found.items() if k not in HOST_SIDE}
    assert not new, ("torch factory calls without device= (pass the model's device, or add the function to "
                     f"HOST_SIDE with the reason it is host-side): {new}")
    stale = set(HOST_SIDE) - set(found)
    assert not stale, f"HOST_SIDE lists functions that no longer build host tensors: {sorted(stale)}"
