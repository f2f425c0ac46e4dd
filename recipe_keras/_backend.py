"""The backend-specific code of recipe_keras.

Input gradients (R2.12): one small function per backend, chosen by
``keras.backend.backend()`` and imported lazily. Each yields, for every cotangent
``c`` in turn, the gradient of sum(model(x, training=False) * c) with respect to
``x`` as a NumPy array, from one forward pass and a backward pass per cotangent.
Lazy in and out, so memory stays at a few copies of ``x`` however many cotangents
there are (a 1,000-step sequence has 1,000). Inference mode, because BatchNorm in
training mode mixes the batch (and on JAX leaks tracers into its statistics).
Measured pitfalls handled here: TF's tape returns None when there is no path
(zero, not an error); torch needs a leaf tensor with ``requires_grad`` on Keras's
device and grad mode switched on. JAX compiles the whole computation once, the
weights passed as arguments (``stateless_call``) so the compile cache can keep
it, and runs the backward passes ``JAX_CHUNK`` at a time under ``vmap``: R2.12 on
digits took 4.3 s cold / 1.0 s cached as one eager ``jax.grad`` per example,
2.6 / 0.3 s this way.

The compiled loss (``compiled_loss``): on JAX one jitted program instead of an
eager program for each op of the loss.

TensorFlow's traces (``trace_for_any_batch``): the checks train one model at two
batch sizes, and TF would trace its train and predict functions twice. TensorFlow's
kernel cache (``tf_kernels_kept``): the checks reseed between runs, and each
``tf.random.set_seed`` would empty it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator

import keras
import numpy as np

__all__ = ["compiled_loss", "input_gradients", "tf_kernels_kept", "trace_for_any_batch"]

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


def compiled_loss(model: keras.Model, x, y, y_pred, sample_weight=None) -> float:
    """``model.compute_loss`` in inference mode (regularizers included), as a float.

    On JAX each op of an eager ``compute_loss`` is a program of its own, traced,
    lowered and fetched from the compile cache at its first call: 16 of them for a
    sparse cross-entropy with sample weights, 0.22-0.24 s for R2.4's first loss on
    digits against 0.02 s once they exist. One jitted ``stateless_compute_loss``
    (the weights as arguments, kept on the model) is one program. TF and torch
    call ``compute_loss`` eagerly, as before.
    """
    if keras.backend.backend() != "jax":
        loss = model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        return float(keras.ops.convert_to_numpy(loss))
    loss = model.__dict__.get("_recipe_keras_loss")
    if loss is None:
        import jax

        def stateless(trainable, non_trainable, metrics, x, y, y_pred, sample_weight):
            value, _ = model.stateless_compute_loss(
                trainable, non_trainable, metrics, x, y, y_pred, sample_weight, training=False
            )
            return value

        loss = jax.jit(stateless)
        # Past Keras's attribute tracking; the cycle through the closure is collected.
        object.__setattr__(model, "_recipe_keras_loss", loss)
    state = [
        [v.value for v in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.metrics_variables,
        )
    ]
    return float(loss(*state, x, y, y_pred, sample_weight))


def trace_for_any_batch(model: keras.Model, element_spec) -> bool:
    """On TensorFlow, trace ``model``'s train and predict functions for any batch size.

    ``element_spec`` is a pipeline's (x, y) spec, its batch dimension unknown, as
    ``fit`` traces it. ``train_on_batch`` traces at the first batch's shape and
    again, relaxed, at the next size: the checks train the project's model at 8
    (R2.8) and at 64 (R2.7, R2.1), and the second trace cost 0.45 s of a 5.4 s
    suite on digits. Traced relaxed first, one trace serves every size (losses
    identical, steps as fast). Keras keeps the traced ``tf.function`` in a
    closure; where that is not as expected (another Keras, ``run_eagerly``, a
    model that needs a static batch size) nothing is traced and Keras traces as
    usual. Returns whether it traced; a no-op on JAX (which compiles per shape
    anyway) and torch.
    """
    if keras.backend.backend() != "tensorflow" or model.run_eagerly:
        return False
    import tensorflow as tf

    specs = tuple(element_spec) if isinstance(element_spec, tuple | list) else ()
    if len(specs) != 2 or not all(
        isinstance(s, tf.TensorSpec) and s.shape.rank for s in specs
    ):  # a pipeline of unknown shapes (a py_function): Keras traces at the first batch
        return False
    relaxed = [tf.TensorSpec((None, *s.shape[1:]), s.dtype) for s in specs]
    model.make_train_function()
    model.make_predict_function()
    try:
        function = model.train_function
        cells = dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=True))
        step = cells["one_step_on_data"].cell_contents.__wrapped__
        functions = [step, model.predict_function]
        if not all(isinstance(f, tf.types.experimental.PolymorphicFunction) for f in functions):
            return False
        if any(f.experimental_get_tracing_count() for f in functions):
            return False  # traced already: one more would cost, not save
        step.get_concrete_function((*relaxed, None))  # (x, y, sample_weight)
        model.predict_function.get_concrete_function([(relaxed[0],)])
    except Exception:  # only a shortcut: Keras traces at the first step, as without it
        # A failed first trace leaves the function refusing to create variables.
        model.make_train_function(force=True)
        model.make_predict_function(force=True)
        return False
    return True


@contextlib.contextmanager
def tf_kernels_kept() -> Iterator[None]:
    """Within it, ``tf.random.set_seed`` (also called by Keras's) keeps TF's kernel cache.

    TensorFlow empties the cache at every seed, so that its stateful random kernels
    (``tf.random.uniform`` and kin, which keep their position in the stream) start
    again. Everything else in it goes too: each traced function is instantiated
    again at its next call and each eager op's kernel made again. The checks reseed
    before each run they compare; on digits the emptying cost 0.46 s of TF's suite
    (median 4.95 against 4.49 s, seven alternating `make check` runs each). Keras
    3's random ops are stateless, their state a seed variable that the checks
    restore, so a Keras model needs none of it; a model with TF's own stateful
    random ops does, and R2.1 then compares runs with the cache emptied. The seed
    itself (global seed and the stream of op seeds) is set as before. Where
    TensorFlow has no such function the cache is emptied as usual.
    """
    try:
        from tensorflow.python import pywrap_tfe
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        yield
        return
    clear = getattr(pywrap_tfe, "TFE_ContextClearCaches", None)
    if clear is None:
        yield
        return
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear
