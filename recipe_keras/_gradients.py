"""Input gradients, the one backend-specific piece of recipe_keras (used by R2.12).

One small function per backend, chosen by ``keras.backend.backend()`` and
imported lazily. Each returns d fn(x) / d x as a NumPy array, where ``fn`` maps
a backend tensor to a scalar using ``keras.ops``. Measured pitfalls handled here:
TF's tape returns None when there is no path (zero, not an error); JAX needs
``fn`` to call the model with ``training=False`` (BatchNorm in training mode
leaks tracers); torch needs a leaf tensor with ``requires_grad`` on Keras's
device and grad mode switched on.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

__all__ = ["input_gradient"]


def input_gradient(fn: Callable, x: np.ndarray) -> np.ndarray:
    """The gradient of the scalar ``fn(x)`` with respect to the whole input ``x``."""
    backend = keras.backend.backend()
    grad = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}.get(backend)
    if grad is None:
        raise RuntimeError(f"no input gradient for backend {backend!r}")
    return grad(fn, np.asarray(x, dtype="float32"))


def _tensorflow(fn: Callable, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x)
    grad = tape.gradient(value, x)
    return np.zeros(x.shape, "float32") if grad is None else grad.numpy()


def _jax(fn: Callable, x: np.ndarray) -> np.ndarray:
    import jax

    return np.asarray(jax.grad(fn)(jax.numpy.asarray(x)))


def _torch(fn: Callable, x: np.ndarray) -> np.ndarray:
    import torch

    # convert_to_tensor puts it on Keras's device; a detached clone is a leaf.
    leaf = keras.ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        fn(leaf).backward()
    return np.zeros(x.shape, "float32") if leaf.grad is None else leaf.grad.cpu().numpy()
