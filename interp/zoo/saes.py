"""Recipe of the ``toy-lm-saes`` zoo artefact: TopK residual SAEs for toy-lm, trained with sae-lens on
held-out corpus documents and saved in sae-lens's format with a quality card.

>>> from interp import zoo
>>> saes = zoo.load_saes("toy-lm-saes")      # doctest: +SKIP  (hook name -> sae_lens SAE)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from interp.steering.sae_training import SAETrainConfig, hook_dir_name, train_saes
from interp.zoo.corpus import corpus_tokens

__all__ = ["ZOO_SAE_HOOKS", "train"]

ZOO_SAE_HOOKS: tuple[str, ...] = tuple(f"blocks.{i}.hook_resid_post" for i in range(4))


def train(
    out_dir: Path,
    *,
    model_name: str = "toy-lm",
    hooks: Sequence[str] = ZOO_SAE_HOOKS,
    config: SAETrainConfig | None = None,
    n_train_seq: int = 6000,
    n_eval_seq: int = 200,
    ctx: int = 64,
    progress: bool = True,
) -> Path:
    """Train (and save, with ``quality.json`` per hook and a ``card.json``) residual SAEs for a zoo model on
    corpus documents it was not trained on."""
    from interp import zoo

    model = zoo.load(model_name)
    tokens = corpus_tokens(model.tokenizer, n_train_seq + n_eval_seq, ctx)
    root = Path(out_dir)
    train_saes(model, tokens[:n_train_seq], hooks, config, out_root=root, eval_tokens=tokens[n_train_seq:],
               progress=progress)
    # the card: what was trained on what, and how good each SAE is (quality on held-out corpus tokens)
    card: dict[str, Any] = {"model": model_name, "token_source": f"interp.zoo.corpus seed 1 (unseen documents), ctx {ctx}",
                            "n_train_sequences": n_train_seq, "n_eval_sequences": n_eval_seq,
                            "config": asdict(config or SAETrainConfig()), "saes": {}}
    for hook in hooks:
        info = json.loads((root / hook_dir_name(hook) / "quality.json").read_text())
        card["saes"][hook] = {"quality": info.get("quality"), "train_seconds": info.get("train_seconds")}
    (root / "card.json").write_text(json.dumps(card, indent=1))
    return root
