"""Evaluation: the sharded, deterministic, resumable batch iterator and the
evaluators built on it.

| module | holds |
|---|---|
| `batching` | `map_batched` (any function over the examples of arrays of any size: padded, masked, sharded, per-example keys; the one public batched map), `map_examples` (fixed calls of `device_batch` examples per device, the last padded and masked, sharded over every device and process), `ResultStore` (per-example results saved as computed, resume) |
| `predict` | `predict` (labels, logits or probabilities of any number of inputs), `accuracy` |
| `adversarial` | `adversarial_examples`: an attack's adversarial image of every input |
| `robust_accuracy` | `robust_accuracy`: accuracy under an attack over an eps sweep |
| `autoattack` | `autoattack`: Croce & Hein's cascade (APGD-CE, APGD-T, FAB-T, Square), per example the worst case |
| `minimal` | `minimal_distance`: the smallest adversarial perturbation a minimal-norm attack finds, per example; `every_target` (towards every other class) and `target_cases` (best, average, worst target; Carlini & Wagner) |
| `spatial` | `spatial_robustness`: accuracy under rotations and translations (natural, random, worst-of-k, first-order, grid; Engstrom et al. 2019); `SpatialRanges` at several ranges |
| `outcomes` | `to_bits`, `from_bits`: per-example outcomes kept in a run's results |
| `loss_landscape` | `attack_convergence` (PGD's loss per iteration for sign, SGD and Adam steps), `loss_concentration` (the final losses of many random restarts per input; Madry et al.) |
| `diagnostics` | `diagnostics`: checks for gradient masking (Carlini et al. 2019; AutoAttack's flags) |
| `confidence` | `error_confidence`: per example right or wrong and the top softmax probability, on clean or attacked inputs (Goodfellow et al.'s error and confidence) |
| `early_stopping` | `early_stopping`: the kept epoch of lowest score (a validation error), read without an optimizer |
| `curves` | `eps_at_accuracy`: the smallest eps of a sweep at which the accuracy falls to a level |
| `throughput` | `time_calls`: interleaved timed calls (medians, min, max), `machine()`; `jit_call`/`attack_call`, `time_items` (peers side by side, ratios), `adversarial_quality`/`score_adversarials`, `time_projections`, `StepCall`, `epoch_fields` and the timing tables: the timing benchmarks' protocol |

Every evaluator's per-example result depends only on the example, its
global index, the key and `device_batch_size`: it is bit-identical for
any batch size and any number of devices or processes (tested). Each is
also an object with `run(apply_fn, variables, data)` (`*Evaluator`), built
by name with `from_config`.
"""
from advjax.evaluation import batching, minimal, spatial, throughput
from advjax.evaluation.autoattack import (ATTACKS, VERSIONS, AutoAttackEvaluator,
                                          AutoAttackRepeats, AutoAttackResult,
                                          autoattack, autoattack_repeats,
                                          autoattack_stages)
from advjax.evaluation.batching import (DEFAULT_DEVICE_BATCH,
                                        EvaluationMismatchError, ResultStore,
                                        make_plan, map_batched, map_examples)
from advjax.evaluation.diagnostics import (Diagnostics, DiagnosticsEvaluator,
                                           diagnostics)
from advjax.evaluation.predict import (ProbabilityOutputsWarning, accuracy,
                                      predict, probability_rows)
from advjax.evaluation.adversarial import adversarial_examples
from advjax.evaluation.loss_landscape import (AttackConvergence,
                                              AttackConvergenceEvaluator,
                                              LossConcentration,
                                              LossConcentrationEvaluator,
                                              attack_convergence,
                                              loss_concentration)
from advjax.evaluation.minimal import (EveryTarget, EveryTargetEvaluator,
                                       MinimalDistance,
                                       MinimalDistanceEvaluator, every_target,
                                       minimal_distance, target_cases)
from advjax.evaluation.robust_accuracy import (RobustAccuracy,
                                               RobustAccuracyEvaluator,
                                               make_robust_accuracy_fn,
                                               pad_batch, robust_accuracy)
from advjax.evaluation.confidence import ErrorConfidence, error_confidence
from advjax.evaluation.curves import eps_at_accuracy
from advjax.evaluation.early_stopping import EarlyStopping, early_stopping
from advjax.evaluation.spatial import (SpatialRobustness,
                                       SpatialRobustnessEvaluator,
                                       spatial_robustness)
from advjax.evaluation.spatial import (SpatialRanges, SpatialRangesResult,
                                       range_label)
from advjax.evaluation.outcomes import from_bits, to_bits

EVALUATORS = {
    "robust_accuracy": RobustAccuracyEvaluator,
    "autoattack": AutoAttackEvaluator,
    "minimal_distance": MinimalDistanceEvaluator,
    "every_target": EveryTargetEvaluator,
    "spatial_robustness": SpatialRobustnessEvaluator,
    "spatial_ranges": SpatialRanges,
    "attack_convergence": AttackConvergenceEvaluator,
    "loss_concentration": LossConcentrationEvaluator,
}


def from_config(name: str, **settings):
  """An evaluator by name (`EVALUATORS`) with its settings, e.g.
  `from_config('autoattack', norm='linf', eps=0.3)`."""
  if name not in EVALUATORS:
    raise ValueError(f"Unknown evaluator {name!r}; use one of "
                     f"{sorted(EVALUATORS)}.")
  return EVALUATORS[name](**settings)


__all__ = [
    "batching", "minimal", "spatial", "throughput", "EVALUATORS", "from_config",
    "DEFAULT_DEVICE_BATCH", "EvaluationMismatchError", "ResultStore",
    "make_plan", "map_batched", "map_examples",
    "RobustAccuracy", "RobustAccuracyEvaluator", "make_robust_accuracy_fn",
    "pad_batch", "robust_accuracy",
    "ATTACKS", "VERSIONS", "AutoAttackEvaluator", "AutoAttackResult",
    "autoattack", "autoattack_stages", "AutoAttackRepeats",
    "autoattack_repeats", "DiagnosticsEvaluator",
    "MinimalDistance", "MinimalDistanceEvaluator", "minimal_distance",
    "EveryTarget", "EveryTargetEvaluator", "every_target", "target_cases",
    "SpatialRobustness", "SpatialRobustnessEvaluator", "spatial_robustness",
    "Diagnostics", "diagnostics", "predict", "accuracy",
    "ProbabilityOutputsWarning", "probability_rows",
    "adversarial_examples",
    "AttackConvergence", "AttackConvergenceEvaluator", "attack_convergence",
    "LossConcentration", "LossConcentrationEvaluator", "loss_concentration",
    "SpatialRanges", "SpatialRangesResult", "range_label", "to_bits",
    "from_bits",
    "ErrorConfidence", "error_confidence", "eps_at_accuracy",
    "EarlyStopping", "early_stopping",
]
