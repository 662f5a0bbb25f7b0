"""THR inside anyone's TRL loop: a ``TrainerCallback`` that watches ``GRPOTrainer``'s rollouts and logs, per
token, THR, the advantage the loss used, the entropy and the KL to the reference policy. It changes nothing
in training (use :class:`interp.thr.trl_adapter.THRGRPOTrainer` to reweight advantages by THR).

How it sees the rollouts: TRL has no rollout event for callbacks, so :meth:`THRCallback.attach` wraps the
trainer instance's ``_generate_and_score_completions`` (where groups are still contiguous) and adds the
callback to the trainer. After each rollout it runs one no-grad forward of the current (old) policy, takes
the output head's input (the hidden states THR needs) and its logits, and computes THR with
:func:`interp.thr.token_hidden_reward`.

- THR uses TRL's sequence-level advantages (correct = positive advantage); with ``loss_type="grpo"`` the
  per-sequence normalisation ``A_j / |y_j|``, else token-level ``A_j``.
- ``advantage`` per token is what TRL's loss receives (``(B,)`` broadcast, or a ``(B, T)`` tensor from a
  subclass such as ``THRGRPOTrainer``).
- ``entropy`` is of the sampling distribution ``softmax(logits / temperature)``, in nats.
- ``kl`` is TRL's own per-token estimator ``exp(r - l) - (r - l) - 1`` (``r``, ``l``: the reference's and the
  policy's log-prob of the token), the term TRL's loss penalises; it needs TRL's reference log-probs, which
  TRL computes only when ``beta > 0``; otherwise ``kl`` is NaN.

Summary statistics go to TRL's metrics under ``thr_log/`` (averaged over the logging interval like TRL's own,
so every reporter sees them); the token-level log is
``callback.log`` (:class:`~interp.thr.training_log.THRTrainingLog`), also appended to ``log_path`` as JSON lines.
"""

from __future__ import annotations

import math
import time
import types
from pathlib import Path
from typing import Any

import torch

from interp.thr.core import THRInputError, Vocab, token_hidden_reward
from interp.thr.result import thr_statistics
from interp.thr.training_log import THRTrainingLog

try:
    from transformers import TrainerCallback
    from trl import GRPOTrainer
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "interp.thr.trl_callback needs TRL: `pip install -c constraints.txt trl` (it installs beside torch without "
        "replacing it). Other loops can fill interp.thr.THRTrainingLog with add_rollout themselves."
    ) from err

__all__ = ["THRCallback"]


