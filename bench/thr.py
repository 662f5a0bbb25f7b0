"""THR overhead: ``interp.thr.token_hidden_reward`` against one forward pass of the policy, and against the
direct pairwise form it must equal, measured in one run.

Shapes (defaults): one GRPO group of G=8 responses of T=256 generated tokens (2,048 tokens), half of them
correct (the heaviest M), random hidden states and logits, for a policy of TinyLlama-1.1B's shape: d=2048,
V=32,000, 22 layers, 32 query / 4 key-value heads, gated SiLU MLP of 5,632, RMS norm, RoPE.

- ours: THR with ``vocab="group"`` (the ids generated in the group; q still from the full-vocabulary
  log-sum-exp) and ``vocab="full"`` (exact), and exact with ``exclude_self=True`` (each correct token's own
  response left out of M);
- vs direct form: sum_{i correct, k'} <g_i,k', g_j,k> <h_i,k', h_j,k> over every token pair (Gram matrices);
  timed in float32; THR must agree with it (computed once in float64) to 1e-5 relative
  (max |difference| / max |THR|), checked here;
- vs floor: one forward pass of the policy over the same 2,048 tokens (a [G, T] batch), which GRPO already
  runs at least three times a step (old policy, policy forward and backward). A 22-layer, 1.1B-parameter
  model does not fit beside the other jobs on this machine, so the pass is timed part by part at full width
  and summed: the embedding, one decoder block (seeded random weights; every block costs the same) times
  the number of layers, the final norm and the unembedding. ``--layers`` changes the depth.

- vs TRL's GRPO step (the peer, when ``trl`` is installed): ``trl.GRPOTrainer.training_step`` on the same batch
  shape (G responses of T tokens after a P-token prompt, half of them rewarded), for a Hugging Face Llama of the
  same width. That is TRL's own per-token log-probabilities and entropies through its fused LM head, its loss
  (``loss_type="dapo"``, the default; no reference model at beta=0), and the backward pass. Generation and
  reward scoring are left out (``_generate_and_score_completions`` returns the prepared batch: a random-weight
  policy has nothing to generate that matters, and generation only makes the step longer), and so is the
  optimizer step (its Adam state for 22 layers does not fit beside the other jobs). The step is measured at
  ``--trl-layers`` depths (default 1 and 3) and extrapolated linearly to ``--layers`` (each layer costs the
  same); both measured times are printed too. THR's added time is the THR computation itself; inside TRL the
  adapter (``interp.thr.trl_adapter``) also runs one no-grad forward of the policy for the hidden states (TRL
  does not keep them), about one floor more.

Timings are medians of interleaved repeats (THR group, THR full, direct, block, TRL steps, ...), in CPU seconds
of this single-threaded process (``time.process_time``: on a shared machine the other jobs stretch the wall
clock, not the work; the TRL per-layer cost is a difference of two times and needs that). The aims
(issue 15): THR group <= 5% and THR full <= 15% of the forward pass, at d >= 1024 and V >= 32k.

    .venv/bin/python bench/thr.py --threads 1
    .venv/bin/python bench/thr.py --quick --threads 1        # small shapes, seconds
"""

from __future__ import annotations

import argparse
import time

import _harness as H


