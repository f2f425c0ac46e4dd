"""R2.12 use backprop to chart dependencies.

(a) Batch independence: the gradient of example i's output with respect to the
whole input batch must be zero everywhere but at row i; a reshape that mixes
the batch axis, or a statistic taken over it, shows as non-zero rows j != i.
(b) Causality, for sequence models: output t must not depend on inputs after t.

Measured pitfalls this module avoids: the model runs in inference mode
(BatchNorm in training mode mixes the batch legitimately); each output is
projected on random weights (the gradient of summed softmax outputs is only
rounding noise); a zero gradient at i itself makes the test vacuous, reported as
a warning, never a pass. Integer token inputs have no gradient: given integer
inputs and a model with an Embedding, both checks run from its output
(``from_embedding``).
"""

from __future__ import annotations

import keras
import numpy as np

from recipe_keras._backend import input_gradients
from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = [
    "batch_dependencies",
    "check_batch_independence",
    "check_causality",
    "from_embedding",
    "time_dependencies",
]


def from_embedding(model: keras.Model, tokens: np.ndarray) -> tuple[keras.Model, np.ndarray]:
    """For integer token inputs: the model from its Embedding's output on, and that output.

    No gradient reaches integer tokens (TensorFlow's tape gives None, JAX and torch a
    zero through the cast), so on tokens every row would be vacuous. An embedding
    vector depends on its own token alone, so the outputs depend on the embeddings
    exactly where they depend on the tokens. The first Embedding of a Sequential or
    functional model is used; the rest of the model must need nothing else from the
    tokens. A ``mask_zero`` padding mask is not carried over: a mask only removes
    dependencies, so checking without it hides no leak.
    """
    embedding = next((la for la in model.layers if isinstance(la, keras.layers.Embedding)), None)
    fix = (
        "differentiate from the first float tensor yourself: check the part of the model "
        "after it on that tensor, e.g. check_causality(rest, embed(tokens))"
    )
    if embedding is None:
        raise ValueError(
            f"integer inputs ({np.asarray(tokens).dtype}) have no gradient, and "
            f"{model.name!r} has no keras.layers.Embedding among its layers to start from; " + fix
        )
    if isinstance(model, keras.Sequential):
        tail = keras.Sequential(model.layers[model.layers.index(embedding) + 1 :])
    else:
        try:
            tail = keras.Model(embedding.output, model.output)
        except (AttributeError, ValueError) as error:  # subclassed; or the tokens used again
            raise ValueError(
                f"cannot cut {model.name!r} at its Embedding {embedding.name!r} ({error}); " + fix
            ) from error
    embedded = keras.ops.convert_to_numpy(embedding(np.asarray(tokens)))
    if not tail.built:  # a Sequential of built layers, without an Input yet
        tail.build((None, *embedded.shape[1:]))
    return tail, embedded


_EMBEDDED = " (tokens: from the embedding output)"  # appended to R2.12's measured text


def _tokens(model: keras.Model, x: np.ndarray) -> bool:
    """Integer inputs into a model with an Embedding: tokens, with no gradient.

    Integer inputs into a model without one (uint8 pixels before a Rescaling) are
    differentiated as floats, as before: the gradient flows there.
    """
    return np.asarray(x).dtype.kind in "iub" and any(
        isinstance(layer, keras.layers.Embedding) for layer in model.layers
    )


def _differentiable(model: keras.Model, x: np.ndarray) -> tuple[keras.Model, np.ndarray]:
    """The model and inputs to differentiate: token inputs go through ``from_embedding``."""
    return from_embedding(model, x) if _tokens(model, x) else (model, x)


def _output_shape(model: keras.Model, x: np.ndarray) -> tuple[int, ...]:
    """The model's output shape on ``x``, traced symbolically.

    A probe call would run the model eagerly, and on JAX every eager op at a new
    shape is traced, lowered and compiled on its own. Code that cannot run
    symbolically is called on ``x`` instead.
    """
    try:
        shape = tuple(model.compute_output_spec(keras.KerasTensor(x.shape, x.dtype)).shape)
        if None not in shape:
            return shape
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        pass
    return tuple(model(x, training=False).shape)


def _norms(grad: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.abs(grad), axis, 0)
    return moved.reshape(moved.shape[0], -1).max(axis=1)


