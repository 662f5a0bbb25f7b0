"""CorrSteer: correlation-selected SAE features for steering (Cho et al. 2025, arXiv 2508.12535).

Collect SAE feature activations on generated tokens, correlate them with correctness from running
sums, pick the best features (S / A / P), and steer by adding their decoder directions at the SAE's
own hook, only at generated positions. Baselines (difference of means, random features, unsteered)
and held-out reports with bootstrap CIs and the side-effect ratio come with it.

>>> from interp.steering import run_corrsteer                         # doctest: +SKIP
>>> report = run_corrsteer(model, saes, task.split(0.6, 0.1))  # task: an interp.core.tasks.Task  # doctest: +SKIP
"""

from interp.steering.baselines import diff_of_means, random_features
from interp.steering.collect import Collection, Pooling, collect, default_pooling
from interp.steering.corrsteer import CorrSteerConfig, compare_generations, evaluate_vectors, run_corrsteer, scale_sweep
from interp.steering.features import logit_readout, top_examples
from interp.steering.report import Arm, SteeringReport, bootstrap_ci, side_effect_ratio
from interp.steering.saes import HookError, resolve_saes
from interp.steering.select import SelectedFeature, select_features, to_vectors, variant_a, variant_p, variant_s
from interp.steering.stats import CorrelationStats, OneClassLabelsError, all_reduce
from interp.steering.steer import SteeringVector, steer

__all__ = [
    "Arm", "Collection", "CorrSteerConfig", "CorrelationStats", "HookError", "OneClassLabelsError", "Pooling",
    "SelectedFeature", "SteeringReport", "SteeringVector", "all_reduce", "bootstrap_ci", "collect",
    "compare_generations", "default_pooling", "diff_of_means", "evaluate_vectors", "logit_readout",
    "random_features", "resolve_saes", "run_corrsteer", "scale_sweep", "select_features", "side_effect_ratio",
    "steer", "to_vectors", "top_examples", "variant_a", "variant_p", "variant_s",
]