def make_group(G: int, T: int, d: int, V: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    Hs = [torch.randn(T, d, generator=g) / d**0.5 for _ in range(G)]
    L = [torch.randn(T, V, generator=g) * 2 for _ in range(G)]
    Y = [torch.randint(0, V, (T,), generator=g) for _ in range(G)]
    r = torch.tensor([float(i % 2) for i in range(G)])
    return Hs, L, Y, r


def direct_pairwise(Hs, L, Y, r, vocab: str, dtype=None, exclude_self: bool = False):
    """The direct form: Gram matrices of prediction errors and hidden states over all token pairs (float32
    when timed; float64 once as the reference THR must agree with)."""
    import torch
    from interp.thr import group_advantages

    dtype = dtype or torch.float32
    with torch.no_grad():
        adv = group_advantages(r).to(dtype)
        ids = torch.unique(torch.cat(Y)) if vocab == "group" else None
        h = torch.cat(Hs).to(dtype)
        E = -torch.softmax(torch.cat(L).to(dtype), -1)
        E[torch.arange(len(E)), torch.cat(Y)] += 1
        if ids is not None:
            E = E[:, ids]
        owner = torch.cat([torch.full((len(y),), i) for i, y in enumerate(Y)])
        corr = adv[owner] > 0
        hh = h @ h[corr].T
        if exclude_self:  # a token's own response leaves M
            hh.masked_fill_(owner[:, None] == owner[corr][None, :], 0.0)
        s = ((E @ E[corr].T) * hh).sum(1) * adv[owner]
        return list(s.float().split([len(y) for y in Y]))


def forward_parts(d: int, V: int, n_heads: int, n_kv: int, d_mlp: int, G: int, T: int):
    """Callables for the parts of one forward pass at full width: embed, one block, final norm + unembedding."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=d, d_head=d // n_heads, n_heads=n_heads, n_key_value_heads=n_kv,
                                  d_mlp=d_mlp, d_vocab=V, n_ctx=max(T, 8), act_fn="silu", normalization_type="RMS",
                                  positional_embedding_type="rotary", rotary_dim=d // n_heads, gated_mlp=True, seed=0)
    model = HookedTransformer(cfg).eval()
    tokens = torch.randint(0, V, (G, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        resid = model.embed(tokens)

    def embed():
        with torch.no_grad():
            model.embed(tokens)

    def block():
        with torch.no_grad():
            model.blocks[0](resid)

    def head():
        with torch.no_grad():
            model.unembed(model.ln_final(resid))

    n_params = sum(p.numel() for p in model.blocks[0].parameters())
    return {"embed": embed, "block": block, "head": head}, n_params


def trl_step(G: int, T: int, P: int, d: int, V: int, n_heads: int, n_kv: int, d_mlp: int, layers: int, seed: int = 0):
    """One of TRL's GRPO training steps (``GRPOTrainer.training_step``: TRL's fused log-probabilities and entropy,
    its loss and the backward pass) on a fixed batch of G responses of T tokens, for a random-weight Llama of
    the given shape; generation is replaced by the batch itself (see the module docstring)."""
    import os
    import tempfile

    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from interp.app.paths import shared_model_dir

    os.environ.setdefault("WANDB_DISABLED", "true")
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=d, intermediate_size=d_mlp, num_hidden_layers=layers, num_attention_heads=n_heads,
                      num_key_value_heads=n_kv, vocab_size=V, max_position_embeddings=P + T + 8,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    tok = AutoTokenizer.from_pretrained(shared_model_dir())  # any tokenizer: the batch is token ids already
    args = trl.GRPOConfig(output_dir=tempfile.mkdtemp(prefix="thr-bench-trl-"), per_device_train_batch_size=G,
                          num_generations=G, max_completion_length=T, max_steps=1, report_to=[], use_cpu=True,
                          bf16=False, save_strategy="no", seed=seed, logging_steps=1)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                              args=args, train_dataset=Dataset.from_dict({"prompt": ["Once upon a time"] * G}),
                              processing_class=tok)
    g = torch.Generator().manual_seed(seed + 1)
    r = torch.tensor([float(i % 2) for i in range(G)])
    batch = {"prompt_ids": torch.randint(0, V, (G, P), generator=g), "prompt_mask": torch.ones(G, P, dtype=torch.long),
             "completion_ids": torch.randint(0, V, (G, T), generator=g),
             "completion_mask": torch.ones(G, T, dtype=torch.long),
             "advantages": (r - r.mean()) / r.std(unbiased=False), "num_items_in_batch": torch.tensor(float(G * T))}
    trainer._generate_and_score_completions = lambda inputs: dict(batch)  # the batch instead of sampling
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps  # set by Trainer.train's loop
    trainer.model.train()
    prompts = [{"prompt": "Once upon a time"}] * G

    def step():
        trainer.model.zero_grad(set_to_none=True)
        trainer._buffered_inputs = None  # "generate" (take the batch) every step, as with num_iterations=1
        trainer.training_step(trainer.model, prompts, None)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--T", type=int, default=256)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--V", type=int, default=32000)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--d-mlp", type=int, default=5632)
    ap.add_argument("--prompt", type=int, default=32, help="prompt tokens before each response (TRL's step)")
    ap.add_argument("--trl-layers", default="1,3", help="depths TRL's step is measured at ('' skips TRL)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.G, a.T, a.d, a.V, a.heads, a.kv_heads, a.d_mlp, a.repeats, a.prompt = 4, 64, 256, 4000, 4, 2, 704, 2, 8
    H.pin_threads(a.threads)
    import torch
    from interp.thr import token_hidden_reward

    H.header(f"THR vs one forward pass: G={a.G} T={a.T} ({a.G * a.T} tokens), d={a.d}, V={a.V}, policy of "
             f"{a.layers} layers ({a.heads}/{a.kv_heads} heads, gated MLP {a.d_mlp})", a.threads)
    Hs, L, Y, r = make_group(a.G, a.T, a.d, a.V)
    errs = {}
    variants = {"group": ("group", False), "full": ("full", False), "full exclude_self": ("full", True)}
    for name, (vocab, xself) in variants.items():
        ours = token_hidden_reward(Hs, L, Y, r, vocab=vocab, exclude_self=xself)
        ref = direct_pairwise(Hs, L, Y, r, vocab, torch.float64, exclude_self=xself)
        scale = max(float(x.abs().max()) for x in ref)
        errs[name] = max(float((x - y).abs().max()) for x, y in zip(ours, ref)) / scale
        print(f"# vocab={name}: max |THR - direct| / max |direct| = {errs[name]:.2e} (aim <= 1e-5)")
    parts, block_params = forward_parts(a.d, a.V, a.heads, a.kv_heads, a.d_mlp, a.G, a.T)
    fns = {"thr_group": lambda: token_hidden_reward(Hs, L, Y, r, vocab="group"),
           "thr_full": lambda: token_hidden_reward(Hs, L, Y, r, vocab="full"),
           "direct_group": lambda: direct_pairwise(Hs, L, Y, r, "group"),
           "direct_full": lambda: direct_pairwise(Hs, L, Y, r, "full"),
           "thr_full exclude_self": lambda: token_hidden_reward(Hs, L, Y, r, vocab="full", exclude_self=True),
           "direct_full exclude_self": lambda: direct_pairwise(Hs, L, Y, r, "full", exclude_self=True),
           **parts}
    trl_mod, trl_why = H.peer("trl")
    depths = [int(x) for x in a.trl_layers.split(",") if x.strip()]
    if trl_mod is not None and len(depths) >= 2:
        for n_layers in depths:
            fns[f"trl_L{n_layers}"] = trl_step(a.G, a.T, a.prompt, a.d, a.V, a.heads, a.kv_heads, a.d_mlp, n_layers)
    elif trl_mod is not None:
        trl_why = "skipped (--trl-layers needs two depths)"
    # CPU seconds of this single-threaded process: the shared machine's load stretches the wall clock of a
    # minutes-long run unevenly (the TRL per-layer cost is a difference of two such times), not the work done
    t = {k: H.median(v) for k, v in H.interleave(fns, a.repeats, clock=time.process_time).items()}
    fwd = t["embed"] + a.layers * t["block"] + t["head"]
    n_params = a.layers * block_params + 2 * a.V * a.d
    print(f"# forward pass ({n_params / 1e9:.2f}B params, {a.G * a.T} tokens): embed {H.fmt_s(t['embed'])} + "
          f"{a.layers} x block {H.fmt_s(t['block'])} + norm/unembed {H.fmt_s(t['head'])} = {H.fmt_s(fwd)}")
    trl_full, trl_depth = None, 0
    if any(k.startswith("trl_L") for k in t):
        (l0, l1) = depths[0], depths[-1]
        per_layer = (t[f"trl_L{l1}"] - t[f"trl_L{l0}"]) / (l1 - l0)
        # a difference lost in the load's noise cannot be extrapolated: fall back to the deepest measured step
        trl_full = t[f"trl_L{l0}"] + (a.layers - l0) * per_layer if per_layer > 0 else None
        print(f"# TRL {trl_mod.__version__} GRPOTrainer.training_step (fused log-probs + entropy, dapo loss, backward; "
              f"no generation, no optimizer step), {a.G} x ({a.prompt} + {a.T}) tokens: "
              + ", ".join(f"{n} layer(s) {H.fmt_s(t[f'trl_L{n}'])}" for n in depths)
              + (f" -> {H.fmt_s(per_layer)} per layer -> {a.layers} layers {H.fmt_s(trl_full)} (linear)" if trl_full
                 else f" -> no positive per-layer cost to extrapolate (noise); the lines use the {l1}-layer step"))
        trl_depth = a.layers if trl_full else l1
        trl_full = trl_full or t[f"trl_L{l1}"]
    for vocab, aim in (("group", 0.05), ("full", 0.15), ("full exclude_self", 0.15)):
        ours = t[f"thr_{vocab}"]
        H.report(H.ratio_line(
            f"thr vocab={vocab}", ours, peer_name="direct pairwise form", peer=t[f"direct_{vocab}"], floor_name="one forward pass",
            floor=fwd, extra=f"THR = {ours / fwd:.1%} of the forward (aim <= {aim:.0%}); agrees to {errs[vocab]:.1e} "
                             f"relative; d={a.d}, V={a.V}, {a.layers} layers; {H.load_average()}"))
        if trl_full is not None:
            H.report(H.ratio_line(
                f"thr vocab={vocab} added to TRL's GRPO step", ours,
                peer_name=f"TRL GRPOTrainer.training_step at {trl_depth} layers", peer=trl_full,
                floor_name="one forward pass", floor=fwd,
                extra=f"THR adds {ours / trl_full:.1%} to TRL's step ({ours / t[f'trl_L{depths[-1]}']:.1%} of the "
                      f"measured {depths[-1]}-layer step {H.fmt_s(t[f'trl_L{depths[-1]}'])}); {H.load_average()}"))
        else:
            H.report(H.ratio_line(f"thr vocab={vocab} added to TRL's GRPO step", ours, peer_name="TRL GRPO step",
                                  peer_missing=trl_why, floor_name="one forward pass", floor=fwd,
                                  extra=H.load_average()))


if __name__ == "__main__":
    main()
