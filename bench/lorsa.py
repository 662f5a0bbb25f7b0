"""Lorsa end to end against the authors' trainer (``llamascopium``, OpenMOSS), on identical token ids, in one run.

Setting (the authors' comparison, issue 15): stories260K layer 2, 512 rank-1 OV heads sharing 8 QK heads of
width 8, top-K 16, batches of 8 x 256 tokens, lr 1e-3 (5% warm-up, 20% cool-down), model-based init,
training tokens sampled from stories260K itself (seed 0, see ``sampled``), ``--tokens`` of them (327,680 = 160 steps by
default, so the run takes minutes; the authors' budget is 1,310,720), quality on ``--held-out`` other
sequences (seed 1).

- ours: ``interp.lorsa.train_lorsa`` at its defaults on a HookedTransformer host (``--frontend hooked``, the
  default here) or on ``load_model``'s own default, a TransformerBridge (``--frontend bridge``); the other
  front-end's activation pass is timed beside it. Activations go through the fast path of the host:
  ``interp.core.fastpath`` (TransformerLens modules with fused SDPA attention) or
  ``interp.core.bridge_fastpath`` (the bridge's modules with Hugging Face's own attention under SDPA), the
  forward stopped after layer 2's attention, host batches of 64; timed from the call to the returned,
  folded Lorsa;
- peer: the authors' own pieces in the order their ``runners.train.train_lorsa`` runs them
  (``ActivationFactory`` -> ``Initializer.initialize_sae_from_config`` -> ``Trainer.fit``), at the
  settings of their stories260K run (fixtures/lorsa-authors-stories260K-L2): top-K 16, dataset-wise
  norm, MHSA QK init, active-subspace OV init, grid-searched decoder norm, geometric-median bias, AuxK
  1/32 with heads dead after 50k silent tokens (ours too), no K annealing, fp32 (no bf16 autocast on
  CPU), clip off. Their host is their own ``TransformerLensLanguageModel``
  (their HF loader). Known pitfalls handled: their timer calls ``torch.npu`` on CPU builds (stubbed);
  ``rotary_adjacent_pairs=False`` (their default ``True`` breaks the host init for HF-layout RoPE); their
  TransformerLens backend reads only a ``text`` field and tokenises it, so ``to_activations`` is given
  our token ids instead (their own code path otherwise: pad/truncate, ``run_with_cache_until``, mask);
  ``model_batch_size`` (default 1) set to ``--peer-model-batch`` (8); data-loader workers 0 (one thread).
  Their initialisation consumes the first 10 batches of the stream (norm estimate, init, step count),
  so they train on 10 fewer batches of the same ids; tokens/s counts the ids handed in, for both.
- floor: the machine's float32 matmul rate measured in the same run; the Lorsa step's achieved FLOP/s
  (forward + backward of the dense step, causal attention counted as half the square) against it.

Times are CPU seconds of this single-threaded process (the wall clock of a minute-long run on a shared
machine swings with the other jobs; the wall-clock ratio is printed beside it), medians over ``--repeats``
interleaved runs (ours, peer, ours, peer).

Quality, one evaluator for both (``interp.lorsa.evaluate_lorsa``): held-out explained variance, fraction
of next-token loss recovered when layer 2's attention output is replaced by the reconstruction, dead heads
(never firing on the held-out tokens). Peak memory is resident-set growth during each run.

    .venv/bin/python bench/lorsa.py --threads 1
    .venv/bin/python bench/lorsa.py --quick --threads 1      # 40 steps
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import _harness as H

LAYER = 2
CTX = 256
BATCH = 8


def lorsa_step_flops(cfg, batch: int, ctx: int) -> float:
    """Forward + backward (2x forward) FLOPs of one dense Lorsa step; causal attention counted as half the square.

    The headline (model FLOPs, like MFU): the W_O decode counted dense (n_ov multiply-adds per output), the
    AuxK branch not counted at all (it is an auxiliary loss, ~1/7 of the dense decode's work even dense)."""
    t = batch * ctx
    proj = 2 * t * cfg.d_model * (2 * cfg.n_qk_heads * cfg.d_qk_head + 2 * cfg.n_ov_heads)  # Q, K, values, W_O
    attn = 2 * batch * cfg.n_qk_heads * (ctx * ctx / 2) * (cfg.d_qk_head + cfg.group_size)
    return 3 * (proj + attn)


def lorsa_step_executed_flops(cfg, batch: int, ctx: int, chunk: int, n_dead: int) -> float:
    """Multiply-add FLOPs the step really runs (matmuls and the sparse decodes; no elementwise work): Q, K and
    values dense (values: forward + dW_V, no dx), attention per query chunk over the keys up to the chunk's end
    (QK^T, P V forward; dP, dV, dQ, dK backward), the decode of the top-K codes (embedding_bag: forward, dW_O,
    d codes) and AuxK's decode, dense over the ``n_dead`` dead heads (forward, dW_O, d codes)."""
    t = batch * ctx
    qk = 2 * t * cfg.d_model * 2 * cfg.n_qk_heads * cfg.d_qk_head * 2  # forward + dW (x needs no gradient)
    values = 2 * t * cfg.d_model * cfg.n_ov_heads * 2
    seen = sum(min(s + chunk, ctx) * (min(s + chunk, ctx) - s) for s in range(0, ctx, chunk))  # query-key pairs
    attn = 2 * batch * cfg.n_qk_heads * seen * (cfg.d_qk_head + cfg.group_size) * 3
    decode = 2 * t * (cfg.top_k + n_dead) * cfg.d_model * 3
    return qk + values + attn + decode


# ----------------------------------------------------------------------------------- ours
def ours_train(model, tokens, n_steps: int, **overrides):
    from interp.lorsa import LorsaConfig, LorsaTrainConfig, train_lorsa

    cfg = LorsaConfig.from_model(model, LAYER, expansion=8, top_k=16)
    return train_lorsa(model, LAYER, tokens, cfg, LorsaTrainConfig(batch_size=BATCH, lr=1e-3, n_steps=n_steps,
                                                                    progress=False, **overrides))


def parse_variant(text: str) -> dict:
    """``'ov_init=active_subspace,aux_k=512,grad_clip=None,decoder_scales=0.5;1;2'`` -> LorsaTrainConfig overrides
    (None, booleans, ints, floats, ``;``-separated tuples, else the string: a choice)."""
    def value(v: str):
        if v.lower() == "none":
            return None
        if v in ("True", "False"):
            return v == "True"
        if ";" in v:
            return tuple(float(x) for x in v.split(";"))
        try:
            return int(v) if v.lstrip("-").isdigit() else float(v)
        except ValueError:
            return v
    return {k: value(v) for k, v in (kv.split("=", 1) for kv in text.split(",") if kv)}


def model_folder(given: str) -> str:
    return given if Path(given).is_dir() else os.environ.get("INTERP_STORIES260K", "/work/shared/models/stories260K")


FOLDER: list[str] = []


def hf_activation_time(folder: str, tokens) -> float:
    """Seconds for transformers' own Llama (SDPA) to produce layer 2's attention input and output on ``tokens``,
    stopped right after that attention (a reference for the fast path; 64 sequences a call, as ours)."""
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop

    handle = hf.model.layers[LAYER].self_attn.register_forward_hook(stop)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, tokens.shape[0], 64):
            try:
                hf(tokens[i : i + 64])
            except Stop:
                pass
    handle.remove()
    return time.perf_counter() - t0


