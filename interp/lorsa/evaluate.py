"""Evaluating a Lorsa: reconstruction (explained variance), sparsity (L0, dead/dense heads) and the
downstream next-token loss when the attention output is replaced by the Lorsa reconstruction
(:mod:`interp.core.splice`: the same splice rule and chunked per-token losses as every evaluator).

Fraction of loss recovered = (L_zero_ablated - L_spliced) / (L_zero_ablated - L_clean): 1 means the
splice is as good as the real layer, 0 as bad as deleting it. (The authors' maintained code reports
the reciprocal of a related ratio; this is the usual SAE convention.)
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.progress import bar_disabled
from interp.core.splice import SpliceSums, splice_positions, spliced_losses
from interp.core.tokens import Truncation, check_tokens, token_mask
from interp.core.tokens import bos_token_id as bos_of
from interp.core.validate import Check
from interp.lorsa.config import LorsaConfigError
from interp.lorsa.model import Lorsa

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["LorsaEval", "evaluate_lorsa"]


@dataclass
class LorsaEval:
    """Evaluation of one Lorsa. Losses are mean next-token cross-entropies (nats) over the
    predicted positions; ``loss_recovered`` = (ablated - spliced) / (ablated - clean)."""

    layer: int
    n_tokens: int
    explained_variance: float
    mse: float
    l0: float
    dead_heads: int
    dense_heads: int
    n_ov_heads: int
    clean_loss: float
    spliced_loss: float
    ablated_loss: float
    loss_recovered: float
    head_frequency: Tensor  # [n_ov] fraction of tokens on which each head fires
    head_mean_act: Tensor  # [n_ov] mean activation when firing

    @property
    def fvu(self) -> float:
        return 1.0 - self.explained_variance

    def summary(self) -> dict[str, float]:
        d = asdict(self)
        d.pop("head_frequency")
        d.pop("head_mean_act")
        d["fvu"] = self.fvu
        return d

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([self.summary()])

    def heads_frame(self):
        import pandas as pd

        return pd.DataFrame({"head": range(self.n_ov_heads), "frequency": self.head_frequency.tolist(),
                             "mean_activation": self.head_mean_act.tolist()})

    def plot(self):
        """Histogram of head firing frequencies with EV, loss recovered and L0
        (:func:`interp.lorsa.plots.frequency_figure`)."""
        from interp.lorsa.plots import frequency_figure

        return frequency_figure(self)

    def __repr__(self) -> str:
        return (f"LorsaEval(layer {self.layer}, {self.n_tokens} tokens: EV {self.explained_variance:.3f}, loss recovered "
                f"{self.loss_recovered:.3f}, L0 {self.l0:.1f}, {self.dead_heads}/{self.n_ov_heads} dead)")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{v:.4g}</td></tr>" if isinstance(v, float)
            else f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{v}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<table><caption>LorsaEval (layer {self.layer})</caption>{rows}</table>"


@torch.no_grad()
def evaluate_lorsa(
    model: "HookedTransformer",
    lorsa: Lorsa,
    tokens: Int[Tensor, "n_seq ctx"],
    *,
    batch_size: int = 16,
    dense_threshold: float = 0.1,
    pad_token_id: int | None = None,
    bos_token_id: int | None = None,
    splice_bos: bool = False,
    progress: bool = True,
    truncate: Truncation | None = None,
) -> LorsaEval:
    """Evaluate ``lorsa`` (acting on raw activations of its ``cfg.layer``) on ``tokens``.

    The reconstruction is spliced in (and the zero-ablation applied) on the tokens the Lorsa was
    trained on (non-BOS, non-pad); BOS positions keep the real attention output unless
    ``splice_bos``. EV is over the same tokens: 1 - sum||Y^-Y||^2 / sum||Y - mean Y||^2.

    Example:
        >>> ev = evaluate_lorsa(model, lorsa, held_out_tokens)  # doctest: +SKIP
        >>> ev.to_frame()                                        # doctest: +SKIP
    """
    c = Check("evaluate_lorsa", LorsaConfigError)
    c.instance("lorsa", Lorsa, lorsa)
    lorsa.check_host(model)
    cfg = lorsa.cfg
    if cfg.layer is None or cfg.hook_in is None:
        raise LorsaConfigError("This Lorsa has no host layer in its config; build it with LorsaConfig.from_model.")
    tokens = check_tokens(model, tokens, what="evaluate_lorsa's tokens", truncate=truncate, min_len=2)
    c.integer("batch_size", batch_size, min=1)
    c.number("dense_threshold", dense_threshold, ge=0, le=1, fix="A head firing on more than this fraction of tokens "
             "counts as dense (0.1 by default).")
    n_vocab = int(model.cfg.d_vocab)
    c.integer("pad_token_id", pad_token_id, min=0, max=n_vocab - 1, optional=True)
    c.integer("bos_token_id", bos_token_id, min=0, max=n_vocab - 1, optional=True)
    c.boolean("splice_bos", splice_bos)
    c.boolean("progress", progress)
    dev = model.cfg.device
    lorsa = lorsa.to(dev)
    bos = bos_token_id if bos_token_id is not None else bos_of(getattr(model, "tokenizer", None))
    n = cfg.n_ov_heads
    sums = dict(sq=0.0, y2=0.0, count=0, l0=0.0)
    y_sum = torch.zeros(cfg.d_model, dtype=torch.float64, device=dev)
    fires = torch.zeros(n, dtype=torch.float64, device=dev)
    act_sum = torch.zeros(n, dtype=torch.float64, device=dev)

    losses = SpliceSums()
    for start in tqdm(range(0, tokens.shape[0], batch_size), desc="evaluate", disable=bar_disabled(progress)):
        toks = tokens[start : start + batch_size].to(dev)
        mask = token_mask(toks, bos_token_id=bos, pad_token_id=pad_token_id)
        where = splice_positions(toks, bos_token_id=bos, pad_token_id=pad_token_id, include_bos=splice_bos)
        captured: dict[str, Tensor] = {}

        def grab(act: Tensor, hook) -> None:
            captured["x"] = act

        def reconstruct(act: Tensor) -> Tensor:
            z = lorsa.encode(captured["x"].float())
            y_hat = lorsa.decode(z)
            captured.update(y=act.detach(), y_hat=y_hat, z=z)
            return y_hat

        losses.add(spliced_losses(model, toks, cfg.hook_out, reconstruct, where=where, pad_token_id=pad_token_id,
                                  extra_hooks=[(cfg.hook_in, grab)]))
        y, y_hat, z = captured["y"].double(), captured["y_hat"].double(), captured["z"]
        m = mask.unsqueeze(-1)
        sums["sq"] += ((y_hat - y).pow(2) * m).sum().item()
        sums["y2"] += (y.pow(2) * m).sum().item()
        y_sum += (y * m).sum((0, 1))
        sums["count"] += int(mask.sum())
        on = (z != 0) & m
        sums["l0"] += on.sum().item()
        fires += on.sum((0, 1)).double()
        act_sum += (z * m).sum((0, 1)).double()

    if sums["count"] < 2:
        raise LorsaConfigError(
            f"Only {sums['count']} token(s) to evaluate on: every other position is BOS or padding, and explained "
            "variance needs at least two tokens. Pass sequences with real tokens after BOS."
        )
    count = sums["count"]
    # sum||y - mean||^2 = sum||y||^2 - count ||mean||^2
    total_var = sums["y2"] - (y_sum.pow(2).sum().item() / count)
    if not total_var > 1e-12 * max(sums["y2"], 1e-30):
        raise LorsaConfigError(
            f"The attention output has no variance over the {count} evaluated tokens (every target is the same "
            "vector), so explained variance is undefined. Evaluate on varied text."
        )
    freq = (fires / count).float().cpu()
    clean, splice, abl = losses.means()
    return LorsaEval(
        layer=cfg.layer,
        n_tokens=sums["count"],
        explained_variance=1.0 - sums["sq"] / total_var,
        mse=sums["sq"] / count / cfg.d_model,
        l0=sums["l0"] / count,
        dead_heads=int((fires == 0).sum()),
        dense_heads=int((freq > dense_threshold).sum()),
        n_ov_heads=n,
        clean_loss=clean,
        spliced_loss=splice,
        ablated_loss=abl,
        loss_recovered=(abl - splice) / (abl - clean) if abl != clean else float("nan"),
        head_frequency=freq,
        head_mean_act=(act_sum / fires.clamp_min(1)).float().cpu(),
    )
