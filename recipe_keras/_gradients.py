"""Input gradients, the one backend-specific piece of recipe_keras (used by R2.12).

One small function per backend, chosen by ``keras.backend.backend()`` and
imported lazily. Each yields, for every cotangent ``c`` in turn, the gradient of
sum(model(x, training=False) * c) with respect to ``x`` as a NumPy array, from
one forward pass and a backward pass per cotangent. Lazy in and out, so memory
stays at a few copies of ``x`` however many cotangents there are (a 1,000-step
sequence has 1,000). Inference mode, because BatchNorm in training mode mixes
the batch (and on JAX leaks tracers into its statistics). Measured pitfalls
handled here: TF's tape returns None when there is no path (zero, not an
error); torch needs a leaf tensor with ``requires_grad`` on Keras's device and
grad mode switched on. JAX compiles the whole computation once, the weights
passed as arguments (``stateless_call``) so the compile cache can keep it, and
runs the backward passes ``JAX_CHUNK`` at a time under ``vmap``: R2.12 on digits
took 4.3 s cold / 1.0 s cached as one eager ``jax.grad`` per example, 2.6 / 0.3 s
this way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import keras
import numpy as np

__all__ = ["input_gradients"]

JAX_CHUNK = 16  # cotangents per vmapped backward pass on JAX


def input_gradients(
    model: keras.Layer, x: np.ndarray, cotangents: Iterable[np.ndarray]
) -> Iterator[np.ndarray]:
    """d sum(model(x) * c) / dx for each ``c`` in turn, each shaped like ``x``."""
    backend = keras.backend.backend()
    grad = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}.get(backend)
    if grad is None:
        raise RuntimeError(f"no input gradient for backend {backend!r}")
    x = np.asarray(x, dtype="float32")
    return grad(model, x, (np.asarray(c, dtype="float32") for c in cotangents))


def _tensorflow(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import tensorflow as tf

    x_tensor = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x_tensor)
        out = model(x_tensor, training=False)
    for c in cotangents:
        g = tape.gradient(out, x_tensor, output_gradients=tf.constant(c))
        yield np.zeros_like(x) if g is None else g.numpy()


def _jax(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import jax

    def projected(trainable, non_trainable, x, c):
        out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return jax.numpy.sum(out * c)

    per_cotangent = jax.jit(jax.vmap(jax.grad(projected, argnums=2), in_axes=(None, None, None, 0)))
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    while chunk := list(itertools.islice(cotangents, JAX_CHUNK)):
        yield from np.asarray(per_cotangent(trainable, non_trainable, x, np.stack(chunk)))


def _torch(model: keras.Layer, x: np.ndarray, cotangents: Iterator) -> Iterator[np.ndarray]:
    import torch

    # convert_to_tensor puts it on Keras's device; a detached clone is a leaf.
    leaf = keras.ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(leaf, training=False)
    for c in cotangents:
        (g,) = torch.autograd.grad(
            out,
            leaf,
            grad_outputs=keras.ops.convert_to_tensor(c),
            retain_graph=True,
            allow_unused=True,
        )
        yield np.zeros_like(x) if g is None else g.cpu().numpy()
