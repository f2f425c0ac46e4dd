"""Step 3, R3.3 "add complexity one thing at a time": ``make ladder``.

A base run (the config as it is), then rungs that each add exactly one change
to the run before (config.toml's ``[ladder] rungs``). Every rung is a full
training run with its own reports and model under ``reports/ladder/``; the
table shows each rung's train/val numbers and the change against the rung
before, so an improvement (or a regression) has exactly one cause. A rung
already trained with the same config is not trained again: an interrupted
ladder resumes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from recipe_keras.config import Config, ladder_configs
from recipe_keras.report import Report, write_report
from recipe_keras.runs import run_in
from recipe_keras.task import Score, Task, get_task
from recipe_keras.verdicts import Verdict

__all__ = ["format_ladder", "run_ladder"]


def _metrics(score: Score) -> tuple[str, ...]:
    """The numbers each rung shows: losses, and the task's score (accuracy, RMSE)."""
    return ("train_loss", "val_loss", f"train_{score.metric}", f"val_{score.metric}")


# The step-4 tip each rung's setting tries, so the report marks it as tried. A rung
# that changes the model's size tries R4.7 (smaller) or R4.12 (larger): SIZED.
SIZED = ("model.width", "model.name")
TRIES = {
    "data.augment": ("R4.2",),
    "data.image_size": ("R4.6",),
    "data.batch_size": ("R4.8",),
    "model.dropout": ("R4.9",),
    "train.weight_decay": ("R4.10",),
    "train.early_stopping_patience": ("R4.11",),
    "model.pretrained": ("R4.4",),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def run_ladder(train: Callable[[Config], Report], config: Config, verbose: bool = True) -> Report:
    """Train the base and every rung with ``train(config)``; write ladder.json and a figure."""
    out = Path(config.train.reports_dir)
    score = get_task(config.task).score
    metrics, val = _metrics(score), f"val_{score.metric}"
    rows = []
    for i, (change, rung) in enumerate(ladder_configs(config, source=str(out))):
        folder = out / "ladder" / f"{i}-{_slug(change)}"
        if verbose:
            print(f"rung {i}: {change}", flush=True)
        report, reused = run_in(train, rung, folder, **{"train.epochs": config.ladder.epochs})
        note = "(already trained)" if reused else ""
        row = {"rung": i, "change": change, **{m: report.numbers[m] for m in metrics}}
        row["params"] = report.numbers.get("params")
        if rows:
            row |= {f"delta_{m}": row[m] - rows[-1][m] for m in metrics}
            row["tries"] = _tries(config.ladder.rungs[i - 1], row, rows[-1])
        rows.append(row)
        if verbose:
            print(f"  rung {i} {note}: val {score.label} {row[val]:.3f}", flush=True)
    from recipe_keras.figures import plot_ladder

    figure = plot_ladder(rows, out / "ladder.png", score.metric, score.label)
    tried = sorted(
        {rid for row in rows for rid in row.get("tries", ())},
        key=lambda i: int(i.split(".")[1]),
    )
    ladder = Report(
        step="ladder",
        recipe_ids=["R3.3", *tried],
        # Experiments for a person to read in the table: each rung's change and its effect.
        verdicts={"R3.3": Verdict.INFO, **dict.fromkeys(tried, Verdict.INFO)},
        numbers={
            "rungs": len(rows),
            "best_rung": score.best({r["rung"]: r[val] for r in rows}),
        },
        figures=[figure.name],
        details={"rows": rows, "epochs": config.ladder.epochs, "metric": score.metric},
        backend=report.backend,
    )
    write_report(ladder, out)
    if verbose:
        print(format_ladder(rows, score))
    return ladder


def _tries(rung: dict, row: dict, before: dict) -> list[str]:
    """The step-4 tips a rung tries; a size change by the direction its parameters moved."""
    ((key, _),) = rung.items()
    if key not in SIZED:
        return list(TRIES.get(key, ()))
    if row["params"] is None or before["params"] is None or row["params"] == before["params"]:
        return []
    return ["R4.7"] if row["params"] < before["params"] else ["R4.12"]


def format_ladder(rows: list[dict], score: Score = Task.score) -> str:
    """Rungs as a plain-text table: the one change, train/val numbers, and the change in
    the validation score (accuracy, or a regression's RMSE)."""
    short = "acc" if score.metric == "accuracy" else score.label
    head = ["rung", "change", "train loss", "val loss"]
    lines = [[*head, f"train {short}", f"val {short}", f"Δ val {short}"]]
    for r in rows:
        delta = r.get(f"delta_val_{score.metric}")
        lines.append(
            [
                str(r["rung"]),
                r["change"],
                f"{r['train_loss']:.4f}",
                f"{r['val_loss']:.4f}",
                f"{r[f'train_{score.metric}']:.3f}",
                f"{r[f'val_{score.metric}']:.3f}",
                "" if delta is None else f"{delta:+.3f}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
