"""THR reweighting inside TRL's ``GRPOTrainer`` (optional extra: ``pip install trl``).

``THRGRPOTrainer`` runs one extra no-grad forward pass of the current (old) policy after TRL has
generated and scored a batch, where groups are still contiguous, computes THR and its weights,
and hands TRL per-token advantages ``w * A`` of shape (B, T), which TRL's loss accepts.
"""

from __future__ import annotations

from typing import Any

import torch

from interp.thr.core import Vocab, thr_weights, token_hidden_reward
from interp.thr.core import THRInputError
from interp.thr.result import thr_statistics

try:
    from trl import GRPOTrainer as _TRLGRPOTrainer
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "interp.thr.trl_adapter needs TRL: `pip install -c constraints.txt trl` (it installs beside torch 2.13 "
        "without replacing it). The framework-free core (interp.thr.token_hidden_reward) needs nothing extra."
    ) from err

__all__ = ["THRGRPOTrainer"]


class THRGRPOTrainer(_TRLGRPOTrainer):
    """TRL ``GRPOTrainer`` with THR-reweighted token advantages.

    Extra keyword arguments: ``thr_p`` (|p| < 1), ``thr_beta``, ``thr_non_dominant``, ``thr_vocab``,
    ``thr_exclude_self``. The correct set is the responses with positive TRL advantage; THR is
    computed from TRL's advantages (re-standardised per group, which rescales THR by a positive
    per-group constant and leaves the weights unchanged). Statistics are logged under ``thr/``.

    >>> trainer = THRGRPOTrainer(model=model, reward_funcs=[reward], args=GRPOConfig(...),
    ...                          train_dataset=ds, processing_class=tok, thr_p=0.5)  # doctest: +SKIP
    """

    def __init__(self, *args: Any, thr_p: float = 0.5, thr_beta: float = 1.0, thr_non_dominant: float = 1.0,
                 thr_vocab: Vocab = "group", thr_exclude_self: bool = False, **kwargs: Any):
        if not -1 < thr_p < 1:
            raise THRInputError(f"thr_p must satisfy |p| < 1 so advantages keep their sign; got {thr_p}.")
        super().__init__(*args, **kwargs)
        self.thr_p, self.thr_beta, self.thr_non_dominant = thr_p, thr_beta, thr_non_dominant
        self.thr_vocab, self.thr_exclude_self = thr_vocab, thr_exclude_self

    @torch.no_grad()
    def _thr_forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.accelerator.unwrap_model(self.model)
        store: dict[str, torch.Tensor] = {}
        head = model.get_output_embeddings()
        handle = head.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
        try:
            logits = model(input_ids=ids, attention_mask=mask).logits  # as TRL computes its log-probs
        finally:
            handle.remove()
        return logits, store["h"]

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return out
        G = self.num_generations
        adv = out["advantages"].float()
        if adv.dim() != 1 or adv.numel() % G:
            raise RuntimeError(f"THR needs whole groups of num_generations={G} per process; got advantages {tuple(adv.shape)}.")
        P = out["prompt_ids"].shape[1]
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
        logits, hidden = self._thr_forward(ids, mask)
        logits, hidden = logits[:, P - 1 : -1], hidden[:, P - 1 : -1]
        cmask = out["completion_mask"].bool()
        lengths = cmask.sum(1).tolist()
        toks = [out["completion_ids"][i, :n] for i, n in enumerate(lengths)]
        normalize = "sequence" if self.loss_type == "grpo" else "token"
        thr = token_hidden_reward([hidden[i, :n] for i, n in enumerate(lengths)],
                                  [logits[i, :n] for i, n in enumerate(lengths)], toks, adv.cpu(),
                                  vocab=self.thr_vocab, temperature=self.temperature, normalize=normalize,
                                  group_size=G, exclude_self=self.thr_exclude_self)
        w = thr_weights(thr, adv.cpu(), p=self.thr_p, beta=self.thr_beta, non_dominant=self.thr_non_dominant,
                        group_size=G)
        W = torch.ones_like(out["completion_mask"], dtype=adv.dtype)
        for i, wi in enumerate(w):
            W[i, : wi.numel()] = wi.to(W)
        out["advantages"] = out["advantages"][:, None] * W.to(out["advantages"].dtype)
        logp = torch.log_softmax(logits.float() / self.temperature, -1)
        ent = -(logp.exp() * logp).sum(-1)
        stats = thr_statistics([t.cpu() for t in thr], [ent[i, :n].cpu() for i, n in enumerate(lengths)], adv.cpu(), G,
                               beta=self.thr_beta)
        for k, v in stats.items():
            self._metrics["train"][f"thr/{k}"].append(v)
        return out
