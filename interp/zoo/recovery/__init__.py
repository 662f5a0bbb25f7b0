"""Checks that each method recovers the ground truth planted in toy-lm (issue 14).

- :mod:`interp.zoo.recovery.lorsa`: host induction / successor heads vs the best Lorsa head.
- :mod:`interp.zoo.recovery.corrsteer`: the opposite/same latent's direction vs the feature
  CorrSteer selects, and steering it against random-feature controls.
- :mod:`interp.zoo.recovery.thr`: pass@k on rarely solved code-recall prompts under plain GRPO and
  THR p = +-0.5.

Each module has ``run(...)`` returning a JSON-able dict (the numbers the model card records) and a
command line: ``python -m interp.zoo.recovery.<name> --out DIR``.
"""
