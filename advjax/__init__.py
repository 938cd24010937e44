"""advjax: adversarial attacks, training and robustness analyses in JAX.

Every attack is a pure function `attack(model_fn, x, y, *, key=None, ...)`
that compiles under `jax.jit` and maps under `jax.vmap` (DESIGN.md).
"""
from advjax import (attacks, checkpoint, checks, data, evaluation, losses,
                    models, projections, rng, sharding, sinkhorn, special,
                    training)
from advjax.attacks import (AttackResult, apgd, apgd_t, bim, fab, fgm, fgsm,
                            illc, noise, pgd, square)
from advjax.evaluation import (AutoAttackResult, RobustAccuracy, autoattack,
                               robust_accuracy)

__version__ = "0.1.0"

__all__ = [
    "attacks", "checkpoint", "checks", "data", "evaluation", "losses", "models",
    "projections", "rng", "sharding", "sinkhorn", "special", "training",
    "AttackResult", "apgd", "apgd_t", "bim", "fab", "fgm", "fgsm", "illc",
    "noise", "pgd", "square",
    "AutoAttackResult", "RobustAccuracy", "autoattack", "robust_accuracy",
]
