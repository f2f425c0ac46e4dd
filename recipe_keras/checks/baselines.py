"""R2.7 input-independent and other dumb baselines, after the same few steps as the model.

The model trains for a fixed number of steps on batches of the project's own
training pipeline, with the project's own compile, beside models that cannot see
the inputs; it must get clearly past every one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from recipe_keras import models
from recipe_keras.checks.capacity import loss_falls
from recipe_keras.checks.subject import (
    Batches,
    Subject,
    as_probabilities,
    fit_steps,
    precise_batchnorm,
    predictions_of,
    restore_state,
    state_of,
)
from recipe_keras.compile import build_optimizer
from recipe_keras.data import to_numpy
from recipe_keras.initialise import (
    class_priors,
    expected_init_loss,
    init_regression_bias,
    require_mean_squared_error,
    target_rows,
    targets_of,
)
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "REFERENCE_BATCH",
    "ROUNDS",
    "baseline_gains",
    "check_baselines",
    "check_regression_baselines",
    "input_blind_bounds",
    "steps_for",
    "suite_batches",
]


# The batch size check.steps was chosen at; smaller batches get more steps (steps_for).
REFERENCE_BATCH = 64


# R2.7 and R2.9 train in rounds of check.steps, at most this many (see check_baselines):
# 8 rounds of the default 25 steps, 200 steps at most, as 4 rounds of 50 were.
ROUNDS = 8


def steps_for(batch_size: int, steps: int = 25) -> int:
    """Training steps per round behind R2.7, R2.9 and R2.11 at a batch size.

    ``steps`` from a batch of 64 up; below, sqrt(64 / batch) times as many. A
    smaller batch's loss is noisier by about that factor, and at batch 8 the 50
    steps that suffice at 64 showed a fall of 2% (R2.9 failed a correct project);
    142 steps showed 13%. Counting examples instead (400 steps) costs twice as much.
    """
    return max(steps, math.ceil(steps * math.sqrt(REFERENCE_BATCH / batch_size)))


def suite_batches(subject: Subject, steps: int) -> tuple[Batches, int, np.ndarray]:
    """What a check suite trains and probes on: the first training batches, enough
    for ``steps`` at a batch of 64 (``steps_for``: more for a smaller batch, read in
    the same pass), the steps per round at the batch size found, and 8 inputs."""
    batches = subject.train_batches(lambda size: steps_for(size, steps))
    x, y = batches[0]
    return batches, steps_for(len(y), steps), x[:8]


def _test_scores(
    model: keras.Model, dataset: tf.data.Dataset, labels: np.ndarray
) -> tuple[float, float]:
    """Accuracy and cross-entropy over a whole split."""
    probs = as_probabilities(predictions_of(model, dataset).reshape(len(labels), -1))
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == labels))
    chosen = probs[np.arange(len(labels)), labels]
    return accuracy, float(-np.mean(np.log(np.maximum(chosen, 1e-12))))


def _zeros(batches: Batches) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.zeros_like(x), y) for x, y in batches]


def _train_blind(model: keras.Model, batches: Batches, steps: int) -> None:
    """R2.7's input-independent baseline: ``model`` trained ``steps`` steps on all-zero
    inputs, its BatchNorm statistics then taken from those zeros (``precise_batchnorm``)."""
    zeros = _zeros(batches)
    fit_steps(model, zeros, steps)
    precise_batchnorm(model, zeros)


def input_blind_bounds(labels: np.ndarray) -> tuple[float, float]:
    """The best accuracy and the lowest cross-entropy any input-blind model can reach.

    A model that ignores its inputs predicts one distribution q for every example:
    its accuracy is one class's share, at most the commonest one's, and its
    cross-entropy -sum p log q is at least the labels' entropy -sum p log p (Gibbs).
    """
    priors = class_priors(labels, int(np.max(labels)) + 1)
    return float(priors.max()), expected_init_loss(len(priors), priors)


def baseline_gains(
    accuracy: float, cross_entropy: float, best_accuracy: float, least_loss: float
) -> tuple[float, float]:
    """How far a model gets past every input-blind one, as shares of the room left.

    Accuracy: the share of the gap between the best input-blind accuracy and 1 it
    closes. Loss: the share of the input-blind floor (the labels' entropy) it
    removes. Shares, not differences, so one margin holds for 2 or 100 classes and
    for a 9:1 imbalance, where an absolute 0.1 of accuracy is out of reach.
    """
    by_accuracy = (accuracy - best_accuracy) / max(1.0 - best_accuracy, 1e-12)
    return float(by_accuracy), _removed(cross_entropy, least_loss)


def _removed(loss: float, floor: float) -> float:
    """The share of an input-blind loss floor that ``loss`` removes."""
    return float((floor - loss) / max(floor, 1e-12))


def _baseline_advice(ok: bool, learns: bool, steps: int) -> str:
    """R2.7's advice: none, "slow to learn" (past every constant guess), or "blind"."""
    if ok:
        return ""
    if learns:
        return (
            f"the predictions depend on the inputs (better than any constant guess), but "
            f"the model is slow to learn: a learning rate too low for this model (a linear "
            f"one at 3e-4), or more check.steps than {steps} per round"
        )
    return (
        "the model does no better than one that never sees its inputs: are the inputs "
        "reaching it (a pipeline feeding zeros or constants), and can it learn at all?"
    )


def check_baselines(
    subject: Subject,
    batches: Batches,
    steps: int,
    margin: float = 0.1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    rounds: int = ROUNDS,
    test_examples: int = 2000,
) -> tuple[CheckResult, keras.Model, list[float]]:
    """R2.7: the model against dumb baselines after the same training steps.

    Baselines: majority class, the same model trained on all-zero inputs (input-
    independent), and the zoo's linear model trained as many steps with the
    project's compile (a short-run comparison: ``make train`` fits a linear model to
    convergence). The model must get ``margin`` of the way
    past every input-blind model (``baseline_gains``), in accuracy or in loss.

    It trains in rounds of ``steps``, up to ``rounds``, until its loss has clearly
    fallen (R2.9) and it is that far past: a 100-class or a 9:1 imbalanced dataset
    takes a few rounds to start (50 steps failed correct projects of both), digits
    one of 25. No input-blind model can ever pass, however long it trains. The
    baselines then train as many steps, and R2.9's wider model too, so asking every
    25 steps rather than 50 halves all four trainings wherever 25 suffice. Returns
    the trained model and its per-step losses, which R2.9 reuses.

    The models are scored on ``test_examples`` of the test split spread evenly
    over it (``evenly_spaced``; 0: all of it), so the check costs about the same on
    a 10,000-image test set as on a 2,000-image one: the three models predict it up
    to ``rounds + 2`` times, and 2,000 examples measure accuracy to about +-0.01, a
    tenth of the margin.
    """
    test, test_labels = subject.test_sample(test_examples, batch=len(batches[0][1]))
    majority = float(np.mean(test_labels == np.bincount(subject.train_labels).argmax()))
    best_constant, entropy = input_blind_bounds(test_labels)

    model = subject.model()
    scores: dict[str, float] = {}

    def learnt(losses: list[float]) -> bool:
        # Inference mode after so few steps needs BatchNorm statistics that fit the weights.
        scores["norms"] = precise_batchnorm(model, batches)
        scores["accuracy"], scores["loss"] = _test_scores(model, test, test_labels)
        gains = baseline_gains(scores["accuracy"], scores["loss"], best_constant, entropy)
        return loss_falls(losses) and max(gains) >= margin

    losses = fit_steps(
        model, batches, rounds * steps, callbacks=callbacks, until=learnt, every=steps
    )
    trained = len(losses)
    # The zero-input run re-initialises the same model object (no new trace), without
    # reseeding (no run is compared with it); the caller gets the trained state back.
    weights = state_of(model)

    zero_model = subject.model(reseed=False)
    _train_blind(zero_model, batches, trained)
    zero, zero_loss = _test_scores(
        zero_model, test.map(lambda x, y: (tf.zeros_like(x), y)), test_labels
    )

    linear = subject.linear_model()
    fit_steps(linear, batches, trained)
    linear_acc, linear_loss = _test_scores(linear, test, test_labels)
    del linear
    restore_state(model, weights)

    accuracy, loss = scores["accuracy"], scores["loss"]
    # The zero-input model is input-blind too: it cannot beat the bounds, but if
    # rounding let it, the model is measured against it.
    by_accuracy, by_loss = baseline_gains(
        accuracy, loss, max(best_constant, zero), min(entropy, zero_loss)
    )
    ok = max(by_accuracy, by_loss) >= margin
    advice = _baseline_advice(ok, by_accuracy > 0 or by_loss > 0, steps)
    result = CheckResult(
        "R2.7",
        "beats the dumb baselines",
        Verdict.PASS if ok else Verdict.FAIL,
        measured=f"after {trained} steps, {len(test_labels)} test examples: accuracy "
        f"{accuracy:.3f} (zero inputs "
        f"{zero:.3f}, majority {majority:.3f}, linear after as many steps {linear_acc:.3f}), "
        f"loss {loss:.3f}; "
        f"{max(by_accuracy, 0):.0%} / {max(by_loss, 0):.0%} past input-blind",
        expected=f">= {margin:.0%} of the way from the best constant guess ({best_constant:.3f}) "
        f"to 1, or from the labels' entropy ({entropy:.3f}) to 0",
        advice=advice,
        numbers={
            "test_accuracy": {
                "model": accuracy,
                "linear": linear_acc,
                "input_independent": zero,
                "majority": majority,
            },
            "test_loss": {"model": loss, "linear": linear_loss, "input_independent": zero_loss},
            "best_constant": best_constant,
            "label_entropy": entropy,
            "test_examples": len(test_labels),
            "gain_by_accuracy": by_accuracy,
            "gain_by_loss": by_loss,
            "steps": trained,
            "rounds": -(-trained // steps),
            "batchnorm_reestimated": scores["norms"],
        },
    )
    return result, model, losses


def check_regression_baselines(
    model: keras.Model,
    batches: Batches,
    test: Batches,
    steps: int = 25,
    margin: float = 0.1,
    rounds: int = ROUNDS,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    seed: int = 0,
) -> tuple[CheckResult, list[float]]:
    """R2.7 for L2 regression: the model against the mean predictor, itself fed all-zero
    inputs, and a linear model, by test mean squared error after the same steps.

    No input-blind model predicts the test targets better than their own mean, whose
    MSE is their variance (averaged over outputs, as Keras's MSE is); the model must
    remove ``margin`` of it, an R² of at least ``margin``. The mean predictor is the
    training targets' mean; the linear model (Flatten, Dense, its bias at that mean
    as R2.5 sets it) trains with a fresh copy of the model's optimizer. ``model``,
    compiled with the mean squared error and freshly initialised, trains in rounds
    as in ``check_baselines``; the zero-input run starts again from that state, and
    ``model`` is left trained. ``batches`` and ``test`` are lists of (x, y) arrays.
    Returns the result and the model's per-step losses, which R2.9 reads.
    """
    require_mean_squared_error(model)
    build_optimizer(model)
    initial = state_of(model)
    train_y, test_y = targets_of(batches), targets_of(test)

    # Before any training: Keras's MSE would broadcast (n, 2) outputs against (n, 1) targets.
    outputs = target_rows(to_numpy(model.predict_on_batch(test[0][0]))).shape[1]
    if outputs != test_y.shape[1]:
        raise ValueError(
            f"{model.name!r} predicts {outputs} outputs per example; "
            f"the targets have {test_y.shape[1]}"
        )

    def test_mse(predictor: keras.Model, pairs: Batches) -> float:
        return float(np.mean((target_rows(predictions_of(predictor, pairs)) - test_y) ** 2))

    floor = float(np.mean(np.var(test_y, axis=0)))  # predicting the test mean
    mean_mse = float(np.mean((test_y - train_y.mean(axis=0)) ** 2))
    scores: dict[str, float] = {}

    def learnt(losses: list[float]) -> bool:
        scores["norms"] = precise_batchnorm(model, batches)
        scores["mse"] = test_mse(model, test)
        return loss_falls(losses) and _removed(scores["mse"], floor) >= margin

    losses = fit_steps(
        model, batches, rounds * steps, callbacks=callbacks, until=learnt, every=steps
    )
    trained, weights = len(losses), state_of(model)
    restore_state(model, initial)
    _train_blind(model, batches, trained)
    zero_mse = test_mse(model, _zeros(test))
    restore_state(model, weights)

    keras.utils.set_random_seed(seed)
    linear = models.linear(batches[0][0].shape[1:], test_y.shape[1], 0)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    linear.compile(optimizer=optimizer, loss="mean_squared_error")
    init_regression_bias(linear, train_y)  # R2.5, as the model under check should have had
    fit_steps(linear, batches, trained)
    linear_mse = test_mse(linear, test)

    # The zero-input model is input-blind: it cannot beat the floor but by rounding.
    gain = _removed(scores["mse"], min(floor, zero_mse))
    ok = gain >= margin
    result = CheckResult(
        "R2.7",
        "beats the dumb baselines (L2 regression)",
        Verdict.PASS if ok else Verdict.FAIL,
        measured=f"after {trained} steps, {len(test_y)} test examples: MSE {scores['mse']:.4g} "
        f"(zero inputs {zero_mse:.4g}, mean {mean_mse:.4g}, linear {linear_mse:.4g}); "
        f"R² {max(gain, 0):.2f} past input-blind",
        expected=f"R² >= {margin:.2f}: MSE <= {1 - margin:.0%} of the test targets' variance "
        f"({floor:.4g}), which no input-blind model beats",
        advice=_baseline_advice(ok, gain > 0, steps),
        numbers={
            "test_mse": {
                "model": scores["mse"],
                "linear": linear_mse,
                "input_independent": zero_mse,
                "mean": mean_mse,
            },
            "target_variance": floor,
            "gain": gain,
            "test_examples": len(test_y),
            "steps": trained,
            "rounds": -(-trained // steps),
            "batchnorm_reestimated": scores["norms"],
        },
    )
    return result, losses
