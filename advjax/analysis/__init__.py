"""Analyses of adversarial perturbations (DESIGN.md section 1).

- `destruction`: Kurakin et al.'s destruction rate of adversarial examples
  under photometric transforms.
- `transfer`: which perturbation fools which input and which model:
  sharedness of per-input perturbations, the cost-change transfer of a
  perturbation to other inputs, transfer matrices between models and the
  temporal stability profile across the epochs of training.
- `stability`: whether a perturbation survives added uniform noise or a
  flipped image (D'Costa & Sriramanan's checks).
- `detection`: Metzen et al.'s detector trained to tell clean from
  adversarial inputs.
- `features`: Ilyas et al.'s robust and non-robust datasets, built from a
  model's penultimate representation and targeted attacks; `construct`
  builds one from its settings (`Construction`), cached.
- `linear`: Goodfellow et al.'s linear explanation: FGSM on logistic
  regression in closed form.
"""
from advjax.analysis.destruction import (correct_under, destruction_grid,
                                         destruction_rate, destruction_rates)
from advjax.analysis.detection import Detector, detector_accuracy, train_detector
from advjax.analysis.features import (NonRobustDataset, RobustDataset,
                                      non_robust_dataset, representation,
                                      representation_fn, robust_dataset,
                                      robust_feature_toy, target_labels)
from advjax.analysis.features import Construction, construct, median_l2
from advjax.analysis.linear import logistic_fgsm
from advjax.analysis.stability import flip_stability, noise_stability
from advjax.analysis.transfer import (LogCorrelation, StabilityProfile,
                                      TransferResult, cost_change_across,
                                      log_log_pearson, probability_across,
                                      true_class_probability,
                                      cost_change_own_vs_others,
                                      fooled_across, perturbation_transfer,
                                      sharedness, temporal_profile)

__all__ = ["destruction_rate", "destruction_rates", "correct_under",
           "destruction_grid", "Detector",
           "train_detector", "detector_accuracy", "noise_stability",
           "flip_stability", "TransferResult", "perturbation_transfer",
           "sharedness", "cost_change_own_vs_others",
           "fooled_across", "StabilityProfile", "temporal_profile",
           "representation", "representation_fn", "RobustDataset",
           "robust_dataset", "NonRobustDataset", "non_robust_dataset",
           "target_labels", "robust_feature_toy", "true_class_probability",
           "probability_across", "cost_change_across", "LogCorrelation",
           "log_log_pearson", "Construction", "construct", "median_l2",
           "logistic_fgsm"]
