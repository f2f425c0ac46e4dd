"""One training run in its own folder, skipped when that folder already holds it.

``make ladder`` and ``make learning-curve`` train many variants of the project's
config; each goes to its own reports folder, and a variant whose train.json
records the very same config is not trained again, so an interrupted command
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recipe_keras.config import Config, with_values
from recipe_keras.report import Report, read_report

__all__ = ["run_in"]


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