def ours_parts(model, tokens, rate: float, repeats: int, other=None) -> dict:
    """Where our time goes: the activation pass alone, and one training step alone (and its FLOP rate
    against the matmul rate measured interleaved with it)."""
    import torch
    from interp.core.activations import ActivationStream
    from interp.lorsa import Lorsa, LorsaConfig
    from interp.lorsa.config import hook_names
    from interp.lorsa.model import AUTO_QUERY_CHUNK
    from interp.lorsa.train import lorsa_step

    hooks = list(hook_names(model, LAYER))
    t0 = time.process_time()  # CPU seconds, like the end-to-end times it is the floor of
    blocks = [b for b in ActivationStream(model, tokens, hooks, batch_size=BATCH, buffer_sequences=256)]
    t_act = time.process_time() - t0
    t0 = time.perf_counter()
    for _ in ActivationStream(model, tokens[:256], hooks, batch_size=BATCH, buffer_sequences=256, fused=False):
        pass
    t_act_tl = (time.perf_counter() - t0) * tokens.shape[0] / min(256, tokens.shape[0])

    t_act_hf = hf_activation_time(FOLDER[0], tokens[:256]) * tokens.shape[0] / min(256, tokens.shape[0])
    t_act_other = None
    if other is not None:  # the other front-end's activation pass (CPU seconds, scaled from 256 sequences)
        t0 = time.process_time()
        for _ in ActivationStream(other, tokens[:256], hooks, batch_size=BATCH, buffer_sequences=256):
            pass
        t_act_other = (time.process_time() - t0) * tokens.shape[0] / min(256, tokens.shape[0])

    cfg = LorsaConfig.from_model(model, LAYER, expansion=8, top_k=16)
    lorsa = Lorsa(cfg, seed=0)
    opt = torch.optim.Adam(lorsa.parameters(), lr=1e-3, foreach=True)  # as train_lorsa makes it
    b = blocks[0]
    x, y, mask = b[hooks[0]], b[hooks[1]], b.mask
    dead = torch.zeros(cfg.n_ov_heads, dtype=torch.bool)
    dead[:64] = True  # the AuxK branch runs, as it does once heads die
    n_tok = float(mask.sum())

    def step():  # train_lorsa's own step function (forward, backward, clipping, Adam), at its defaults
        lorsa_step(lorsa, opt, x, y, mask, cfg.top_k, dead, 2 * cfg.top_k, aux_coef=1 / 32, grad_clip=1.0,
                   n_tokens=n_tok)

    a_, b_ = torch.randn(512, 512), torch.randn(512, 512)

    def matmuls():  # the floor, timed between the steps (A B A B) so both see the same load
        for _ in range(16):
            a_ @ b_

    times = H.interleave({"step": step, "matmul": matmuls}, repeats, clock=time.process_time)
    t_step = H.median(times["step"])
    rate = 16 * 2 * 512**3 / H.median(times["matmul"])
    flops = lorsa_step_flops(cfg, BATCH, CTX)
    chunk = cfg.query_chunk_size or AUTO_QUERY_CHUNK
    executed = lorsa_step_executed_flops(cfg, BATCH, CTX, chunk if cfg.query_chunk_size != 0 else CTX, int(dead.sum()))
    return {"executed": executed, "executed_rate": executed / t_step, "act_s": t_act, "act_tl_s": t_act_tl, "act_other_s": t_act_other, "act_hf_s": t_act_hf, "step_s": t_step, "step_flops": flops / t_step,
            "rate": rate,
            "step_frac": flops / t_step / rate, "n_tokens": tokens.numel()}


