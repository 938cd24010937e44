"""Adversarial training: methods as values, the train state, pure train and
eval steps, and a resumable, sharded `fit`.

- `methods.py`: `Method` (the inner attack, its radius or eps schedule, how
  clean and adversarial losses combine, a teacher) and the presets that
  build one by name, like optax's aliases: `standard` (at a softmax
  temperature), `madry` (PGD, Madry et al. 2018), `fgsm_mix` (Goodfellow et
  al. 2015; predicted labels as in Kurakin et al. 2017), `noise_mix` (its
  random-noise control), `fgsm_rs` (Wong,
  Rice, Kolter 2020), `trades` (Zhang et al. 2019), `mart` (Wang et al.
  2020), `wasserstein` and `wasserstein_adaptive` (Wong, Schmidt, Kolter
  2019), `distillation` (Papernot et al. 2016), `spatial` (worst of k
  rotations and translations) and `spatial_augment` (Engstrom et al. 2019).
- `step.py`: `TrainState`, `create_train_state`, `make_train_step(model,
  optimizer, method)`, `make_eval_step`.
- `optimizers.py`: `l1_decay` (an L1 penalty), `freeze` (zero updates for
  named modules), `pretrain_autoencoder` (reconstruction training).
- `recipes.py`: the papers' training settings per dataset (`MADRY`).
- `schedules.py`: `eps_warmup` (a method's radius ramped up from 0).
- `fit.py`: `fit` (checkpointed with orbax, resumed exactly, one step
  compiled over every device of the mesh; per-epoch history with a warning
  when training collapses), `restore_epoch`; `kept_epochs` and
  `epoch_variables` read the kept epochs without an optimizer.
"""
from advjax.training import methods, optimizers, recipes
from advjax.training.fit import (FitResult, TrainingCollapseWarning, collapsed,
                                 fit, restore_epoch, kept_epochs,
                                 epoch_variables)
from advjax.training.methods import (METHODS, SPATIAL_METHODS, LossInputs,
                                     Method, default_attack, eps_at)
from advjax.training.optimizers import freeze, l1_decay, pretrain_autoencoder
from advjax.training.schedules import eps_warmup
from advjax.training.step import (TrainState, create_train_state,
                                  make_eval_step, make_train_step)

__all__ = ["methods", "optimizers", "recipes", "l1_decay", "freeze",
           "pretrain_autoencoder", "Method", "LossInputs", "METHODS", "SPATIAL_METHODS",
           "default_attack", "eps_at", "TrainState", "FitResult",
           "TrainingCollapseWarning", "collapsed", "fit", "create_train_state",
           "make_train_step", "make_eval_step", "restore_epoch",
           "kept_epochs", "epoch_variables", "eps_warmup"]
