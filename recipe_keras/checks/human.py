"""R2.6 human baseline: label a sample of test examples yourself, then score it.

``write_sheet`` draws N numbered test images (no labels) to a PNG and writes a
CSV with an empty ``label`` column to fill in, plus the answer key beside it;
``score_sheet`` reads the filled CSV back and gives your accuracy, which the
report puts next to the model's.
"""

from __future__ import annotations

import csv
import json
import os
import typing
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipe_keras.checks.inputs import decode
from recipe_keras.data import to_numpy
from recipe_keras.report import Report, atomic_write, read_report, write_report
from recipe_keras.verdicts import Verdict

__all__ = ["record_human_score", "score_command", "score_sheet", "sheet_command", "write_sheet"]


def write_sheet(
    dataset: tf.data.Dataset,
    class_names: tuple[str, ...],
    out_dir: str | os.PathLike[str],
    n: int = 40,
    seed: int = 0,
) -> Path:
    """Write sheet.png, sheet.csv (to fill in) and key.json into ``out_dir``; returns the CSV."""
    from recipe_keras.figures import plot_image_grid

    xs, ys = zip(*((to_numpy(x), to_numpy(y)) for x, y in dataset), strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys).astype(int).ravel()
    if n < 1 or n > len(y):
        raise ValueError(f"n = {n} is not allowed; the split has {len(y)} examples")
    pick = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
    out = Path(out_dir)
    filled = _labelled_rows(out / "sheet.csv")
    if filled:
        raise ValueError(
            f"{out / 'sheet.csv'} already holds {filled} labels of yours; score it (make "
            "human-score) or move it away before drawing a new sheet"
        )
    plot_image_grid(decode(x[pick]) / 255.0, [f"#{i}" for i in range(n)], out / "sheet.png")
    key = {"class_names": list(class_names), "labels": [class_names[i] for i in y[pick]]}
    text = json.dumps(key, indent=2) + "\n"
    atomic_write(out / "key.json", lambda tmp: tmp.write_text(text))

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["number", "label"])
            writer.writerows([i, ""] for i in range(n))

    return atomic_write(out / "sheet.csv", write_csv)


def _labelled_rows(sheet: Path) -> int:
    """How many rows of an existing sheet have a label filled in (0 if there is none)."""
    if not sheet.is_file():
        return 0
    with sheet.open(newline="") as f:
        return sum(bool((row.get("label") or "").strip()) for row in csv.DictReader(f))


def score_sheet(sheet: str | os.PathLike[str]) -> dict[str, float | int]:
    """Accuracy of the filled-in ``sheet.csv`` against the ``key.json`` beside it."""
    sheet = Path(sheet)
    key = json.loads((sheet.parent / "key.json").read_text())
    names, truth = key["class_names"], key["labels"]
    with sheet.open(newline="") as f:
        rows = list(csv.DictReader(f))
    answers = {}
    for row in rows:
        label = (row.get("label") or "").strip()
        number = int(row["number"])
        if not label:
            raise ValueError(f"{sheet}: example #{number} has no label; fill in every row")
        if label not in names:
            raise ValueError(
                f"{sheet}: example #{number} has label {label!r}, which is not a class; "
                f"allowed: {', '.join(names)}"
            )
        answers[number] = label
    missing = sorted(set(range(len(truth))) - set(answers))
    if missing:
        raise ValueError(f"{sheet}: rows {missing[:10]} are missing; every example needs a label")
    correct = sum(answers[i] == truth[i] for i in range(len(truth)))
    return {"human_accuracy": correct / len(truth), "examples": len(truth), "correct": correct}


def record_human_score(
    sheet: str | os.PathLike[str], reports_dir: str | os.PathLike[str] = "reports"
) -> Report:
    """Score the sheet and write ``human.json``, with the model's test accuracy beside it."""
    score = score_sheet(sheet)
    numbers: dict[str, float | int | None] = dict(score)
    train = Path(reports_dir) / "train.json"
    numbers["model_test_accuracy"] = (
        read_report(train).numbers.get("test_accuracy") if train.is_file() else None
    )
    report = Report(
        step="human",
        recipe_ids=["R2.6"],
        verdicts={"R2.6": Verdict.INFO},  # a number for a person to set beside the model's
        numbers=numbers,
        details={"sheet": str(sheet)},
    )
    write_report(report, reports_dir)
    return report


def sheet_command(project) -> int:
    """``make human-sheet``: a sheet drawn from the test split the project's load_data returns."""
    config = project.config
    splits = project.seeded_data()
    try:
        sheet = write_sheet(
            splits.test,
            splits.class_names,
            Path(config.train.reports_dir) / "human",
            n=config.check.human_examples,
            seed=config.seed,
        )
    except ValueError as exc:
        _fail(str(exc))
    print(f"Label the images in {sheet.with_suffix('.png')} in {sheet}, then: make human-score")
    return 0


def score_command(project, sheet: str | None = None) -> int:
    """``make human-score``: your accuracy on the sheet, beside the trained model's."""
    reports = Path(project.config.train.reports_dir)
    sheet_path = Path(sheet) if sheet else reports / "human" / "sheet.csv"
    if not (sheet_path.is_file() and (sheet_path.parent / "key.json").is_file()):
        _fail(f"no sheet at {sheet_path} (with key.json beside it): run make human-sheet")
    try:
        n = record_human_score(sheet_path, reports).numbers
    except ValueError as exc:
        _fail(str(exc))
    model = n["model_test_accuracy"]
    shown = "(run make train)" if model is None else f"{model:.3f}"
    print(
        f"human accuracy {n['human_accuracy']:.3f} on {n['examples']} test examples; "
        f"model {shown} -> {reports}/human.json"
    )
    return 0


def _fail(message: str) -> typing.NoReturn:
    """A user's mistake, reported by the command line as one line."""
    from recipe_keras.config import ConfigError

    raise ConfigError(message)