class THRCallback(TrainerCallback):
    """Per-token THR, advantage, entropy and KL of every GRPO rollout, logged beside TRL's metrics.

    Args:
        vocab: THR's vocabulary (``"group"`` or ``"full"``; see :data:`interp.thr.core.Vocab`).
        exclude_self: leave each response out of its own M (the brief's option).
        beta: dominant-token threshold factor of the summary statistics.
        log_path: JSON-lines file the rollouts are appended to as they come (None: memory only).
        every: log every ``every``-th rollout (THR costs one extra no-grad forward of the batch).

    Example:
        >>> trainer = GRPOTrainer(model=..., reward_funcs=[...], args=GRPOConfig(...), train_dataset=ds)  # doctest: +SKIP
        >>> cb = THRCallback(log_path="out/thr_log.jsonl").attach(trainer)                               # doctest: +SKIP
        >>> trainer.train(); THRTrainingViewer(cb.log)                                                   # doctest: +SKIP
    """

    def __init__(self, *, vocab: Vocab = "group", exclude_self: bool = False, beta: float = 1.0,
                 log_path: str | Path | None = None, every: int = 1):
        if vocab not in ("group", "full"):
            raise THRInputError(f"vocab={vocab!r}: use 'group' or 'full'.")
        if not (isinstance(every, int) and every >= 1):
            raise THRInputError(f"every={every!r} must be a positive integer (1 = every rollout).")
        if not beta > 0:
            raise THRInputError(f"beta={beta!r} must be positive (1 is the predecessor's threshold).")
        self.vocab, self.exclude_self, self.beta, self.every = vocab, exclude_self, beta, every
        self.log_path = None if log_path is None else Path(log_path)
        self.log = THRTrainingLog()
        self._trainer: GRPOTrainer | None = None
        self._seen = 0

    # ---- wiring ------------------------------------------------------------------------
    def attach(self, trainer: GRPOTrainer) -> "THRCallback":
        """Watch ``trainer``'s rollouts and add this callback to it. Call before ``trainer.train()``."""
        if not isinstance(trainer, GRPOTrainer):
            raise THRInputError(f"THRCallback watches a trl.GRPOTrainer; got {type(trainer).__name__}.")
        if getattr(trainer, "_thr_callback", None) is not None:
            raise THRInputError("This trainer already has a THRCallback attached.")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("")  # a fresh log per run
        inner = trainer._generate_and_score_completions  # bound: the subclass's override if there is one
        callback = self

        def observed(self_: GRPOTrainer, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            out = inner(inputs)
            if self_.model.training:
                callback._seen += 1
                if (callback._seen - 1) % callback.every == 0:
                    callback._observe(self_, inputs, out)
            return out

        trainer._generate_and_score_completions = types.MethodType(observed, trainer)
        trainer._thr_callback = self
        trainer.add_callback(self)
        self._trainer = trainer
        return self

    def on_train_end(self, args, state, control, **kwargs):  # TrainerCallback API
        """Nothing is pending: every rollout was appended to ``log_path`` as it came."""
        return control

    # ---- one rollout -------------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, trainer: GRPOTrainer, ids: torch.Tensor, mask: torch.Tensor):
        model = trainer.accelerator.unwrap_model(trainer.model)
        store: dict[str, torch.Tensor] = {}
        head = model.get_output_embeddings()
        handle = head.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
        try:
            logits = model(input_ids=ids, attention_mask=mask).logits  # the batch as TRL scores it
        finally:
            handle.remove()
        return logits, store["h"]

    def _observe(self, trainer: GRPOTrainer, inputs: list[dict[str, Any]], out: dict[str, Any]) -> None:
        start = time.perf_counter()
        G = trainer.num_generations
        B = out["completion_ids"].shape[0]
        if B % G:
            raise THRInputError(f"THR needs whole groups of num_generations={G} per process; got {B} completions.")
        seq_adv = self._sequence_advantages(trainer, out)
        P = out["prompt_ids"].shape[1]
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
        logits, hidden = self._forward(trainer, ids, mask)
        logits, hidden = logits[:, P - 1:-1].float(), hidden[:, P - 1:-1]
        lengths = out["completion_mask"].sum(1).tolist()
        toks = [out["completion_ids"][i, :n] for i, n in enumerate(lengths)]
        normalize = "sequence" if trainer.loss_type == "grpo" else "token"
        thr = token_hidden_reward([hidden[i, :n] for i, n in enumerate(lengths)],
                                  [logits[i, :n] for i, n in enumerate(lengths)], toks, seq_adv.cpu(),
                                  vocab=self.vocab, temperature=trainer.temperature, normalize=normalize,
                                  group_size=G, exclude_self=self.exclude_self)
        logp = torch.log_softmax(logits / trainer.temperature, -1)
        ent = -(logp.exp() * logp).sum(-1)  # [B, T]
        tok_lp = logp.gather(-1, out["completion_ids"][..., None].to(logp.device))[..., 0]
        adv = out["advantages"].float()
        tok_adv = adv[:, None].expand(B, logits.shape[1]) if adv.dim() == 1 else adv
        ref = out.get("ref_per_token_logps")
        kl = None
        if ref is not None:
            d = ref.float().to(tok_lp.device) - tok_lp
            kl = torch.exp(d) - d - 1
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        prompts = [self._prompt_text(x) for x in inputs]
        token_text = [[tokenizer.decode([t]) for t in row.tolist()] for row in toks]
        rewards = self._rewards(trainer, B)
        stats = thr_statistics([t.cpu() for t in thr], [ent[i, :n].cpu() for i, n in enumerate(lengths)],
                               seq_adv.cpu(), G, beta=self.beta)
        cm = out["completion_mask"].bool()
        stats |= dict(entropy_mean=float(ent[cm].mean()) if cm.any() else math.nan,
                      kl_mean=float(kl[cm].mean()) if kl is not None and cm.any() else math.nan,
                      thr_abs_mean=float(torch.cat([t.abs() for t in thr]).mean()) if sum(lengths) else math.nan)
        stats["seconds"] = time.perf_counter() - start  # the callback's own cost: forward + THR + bookkeeping
        rollout = self.log.add_rollout(
            trainer.state.global_step, G, prompts, token_text, [t.tolist() for t in thr],
            [tok_adv[i, :n].tolist() for i, n in enumerate(lengths)], [ent[i, :n].tolist() for i, n in enumerate(lengths)],
            None if kl is None else [kl[i, :n].tolist() for i, n in enumerate(lengths)], rewards, seq_adv.tolist(), stats)
        if self.log_path is not None:
            self.log.append_to(self.log_path, rollout)
        for k, v in stats.items():  # TRL averages its metrics over the logging interval and reports them all
            trainer._metrics["train"][f"thr_log/{k}"].append(v)

    @staticmethod
    def _prompt_text(x: dict[str, Any]) -> str:
        p = x.get("prompt", "")
        if isinstance(p, list):  # conversational: the last message's content
            return str(p[-1].get("content", "")) if p and isinstance(p[-1], dict) else str(p)
        return str(p)

    @staticmethod
    def _sequence_advantages(trainer: GRPOTrainer, out: dict[str, Any]) -> torch.Tensor:
        """TRL's advantage of each response: ``out["advantages"]`` when it is per sequence; when a subclass made
        it per token, the sequence-level values TRL logged for this rollout (single process only)."""
        adv = out["advantages"]
        if adv.dim() == 1:
            return adv.detach().float()
        logged = trainer._logs["advantages"]
        if trainer.accelerator.num_processes != 1 or len(logged) < adv.shape[0]:
            raise THRInputError("The trainer passes per-token advantages and its per-sequence ones cannot be "
                                "recovered here; attach THRCallback to a plain GRPOTrainer, or run one process.")
        return torch.tensor(list(logged)[-adv.shape[0]:], dtype=torch.float32)

    @staticmethod
    def _rewards(trainer: GRPOTrainer, n: int) -> list[float]:
        """Each response's weighted reward as TRL logged it (NaN where it cannot be read: several processes)."""
        logs = getattr(trainer, "_logs", {}).get("rewards", {})
        names = list(getattr(trainer, "reward_func_names", []))
        if trainer.accelerator.num_processes != 1 or not names or any(len(logs.get(k, [])) < n for k in names):
            return [math.nan] * n
        weights = trainer.reward_weights.tolist()
        cols = [list(logs[k])[-n:] for k in names]
        return [sum(w * (c[i] if c[i] is not None and c[i] == c[i] else 0.0) for w, c in zip(weights, cols))
                for i in range(n)]

    def __repr__(self) -> str:
        return f"THRCallback(vocab={self.vocab}, exclude_self={self.exclude_self}, {len(self.log)} rollouts logged)"
