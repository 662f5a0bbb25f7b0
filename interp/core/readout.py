"""The direct logit effect of a residual-stream direction: which tokens it promotes and suppresses through
the final norm's weight and the unembedding. One readout for SAE decoder rows (CorrSteer) and Lorsa
output directions (OV readout).

>>> from interp.core.readout import direction_logits, readout_frame
>>> logits = direction_logits(model, sae.W_dec[12])      # doctest: +SKIP
>>> readout_frame(model, logits, k=8)                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["direction_logits", "readout_frame"]


def _final_norm_weight(model: Any) -> Tensor | None:
    ln = getattr(model, "ln_final", None)
    w = getattr(ln, "w", None)
    return w if isinstance(w, Tensor) else None


@torch.no_grad()
def direction_logits(model: Any, directions: Float[Tensor, "*batch d_model"],
                     token_ids: Sequence[int] | Tensor | None = None) -> Float[Tensor, "*batch n_tokens"]:
    """``(direction * w_final_norm) @ W_U`` for each direction, in float32, over the whole vocabulary or
    only ``token_ids``. The final norm's per-channel weight multiplies before the unembedding in raw
    weights (TransformerLens folds it into ``W_U`` under weight processing, and then has none). ``W_U``
    is read in place: only the requested columns are ever converted."""
    W_U = model.W_U
    d = directions.to(W_U.device).float()
    w = _final_norm_weight(model)
    if w is not None and w.shape[-1] == d.shape[-1]:
        d = d * w.float()
    cols = W_U if token_ids is None else W_U[:, torch.as_tensor(token_ids, device=W_U.device, dtype=torch.long)]
    return (d.to(cols.dtype) @ cols).float()


def readout_frame(model: Any, logits: Float[Tensor, " vocab"], k: int = 10) -> Any:
    """The ``k`` most promoted and ``k`` most suppressed tokens of one direction's logits, as a DataFrame
    with columns ``direction`` (``promotes`` / ``suppresses``), ``token`` and ``logit``."""
    import pandas as pd

    tok = getattr(model, "tokenizer", None)
    top, bottom = logits.topk(k), (-logits).topk(k)

    def decode(ids: list[int]) -> list[str]:
        return tok.batch_decode([[i] for i in ids]) if tok is not None else [str(i) for i in ids]

    rows = [{"direction": "promotes", "token": t, "logit": float(v)}
            for t, v in zip(decode(top.indices.tolist()), top.values)]
    rows += [{"direction": "suppresses", "token": t, "logit": -float(v)}
             for t, v in zip(decode(bottom.indices.tolist()), bottom.values)]
    return pd.DataFrame(rows)
