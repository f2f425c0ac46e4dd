"""R2.5 "initialise well": the final layer's bias from the data, and the loss at init.

A classifier's final bias set to the log class priors starts it predicting the
class frequencies, so its first steps go to learning rather than to discovering an
imbalance (a regressor's, to the target mean). ``make train`` applies it
(``init_from_priors``) and ``make check`` measures it; R2.4 (``checks.init``)
compares the loss at init with what these functions expect.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import keras
import numpy as np

from recipe_keras._backend import compiled_loss, predict_batch
from recipe_keras.data import Splits, first_batches, labels_of
from recipe_keras.models import flat_layers
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "check_bias_init",
    "check_regression_bias_init",
    "class_priors",
    "expected_init_loss",
    "expected_regression_loss",
    "final_bias",
    "init_final_bias",
    "init_from_priors",
    "init_regression_bias",
    "init_to_mean",
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


def target_rows(targets: np.ndarray) -> np.ndarray:
    """Regression targets as (examples, outputs) float64, whatever their trailing shape."""
    y = np.asarray(targets, dtype="float64")
    return y.reshape(len(y), -1)


def targets_of(batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Every target of ``batches`` (a list of pairs, or a batched split read whole) as
    (examples, outputs) floats."""
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


def final_bias(model: keras.Model, num_classes: int):
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
    bias = final_bias(model, len(value))
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
            "R2.5", "init final bias from priors", Verdict.WARN, "not applicable", "", str(exc)
        )
    after = measure_loss(model, batches)
    priors = class_priors(train_labels, num_classes)
    expected = expected_init_loss(num_classes, priors)
    imbalance = float(priors.max() / max(priors.min(), 1e-12))
    verdict = Verdict.PASS if after <= before + 0.05 * expected else Verdict.WARN
    return CheckResult(
        "R2.5",
        "init final bias from priors",
        verdict,
        measured=f"loss {before:.4f} -> {after:.4f}",
        expected=f"<= {before:.4f}, near {expected:.4f} (prior entropy)",
        advice=""
        if verdict == Verdict.PASS
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
            "R2.5",
            "init final bias to the target mean",
            Verdict.WARN,
            "not applicable",
            "",
            str(exc),
        )
    after = measure_loss(model, batches)
    y = targets_of(batches)
    variance = expected_regression_loss(y, y.mean(axis=0))
    verdict = Verdict.PASS if after <= before + 0.05 * variance else Verdict.WARN
    return CheckResult(
        "R2.5",
        "init final bias to the target mean",
        verdict,
        measured=f"loss {before:.4g} -> {after:.4g}",
        expected=f"<= {before:.4g}, near {variance:.4g} (target variance)",
        advice=""
        if verdict == Verdict.PASS
        else "the target-mean bias did not lower the init loss: is the final layer linear?",
        numbers={"loss_before": before, "loss_after": after, "target_variance": variance},
    )


def init_from_priors(model: keras.Model, splits: Splits) -> CheckResult:
    """R2.5: the final layer's bias set to the log class priors, with the loss before and after.

    The model then starts by predicting the class frequencies, so its first steps
    go to learning rather than to discovering an imbalance. A model whose final
    layer has no bias of the classes' shape is left as it is (verdict warn).
    """
    labels = labels_of(splits.train)
    return check_bias_init(model, first_batches(splits.train, 4), labels, splits.num_classes)


def init_to_mean(model: keras.Model, splits: Splits) -> CheckResult:
    """R2.5 for regression: the final bias set to the training split's mean target, with
    the loss before and after. The split's targets are read whole (a table's are)."""
    return check_regression_bias_init(
        model, first_batches(splits.train, 4), targets_of(splits.train)
    )
