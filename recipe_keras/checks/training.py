"""Checks that train a little: R2.1 determinism, R2.7 baselines, R2.8 overfit one batch,
R2.9 loss falls and capacity helps.

Each trains for a fixed number of steps on batches taken from the project's own
training pipeline, with the project's own compiled model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from scipy.special import softmax

from recipe_keras import models
from recipe_keras.checks.init import (
    class_priors,
    expected_init_loss,
    init_regression_bias,
    require_mean_squared_error,
    target_rows,
    targets_of,
)
from recipe_keras.checks.result import CheckResult
from recipe_keras.checks.subject import (
    Subject,
    first_batches,
    fit_steps,
    precise_batchnorm,
    restore_state,
    seed_again,
    state_of,
    to_numpy,
)
from recipe_keras.train import build_optimizer

__all__ = [
    "REFERENCE_BATCH",
    "ROUNDS",
    "baseline_gains",
    "check_baselines",
    "check_capacity",
    "check_determinism",
    "check_loss_decreases",
    "check_overfit_batch",
    "check_regression_baselines",
    "double_softmax_stall",
    "input_blind_bounds",
    "spread_over_classes",
    "steps_for",
]

# The batch size check.steps was chosen at; smaller batches get more steps (steps_for).
REFERENCE_BATCH = 64

# R2.7 and R2.9 train in rounds of check.steps, at most this many (see check_baselines):
# 8 rounds of the default 25 steps, 200 steps at most, as 4 rounds of 50 were.
ROUNDS = 8

Batches = Sequence[tuple[np.ndarray, np.ndarray]]
Run = tuple[Batches, list[float]]  # the batches a short run saw, and its losses


def steps_for(batch_size: int, steps: int = 25) -> int:
    """Training steps per round behind R2.7, R2.9 and R2.11 at a batch size.

    ``steps`` from a batch of 64 up; below, sqrt(64 / batch) times as many. A
    smaller batch's loss is noisier by about that factor, and at batch 8 the 50
    steps that suffice at 64 showed a fall of 2% (R2.9 failed a correct project);
    142 steps showed 13%. Counting examples instead (400 steps) costs twice as much.
    """
    return max(steps, math.ceil(steps * math.sqrt(REFERENCE_BATCH / batch_size)))


def check_determinism(
    subject: Subject, steps: int = 10, reference: Run | None = None
) -> CheckResult:
    """R2.1: one seed gives the same initial weights, the same batches and the same losses.

    A run is: seed, load the pipeline, train ``steps`` steps from the initial
    weights. Two seeded builds must start from identical weights, and two runs must
    see identical batches and give identical losses. ``reference`` (batches and
    losses of an earlier run) saves one run: ``make check`` passes its own training's,
    its pipeline having been loaded right after seeding. If the reference saw other
    batches than a fresh run, a second fresh run is compared instead, so a reference
    from a pipeline loaded some other way cannot fail the check.

    """
    initial = subject.initial_weights
    again = subject.build_seeded()
    pairs = zip(initial, again.variables, strict=True)
    init_diff = max(
        (float(np.max(np.abs(a - to_numpy(b)), initial=0.0)) for a, b in pairs), default=0.0
    )
    del again

    def fresh() -> Run:
        seed_again(subject.seed)
        batches = first_batches(subject.load_splits().train, steps)
        return batches, fit_steps(subject.model(), batches, steps)

    first = fresh()
    from_reference = (
        reference is not None
        and len(reference[1]) >= steps
        and _same_batches(reference[0], first[0], steps)
    )
    other = reference if from_reference else fresh()
    fresh_runs = 1 if from_reference else 2
    same_batches = from_reference or _same_batches(first[0], other[0], steps)
    runs = [first[1][:steps], other[1][:steps]]
    diff = float(np.max(np.abs(np.subtract(*runs))))
    same = runs[0] == runs[1] and init_diff == 0.0 and same_batches
    if same:
        advice = ""
    elif init_diff:
        advice = (
            "two builds from one seed start from different weights: an initializer or "
            "weights drawn outside Keras's seeded random ops (NumPy, Python random)"
        )
    elif not same_batches:
        advice = (
            "two loads of the pipeline after seeding give different batches: a shuffle, "
            "augmentation or generator in the data pipeline without the seed"
        )
    else:
        advice = (
            "same weights and same batches, yet different losses: randomness in the model "
            "or its training that is not seeded, or a non-deterministic op (on GPU)"
        )
    return CheckResult(
        "R2.1",
        f"same seed, same losses ({keras.backend.backend()})",
        "pass" if same else "fail",
        measured=f"max loss difference {diff:.3g} over {steps} steps; "
        f"initial weights differ by {init_diff:.3g}; "
        f"batches {'identical' if same_batches else 'differ'}",
        expected="0 (bit-identical)",
        advice=advice,
        numbers={
            "max_difference": diff,
            "initial_weight_difference": init_diff,
            "same_batches": same_batches,
            "fresh_runs": fresh_runs,
            "steps": steps,
            "losses": runs[0],
        },
    )


def _same_batches(a: Batches, b: Batches, steps: int) -> bool:
    """Whether two batch lists feed the same ``steps`` steps (``fit_steps`` cycles over them)."""
    return all(
        np.array_equal(a[i % len(a)][k], b[i % len(b)][k]) for i in range(steps) for k in (0, 1)
    )


def _outputs_probabilities(outputs: np.ndarray) -> bool:
    """Whether every row of a classifier's outputs is already a probability distribution."""
    outputs = np.asarray(outputs, dtype="float64")
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def _probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities from a classifier's outputs: logits, or already probabilities."""
    outputs = np.asarray(outputs, dtype="float64")
    if _outputs_probabilities(outputs):
        return outputs
    return softmax(outputs, axis=-1)


