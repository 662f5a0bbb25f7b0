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
from interp.thr.tasks import TaskItem, VerifiableTask, story_word_task, zoo_task

__all__ = [
    "GRPOConfig",
    "GRPOLog",
    "GRPOTrainer",
    "THRResult",
    "TaskItem",
    "VerifiableTask",
    "rollout_thr",
    "story_word_task",
    "zoo_task",
    "Normalize",
    "THRInputError",
    "Vocab",
    "dominant_threshold",
    "group_advantages",
    "thr_weights",
    "token_hidden_reward",
]
