"""Figures people would rather look at than read, drawn to PNG files.

Through matplotlib's object API (``matplotlib.figure.Figure``), never pyplot: no
display is needed, and a user's chosen matplotlib backend (a notebook's inline
one) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from recipe_keras.report import atomic_write

__all__ = [
    "plot_calibration",
    "plot_confusion",
    "plot_counts",
    "plot_curves",
    "plot_dynamics",
    "plot_histograms",
    "plot_image_grid",
    "plot_ladder",
    "plot_learning_curve",
    "plot_overfit",
    "plot_predictions",
    "plot_rows",
    "plot_rows_of_values",
    "plot_trials",
]


def _save(fig, path: str | os.PathLike[str], crop: bool = False) -> Path:
    fig.tight_layout()
    options = {"bbox_inches": "tight", "pad_inches": 0.1} if crop else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, **options))


def plot_curves(
    history: dict[str, list[float]],
    test: dict[str, float],
    path: str | os.PathLike[str],
    score: str = "accuracy",
) -> Path:
    """Loss and the task's ``score`` (accuracy, RMSE) per epoch, train vs validation,
    with the test result as a line."""
    metrics = [m for m in ("loss", score) if m in history]
    fig = Figure(figsize=(5 * len(metrics), 3.5))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        if metric in test:
            ax.axhline(test[metric], color="gray", linestyle="--", label="test (final)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_image_grid(
    images: np.ndarray, titles: list[str], path: str | os.PathLike[str], columns: int = 8
) -> Path:
    """Images (N, H, W, C) with values in [0, 1], one title each, ``columns`` to a row.

    One mosaic (``plot_rows``): 32 small axes cost matplotlib several times as much.
    """
    rows = [
        ("", images[i : i + columns], list(titles[i : i + columns]))
        for i in range(0, max(len(images), 1), columns)
    ]
    return plot_rows(rows, path)


def plot_rows_of_values(
    values: np.ndarray, titles: list[str], path: str | os.PathLike[str], shown: int = 32
) -> Path:
    """Examples (N, features) as rows of a heat map, each row titled with its label:
    R2.10's picture of inputs that are not images."""
    values = np.asarray(values, dtype=np.float64)[:shown]
    n, features = values.shape
    fig = Figure(figsize=(min(14, 3 + 0.35 * features), max(2.5, 0.3 * n + 1)))
    ax = fig.subplots()
    limit = float(np.nanmax(np.abs(values))) if values.size else 1.0
    im = ax.imshow(values, cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_yticks(range(n), labels=list(titles[:n]), fontsize=7)
    ax.set_xlabel("input feature")
    ax.set_title("what enters the net, one example per row (label at left)")
    fig.colorbar(im, ax=ax, label="value")
    return _save(fig, path)


def plot_texts(
    texts: list[str], titles: list[str], path: str | os.PathLike[str], shown: int = 24
) -> Path:
    """Texts as the network reads them (token ids decoded to words), one per line with
    its label: R2.10's picture of a batch of text."""
    texts, titles = list(texts)[:shown], list(titles)[:shown]
    fig = Figure(figsize=(12, max(2.0, 0.32 * len(texts) + 0.8)))
    ax = fig.subplots()
    ax.set_axis_off()
    for i, (text, title) in enumerate(zip(texts, titles, strict=True)):
        line = text if len(text) <= 110 else text[:109] + "…"
        ax.text(0.0, 1.0 - (i + 0.5) / len(texts), f"{title}:", fontsize=8, weight="bold",
                ha="left", va="center", transform=ax.transAxes)  # fmt: skip
        ax.text(0.16, 1.0 - (i + 0.5) / len(texts), line, fontsize=8, ha="left", va="center",
                transform=ax.transAxes, usetex=False, parse_math=False)  # fmt: skip
    ax.set_title("what enters the net: token ids decoded to words ([UNK]: not in the vocabulary)")
    return _save(fig, path)


def plot_overfit(
    probabilities: np.ndarray, labels: np.ndarray, path: str | os.PathLike[str]
) -> Path:
    """R2.8: predicted class probabilities per example, true labels marked."""
    n, classes = probabilities.shape
    fig = Figure(figsize=(max(4, 0.5 * classes + 2), max(2.5, 0.4 * n + 1)))
    ax = fig.subplots()
    im = ax.imshow(probabilities, vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.scatter(
        labels,
        np.arange(n),
        marker="o",
        facecolors="none",
        edgecolors="red",
        s=80,
        label="true label",
    )
    ax.set_xlabel("class")
    ax.set_ylabel("example")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(n))
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=ax, label="predicted probability")
    return _save(fig, path)