def _predictions(model: keras.Model, pairs) -> np.ndarray:
    """The model's outputs over every (x, y) batch of ``pairs``, one batch shape for ``predict``.

    A short last batch is padded to the first batch's size: on TensorFlow a new
    shape traces ``predict`` again, a cost per new shape; padding is
    safe because each example's output depends on itself only (R2.12).
    """
    outputs, size = [], None
    for x, _ in pairs:
        x = to_numpy(x)
        n = len(x)
        size = size or n
        if n < size:
            x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])
        outputs.append(to_numpy(model.predict_on_batch(x))[:n])
    return np.concatenate(outputs)


def _test_scores(
    model: keras.Model, dataset: tf.data.Dataset, labels: np.ndarray
) -> tuple[float, float]:
    """Accuracy and cross-entropy over a whole split."""
    probs = _probabilities(_predictions(model, dataset).reshape(len(labels), -1))
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
        return _falls(losses) and max(gains) >= margin

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
        "pass" if ok else "fail",
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
        return float(np.mean((target_rows(_predictions(predictor, pairs)) - test_y) ** 2))

    floor = float(np.mean(np.var(test_y, axis=0)))  # predicting the test mean
    mean_mse = float(np.mean((test_y - train_y.mean(axis=0)) ** 2))
    scores: dict[str, float] = {}

    def learnt(losses: list[float]) -> bool:
        scores["norms"] = precise_batchnorm(model, batches)
        scores["mse"] = test_mse(model, test)
        return _falls(losses) and _removed(scores["mse"], floor) >= margin

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
        "pass" if ok else "fail",
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


