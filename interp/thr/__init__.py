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
from interp.thr.grpo import GRPOConfig, GRPOTrainer, rollout_thr
from interp.thr.result import GRPOLog, THRResult
from interp.thr.tasks import VerifiableTask, prefix_reward, word_reward

__all__ = [
    "GRPOConfig",
    "GRPOLog",
    "GRPOTrainer",
    "THRResult",
    "VerifiableTask",
    "rollout_thr",
    "prefix_reward",
    "word_reward",
    "Normalize",
    "THRInputError",
    "Vocab",
    "dominant_threshold",
    "group_advantages",
    "thr_weights",
    "token_hidden_reward",
]
