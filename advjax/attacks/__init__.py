"""Adversarial attacks, one module per family (see DESIGN.md section 1)."""
from advjax.attacks.apgd import APGDResult, apgd, apgd_t
from advjax.attacks.base import (AttackResult, MinimalResult, Unbounded,
                                 attack_loop, steepest_ascent)
from advjax.attacks.cw import (carlini_wagner_l0, carlini_wagner_l2,
                               carlini_wagner_linf)
from advjax.attacks.deepfool import deepfool
from advjax.attacks.fab import fab
from advjax.attacks.gradient import bim, fgm, fgsm, illc, noise, pgd
from advjax.attacks.jsma import jsma
from advjax.attacks.lbfgs import lbfgs
from advjax.attacks.square import SquareResult, square
from advjax.attacks.spatial import (SpatialResult, spatial_grid, spatial_pgd,
                                    spatial_random, spatial_worst_of_k)
from advjax.attacks.universal import UniversalResult, universal
from advjax.attacks.wasserstein import (SearchResult, WassersteinResult,
                                        wasserstein, wasserstein_search)

__all__ = ["AttackResult", "MinimalResult", "Unbounded", "attack_loop",
           "steepest_ascent",
           "fgm", "fgsm", "pgd", "bim", "illc", "noise", "WassersteinResult",
           "wasserstein", "SearchResult", "wasserstein_search", "deepfool",
           "carlini_wagner_l2", "carlini_wagner_linf", "carlini_wagner_l0",
           "jsma", "lbfgs", "SpatialResult", "spatial_grid",
           "spatial_worst_of_k", "spatial_random", "spatial_pgd",
           "UniversalResult", "universal", "APGDResult", "apgd", "apgd_t",
           "fab", "SquareResult", "square"]
