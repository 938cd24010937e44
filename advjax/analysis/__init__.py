"""Analyses of adversarial perturbations (DESIGN.md section 1).

- `destruction`: Kurakin et al.'s destruction rate of adversarial examples
  under photometric transforms (and a simulated photo), their prefilter.
- `physical`: Kurakin et al.'s physical-world study per example (clean and
  adversarial images before and after a simulated photo, under a
  transform grid) and its summaries per set.
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
- `epochs`: Metzen's study of perturbations across the kept epochs of a
  training run (`EpochStudy`: per epoch, across epochs, detectability),
  and `batched_transfer`, `mean_cost_change`, `fit_universal`.
- `agreement`: where two models' per-example outcomes differ (right under
  one, wrong under the other), from arrays or `evaluation.to_bits`
  strings.
"""
from advjax.analysis.agreement import Disagreement, disagreement
from advjax.analysis.destruction import (correct_under, destruction_grid,
                                         destruction_rate, destruction_rates,
                                         prefilter)
from advjax.analysis.physical import (PhysicalWorld,
                                      PhysicalWorldEvaluator, photographs,
                                      physical_world)
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
from advjax.analysis.transfer import (amplified, error_rate, gaussian_noise,
                                      mean_distortion, off_diagonal_mean, rms,
                                      transfer_examples, transfer_matrix,
                                      transfer_study)

__all__ = ["destruction_rate", "destruction_rates", "correct_under",
           "destruction_grid", "prefilter", "PhysicalWorld",
           "PhysicalWorldEvaluator", "physical_world", "photographs", "Detector",
           "train_detector", "detector_accuracy", "noise_stability",
           "flip_stability", "TransferResult", "perturbation_transfer",
           "sharedness", "cost_change_own_vs_others",
           "fooled_across", "StabilityProfile", "temporal_profile",
           "representation", "representation_fn", "RobustDataset",
           "robust_dataset", "NonRobustDataset", "non_robust_dataset",
           "target_labels", "robust_feature_toy", "true_class_probability",
           "probability_across", "cost_change_across", "LogCorrelation",
           "log_log_pearson", "Disagreement", "disagreement", "Construction",
           "construct", "median_l2", "logistic_fgsm", "rms",
           "mean_distortion", "amplified", "gaussian_noise", "error_rate",
           "transfer_examples", "transfer_matrix", "off_diagonal_mean",
           "transfer_study"]

# D'Costa & Sriramanan's directed-perturbation studies (stability.py).
from advjax.analysis.stability import (Cliff, EpsSweep, cliff_study,
                                       eps_sweep, epsilon_cliff,
                                       first_reaching, perturbation_checks,
                                       perturbed_probs, reused_perturbation)

__all__ += ["EpsSweep", "eps_sweep", "Cliff", "epsilon_cliff",
            "perturbed_probs", "first_reaching", "perturbation_checks",
            "cliff_study", "reused_perturbation"]

# Perturbations across the epochs of a run (epochs.py).
from advjax.analysis.epochs import (EpochStudy, Unbounded,
                                    batched_transfer, detectability,
                                    epoch_figures, epoch_tables,
                                    fit_universal, mean_cost_change,
                                    mean_destruction, summarize)

__all__ += ["EpochStudy", "Unbounded", "batched_transfer",
            "mean_cost_change", "fit_universal", "detectability",
            "summarize", "mean_destruction", "epoch_figures",
            "epoch_tables"]