def batch_dependencies(
    model: keras.Model, x: np.ndarray, seed: int = 0, tolerance: float = 1e-6
) -> tuple[list[tuple[int, int]], list[int]]:
    """(pairs (i, j): output i depends on input j != i; examples whose own gradient is zero)."""
    model, x = _differentiable(model, x)
    rng = np.random.default_rng(seed)
    out_shape = _output_shape(model, x[:1])[1:]

    def cotangent(i: int) -> np.ndarray:
        """Example i's output projected on random weights; the others ignored."""
        c = np.zeros((len(x), *out_shape), "float32")
        c[i] = rng.standard_normal(out_shape)
        return c

    offending, vacuous = [], []
    cotangents = (cotangent(i) for i in range(len(x)))  # drawn lazily, in order
    for i, grad in enumerate(input_gradients(model, x, cotangents)):
        norms = _norms(grad, axis=0)
        if norms[i] == 0:
            vacuous.append(i)
        scale = max(norms[i], 1e-30)
        offending += [(i, j) for j in range(len(x)) if j != i and norms[j] > tolerance * scale]
    return offending, vacuous


def time_dependencies(
    model: keras.Model, x: np.ndarray, seed: int = 0, tolerance: float = 1e-6
) -> tuple[list[tuple[int, int]], list[int]]:
    """(pairs (t, s): output t depends on input s > t; steps whose own gradient is zero)."""
    model, x = _differentiable(model, x)
    rng = np.random.default_rng(seed)
    out_shape = _output_shape(model, x)

    def cotangent(t: int) -> np.ndarray:
        """Every example's output at step t projected on random weights."""
        c = np.zeros(out_shape, "float32")
        c[:, t] = rng.standard_normal(out_shape[:1] + out_shape[2:])
        return c

    offending, vacuous = [], []
    cotangents = (cotangent(t) for t in range(out_shape[1]))
    for t, grad in enumerate(input_gradients(model, x, cotangents)):
        norms = _norms(grad, axis=1)
        if norms[: t + 1].max() == 0:
            vacuous.append(t)
        scale = max(norms[: t + 1].max(), 1e-30)
        offending += [(t, s) for s in range(t + 1, len(norms)) if norms[s] > tolerance * scale]
    return offending, vacuous


def _verdict(offending: list, vacuous: list, what: str, fix: str) -> tuple[str, str]:
    if offending:
        return Verdict.FAIL, f"{what}; {fix}"
    if vacuous:
        return Verdict.WARN, (
            f"vacuous at {vacuous[:8]}: the gradient is zero even where it must not be "
            "(all-zero inputs? dead units?); rerun on real or random inputs"
        )
    return Verdict.PASS, ""


def check_batch_independence(model: keras.Model, x: np.ndarray, seed: int = 0) -> CheckResult:
    """R2.12a on a batch of real inputs (8 examples are plenty)."""
    offending, vacuous = batch_dependencies(model, x, seed)
    tokens = _tokens(model, x)
    verdict, advice = _verdict(
        offending,
        vacuous,
        f"outputs depend on other examples, (output, input) pairs {offending[:8]}",
        "look for a reshape/transpose that mixes the batch axis or a statistic over axis 0",
    )
    return CheckResult(
        "R2.12",
        "batch independence (backprop)",
        verdict,
        measured=f"{len(offending)} cross-example dependencies, {len(vacuous)} vacuous rows"
        + (_EMBEDDED if tokens else ""),
        expected="0 and 0",
        advice=advice,
        numbers={
            "offending": offending[:64],
            "vacuous": vacuous,
            "examples": len(x),
            "from_embedding": tokens,
        },
    )


def check_causality(model: keras.Model, x: np.ndarray, seed: int = 0) -> CheckResult:
    """R2.12b for a sequence model mapping (batch, time, ...) to (batch, time, ...)."""
    offending, vacuous = time_dependencies(model, x, seed)
    tokens = _tokens(model, x)
    verdict, advice = _verdict(
        offending,
        vacuous,
        f"outputs see the future, (output step, input step) pairs {offending[:8]}",
        "use causal padding or a mask that hides steps after t",
    )
    return CheckResult(
        "R2.12",
        "causality (backprop)",
        verdict,
        measured=f"{len(offending)} dependencies on later steps" + (_EMBEDDED if tokens else ""),
        expected="0",
        advice=advice,
        numbers={
            "offending": offending[:64],
            "vacuous": vacuous,
            "from_embedding": tokens,
        },
    )
