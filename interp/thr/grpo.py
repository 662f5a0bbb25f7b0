"""A compact GRPO trainer with THR reweighting, for TransformerLens and Hugging Face causal LMs.

Per step: sample G responses for each of a batch of prompts, score them with a verifiable reward,
run the old policy once (the unembedding's input; log-probabilities, entropies and THR go through the
head in vocabulary chunks, so no ``[n, P+R, V]`` logits exist), compute THR and its weights (no
gradient), then take clipped-surrogate steps with token-level advantages w_{j,k} * A_j, whose
log-probabilities are chunked the same way with gradients (:mod:`interp.thr.logprobs`).
Implements GRPO (Shao et al. 2024) with the aggregations of Dr.GRPO (Liu et al. 2025) and DAPO
(Yu et al. 2025), and THR steering (Deng et al., arXiv 2510.03669).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from interp.core.checkpoint import (CheckpointError, CheckpointMismatchError, check_data_fingerprint,
                                    check_optimizer_state, config_differences, data_fingerprint, load_module,
                                    load_optimizer_state, optimizer_state, read_checkpoint, restore_rng_state,
                                    rng_state, write_checkpoint)
from interp.core.generation import make_generator
from interp.core.models import copy_model
from interp.core.validate import Check
from interp.thr.core import THRInputError, Vocab, group_advantages, thr_weights, token_hidden_reward
from interp.thr.logprobs import DEFAULT_VOCAB_CHUNK, output_head, token_logprobs
from interp.thr.policy import Policy, Rollout, as_policy
from interp.thr.result import GRPOLog, THRResult, thr_statistics
from interp.thr.training_log import THRTrainingLog
from interp.core.tasks import Example
from interp.thr.tasks import VerifiableTask

__all__ = ["LossType", "GRPOConfig", "GRPOTrainer", "ScoredBatch", "score_rollouts", "rollout_thr", "DEFAULT_LR"]

DEFAULT_LR = 2e-5
"""GRPOConfig's default learning rate: one that no bundled model collapses at (measured, see the README's
THR section). toy-lm's greedy arith accuracy falls from 0.855 to 0.00 within 10 steps at 1e-3 (the old
default) and at 5e-4; at 2e-5 it holds. A model's own measured rate is on its card:
``interp.zoo.suggested_grpo_lr(model)``."""

_LR_FIX = ("GRPO rates are small: the default is 2e-5; interp.zoo.suggested_grpo_lr(model) gives the one measured "
           "for a bundled model (sweep 1e-5..1e-3 for others with python -m interp.app.thr_experiment --lr).")

LossType = Literal["grpo", "dr_grpo", "dapo"]
"""Token aggregation of the loss.

- ``"grpo"``: mean over each response's tokens, then over responses (advantages / std).
- ``"dr_grpo"``: sum over tokens / (responses * max_new_tokens), advantages not divided by std.
- ``"dapo"``: sum over all tokens / number of tokens (token-level mean), with clip-higher via
  ``clip_eps_high``.