def plot_dynamics(
    steps: list[int], probabilities: np.ndarray, labels: np.ndarray, path: str | os.PathLike[str]
) -> Path:
    """R2.11: p(true class) of each watched example over training steps."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for i in range(probabilities.shape[1]):
        ax.plot(steps, probabilities[:, i], marker=".", label=f"#{i} (y={labels[i]})")
    ax.set_xlabel("training step")
    ax.set_ylabel("p(true class)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_rows(
    rows: list[tuple[str, np.ndarray, list[str]]],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Rows of images (values in [0, 1]), a label at the left of each row, a title per image.

    Drawn as one mosaic in a single axes: a grid of 100 small axes takes
    matplotlib seconds, and the audit draws several of them.
    """
    columns = max((len(images) for _, images, _ in rows), default=1)
    shapes = [images.shape[1:] for _, images, _ in rows if len(images)]
    h = max((s[0] for s in shapes), default=8)
    w = max((s[1] for s in shapes), default=8)
    colour = any(s[2] == 3 for s in shapes)
    zoom = max(1, -(-48 // max(h, w)))  # small images drawn at least 48 px
    cell_h, cell_w = h * zoom, w * zoom
    pad, band = max(2, cell_w // 10), max(8, int(0.5 * cell_w))  # band: room for two-line titles
    canvas = np.ones(((cell_h + band) * len(rows), (cell_w + pad) * columns, 3))
    for r, (_, images, _) in enumerate(rows):
        for c, image in enumerate(images):
            image = np.clip(np.nan_to_num(image), 0.0, 1.0)
            image = image.repeat(zoom, 0).repeat(zoom, 1)
            y, x = r * (cell_h + band) + band, c * (cell_w + pad)
            hh, ww = image.shape[:2]
            canvas[y : y + hh, x : x + ww] = image if image.shape[2] == 3 else image[..., :1]
    if not colour:
        canvas = canvas[..., 0]
    scale = 1.3 / (cell_w + pad)  # inches per pixel: a column is ~1.3 inch wide
    fig = Figure(
        figsize=(canvas.shape[1] * scale + 1.2, canvas.shape[0] * scale + (0.4 if title else 0))
    )
    ax = fig.subplots()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    for r, (label, images, titles) in enumerate(rows):
        y = r * (cell_h + band)
        ax.text(-pad, y + band + cell_h / 2, label, ha="right", va="center", fontsize=8)
        for c, text in enumerate(titles[: len(images)]):
            x = c * (cell_w + pad) + cell_w / 2
            ax.text(x, y + band - 1, text, ha="center", va="bottom", fontsize=6.5)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path, crop=True)


def plot_counts(
    counts: dict[str, list[int]], names: list[str], path: str | os.PathLike[str]
) -> Path:
    """R1.2: examples per class, one bar per split."""
    fig = Figure(figsize=(max(5, 0.5 * len(names) + 2), 3.5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(names))
    for k, (split, row) in enumerate(counts.items()):
        ax.bar(x + k * width, row, width, label=split)
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=90 if len(names) > 20 else 0)
    ax.set_xlabel("class")
    ax.set_ylabel("examples")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_histograms(
    values: dict[str, np.ndarray], path: str | os.PathLike[str], label: str = "target"
) -> Path:
    """A distribution per split (a regression's target, R1.2; a text's length, R1.5),
    each histogram scaled to a density so splits of different sizes compare."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    finite = [v for v in values.values() if len(v)]
    edges = np.histogram_bin_edges(np.concatenate(finite) if finite else [0.0], bins=40)
    for split, v in values.items():
        ax.hist(v, bins=edges, density=True, histtype="step", linewidth=1.5, label=split)
    ax.set_xlabel(label)
    ax.set_ylabel("density")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_predictions(
    actual: np.ndarray, predicted: np.ndarray, path: str | os.PathLike[str]
) -> Path:
    """A regression on the test split: predicted against actual (the diagonal is a
    perfect model), and the residuals' histogram."""
    fig = Figure(figsize=(10, 4))
    ax, hist = fig.subplots(1, 2)
    ax.scatter(actual, predicted, s=8, alpha=0.4)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", label="predicted = actual")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.legend()
    ax.grid(alpha=0.3)
    residual = predicted - actual
    hist.hist(residual, bins=40)
    hist.axvline(0, color="gray", linestyle="--")
    hist.set_xlabel("residual (predicted - actual)")
    hist.set_ylabel("test examples")
    hist.grid(alpha=0.3)
    return _save(fig, path)


def plot_calibration(
    probability: np.ndarray, outcome: np.ndarray, path: str | os.PathLike[str], bins: int = 10
) -> Path:
    """A binary classifier on the test split: the share of positives against the mean
    predicted probability, per bin of equal width (the diagonal is a calibrated model),
    and how many examples each bin holds."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    mean_p = np.bincount(which, weights=probability, minlength=bins)[filled] / count[filled]
    share = np.bincount(which, weights=outcome, minlength=bins)[filled] / count[filled]
    fig = Figure(figsize=(10, 4))
    ax, hist = fig.subplots(1, 2)
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="calibrated")
    ax.plot(mean_p, share, marker="o", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share of positives")
    ax.legend()
    ax.grid(alpha=0.3)
    hist.bar(edges[:-1], count, width=1 / bins, align="edge")
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("test examples")
    hist.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(confusion: np.ndarray, names: list[str], path: str | os.PathLike[str]) -> Path:
    """R1.8: the confusion matrix, rows the true class, with counts written in."""
    n = len(names)
    fig = Figure(figsize=(max(4, 0.45 * n + 2), max(3.5, 0.45 * n + 1.5)))
    ax = fig.subplots()
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        top = confusion.max() or 1
        for (i, j), v in np.ndenumerate(confusion):
            if v:
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > top / 2 else "black",
                )
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def plot_trials(rows: list[dict], objective: str, path: str | os.PathLike[str]) -> Path:
    """R5.1: the objective of every finished trial, best first."""
    fig = Figure(figsize=(max(4, 0.4 * len(rows) + 2), 3.2))
    ax = fig.subplots()
    ax.bar([str(r["trial"]) for r in rows], [r["score"] for r in rows], color="tab:blue")
    ax.set_xlabel("trial (best first)")
    ax.set_ylabel(objective)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_ladder(
    rows: list[dict],
    path: str | os.PathLike[str],
    metric: str = "accuracy",
    label: str = "accuracy",
) -> Path:
    """R3.3: train and validation ``metric`` per rung, each labelled with its one change."""
    fig = Figure(figsize=(max(5, 1.2 * len(rows) + 2), 3.8))
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r[f"train_{metric}"] for r in rows], 0.4, label="train")
    ax.bar(x + 0.2, [r[f"val_{metric}"] for r in rows], 0.4, label="validation")
    ax.set_xticks(x, [f"{r['rung']}: {r['change']}"[:28] for r in rows], rotation=20, ha="right")
    ax.set_ylabel(label)
    if metric == "accuracy":
        ax.set_ylim(0, 1.05)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_learning_curve(
    points: list[dict],
    path: str | os.PathLike[str],
    metric: str = "accuracy",
    label: str = "accuracy",
) -> Path:
    """R4.1: train and validation ``metric`` against the number of training examples."""
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.subplots()
    n = [p["examples"] for p in points]
    ax.plot(n, [p[f"train_{metric}"] for p in points], marker="o", label="train")
    ax.plot(n, [p[f"val_{metric}"] for p in points], marker="o", label="validation")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_ensemble(
    rows: list[dict],
    ensemble: dict,
    path: str | os.PathLike[str],
    metric: str = "accuracy",
    label: str = "accuracy",
) -> Path:
    """R6.1: each member's test ``metric``, their mean and the ensemble's."""
    fig = Figure(figsize=(max(4.5, 0.9 * len(rows) + 3), 3.5))
    ax = fig.subplots()
    names = [f"member {r['member']}" for r in rows] + ["mean", "ensemble"]
    mean = float(np.mean([r[metric] for r in rows]))
    values = [r[metric] for r in rows] + [mean, ensemble[metric]]
    colors = ["tab:blue"] * len(rows) + ["tab:gray", "tab:green"]
    ax.bar(np.arange(len(values)), values, color=colors)
    ax.set_xticks(np.arange(len(values)), names, rotation=20, ha="right")
    low = min(values)
    if metric == "accuracy":
        ax.set_ylim(max(0.0, low - 0.1), min(1.0, max(values) + 0.05))
    else:
        ax.set_ylim(max(0.0, low - 0.2 * (max(values) - low) - 1e-9), max(values) * 1.02)
    ax.set_ylabel(f"test {label}")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_distill(
    scores: dict[str, dict],
    path: str | os.PathLike[str],
    metric: str = "accuracy",
    label: str = "accuracy",
) -> Path:
    """R6.2: the test ``metric`` against parameters for the teacher and both students."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for who, found in scores.items():
        ax.scatter(found["params"], found[f"test_{metric}"], s=60, label=who)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"test {label}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
