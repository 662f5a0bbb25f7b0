"""Checks that each method recovers the ground truth planted in toy-lm (issue 14).

- :mod:`interp.zoo.recovery.lorsa`: host induction / successor heads vs the best Lorsa head.
- :mod:`interp.zoo.recovery.corrsteer`: the opposite/same latent's direction vs the feature
  CorrSteer selects, and steering it against random-feature controls.
- :mod:`interp.zoo.recovery.thr`: pass@k on rarely solved code-recall prompts under plain GRPO and
  THR p = +-0.5.

Each module has ``run(...)`` returning a JSON-able dict (the numbers the model card records) and a
command line in the app layer: ``python -m interp.app.zoo_experiments recovery <name> --out DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["record"]


def record(section: str, summary: dict[str, Any], *, name: str = "toy-lm-planted", card_path: str | Path | None = None) -> Path:
    """Write ``summary`` into the model card's ``recovery`` section under ``section`` (a retrain
    rewrites the card; rerun the checks to fill it again)."""
    from interp import zoo

    path = Path(card_path) if card_path is not None else zoo.model_dir(name) / "card.json"
    card = json.loads(path.read_text())
    card.setdefault("recovery", {})[section] = summary
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
