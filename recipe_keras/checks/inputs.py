"""R2.10 visualise just before the net: the exact tensors fit receives, decoded.

Reads the first batch of the very pipeline object that ``fit`` iterates (no
re-implementation of its preprocessing), undoes the [0, 1] scaling and draws
the images with their labels. A label-blind transform (a flip that turns a 2
into a mirror glyph, a crop that cuts the object out) shows here. The labels'
order shows whether the training batches are shuffled (``check_shuffled``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
from scipy.stats import binom

from recipe_keras.data import to_numpy
from recipe_keras.initialise import class_priors
from recipe_keras.task import Task, get_task
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "check_inputs",
    "check_shuffled",
    "equal_neighbours",
    "inputs_as_fed",
    "shuffled_chance",
]


def inputs_as_fed(dataset: tf.data.Dataset, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples of the first batch ``dataset`` yields: (float images, labels)."""
    x, y = next(iter(dataset))
    return to_numpy(x)[:n], to_numpy(y)[:n]


def decode(images: np.ndarray) -> np.ndarray:
    """Undo the pipeline's scaling: floats in [0, 1] back to uint8 pixels."""
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def _soft_title(weights: np.ndarray, class_names: tuple[str, ...]) -> str:
    """A mixed label as its two heaviest classes with their weights: ``3 .62 + 8 .38``."""
    top = [int(i) for i in np.argsort(weights)[::-1][:2] if weights[i] >= 0.005]
    return " + ".join(f"{_title(i, class_names)} {weights[i]:.2f}" for i in top)


def _title(label: int, class_names: tuple[str, ...]) -> str:
    name = class_names[label] if 0 <= label < len(class_names) else "?"
    return name if name == str(label) else f"{label}: {name}"


def check_inputs(
    dataset: tf.data.Dataset,
    class_names: tuple[str, ...],
    figure: str | os.PathLike[str],
    n: int = 32,
    task: Task | None = None,
    rows_as_stored: Callable | None = None,
    vocabulary: tuple[str, ...] | None = None,
) -> CheckResult:
    """Save the picture of what enters the net, drawn by its task (a grid of images);
    warn on inputs outside the task's range (images: [0, 1]) or constant.

    ``rows_as_stored`` (a table's ``Splits.rows_as_stored``): also write the first
    training rows as stored beside what the network receives for them, a CSV.
    ``vocabulary`` (a text's ``Splits.vocabulary``): the token ids fed are decoded back
    to words, one text per line, in place of the task's picture.
    """
    task = task or get_task("image_classification")
    x, y = inputs_as_fed(dataset, n)
    if not task.classifies:  # a regression's targets, as numbers
        titles = [", ".join(f"{v:.4g}" for v in np.ravel(t)) for t in y]
    elif y.ndim == 2 and y.shape[1] == len(class_names) > 1:  # soft labels: mixed (R4.3)
        titles = [_soft_title(weights, class_names) for weights in y]
    else:
        titles = [_title(label, class_names) for label in y.astype(int).ravel()]
    if vocabulary is not None:
        from recipe_keras.figures import plot_texts

        words = np.asarray(vocabulary, dtype=object)
        texts = [" ".join(words[row[row > 0].astype(int)]) for row in np.asarray(x)]
        path = plot_texts(texts, titles, figure)
    else:
        path = task.draw_inputs(x, titles, figure)
    low, high, std = float(x.min()), float(x.max()), float(x.std())
    bounds = task.input_range
    if bounds is not None and (low < bounds[0] - 1e-6 or high > bounds[1] + 1e-6):
        verdict = Verdict.WARN
        advice = (
            f"inputs leave [{bounds[0]:g}, {bounds[1]:g}]: is the normalisation missing or doubled?"
        )
    elif std < 1e-6:
        verdict, advice = Verdict.WARN, "every input value is the same: the pipeline feeds blanks"
    else:
        verdict, advice = Verdict.PASS, ""
    within = f"values in [{bounds[0]:g}, {bounds[1]:g}], " if bounds is not None else "values "
    files = [path.name]
    if rows_as_stored is not None:
        files.append(_rows_beside_inputs(rows_as_stored, Path(figure).with_name(ROWS_FILE)).name)
    return CheckResult(
        "R2.10",
        "what enters the net (look at the picture)",
        verdict,
        measured=f"range [{low:.3g}, {high:.3g}], std {std:.3g}, shape {x.shape[1:]}",
        expected=f"{within}not constant; inputs that look right with right labels",
        advice=advice,
        numbers={"min": low, "max": high, "std": std},
        figures=files,
    )


