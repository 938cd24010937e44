"""The linear explanation of adversarial examples (Goodfellow et al. 2015).

On a linear model a small change per input dimension adds up over many
dimensions: `w . (x + eta) = w . x + w . eta`, and `eta = eps sign(w)`
moves the activation by `eps |w|_1`, the most any Linf perturbation of
size eps can. For binary logistic regression, `p(1 | x) = sigmoid(w . x +
b)`, the gradient of the loss has the sign of `-(2y - 1) w`, so FGSM is
the closed form `logistic_fgsm` -- the exact worst case in the Linf ball
(clipped to the box).
"""
import jax.numpy as jnp

from advjax.types import Array, Bounds

__all__ = ["logistic_fgsm"]


def logistic_fgsm(w: Array, x: Array, y: Array, *, eps,
                  bounds: Bounds = (0., 1.)) -> Array:
  """FGSM on binary logistic regression in closed form.

  `x_adv = clip(x - eps (2y - 1) sign(w))`: each input moved by eps
  against its class along the sign of the weights (the bias does not
  enter). Two-class softmax regression is the same with `w = W[:, 1] -
  W[:, 0]`.

  Args:
    w: `[H, W, C]` (one input's shape) the weights of class 1's logit
      (or of the logit difference).
    x: `[B, H, W, C]` inputs inside `bounds`.
    y: `[B]` labels in {0, 1}.
    eps: scalar or `[B]` Linf budget, >= 0.
    bounds: the box.

  Returns:
    `[B, H, W, C]` like x.

  References:
    Goodfellow, Shlens, Szegedy, "Explaining and harnessing adversarial
    examples", ICLR 2015, Section 3 and Figure 2.
  """
  x = jnp.asarray(x)
  shape = (-1,) + (1,) * (x.ndim - 1)
  s = (2 * jnp.asarray(y) - 1).reshape(shape).astype(x.dtype)
  e = jnp.broadcast_to(jnp.asarray(eps, x.dtype), (x.shape[0],)).reshape(
      shape)
  return jnp.clip(x - e * s * jnp.sign(jnp.asarray(w, x.dtype))[None],
                  *bounds)
