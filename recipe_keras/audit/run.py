"""``make inspect``: every R1 finding on every split, as ``inspect.json`` plus figures.

Each finding is a :class:`~recipe_keras.checks.result.CheckResult` (verdict,
measured vs expected, advice) and lists the example ids or file paths
involved under ``details.findings``, so a person can act on it and a script
can filter the data with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recipe_keras.audit import classes, duplicates, errors, noise, stats
from recipe_keras.audit.examples import Examples
from recipe_keras.audit.pixels import THUMB, resize_matrix
from recipe_keras.checks.result import CheckResult, format_table, results_report
from recipe_keras.config import with_values
from recipe_keras.report import Report, write_report
from recipe_keras.verdicts import Verdict

__all__ = ["AUDIT_VALUES", "audit", "inspect_dataset", "inspect_project"]

# What `make inspect` changes in the config it hands the project's load_data: the
# examples as stored (no augmentation), the training split in its stored order.
AUDIT_VALUES = {"data.augment": [], "data.shuffle_buffer": 1}

STRIP = 8
DRAWN = 128


def audit(
    ex: Examples,
    reports_dir: str | os.PathLike[str] = "reports",
    *,
    near_bits: int = duplicates.NEAR_BITS,
    folds: int = 5,
    seed: int = 0,
    probabilities: np.ndarray | None = None,
    verbose: bool = True,
) -> Report:
    """Audit ``ex``; write ``<reports_dir>/inspect.json`` and ``inspect/*.png``.

    ``probabilities``: a trained model's class probabilities for the test split
    (:func:`recipe_keras.audit.errors.predict_split`); adds R1.8.
    """
    out = Path(reports_dir)
    (out / "inspect").mkdir(parents=True, exist_ok=True)
    # An interrupted audit must not leave its new figures beside the last run's findings.
    (out / "inspect.json").unlink(missing_ok=True)
    start = time.perf_counter()
    results: list[CheckResult] = []
    findings: dict = {}
    names = list(ex.class_names)
    # Figures are drawn once every finding is known, from one read of the rows they
    # show: a streamed table reads its pixels again, and once is enough.
    pictures: list[tuple[CheckResult, list[int], Callable]] = []

    def record(result: CheckResult, rows=(), draw: Callable | None = None) -> None:
        results.append(result)
        if draw is not None:
            pictures.append((result, [int(i) for i in rows], draw))
        if verbose:
            print(
                f"  {result.recipe_id:<5} {result.verdict:<5} {result.name} "
                f"({time.perf_counter() - start:.1f} s)",
                flush=True,
            )

    from recipe_keras import figures as fig

    def title(i: int) -> str:
        label = names[ex.labels[i]] if ex.labels[i] >= 0 else "?"
        return f"{_short(ex.ids[i])}\n{label}"

    # R1.1: random training examples per class.
    picked = classes.sample_per_class(ex, STRIP, seed)
    shown = [(n, idx) for n, idx in zip(names, picked, strict=True) if len(idx)][:30]
    record(
        CheckResult(
            "R1.1",
            "examples per class",
            Verdict.INFO,  # a grid for a person to look at
            f"{sum(len(i) for _, i in shown)} random examples of {len(shown)} classes drawn",
            "look at every row: do the labels match the pictures?",
            numbers={
                "examples": len(ex),
                "per_split": {s: int((ex.splits == s).sum()) for s in ex.split_names},
            },
        ),
        [i for _, idx in shown for i in idx],
        lambda view, _: [
            fig.plot_rows(
                [(n, view(idx), [_short(ex.ids[i]) for i in idx]) for n, idx in shown],
                out / "inspect" / "classes.png",
                "random training examples per class",
            )
        ],
    )

    # R1.2
    result, counts = classes.class_counts(ex)
    record(
        result, (), lambda view, _: [fig.plot_counts(counts, names, out / "inspect" / "counts.png")]
    )

    # R1.4 first: constant images are left out of the near-duplicate search.
    st = ex.pixel_stats()
    broken_result, broken = stats.find_broken(ex, st)
    findings["broken"] = broken

    # R1.3
    summary = ex.summary
    result, dup, draw = duplicates.find_duplicates(
        summary.digest,
        summary.phash,
        ex.splits,
        ex.labels,
        ex.ids,
        st["std"] == 0,
        summary.thumbs,
        near_bits,
    )
    findings["duplicates"] = dup
    record(
        result,
        [i for a, b, _ in draw[:12] for i in (a, b)],
        lambda view, _: (
            [
                fig.plot_rows(
                    [(kind, view([i, j]), [title(i), title(j)]) for i, j, kind in draw[:12]],
                    out / "inspect" / "duplicates.png",
                    f"{len(draw)} pairs, first 12",
                )
            ]
            if draw
            else []
        ),
    )

    row_of = {example_id: i for i, example_id in enumerate(ex.ids)}
    rows = [row_of[b["id"]] for b in broken if b["id"] in row_of][:16]
    record(
        broken_result,
        rows,
        lambda view, _: (
            [
                fig.plot_rows(
                    [
                        ("", view(rows[k : k + 8]), [title(i) for i in rows[k : k + 8]])
                        for k in range(0, len(rows), 8)
                    ],
                    out / "inspect" / "broken.png",
                    "readable broken examples",
                )
            ]
            if rows
            else []
        ),
    )

    # R1.5
    result, outliers = stats.find_outliers(ex, st)
    findings["outliers"] = outliers
    extremes = []
    for name, values in (("mean", st["mean"]), ("std", st["std"])):
        order = np.argsort(values, kind="stable")
        for end, idx in (("lowest", order[:STRIP]), ("highest", order[::-1][:STRIP])):
            extremes.append((f"{end}\n{name}", idx, values))
    record(
        result,
        [i for _, idx, _ in extremes for i in idx],
        lambda view, _: [
            fig.plot_rows(
                [
                    (label, view(idx), [f"{_short(ex.ids[i])}\n{values[i]:.3g}" for i in idx])
                    for label, idx, values in extremes
                ],
                out / "inspect" / "extremes.png",
                "extremes of brightness (mean) and contrast (std)",
            )
        ],
    )

    # R1.6
    side = (min(ex.shape[0], THUMB), min(ex.shape[1], THUMB))
    result, suspects, _ = noise.label_suspects(ex, summary.thumbs, folds=folds, seed=seed)
    findings["label_suspects"] = suspects
    top = [row_of[s["id"]] for s in suspects[:16]]
    labelled = [f"{_short(s['id'])}\n{s['given']}->{s['predicted']}" for s in suspects[:16]]
    record(
        result,
        top,
        lambda view, _: (
            [
                fig.plot_rows(
                    [
                        ("given->\npredicted", view(top[k : k + 8]), labelled[k : k + 8])
                        for k in range(0, len(top), 8)
                    ],
                    out / "inspect" / "label_suspects.png",
                    "most suspect labels first",
                )
            ]
            if top
            else []
        ),
    )

    # R1.7
    preview = [i for idx in picked for i in idx[:1]][:STRIP]

    def resolution(_, view_full) -> list[Path]:
        full = view_full(preview)
        rows7 = [("full", full, [title(i) for i in preview])]
        for name, factor in (("1/2", 2), ("1/4", 4)):
            rows7.append((name, _shrink(full, factor), ["" for _ in preview]))
        return [
            fig.plot_rows(rows7, out / "inspect" / "resolution.png", "the same examples, smaller")
        ]

    record(noise.resolution_accuracy(ex, summary.thumbs, side), preview, resolution)

    # R1.8
    if probabilities is not None:
        result, confusion, mistakes = errors.model_errors(ex, probabilities)
        findings["top_loss"] = mistakes
        worst_rows = [m["row"] for m in mistakes]
        labels = [f"{_short(m['id'])}\n{m['given']}->{m['predicted']}" for m in mistakes]
        record(
            result,
            worst_rows,
            lambda view, _: [
                fig.plot_confusion(confusion, names, out / "inspect" / "confusion.png"),
                fig.plot_rows(
                    [
                        ("true->\npredicted", view(worst_rows[k : k + 8]), labels[k : k + 8])
                        for k in range(0, len(worst_rows), 8)
                    ],
                    out / "inspect" / "top_loss.png",
                    "highest-loss test examples",
                ),
            ],
        )

    wanted = sorted({i for _, rows, _ in pictures for i in rows})
    if verbose and ex.images is None:
        print(f"  reading the {len(wanted)} examples the figures show again...", flush=True)
    # Drawn at most DRAWN pixels a side (a figure's cell is smaller), but R1.7's
    # previews at full size: they show what a smaller input loses.
    small, full, previewed = {}, {}, {int(i) for i in preview}
    for row, image in ex.each(wanted):
        image = _unit(image[None])[0]
        small[row] = _at_most(image, DRAWN)
        if row in previewed:
            full[row] = image

    def view(rows) -> np.ndarray:
        return np.stack([small[int(i)] for i in rows]) if len(rows) else np.zeros((0, 1, 1, 1))

    def view_full(rows) -> np.ndarray:
        return np.stack([full[int(i)] for i in rows]) if len(rows) else np.zeros((0, 1, 1, 1))

    for result, _, draw_figures in pictures:
        result.figures += [str(f.relative_to(out)) for f in draw_figures(view, view_full)]

    seconds = time.perf_counter() - start
    report = results_report(
        "inspect",
        results,
        {
            "examples": len(ex),
            "unreadable": len(ex.unreadable),
            "seconds": round(seconds, 2),
            "warned": sum(r.verdict == Verdict.WARN for r in results),
            "failed": sum(r.verdict == Verdict.FAIL for r in results),
        },
        {"findings": findings, "class_names": names},
    )
    path = write_report(report, out)
    if verbose:
        print(format_table(results))
        print(f"\n{len(ex)} examples audited in {seconds:.1f} s -> {path} and {out / 'inspect'}/")
    return report


def inspect_dataset(
    data,
    reports_dir: str | os.PathLike[str] = "reports",
    inspect=None,
    *,
    seed: int = 0,
    model_path: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> Report:
    """Read the splits a ``[data]`` config names and audit them; R1.8 if a model is saved."""
    from recipe_keras.audit.read import read_config
    from recipe_keras.config import InspectConfig

    inspect = inspect or InspectConfig()
    if verbose:
        print(f"Reading {data.dataset} (every split)...", flush=True)
    ex = read_config(data, limit=inspect.limit or None, quiet=not verbose)
    probabilities = None
    if model_path is not None:
        probabilities = errors.saved_model_probabilities(model_path, ex, data)
        if verbose and probabilities is None:
            print(f"  no trained model at {model_path}: R1.8 waits for make train")
    return audit(
        ex,
        reports_dir,
        near_bits=inspect.near_duplicate_bits,
        folds=inspect.folds,
        seed=seed,
        probabilities=probabilities,
        verbose=verbose,
    )


def inspect_project(project, verbose: bool = True) -> Report:
    """``make inspect``: audit what the project's ``load_data`` returns; R1.8 once trained.

    ``load_data`` is asked for its splits with augmentation off and a shuffle buffer
    of one (``AUDIT_VALUES``), so the library's loader gives the training split in
    stored order, each example as the model receives it; a loader of the project's
    own returns what it returns. Splits read from an image folder (``Splits.folder``)
    are audited file by file instead, so each finding names its file. R1.8 predicts
    with the model ``make train`` saved.
    """
    from recipe_keras.audit.read import read_datasets, read_folder

    config = project.config
    limit = config.inspect.limit or None
    splits = project.load_data(with_values(config, AUDIT_VALUES, source="make inspect"))
    if verbose:
        print(f"Reading what {config.package}.data.load_data returns (every split)...")
    if splits.folder:
        ex = read_folder(
            splits.folder, channels=config.data.channels, limit=limit, quiet=not verbose
        )
        probabilities = errors.saved_model_probabilities(config.train.model_path, ex, config.data)
    else:
        batched = {"train": splits.train, "val": splits.val, "test": splits.test}
        datasets = {name: ds.unbatch() for name, ds in batched.items()}
        ex = read_datasets(datasets, splits.class_names, limit=limit, quiet=not verbose)
        probabilities = errors.saved_model_probabilities(config.train.model_path, ex)
    if verbose and probabilities is None:
        print(f"  no trained model at {config.train.model_path}: R1.8 waits for make train")
    return audit(
        ex,
        config.train.reports_dir,
        near_bits=config.inspect.near_duplicate_bits,
        folds=config.inspect.folds,
        seed=config.seed,
        probabilities=probabilities,
        verbose=verbose,
    )


def _short(text: str, width: int = 14) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _unit(images: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1] for drawing: uint8 / 255, floats as they are (NaN -> 0)."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    x = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return x / 255.0 if x.max(initial=0.0) > 1.0 else x


def _at_most(image: np.ndarray, side: int) -> np.ndarray:
    """An (H, W, C) image box-filtered to at most ``side`` pixels a side."""
    h, w, _ = image.shape
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    left = resize_matrix(h, max(1, round(h * scale))).astype(np.float32)
    right = resize_matrix(w, max(1, round(w * scale))).astype(np.float32).T
    planes = [left @ image[..., c].astype(np.float32) @ right for c in range(image.shape[2])]
    return np.stack(planes, axis=-1)


def _shrink(images: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (what a smaller input keeps), drawn at that size."""
    n, h, w, c = images.shape
    h2, w2 = max(1, h // factor), max(1, w // factor)
    cut = images[:, : h2 * factor, : w2 * factor]
    return cut.reshape(n, h2, factor, w2, factor, c).mean(axis=(2, 4))
