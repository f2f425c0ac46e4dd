"""R2.4 verify the loss at init, R2.5 initialise the final layer from the data.

A fresh classifier should be unsure of every class: its loss is -log(1/C), or,
once its final bias holds the log class priors (R2.5), the entropy of those
priors. A start far above that is over-confident (raw 0-255 pixels, a final
layer at a large scale) and wastes the first steps undoing it. This check cannot
see a double softmax (softmax of probabilities is near uniform, so the loss sits
at ln C by construction): R2.8 catches that one.

For L2 regression the same holds with the target variance: a fresh regressor
should predict about its final bias, which R2.5 sets to the target mean, so its
mean squared error starts at the targets' variance (their second moment while the
bias is still zero). Over that means outputs that swing at init: unnormalised
inputs, or a final layer at a large scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from recipe_keras._backend import compiled_loss, predict_batch
from recipe_keras.checks.result import CheckResult
from recipe_keras.models import flat_layers

__all__ = [
    "check_bias_init",
    "check_init_loss",
    "check_regression_bias_init",
    "check_regression_init_loss",
    "class_priors",
    "expected_init_loss",
    "expected_regression_loss",
    "init_final_bias",
    "init_regression_bias",
    "measure_loss",
    "require_mean_squared_error",
    "target_rows",
    "targets_of",
]


def class_priors(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Frequency of each class among ``labels``."""
    counts = np.bincount(np.asarray(labels).astype(int).ravel(), minlength=num_classes)
    return counts / counts.sum()


def expected_init_loss(num_classes: int, priors: np.ndarray | None = None) -> float:
    """-log(1/C), or the priors' entropy when the final bias holds log priors."""
    if priors is None:
        return math.log(num_classes)
    p = priors[priors > 0]
    return float(-(p * np.log(p)).sum())


def measure_loss(
    model: keras.Model, batches: Sequence[tuple[np.ndarray, np.ndarray]], balanced: bool = False
) -> float:
    """The compiled loss (regularizers included) over ``batches``, in inference mode.

    ``balanced``: each class present counts equally (the mean of its examples'
    losses), as if the labels were uniform.

    ``evaluate`` gives the same number, but on TensorFlow it traces a test function
    the suite needs nowhere else; ``predict_on_batch`` reuses the predict function
    R2.7 needs anyway, so the first call costs a fraction of a new trace.
    """
    if balanced:  # N / (K n_c): the weighted mean is the mean over classes of class means
        labels = np.concatenate([np.asarray(y).astype(int).ravel() for _, y in batches])
        counts = np.bincount(labels)
        per_class = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    total, count = 0.0, 0
    for x, y in batches:
        weight = None
        if balanced:
            weight = per_class[np.asarray(y).astype(int).ravel()].astype("float32")
        y_pred = keras.tree.map_structure(keras.ops.convert_to_tensor, predict_batch(model, x))
        total += compiled_loss(model, x, y, y_pred, weight) * len(y)
        count += len(y)
    return total / count


def check_init_loss(
    model: keras.Model,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    priors: np.ndarray | None = None,
    tolerance: float = 0.1,
) -> CheckResult:
    """R2.4: the untrained model's loss against its expected value (relative tolerance).

    Without ``priors`` the loss is class-balanced. Its value at init is -log(1/C)
    whatever the imbalance, while the plain loss also depends on which way the
    untrained model happens to lean: on a 9:1 folder it ranged 0.64-0.87 over 12
    seeds of a correct CNN (ln 2 = 0.69), and one seed failed as "over-confident".
    With ``priors`` (after R2.5) the plain loss is compared with their entropy.
    """
    measured = measure_loss(model, batches, balanced=priors is None)
    expected = expected_init_loss(num_classes, priors)
    verdict, advice, deviation = _init_verdict(
        measured,
        expected,
        tolerance,
        high="the model starts over-confident: normalise the inputs (e.g. pixels to [0, 1]) "
        "and check the final layer's initial scale",
        low="the loss is below chance before any training: do labels leak into the inputs, "
        "or does the model output probabilities where the loss expects logits?",
    )
    what = "-log(1/C)" if priors is None else "entropy of the class priors"
    return CheckResult(
        "R2.4",
        "loss at init",
        verdict,
        measured=f"{measured:.4f}" + (" (class-balanced)" if priors is None else ""),
        expected=f"{expected:.4f} = {what} (±{tolerance:.0%})",
        advice=advice,
        numbers={
            "init_loss": measured,
            "class_balanced": priors is None,
            "expected": expected,
            "deviation": deviation,
        },
    )