# R2.10 for a table: its first training rows as stored, and the inputs they become.
ROWS_FILE = "check_inputs_rows.csv"


def _rows_beside_inputs(rows_as_stored: Callable, path: Path, n: int = 8) -> Path:
    """A CSV of ``n`` rows as stored, each followed by the values the network receives."""
    from recipe_keras.report import atomic_write

    frame, encoded = rows_as_stored(n)
    table = frame.astype(str)
    table.insert(0, "row", [f"train:{i}" for i in frame.index])
    table["network input"] = [" ".join(f"{v:.4g}" for v in row) for row in encoded]
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def equal_neighbours(labels: np.ndarray) -> int:
    """How many neighbouring labels in a sequence are equal."""
    labels = np.asarray(labels).astype(int).ravel()
    return int(np.sum(labels[1:] == labels[:-1]))


def shuffled_chance(count: int, pairs: int, share: float) -> float:
    """A bound on the chance of ``count`` or more equal neighbours among ``pairs`` after a
    shuffle, where two neighbours are equal with chance ``share`` (sum of p^2).

    Neighbouring pairs share a label, so their equalities are not independent, and
    a normal tail is far too thin: over 100 classes, 1 in 20,000 shuffled sequences
    passed z = 6. Pairs 0-1, 2-3, ... are independent, and so are pairs 1-2, 3-4, ...;
    ``count`` equal neighbours put half of them in one of the two sets, hence
    P <= 2 P(Binomial(ceil(pairs / 2), share) >= ceil(count / 2)), for any classes.
    """
    half = -(-pairs // 2)
    return float(min(1.0, 2 * binom.sf(-(-count // 2) - 1, half, share)))


def check_shuffled(
    labels: np.ndarray, train_labels: np.ndarray, limit: float = 1e-6
) -> CheckResult:
    """Warn when the training batches come in runs of one class (an unshuffled split).

    ``labels``: the first batches' labels in the order fit receives them. A source
    stored sorted by class (per-class arrays or folders read in turn, a TFDS builder
    with ``disable_shuffling``) read without a shuffle, or with a buffer much smaller
    than the split, feeds batches of one or two classes: the loss swings from class
    to class and the model leans to whichever came last, and nothing fails. After a
    shuffle, neighbouring labels are equal at the rate sum p^2 of the class shares p;
    it warns when as many equal neighbours as seen had a chance under ``limit``
    (``shuffled_chance``, an upper bound, so a shuffled split warns even more rarely).
    """
    priors = class_priors(train_labels, int(np.max(train_labels)) + 1)
    share = float(np.sum(priors**2))
    pairs = max(np.size(labels) - 1, 0)
    count = equal_neighbours(labels)
    if share >= 1:
        chance, verdict = 1.0, Verdict.WARN
        advice = "the training split holds one class: nothing to tell apart"
    elif (chance := shuffled_chance(count, pairs, share)) < limit:
        verdict = Verdict.WARN
        advice = (
            "the training batches come in runs of one class: shuffle the training split "
            "with a buffer as large as the split (data.shuffle_buffer), or shuffle a "
            "source stored sorted by class before reading it"
        )
    else:
        verdict, advice = Verdict.PASS, ""
    return CheckResult(
        "R2.10",
        "training batches mix the classes",
        verdict,
        measured=f"neighbouring labels equal {count / max(pairs, 1):.0%} of the time over "
        f"{pairs + 1} labels (chance after a shuffle <= {max(chance, 1e-300):.2g})",
        expected=f"about {share:.0%} (sum of squared class shares); chance >= {limit:g}",
        advice=advice,
        numbers={
            "labels": pairs + 1,
            "equal_neighbours": count,
            "expected": pairs * share,
            "chance": chance,
        },
    )