# ----------------------------------------------------------------------------------- peer
def _quiet_peer():
    """Their timer synchronises ``torch.npu`` when CUDA is absent (AttributeError on CPU builds); logs to ERROR."""
    import torch

    if not hasattr(torch, "npu"):
        class _NoNPU:
            @staticmethod
            def is_available() -> bool:
                return False

        torch.npu = _NoNPU()  # type: ignore[attr-defined]
    for name in ("llamascopium", "llamascopium.trainer", "llamascopium.initializer"):
        logging.getLogger(name).setLevel(logging.ERROR)


def peer_model(folder: str):
    """Their TransformerLens host, loaded by their own loader, reading token ids instead of text."""
    import torch
    from llamascopium.backend.language_model import LanguageModelConfig, TransformerLensLanguageModel
    from llamascopium.utils.misc import pad_and_truncate_tokens

    class TokenIdsLM(TransformerLensLanguageModel):
        def to_activations(self, raw, hook_points, n_context=None):
            # Their own to_activations, with the tokenizer call replaced by the ids we hand in.
            tokens = torch.tensor(raw["tokens"], dtype=torch.long, device=self.lm_cfg.device)
            if n_context is not None:
                tokens = pad_and_truncate_tokens(tokens, n_context, pad_token_id=self.pad_token_id)
            tokens = tokens.contiguous()
            _, acts = self.run_with_cache_until(tokens, names_filter=hook_points, until=hook_points[-1])
            mask = torch.logical_and(tokens.ne(self.pad_token_id), tokens.ne(self.bos_token_id)).int()
            return {h: acts[h] for h in hook_points} | {"tokens": tokens, "mask": mask, "attention_mask": mask}

    cfg = LanguageModelConfig(model_name=folder, model_from_pretrained_path=folder, local_files_only=True,
                              device="cpu", dtype=torch.float32, max_length=CTX, backend="transformer_lens",
                              bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with contextlib.redirect_stdout(io.StringIO()):
        return TokenIdsLM(cfg)


def peer_train(lm, tokens, workdir: str, model_batch: int):
    """The body of their runners.train.train_lorsa, in process, on our token ids."""
    import torch
    from datasets import Dataset
    from llamascopium.activation.factory import (ActivationFactory, ActivationFactoryConfig,
                                                 ActivationFactoryDatasetSource, ActivationFactoryTarget)
    from llamascopium.initializer import Initializer, InitializerConfig
    from llamascopium.models.lorsa import LorsaConfig as PeerLorsaConfig
    from llamascopium.trainer import Trainer, TrainerConfig

    hooks = [f"blocks.{LAYER}.ln1.hook_normalized", f"blocks.{LAYER}.hook_attn_out"]
    data = Dataset.from_dict({"text": [""] * tokens.shape[0], "tokens": tokens.tolist()})
    factory = ActivationFactory(ActivationFactoryConfig(
        sources=[ActivationFactoryDatasetSource(name="ids")], target=ActivationFactoryTarget.ACTIVATIONS_2D,
        hook_points=hooks, batch_size=BATCH, context_size=CTX, model_batch_size=model_batch, num_workers=0))
    stream = factory.process(model=lm, model_name="stories260K", datasets={"ids": (data, None)})
    sae_cfg = PeerLorsaConfig(
        d_model=64, expansion_factor=8, act_fn="topk", top_k=16, norm_activation="dataset-wise",
        sparsity_include_decoder_norm=True, use_decoder_bias=True, hook_point_in=hooks[0], hook_point_out=hooks[1],
        n_qk_heads=8, d_qk_head=8, positional_embedding_type="rotary", rotary_dim=8, rotary_base=10000,
        rotary_adjacent_pairs=False, n_ctx=CTX, device="cpu", dtype=torch.float32)
    init = Initializer(InitializerConfig(
        init_encoder_with_decoder_transpose=False,  # not defined for a Lorsa (their assertion)
        initialize_lorsa_with_mhsa=True, model_layer=LAYER, initialize_W_D_with_active_subspace=True,
        grid_search_init_norm=True, bias_init_method="geometric_median"))
    sae = init.initialize_sae_from_config(sae_cfg, activation_stream=stream, model=lm)
    trainer = Trainer(TrainerConfig(
        lr=1e-3, lr_scheduler_name="constantwithwarmup", lr_warm_up_steps=0.05, lr_cool_down_steps=0.2,
        total_training_tokens=tokens.numel(), auxk_coefficient=1 / 32, amp_dtype=torch.float32,
        k_warmup_steps=0, initial_k=16,  # no K annealing (ours: k_anneal_frac=0)
        dead_threshold=50_000,  # AuxK's dead heads: silent for 50k tokens, as ours (their default 10M never fires here)
        l1_coefficient=None, log_frequency=10**9, eval_frequency=10**9, n_checkpoints=0,
        exp_result_path=workdir))
    trainer.fit(sae=sae, activation_stream=stream)
    return sae


def peer_lorsa(sae, ours_cfg):
    """The authors' trained Lorsa seen through the few names ``evaluate_lorsa`` uses, on raw activations:
    their own normalisation in, their own encode/decode, their scale out. A ``Lorsa`` subclass, because
    ``evaluate_lorsa`` validates its argument's type; none of our weights or forward are used."""
    import torch
    from interp.lorsa import Lorsa

    class PeerLorsa(_PeerLorsaMethods, Lorsa):
        def __init__(self):
            torch.nn.Module.__init__(self)  # not Lorsa.__init__: no parameters of ours
            self.sae, self.cfg = sae, ours_cfg

    return PeerLorsa()


class _PeerLorsaMethods:
    def check_host(self, model) -> None:
        pass

    def to(self, device):
        return self

    def encode(self, x):
        import torch

        with torch.no_grad():
            xn = x * self.sae.compute_norm_factor(x, self.sae.cfg.hook_point_in)
            return self.sae.encode(xn)

    def decode(self, z):
        import torch

        with torch.no_grad():
            y_n = self.sae.decode(z)
            return y_n / self.sae.compute_norm_factor(y_n, self.sae.cfg.hook_point_out)


# ----------------------------------------------------------------------------------- main
def sampled(model: str, n: int, seed: int):
    """``n`` sequences of 256 tokens sampled from stories260K (BOS first, temperature 1, EOS an ordinary token,
    seed ``seed``) through interp's generation loop on the Hugging Face model (SDPA; ~5x faster here than
    the HookedTransformer), cached in out/bench-cache (safetensors) so a rerun skips the sampling."""
    import torch
    from interp.core.generation import generate
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    path = H.ROOT / "out" / "bench-cache" / f"stories260K-sampled-{n}x{CTX}-seed{seed}.safetensors"
    if path.is_file():
        return load_file(path)["tokens"]
    hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    bos = torch.full((n, 1), 1, dtype=torch.long)
    toks = torch.cat([bos, generate(hf, bos, CTX - 1, temperature=1.0, seed=seed, stop_at_eos=False).tokens.cpu()], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"tokens": toks.contiguous()}, path)
    return toks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=327_680, help="training tokens (multiple of 8 x 256)")
    p.add_argument("--held-out", type=int, default=64, help="held-out sequences of 256 tokens")
    p.add_argument("--repeats", type=int, default=1, help="end-to-end runs of each (interleaved)")
    p.add_argument("--peer-model-batch", type=int, default=8)
    p.add_argument("--model", default=str(H.ROOT.parent.parent / "shared" / "models" / "stories260K"))
    p.add_argument("--frontend", default="hooked", choices=("hooked", "bridge"),
                   help="ours' host: a HookedTransformer (interp.core.fastpath) or load_model's default TransformerBridge "
                        "(interp.core.bridge_fastpath); the other one's activation pass is timed too")
    p.add_argument("--variant", default="", help="also train ours with these LorsaTrainConfig overrides, in the same "
                   "run (e.g. 'aux_k=512'), and print its quality and time beside the default's")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    H.pin_threads(a.threads)
    warnings.filterwarnings("ignore")
    from interp.core.models import load_model
    from interp.lorsa import LorsaConfig, evaluate_lorsa

    folder = model_folder(a.model)
    FOLDER.append(folder)
    if a.quick:
        a.tokens, a.held_out = 40 * BATCH * CTX, 16
    n_seq = a.tokens // CTX
    n_steps = n_seq // BATCH
    H.header(f"Lorsa end to end vs llamascopium: stories260K L{LAYER}, 512 OV / 8 QK heads, K 16, "
             f"batch {BATCH}x{CTX}, lr 1e-3, {n_seq * CTX:,} training tokens ({n_steps} steps), "
             f"{a.held_out} held-out sequences", a.threads)
    model = load_model(folder, device="cpu", frontend=a.frontend)
    other = load_model(folder, device="cpu", frontend="bridge" if a.frontend == "hooked" else "hooked")
    t0 = time.perf_counter()
    train = sampled(folder, n_seq, seed=0)
    held = sampled(folder, a.held_out, seed=1)
    print(f"# sampled {train.shape[0]} + {held.shape[0]} sequences in {time.perf_counter() - t0:.1f} s")
    rate = H.matmul_rate()
    print(f"# matmul rate at the start: {rate / 1e9:.1f} GFLOP/s (float32 512x512; the step's floor is re-measured "
          "interleaved with the step)")

    mod, why = H.peer("llamascopium")
    runs = {"ours": lambda: ours_train(model, train, n_steps)}
    variant = parse_variant(a.variant)
    if variant:
        runs["variant"] = lambda: ours_train(model, train, n_steps, **variant)
    peer_sae: dict = {}
    if mod is not None:
        _quiet_peer()
        lm = peer_model(folder)
        work = tempfile.mkdtemp(prefix="lorsa-peer-")

        def peer_run():
            with contextlib.redirect_stderr(io.StringIO()):
                peer_sae["sae"] = peer_train(lm, train, work, a.peer_model_batch)
        runs["peer"] = peer_run

    results: dict[str, list[dict]] = {k: [] for k in runs}
    ours_result = {}
    for _ in range(a.repeats):
        for name, fn in runs.items():
            out = {}

            def call(fn=fn, out=out):
                c0 = time.process_time()
                out["r"] = fn()
                out["cpu"] = time.process_time() - c0
            m = H.measured_call(call)
            m["cpu"] = out["cpu"]
            results[name].append(m)
            if name in ("ours", "variant"):
                ours_result[name] = out["r"]
            print(f"# {name}: {m['seconds']:.1f} s wall, {m['cpu']:.1f} s CPU, {train.numel() / m['cpu']:,.0f} tokens per CPU s, "
                  f"peak +{m['peak_mib']:.0f} MiB ({H.load_average()})", flush=True)

    parts = ours_parts(model, train, rate, repeats=5 if not a.quick else 2, other=other)
    print(f"# ours, parts: activations {parts['n_tokens'] / parts['act_s']:,.0f} tokens/s through the fast path "
          f"(TransformerLens run_with_cache: {parts['n_tokens'] / parts['act_tl_s']:,.0f}; transformers' Llama with "
          f"SDPA stopped after the attention: {parts['n_tokens'] / parts['act_hf_s']:,.0f}); one step "
          f"{parts['step_s'] * 1e3:.1f} ms = {BATCH * CTX / parts['step_s']:,.0f} tokens/s, "
          f"{parts['step_flops'] / 1e9:.1f} GFLOP/s; host front-end {a.frontend}, the other front-end's activation pass "
          f"{parts['n_tokens'] / parts['act_other_s']:,.0f} tokens per CPU s")

    cfg = LorsaConfig.from_model(model, LAYER, expansion=8, top_k=16)
    cfg.hook_in, cfg.hook_out, cfg.layer = f"blocks.{LAYER}.ln1.hook_normalized", f"blocks.{LAYER}.hook_attn_out", LAYER
    evals = {"ours": evaluate_lorsa(model, ours_result["ours"].lorsa, held, progress=False)}
    if "variant" in ours_result:
        evals["variant"] = evaluate_lorsa(model, ours_result["variant"].lorsa, held, progress=False)
    if "sae" in peer_sae:
        evals["peer"] = evaluate_lorsa(model, peer_lorsa(peer_sae["sae"], cfg), held, progress=False)
    for name, ev in evals.items():
        print(f"# {name}{' (' + a.variant + ')' if name == 'variant' else ''} quality: EV {ev.explained_variance:.4f}, loss recovered {ev.loss_recovered:.2%}, "
              f"dead heads {ev.dead_heads}, dense {ev.dense_heads}, L0 {ev.l0:.1f}, clean CE {ev.clean_loss:.3f}")

    # CPU seconds of this (single-threaded) process: on a shared machine the wall clock of a minute-long run
    # swings with the other jobs' load, the work done does not; the wall-clock ratio is printed beside it.
    t_ours = H.median([m["cpu"] for m in results["ours"]])
    t_peer = H.median([m["cpu"] for m in results["peer"]]) if results.get("peer") else None
    w_ours = H.median([m["seconds"] for m in results["ours"]])
    w_peer = H.median([m["seconds"] for m in results["peer"]]) if results.get("peer") else None
    q = evals["ours"]
    extra = (f"CPU seconds; {train.numel() / t_ours:,.0f} tokens per CPU s"
             + (f" vs {train.numel() / t_peer:,.0f}" if t_peer else "")
             + f"; wall {w_ours:.1f} s" + (f" vs {w_peer:.1f} s = {w_peer / w_ours:.2f}x" if w_peer else "")
             + f"; EV {q.explained_variance:.3f}"
             + (f" vs {evals['peer'].explained_variance:.3f}" if "peer" in evals else "")
             + f", loss recovered {q.loss_recovered:.1%}"
             + (f" vs {evals['peer'].loss_recovered:.1%}" if "peer" in evals else "")
             + f", dead {q.dead_heads}" + (f" vs {evals['peer'].dead_heads}" if "peer" in evals else "")
             + f"; peak +{results['ours'][0]['peak_mib']:.0f} MiB"
             + (f" vs +{results['peer'][0]['peak_mib']:.0f}" if t_peer else "")
             + f"; {n_seq * CTX:,} tokens; host {a.frontend}; {H.load_average()}")
    H.report(H.ratio_line("lorsa end-to-end", t_ours, peer_name="llamascopium", peer=t_peer, peer_missing=why,
                          floor_name="activation pass alone", floor=parts["act_s"], extra=extra))
    rate = parts["rate"]
    step_floor = lorsa_step_flops(cfg, BATCH, CTX) / rate
    H.report(H.ratio_line("lorsa step", parts["step_s"], peer_name="", no_peer="end-to-end line above",
                          floor_name="matmul rate", floor=step_floor,
                          extra=f"step at {parts['step_frac']:.1%} of the matmul rate ({parts['step_flops'] / 1e9:.1f} "
                                f"of {rate / 1e9:.1f} GFLOP/s, dense-equivalent model FLOPs, AuxK not counted); "
                                f"FLOPs actually executed (sparse top-K decode, AuxK's decode over the dead heads, attention per query chunk): "
                                f"{parts['executed'] / 1e9:.2f} vs {step_floor * rate / 1e9:.2f} GFLOP a step, "
                                f"{parts['executed_rate'] / 1e9:.1f} GFLOP/s = {parts['executed_rate'] / rate:.1%} of the "
                                f"matmul rate; {H.load_average()}"))


if __name__ == "__main__":
    main()