"""


@dataclass
class GRPOConfig:
    """Every knob of a run. THR is off unless ``thr=True``; ``log_thr`` computes the statistics
    (density, mean THR of correct/incorrect responses, entropy of dominant tokens) either way."""

    group_size: int = 8
    prompts_per_step: int = 16
    max_new_tokens: int | None = None      # None: the task's own
    temperature: float = 1.0
    lr: float = DEFAULT_LR                 # small: see DEFAULT_LR and interp.zoo.suggested_grpo_lr
    loss_type: LossType = "grpo"
    clip_eps: float = 0.2
    clip_eps_high: float | None = None     # DAPO "clip-higher"; None = clip_eps
    kl_coef: float = 0.0                   # > 0 keeps a frozen copy of the start as reference
    inner_epochs: int = 1                  # policy updates per rollout batch (mu)
    max_grad_norm: float = 1.0
    thr: bool = False
    thr_p: float = 0.0
    thr_beta: float = 1.0
    thr_non_dominant: float = 1.0
    thr_vocab: Vocab = "group"
    thr_exclude_self: bool = False
    log_thr: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        c = Check(self, THRInputError)
        c.integer("group_size", min=2, fix="GRPO's advantages compare the responses within a group (8 is usual).")
        c.integer("prompts_per_step", min=1)
        c.integer("max_new_tokens", min=1, optional=True, fix="None takes the task's own.")
        c.number("temperature", gt=0, fix="GRPO samples its groups; use e.g. temperature=1.0.")
        c.number("lr", gt=0, fix=_LR_FIX)
        c.choice("loss_type", ("grpo", "dr_grpo", "dapo"))
        c.number("clip_eps", gt=0, lt=1, fix="PPO's clip range, e.g. 0.2.")
        c.number("clip_eps_high", gt=0, optional=True, fix="None uses clip_eps; DAPO uses e.g. 0.28.")
        c.number("kl_coef", ge=0, fix="0 turns the KL penalty off.")
        c.integer("inner_epochs", min=1)
        c.number("max_grad_norm", gt=0)
        c.boolean("thr")
        c.number("thr_p", gt=-1, lt=1, fix="|p| < 1 keeps every advantage's sign; use e.g. 0.5 or -0.5.")
        c.number("thr_beta", ge=0)
        c.number("thr_non_dominant", ge=0, fix="1 is plain steering, 0 trains on dominant tokens only.")
        c.choice("thr_vocab", ("group", "full"))
        c.boolean("thr_exclude_self")
        c.boolean("log_thr")
        c.integer("seed", min=0)

    @property
    def scale_rewards(self) -> bool:
        return self.loss_type != "dr_grpo"

    @property
    def normalize(self) -> Literal["token", "sequence"]:
        return "sequence" if self.loss_type == "grpo" else "token"


@dataclass
class ScoredBatch:
    """A rollout batch after the old-policy pass: everything the update needs (no gradients)."""

    rollout: Rollout
    rewards: Float[Tensor, "n"]
    old_logp: Float[Tensor, "n R"]
    mask: Bool[Tensor, "n R"]
    result: THRResult | None
    items: list[Example] = field(default_factory=list)


@dataclass
class _ResponseScores:
    hidden: Float[Tensor, "n R d"]   # the head's input at the positions predicting each response token
    logp: Float[Tensor, "n R"]       # log softmax(logits / T) of the sampled token (0 on padding)
    entropy: Float[Tensor, "n R"]    # entropy of softmax(logits / T), no gradient
    lse: Float[Tensor, "n R"]        # logsumexp(logits / T), no gradient


def _response_scores(policy: Policy, ro: Rollout, temperature: float, chunk_size: int = DEFAULT_VOCAB_CHUNK
                     ) -> _ResponseScores:
    """One forward pass without the head, then the head in vocabulary chunks on the response tokens only
    (differentiable when gradients are on)."""
    _, hidden = policy.forward(ro.input_ids, ro.attention_mask, logits=False)
    P = ro.prompt_len
    h = hidden[:, P - 1 : -1]
    mask = ro.response_mask.to(h.device)
    lp, ent, lse = token_logprobs(output_head(policy.model), h[mask], ro.responses.to(h.device)[mask],
                                  temperature=temperature, chunk_size=chunk_size)
    zeros = torch.zeros(mask.shape, dtype=lp.dtype, device=h.device)
    return _ResponseScores(h, zeros.masked_scatter(mask, lp), zeros.masked_scatter(mask, ent),
                           zeros.masked_scatter(mask, lse))


@torch.no_grad()
def score_rollouts(
    policy: Policy, items: list[Example], task: VerifiableTask, ro: Rollout, *, group_size: int,
    temperature: float, compute_thr: bool = True, vocab: Vocab = "group", exclude_self: bool = False,
    normalize: Literal["token", "sequence"] = "token", scale_rewards: bool = True,
) -> ScoredBatch:
    """Rewards, old log-probabilities and (optionally) THR of a sampled batch.
    ``items`` has one entry per response (a prompt repeated ``group_size`` times)."""
    completions = [policy.decode(r) for r in ro.response_list()]
    rewards = torch.tensor([task.reward(it, c) for it, c in zip(items, completions)], dtype=torch.float32)
    sc = _response_scores(policy, ro, temperature)
    old_logp, entropy = sc.logp, sc.entropy
    mask = ro.response_mask.to(old_logp.device)  # where the loss is computed (the head's device)
    result = None
    if compute_thr:
        lengths = mask.sum(1).tolist()
        toks = ro.response_list()
        thr = token_hidden_reward(
            [sc.hidden[i, :n] for i, n in enumerate(lengths)], None, toks, rewards, vocab=vocab,
            temperature=temperature, normalize=normalize, group_size=group_size, exclude_self=exclude_self,
            scale_rewards=scale_rewards, head=output_head(policy.model),
            lse=[sc.lse[i, :n] for i, n in enumerate(lengths)],
        )
        result = THRResult(
            prompts=[items[b * group_size].prompt for b in range(len(items) // group_size)],
            completions=completions, tokens=[t.cpu() for t in toks],
            token_text=[policy.token_strings(t) for t in toks], thr=[t.cpu() for t in thr],
            prob=[old_logp[i, :n].exp().cpu() for i, n in enumerate(lengths)],
            entropy=[entropy[i, :n].cpu() for i, n in enumerate(lengths)], rewards=rewards, group_size=group_size,
            scale_rewards=scale_rewards,
            settings=dict(vocab=vocab, exclude_self=exclude_self, normalize=normalize, temperature=temperature),
        )
    return ScoredBatch(ro, rewards, old_logp, mask, result, list(items))


def rollout_thr(
    model: nn.Module | Policy, task: VerifiableTask, *, n_prompts: int = 4, group_size: int = 8,
    split: Literal["train", "test"] = "test", temperature: float = 1.0, vocab: Vocab = "group",
    exclude_self: bool = False, normalize: Literal["token", "sequence"] = "token", seed: int = 0,
    tokenizer: Any | None = None,
) -> THRResult:
    """Sample ``group_size`` responses for the first ``n_prompts`` prompts of a split and return
    their THR (one call for the common case).

    >>> res = rollout_thr(model, task, n_prompts=2)  # task: an interp.thr.tasks.VerifiableTask  # doctest: +SKIP
    >>> res.to_frame().head()                                    # doctest: +SKIP
    """
    c = Check("rollout_thr", THRInputError)
    c.instance("task", VerifiableTask, task)
    c.integer("group_size", group_size, min=2, fix="THR compares the responses of a group: one response per group has "
              "no advantage, so every THR would be 0. Use e.g. group_size=8.")
    c.choice("split", ("train", "test"), split)
    pool = task.train if split == "train" else task.test
    c.integer("n_prompts", n_prompts, min=1, max=len(pool), fix=f"The {split} split has {len(pool)} prompts.")
    c.number("temperature", temperature, gt=0, fix="THR needs sampled groups; use e.g. temperature=1.0.")
    c.choice("vocab", ("group", "full"), vocab)
    c.boolean("exclude_self", exclude_self)
    c.choice("normalize", ("token", "sequence"), normalize)
    c.integer("seed", seed, min=0)
    policy = as_policy(model, tokenizer)
    items = [it for it in pool[:n_prompts] for _ in range(group_size)]
    gen = make_generator(policy.model, seed)
    ro = policy.sample([policy.encode(it.prompt) for it in items], max_new_tokens=task.max_new_tokens,
                       temperature=temperature, generator=gen)
    batch = score_rollouts(policy, items, task, ro, group_size=group_size, temperature=temperature, vocab=vocab,
                           exclude_self=exclude_self, normalize=normalize)
    assert batch.result is not None
    return batch.result


def _check_fits_context(policy: Policy, task: VerifiableTask, max_new_tokens: int) -> None:
    """Refuse, before any step, a task whose longest prompt plus ``max_new_tokens`` exceeds the context."""
    from interp.core.frontend import n_ctx

    limit = n_ctx(policy.model)
    if limit is None:
        return
    # tokenise only the longest texts (in characters): an early check; generate() enforces it exactly
    pool = sorted((*task.train, *task.test), key=lambda it: len(it.prompt), reverse=True)[:32]
    n = max(len(policy.encode(it.prompt)) for it in pool)
    if n + max_new_tokens > limit:
        raise THRInputError(
            f"The task's longest prompt has {n} tokens; with max_new_tokens={max_new_tokens} that is {n + max_new_tokens}, "
            f"more than the model's context of {limit} tokens. Use max_new_tokens <= {max(limit - n, 0)} or shorter prompts."
        )


class GRPOTrainer:
    """GRPO on a verifiable-reward task, THR reweighting switchable.

    The trainer trains a copy of ``model`` (``trainer.model``), so the model passed in is left as it was;
    ``in_place=True`` trains the model itself (half the memory for a large one). ``token_log=True`` also keeps
    ``trainer.token_log``, a :class:`~interp.thr.training_log.THRTrainingLog` of every rollout (per token: THR, the
    advantage the loss used, entropy, KL to the reference when ``kl_coef > 0``), the same log
    :class:`interp.thr.trl_callback.THRCallback` fills in TRL.

    Example:
        >>> from interp import load_model                                 # doctest: +SKIP
        >>> trainer = GRPOTrainer(load_model("../shared/models/stories260K"), task,  # a VerifiableTask
        ...                       GRPOConfig(thr=True, thr_p=0.5))       # doctest: +SKIP
        >>> log = trainer.train(20)                                      # doctest: +SKIP
        >>> log.plot()                                                   # doctest: +SKIP
    """

    def __init__(self, model: nn.Module | Policy, task: VerifiableTask, config: GRPOConfig | None = None,
                 *, tokenizer: Any | None = None, name: str | None = None, in_place: bool = False,
                 token_log: bool = False):
        c = Check("GRPOTrainer", THRInputError)
        c.instance("task", VerifiableTask, task)
        c.instance("config", GRPOConfig, config, optional=True)
        c.text("name", name, optional=True)
        c.boolean("in_place", in_place)
        c.boolean("token_log", token_log)
        policy = as_policy(model, tokenizer)
        if not in_place:
            # train a copy: the caller's model stays as it was (pass in_place=True to save the memory)
            policy = Policy(copy_model(policy.model), policy.tokenizer)
        self.policy = policy
        self.model = self.policy.model
        self.task = task
        self.config = config or GRPOConfig()
        cfg = self.config
        self.max_new_tokens = cfg.max_new_tokens or task.max_new_tokens
        _check_fits_context(self.policy, task, self.max_new_tokens)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr)
        self.generator = make_generator(self.model, cfg.seed)  # on the model's device: multinomial needs it there
        self.ref_model: nn.Module | None = None
        if cfg.kl_coef > 0:
            self.ref_model = copy_model(self.model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.step_count = 0
        self.log = GRPOLog(name=name or self._default_name())
        self.token_log: THRTrainingLog | None = THRTrainingLog() if token_log else None
        self.last: ScoredBatch | None = None

    def _default_name(self) -> str:
        c = self.config
        return f"{c.loss_type} THR p={c.thr_p:+.2f}" if c.thr else f"{c.loss_type} (plain)"

    # -- one step ---------------------------------------------------------------------------
    def _sample_items(self) -> list[Example]:
        cfg = self.config
        pool = self.task.train
        idx = torch.randint(len(pool), (cfg.prompts_per_step,), generator=self.generator,
                            device=self.generator.device).tolist()
        return [pool[i] for i in idx for _ in range(cfg.group_size)]

    def _token_logp(self, policy: Policy, ro: Rollout) -> Tensor:
        return _response_scores(policy, ro, self.config.temperature).logp

    def step(self) -> dict[str, float]:
        """Sample, score, compute THR and weights, update; returns the step's log record."""
        cfg = self.config
        t0 = time.perf_counter()
        items = self._sample_items()
        ro = self.policy.sample([self.policy.encode(it.prompt) for it in items], max_new_tokens=self.max_new_tokens,
                                temperature=cfg.temperature, generator=self.generator)
        t_sample = time.perf_counter() - t0
        t1 = time.perf_counter()
        batch = score_rollouts(
            self.policy, items, self.task, ro, group_size=cfg.group_size, temperature=cfg.temperature,
            compute_thr=cfg.thr or cfg.log_thr or self.token_log is not None, vocab=cfg.thr_vocab, exclude_self=cfg.thr_exclude_self,
            normalize=cfg.normalize, scale_rewards=cfg.scale_rewards,
        )
        t_thr = time.perf_counter() - t1
        self.last = batch
        mask = batch.mask
        adv = group_advantages(batch.rewards, group_size=cfg.group_size, scale=cfg.scale_rewards).to(mask.device)
        tok_adv = adv[:, None].expand_as(batch.old_logp).clone()
        if cfg.thr:
            assert batch.result is not None
            w = thr_weights(batch.result.thr, batch.rewards, p=cfg.thr_p, beta=cfg.thr_beta,
                            non_dominant=cfg.thr_non_dominant, group_size=cfg.group_size,
                            scale_rewards=cfg.scale_rewards)
            W = torch.ones_like(tok_adv)
            for i, wi in enumerate(w):
                W[i, : wi.numel()] = wi.to(W)
            tok_adv = tok_adv * W
        ref_logp = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logp = self._token_logp(Policy(self.ref_model, self.policy.tokenizer), ro)

        self.model.train()
        stats: dict[str, float] = {}
        for _ in range(cfg.inner_epochs):
            logp = self._token_logp(self.policy, ro)
            loss, stats = self._loss(logp, batch.old_logp, ref_logp, tok_adv, mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
            stats["grad_norm"] = float(gnorm)
        self.model.eval()
        self.step_count += 1
        lengths = mask.sum(1).float()
        record: dict[str, float] = dict(
            step=float(self.step_count), reward_mean=float(batch.rewards.mean()),
            response_len=float(lengths.mean()), **stats,
            time_sample_s=t_sample, time_score_thr_s=t_thr, time_step_s=time.perf_counter() - t0,
        )
        if batch.result is not None:
            record.update(thr_statistics(batch.result.thr, batch.result.entropy, batch.rewards, cfg.group_size,
                                         beta=cfg.thr_beta, scale_rewards=cfg.scale_rewards))
        if self.token_log is not None:
            self._log_tokens(batch, adv, tok_adv, ref_logp, record)
        self.log.append(record)
        return record

    def _log_tokens(self, batch: ScoredBatch, adv: Tensor, tok_adv: Tensor, ref_logp: Tensor | None,
                    record: dict[str, float]) -> None:
        """One rollout of ``token_log``: what this step's loss saw, token by token (KL: the k3 estimator the
        loss penalises, against the reference before the update; NaN without a reference)."""
        assert self.token_log is not None and batch.result is not None
        res, mask = batch.result, batch.mask
        lengths = mask.sum(1).tolist()
        kl = None
        if ref_logp is not None:
            d = ref_logp - batch.old_logp
            kl = [(torch.exp(d[i, :n]) - d[i, :n] - 1).tolist() for i, n in enumerate(lengths)]
        keep = ("reward_mean", "thr_density", "dominant_positive", "entropy_all", "entropy_dominant", "active_groups")
        self.token_log.add_rollout(
            self.step_count - 1, self.config.group_size, [it.prompt for it in batch.items], res.token_text,
            [t.tolist() for t in res.thr], [tok_adv[i, :n].tolist() for i, n in enumerate(lengths)],
            [e.tolist() for e in res.entropy], kl, batch.rewards.tolist(), adv.tolist(),
            {k: record[k] for k in keep if k in record})

    def _loss(self, logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, adv: Tensor, mask: Tensor
              ) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        m = mask.float()
        ratio = torch.exp(logp - old_logp)
        hi = cfg.clip_eps_high if cfg.clip_eps_high is not None else cfg.clip_eps
        clipped = torch.clamp(ratio, 1 - cfg.clip_eps, 1 + hi)
        per_token = -torch.minimum(ratio * adv, clipped * adv)
        kl = torch.zeros_like(per_token)
        if ref_logp is not None:
            d = ref_logp - logp
            kl = torch.exp(d) - d - 1  # k3 estimator: unbiased, non-negative
            per_token = per_token + cfg.kl_coef * kl
        if cfg.loss_type == "grpo":
            loss = ((per_token * m).sum(1) / m.sum(1).clamp_min(1)).mean()
        elif cfg.loss_type == "dapo":
            loss = (per_token * m).sum() / m.sum().clamp_min(1)
        else:  # dr_grpo: a constant normaliser, so long responses are not down-weighted
            loss = (per_token * m).sum() / (m.shape[0] * self.max_new_tokens)
        n_tok = m.sum().clamp_min(1)
        clip_frac = (((ratio < 1 - cfg.clip_eps) | (ratio > 1 + hi)).float() * m).sum() / n_tok
        return loss, dict(loss=float(loss.detach()), clip_frac=float(clip_frac), kl=float((kl.detach() * m).sum() / n_tok))

    # -- loops --------------------------------------------------------------------------------
    def train(self, steps: int, *, progress: bool = True, checkpoint_dir: str | Path | None = None,
              checkpoint_every: int = 0) -> GRPOLog:
        """Run ``steps`` more steps; with ``checkpoint_dir`` save every ``checkpoint_every`` steps
        (0: only at the end)."""
        from tqdm.auto import tqdm

        from interp.core.progress import bar_disabled

        c = Check("GRPOTrainer.train", THRInputError)
        c.integer("steps", steps, min=1)
        c.integer("checkpoint_every", checkpoint_every, min=0, fix="0 saves only at the end.")
        c.boolean("progress", progress)
        if checkpoint_every and checkpoint_dir is None:
            c.fail("checkpoint_dir", None, "a folder when checkpoint_every > 0")
        bar = tqdm(range(steps), desc=self.log.name, disable=bar_disabled(progress))
        for _ in bar:
            rec = self.step()
            bar.set_postfix(reward=f"{rec['reward_mean']:.3f}")
            if checkpoint_dir is not None and checkpoint_every and self.step_count % checkpoint_every == 0:
                self.save(checkpoint_dir)
        if checkpoint_dir is not None:
            self.save(checkpoint_dir)
        return self.log

    # -- checkpoints --------------------------------------------------------------------------
    def _models(self) -> dict[str, nn.Module]:
        return {"model.safetensors": self.model, **({"ref_model.safetensors": self.ref_model} if self.ref_model else {})}

    def _fingerprint(self) -> str:
        t = self.task
        return data_fingerprint(t.name, t.max_new_tokens, [[e.prompt, e.answer] for e in t.train],
                                [[e.prompt, e.answer] for e in t.test])

    def save(self, directory: str | Path) -> Path:
        """Write model, optimizer, RNG and log (safetensors + JSON, atomically) so :meth:`load` resumes exactly."""
        opt_t, opt_meta = optimizer_state(self.optimizer)
        state = {**opt_t, **rng_state({"generator": self.generator})}
        meta = dict(config=asdict(self.config), step=self.step_count, optimizer=opt_meta, log=self.log.records,
                    name=self.log.name, task=self.task.name, data_fingerprint=self._fingerprint())
        return write_checkpoint(directory, {"trainer_state.safetensors": state}, meta, models=self._models())

    def load(self, directory: str | Path) -> "GRPOTrainer":
        """Restore a checkpoint written by :meth:`save` into this trainer (same model architecture,
        same task and config), then continue with :meth:`train`. Every file is read and checked before
        anything is restored: a bad checkpoint leaves the model and trainer as they were."""
        d = Path(directory)
        hint = "write a fresh one with trainer.save(dir)"
        ck = read_checkpoint(d, ("trainer_state.safetensors",), models=self._models(), hint=hint)
        info = ck.meta
        diff = config_differences(info.get("config", {}), json.loads(json.dumps(asdict(self.config))))
        if diff:
            listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatchError(f"The checkpoint in {d} was written with a different config ({listed}). "
                                  "Build the trainer with the saved GRPOConfig to resume.")
        if info.get("task") != self.task.name:
            raise CheckpointMismatchError(f"The checkpoint is for task {info.get('task')!r}, this trainer runs {self.task.name!r}.")
        check_data_fingerprint(info, self._fingerprint(), d, "task prompts", hint)
        absent = [k for k in ("step", "log", "name", "optimizer") if k not in info]
        if absent:
            raise CheckpointError(f"{d / 'state.json'} lacks {absent}; {hint}.")
        tensors = ck.tensors["trainer_state.safetensors"]
        where = str(d / "trainer_state.safetensors")
        check_optimizer_state(self.optimizer, tensors, info["optimizer"], where)
        rng = [k for k in ("rng.torch", "rng.generator") if k not in tensors]
        if rng:
            raise CheckpointError(f"{where} lacks the RNG state {rng}; {hint}.")
        # everything checked: only now is any state changed
        for name, module in self._models().items():
            load_module(module, d / name)
        load_optimizer_state(self.optimizer, tensors, info["optimizer"])
        restore_rng_state(tensors, {"generator": self.generator})
        self.step_count = int(info["step"])
        self.log = GRPOLog(records=list(info["log"]), name=info["name"])
        return self