def _tail_mean(losses: list[float]) -> float:
    k = max(1, len(losses) // 10)
    return float(np.mean(losses[-k:]))


def _ends(losses: list[float]) -> tuple[float, float]:
    """The mean loss of the first tenth of a run and of its last tenth."""
    k = max(1, len(losses) // 10)
    return float(np.mean(losses[:k])), _tail_mean(losses)


def _falls(losses: list[float], factor: float = 0.97) -> bool:
    """Whether the last tenth's mean loss is under ``factor`` times the first tenth's."""
    first, last = _ends(losses)
    return math.isfinite(last) and last < factor * first


def check_loss_decreases(losses: list[float], factor: float = 0.97) -> CheckResult:
    """R2.9: over a short run the training loss falls (last tenth vs first tenth)."""
    first, last = _ends(losses)
    ok = _falls(losses, factor)
    return CheckResult(
        "R2.9",
        "training loss decreases",
        "pass" if ok else "fail",
        measured=f"{first:.4f} -> {last:.4f} over {len(losses)} steps",
        expected=f"last < {factor} x first",
        advice=""
        if ok
        else "the training loss does not fall: check the learning rate (not 0, not huge), "
        "that gradients reach the weights, and that labels match inputs",
        numbers={"first": first, "last": last},
    )


def check_capacity(
    subject: Subject, base: keras.Model, base_losses: list[float], batches: Batches
) -> CheckResult:
    """R2.9: a model twice as wide reaches a lower training loss in the same steps."""
    width = subject.model_config.width
    wider = subject.model(width=2 * width)
    name = "a wider model fits better"
    if wider.count_params() <= base.count_params():
        return CheckResult(
            "R2.9",
            name,
            "warn",
            "not applicable",
            "more parameters at width x2",
            "the model ignores model.width, so no wider version could be built",
        )
    losses = fit_steps(wider, batches, len(base_losses))
    base_last, wide_last = _tail_mean(base_losses), _tail_mean(losses)
    ok = wide_last < base_last
    return CheckResult(
        "R2.9",
        name,
        "pass" if ok else "warn",
        measured=f"width {2 * width}: {wide_last:.4f} vs width {width}: {base_last:.4f}",
        expected="wider < base",
        advice=""
        if ok
        else "more capacity did not fit the training data better: the optimisation, "
        "not the size, may be what limits the model",
        numbers={"base": base_last, "wider": wide_last, "width": width},
    )


def spread_over_classes(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples taken in turn from each class, in order of appearance.

    R2.8's first 8 examples of a 9:1 batch are all of one class 43% of the time
    (0.9^8), and a model memorises those with its bias alone, even one blind to its
    inputs. Taken in turn, the 8 hold every class the batch has, up to 8.
    """
    labels = np.asarray(labels).astype(int).ravel()
    classes = list(dict.fromkeys(labels.tolist()))
    queues = [list(np.flatnonzero(labels == c)) for c in classes]
    picked: list[int] = []
    while len(picked) < min(n, len(labels)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return np.array(sorted(picked))


def double_softmax_stall(num_classes: int, stuck: float = 0.0) -> float:
    """Where a double softmax's loss stalls: ln(1 + (C - 1) / e), plus ``stuck``.

    The inner softmax saturates; once it is one-hot on the right class the outer
    one gives that class e / (e + C - 1). An example saturated on a wrong class
    has no gradient left to leave it and costs ln(e + C - 1), exactly 1 more: with
    a share ``stuck`` of such examples the mean loss stalls ``stuck`` higher.
    """
    return math.log(1 + (num_classes - 1) / math.e) + stuck


def _from_logits(model: keras.Model) -> bool:
    """Whether the compiled loss reads the outputs as logits (``from_logits=True``)."""
    loss = getattr(model, "loss", None)
    try:
        return bool(loss.get_config().get("from_logits", False))
    except (AttributeError, TypeError, NotImplementedError):
        return bool(getattr(loss, "from_logits", False))


def check_overfit_batch(
    subject: Subject,
    figure: str | os.PathLike[str],
    examples: int = 8,
    max_steps: int = 500,
    threshold: float = 0.05,
) -> CheckResult:
    """R2.8: a handful of examples must be learnt to ~zero loss within a step budget."""
    from recipe_keras.figures import plot_overfit

    x, y = subject.train_batches(1)[0]
    keep = spread_over_classes(y, examples)
    x, y = x[keep], y[keep]
    # Not reseeded: no run is compared with this one.
    model = subject.model(reseed=False)
    losses = fit_steps(model, [(x, y)], max_steps, stop_below=threshold)
    # Statistics of these very examples: inference mode then predicts as training saw them.
    # The predict function, not an eager call (on JAX each eager op compiles at a new shape).
    norms = precise_batchnorm(model, [(x, y)])
    outputs = to_numpy(model.predict_on_batch(x))
    probs = _probabilities(outputs)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == y.astype(int).ravel()))
    final = losses[-1]
    ok = final < threshold and accuracy == 1.0
    stall = double_softmax_stall(subject.splits.num_classes)
    # Probabilities fed to a loss that expects logits: a double softmax, whatever the
    # loss reached. The loss alone misled: with 1 of 8 examples stuck it stalls 1/8
    # higher (1.58, not 1.46; seen on JAX), outside any tolerance of the stall.
    doubled = _outputs_probabilities(outputs) and _from_logits(model)
    verdict = "pass" if ok else "fail"
    mismatch = (
        "the model outputs probabilities (each row sums to 1) to a loss compiled with "
        "from_logits=True"
    )
    fix = "drop the output softmax, or compile with from_logits=False"
    if ok and doubled:
        # Learnt all the same: TensorFlow's Keras takes the logits from under a Keras
        # softmax when the loss says from_logits=True; JAX and torch apply it twice.
        verdict = "warn"
        advice = (
            f"learnt, but {mismatch}: TensorFlow's Keras quietly reuses the logits under a "
            f"Keras softmax, JAX and torch apply the softmax twice and fail here; {fix}"
        )
    elif ok:
        advice = ""
    elif not math.isfinite(final):
        advice = "the loss became NaN: the learning rate is far too high"
    elif abs(final - losses[0]) < 1e-3 * max(losses[0], 1e-12):
        advice = "the loss never moved: a learning rate of 0, frozen weights, or no gradient"
    elif doubled:
        advice = (
            f"{mismatch}: a softmax applied twice. The loss stalls near ln(1+(C-1)/e) = "
            f"{stall:.3f}, 1 higher for each example stuck on a wrong class; {fix}"
        )
    elif abs(final - stall) < 0.1:
        advice = (
            f"the loss stalls near ln(1+(C-1)/e) = {stall:.3f}: a softmax applied twice? "
            "(a softmax output compiled with from_logits=True)"
        )
    else:
        advice = (
            "could not memorise a few examples: too little capacity, a learning rate too "
            "low, or labels that do not belong to their inputs"
        )
    path = plot_overfit(probs, y.astype(int).ravel(), figure)
    return CheckResult(
        "R2.8",
        f"overfit {len(y)} examples",
        verdict,
        measured=f"loss {final:.4f}, accuracy {accuracy:.0%} after {len(losses)} steps",
        expected=f"loss < {threshold}, accuracy 100% within {max_steps} steps",
        advice=advice,
        numbers={
            "final_loss": final,
            "accuracy": accuracy,
            "steps": len(losses),
            "double_softmax_stall": stall,
            "outputs_are_probabilities_with_logits_loss": doubled,
            "batchnorm_reestimated": norms,
        },
        figures=[path.name],
    )
