"""Training runs' folders.

Every run keeps its own folder, ``<reports_dir>/runs/<start time>/``: its config,
report, figures, models and TensorBoard logs, which later runs leave alone. The
run's name is chosen when its callbacks are made (``new_run_name``) and kept in the
backup folder's record, so a resumed run keeps its folder; ``commit`` writes the
run's outputs together once it has succeeded.

``make ladder`` and ``make learning-curve`` train many variants of the project's
config, each in its own reports folder (``run_in``); a variant whose train.json
records the very same config is not trained again, so an interrupted command
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from recipe_keras.backup import BEST_IN_BACKUP, RECORD, read_json, remove_backup
from recipe_keras.config import Config, with_values
from recipe_keras.report import Report, atomic_write, read_report, write_report

__all__ = ["commit", "new_run_name", "run_folder", "run_in", "run_of"]


def new_run_name(reports_dir: str | os.PathLike[str]) -> str:
    """A fresh folder under ``<reports_dir>/runs``, named by the start time and made
    (so no other run, in this process or another, takes the same name)."""
    runs = Path(reports_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S")
    name, n = stem, 1
    while True:
        try:
            (runs / name).mkdir()
            return name
        except FileExistsError:
            n += 1
            name = f"{stem}-{n}"


def run_folder(config: Config, run: str) -> Path:
    """Where one training run keeps its config, report, figures, model and TensorBoard logs."""
    return Path(config.train.reports_dir) / "runs" / run


def run_of(config: Config) -> str:
    """The name the training run of ``config`` was given by its callbacks (a resumed
    run: the interrupted run's), from the backup folder's record; a new one if none."""
    return read_json(Path(config.train.backup_dir) / RECORD).get("run") or new_run_name(
        config.train.reports_dir
    )


def commit(model: keras.Model, report: Report, config: Config, folder: Path, saved: bool) -> None:
    """Write the run's model, best model, figures and train.json, now that it has succeeded.

    Until here they sat in the run's own folder (figures) and the backup folder (the
    best model), so a run that fails before its end leaves the previous ones, which
    still describe each other. Each file is replaced atomically; the run's folder also
    keeps its config, report and models, which later runs leave alone (the models
    hard-linked where the disk allows: no second copy). ``saved``: the weights are
    worth saving (a diverged run's are not).
    """
    tc = config.train
    reports = Path(tc.reports_dir)
    kept: list[Path] = []
    if saved:
        kept.append(atomic_write(tc.model_path, model.save))
    if tc.best_model_path:
        staged, best = Path(tc.backup_dir) / BEST_IN_BACKUP, Path(tc.best_model_path)
        if staged.is_file():
            best.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staged, best)
            except OSError:  # another disk
                atomic_write(best, lambda tmp: shutil.copyfile(staged, tmp))
            kept.append(best)
        else:  # nothing finite to rank: an older run's best is not this one's
            best.unlink(missing_ok=True)
    for figure in report.figures:
        if (folder / figure).is_file():
            atomic_write(reports / figure, lambda tmp, f=figure: shutil.copyfile(folder / f, tmp))
    write_report(report, reports)
    text = json.dumps(dataclasses.asdict(config), indent=2) + "\n"
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(text))
    for source in kept:
        link = folder / source.name
        link.unlink(missing_ok=True)
        try:
            os.link(source, link)
        except OSError:  # another disk, or links not allowed
            atomic_write(link, lambda tmp, f=source: shutil.copyfile(f, tmp))
    write_report(report, folder)
    remove_backup(tc.backup_dir)


def run_in(
    train: Callable[[Config], Report], config: Config, folder: Path, **values: Any
) -> tuple[Report, bool]:
    """Train ``config`` (with dotted-key ``values``) into ``folder``; (report, was it reused)."""
    config = with_values(
        config,
        {
            **values,
            "train.reports_dir": str(folder),
            "train.model_path": str(folder / "model.keras"),
            "train.backup_dir": str(folder / "backup"),
            **(
                {"train.best_model_path": str(folder / "best.keras")}
                if config.train.best_model_path
                else {}
            ),
        },
    )
    done = folder / "train.json"
    if done.is_file():
        previous = read_report(done)
        if previous.details.get("config") == dataclasses.asdict(config):
            return previous, True
    return train(config), False
