"""Adversarial attacks, one module per family (see DESIGN.md section 1)."""
from advjax.attacks.base import AttackResult, attack_loop, steepest_ascent
from advjax.attacks.gradient import bim, fgm, fgsm, illc, noise, pgd
from advjax.attacks.wasserstein import (SearchResult, WassersteinResult,
                                        wasserstein, wasserstein_search)

__all__ = ["AttackResult", "attack_loop", "steepest_ascent", "fgm", "fgsm",
           "pgd", "bim", "illc", "noise", "WassersteinResult", "wasserstein",
           "SearchResult", "wasserstein_search"]
