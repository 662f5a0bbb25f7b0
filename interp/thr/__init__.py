"""THR: token hidden reward and THR-reweighted GRPO (Deng et al., arXiv 2510.03669).

``token_hidden_reward`` and ``thr_weights`` are the framework-free core; ``interp.thr.grpo``
holds a compact GRPO trainer that uses them.
"""

from interp.thr.core import (
    Normalize,
    THRInputError,
    Vocab,
    dominant_threshold,
    group_advantages,
    thr_weights,
    token_hidden_reward,
)

__all__ = [
    "Normalize",
    "THRInputError",
    "Vocab",
    "dominant_threshold",
    "group_advantages",
    "thr_weights",
    "token_hidden_reward",
]