def _init_verdict(
    measured: float, expected: float, tolerance: float, high: str, low: str, chance: bool = False
) -> tuple[str, str, float]:
    """pass within ``tolerance`` (relative), warn within 2.5 times it, else fail.

    ``chance``: the loss may fall below the expected value by chance, so below it
    only warns, and only past 2.5 times the tolerance.
    """
    deviation = abs(measured - expected) / max(expected, 1e-12)
    if chance and measured < expected:
        verdict = "warn" if deviation > 2.5 * tolerance else "pass"
    else:
        verdict = (
            "pass" if deviation <= tolerance else "warn" if deviation <= 2.5 * tolerance else "fail"
        )
    advice = "" if verdict == "pass" else high if measured > expected else low
    return verdict, advice, deviation


def target_rows(targets: np.ndarray) -> np.ndarray:
    """Regression targets as (examples, outputs) float64, whatever their trailing shape."""
    y = np.asarray(targets, dtype="float64")
    return y.reshape(len(y), -1)


def targets_of(batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Every target of ``batches`` as (examples, outputs) floats."""
    return target_rows(np.concatenate([np.asarray(y) for _, y in batches]))


def require_mean_squared_error(model: keras.Model) -> None:
    """R2.4's expected value for regression holds for the mean squared error only."""
    loss = model.loss
    name = loss if isinstance(loss, str) else type(loss).__name__
    if name not in ("mse", "mean_squared_error", "MeanSquaredError"):
        raise ValueError(
            f"the expected loss at init is known for the mean squared error; {model.name!r} "
            f"is compiled with loss={name!r}; allowed: 'mse' or keras.losses.MeanSquaredError()"
        )


def expected_regression_loss(targets: np.ndarray, bias: np.ndarray | float = 0.0) -> float:
    """Mean squared error of always predicting ``bias``: the target variance at the mean.

    Keras's MSE averages over the outputs, so this is the mean over outputs of
    E[(y - b)^2]: the variance plus (mean - b)^2.
    """
    return float(np.mean((target_rows(targets) - np.ravel(bias)) ** 2))


def check_regression_init_loss(
    model: keras.Model, batches: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float = 0.1
) -> CheckResult:
    """R2.4 for L2 regression: the untrained model's MSE against that of predicting its bias.

    After R2.5 (bias = target mean) that is the target variance; with a zero bias,
    the targets' second moment. Far over it, the outputs swing at init. Under it
    only warns: a random init's outputs correlate with the targets by chance (a
    correct MLP started 13% under the variance of targets with a tenth of its spread).
    """
    require_mean_squared_error(model)
    y = targets_of(batches)
    bias = _final_bias(model, y.shape[1])
    bias = np.zeros(y.shape[1]) if bias is None else keras.ops.convert_to_numpy(bias)
    measured = measure_loss(model, batches)
    expected = expected_regression_loss(y, bias)
    verdict, advice, deviation = _init_verdict(
        measured,
        expected,
        tolerance,
        high="the outputs swing at init: normalise the inputs and the targets, and start "
        "the final layer small (kernel_initializer='zeros': the model predicts its bias)",
        low="the loss is far below that of predicting the final bias before any training: "
        "do the targets leak into the inputs?",
        chance=True,
    )
    at_mean = np.allclose(bias, y.mean(axis=0), rtol=1e-4, atol=1e-6)
    what = "target variance" if at_mean else "mean of (y - final bias)^2"
    return CheckResult(
        "R2.4",
        "loss at init (L2 regression)",
        verdict,
        measured=f"{measured:.4g}",
        expected=f"{expected:.4g} = {what} (±{tolerance:.0%})",
        advice=advice,
        numbers={
            "init_loss": measured,
            "expected": expected,
            "deviation": deviation,
            "bias_at_target_mean": bool(at_mean),
        },
    )


def _final_bias(model: keras.Model, num_classes: int):
    for layer in reversed(flat_layers(model)):  # resnet50's Dense is in a nested head
        bias = getattr(layer, "bias", None)
        if bias is not None and tuple(bias.shape) == (num_classes,):
            return bias
    return None


def init_final_bias(model: keras.Model, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """R2.5: set the final layer's bias to the log class priors of ``labels``.

    The model then starts by predicting the class frequencies, so its first
    steps go to learning, not to discovering the imbalance. Returns the bias.
    """
    priors = class_priors(labels, num_classes)
    return _set_final_bias(model, np.log(np.maximum(priors, 1e-6)))


def _set_final_bias(model: keras.Model, value: np.ndarray) -> np.ndarray:
    """Assign ``value`` to the final bias of its shape (R2.5); returns it as float32."""
    value = np.asarray(value, dtype="float32")
    bias = _final_bias(model, len(value))
    if bias is None:
        raise ValueError(
            f"no layer with a bias of shape ({len(value)},) to initialise; "
            "the model's last Dense layer needs use_bias=True"
        )
    bias.assign(value)
    return value


def check_bias_init(
    model: keras.Model,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    train_labels: np.ndarray,
    num_classes: int,
) -> CheckResult:
    """R2.5: init loss before and after setting the final bias from the class priors."""
    before = measure_loss(model, batches)
    try:
        init_final_bias(model, train_labels, num_classes)
    except ValueError as exc:
        return CheckResult(
            "R2.5", "init final bias from priors", "warn", "not applicable", "", str(exc)
        )
    after = measure_loss(model, batches)
    priors = class_priors(train_labels, num_classes)
    expected = expected_init_loss(num_classes, priors)
    imbalance = float(priors.max() / max(priors.min(), 1e-12))
    verdict = "pass" if after <= before + 0.05 * expected else "warn"
    return CheckResult(
        "R2.5",
        "init final bias from priors",
        verdict,
        measured=f"loss {before:.4f} -> {after:.4f}",
        expected=f"<= {before:.4f}, near {expected:.4f} (prior entropy)",
        advice=""
        if verdict == "pass"
        else "log-prior bias did not lower the init loss: is the final layer linear (logits)?",
        numbers={
            "loss_before": before,
            "loss_after": after,
            "prior_entropy": expected,
            "imbalance_ratio": imbalance,
        },
    )


def init_regression_bias(model: keras.Model, targets: np.ndarray) -> np.ndarray:
    """R2.5 for regression: set the final layer's bias to the mean of ``targets``.

    The model then starts by predicting the mean, and its loss at the target
    variance (R2.4) rather than at the second moment. Returns the bias.
    """
    return _set_final_bias(model, target_rows(targets).mean(axis=0))


def check_regression_bias_init(
    model: keras.Model,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    train_targets: np.ndarray,
) -> CheckResult:
    """R2.5 for regression: MSE at init before and after the final bias takes the target mean."""
    require_mean_squared_error(model)
    before = measure_loss(model, batches)
    try:
        init_regression_bias(model, train_targets)
    except ValueError as exc:
        return CheckResult(
            "R2.5", "init final bias to the target mean", "warn", "not applicable", "", str(exc)
        )
    after = measure_loss(model, batches)
    y = targets_of(batches)
    variance = expected_regression_loss(y, y.mean(axis=0))
    verdict = "pass" if after <= before + 0.05 * variance else "warn"
    return CheckResult(
        "R2.5",
        "init final bias to the target mean",
        verdict,
        measured=f"loss {before:.4g} -> {after:.4g}",
        expected=f"<= {before:.4g}, near {variance:.4g} (target variance)",
        advice=""
        if verdict == "pass"
        else "the target-mean bias did not lower the init loss: is the final layer linear?",
        numbers={"loss_before": before, "loss_after": after, "target_variance": variance},
    )
