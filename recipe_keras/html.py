"""The recipe report: every step's verdicts and figures on one static HTML page.

Reads whatever ``reports/*.json`` exist (through :mod:`recipe_keras.report`, the
one owner of their schema) and writes ``reports/index.html``: every recipe id
with a verdict (pass / warn / fail where a measurement was compared with an
expectation, info where a step left artefacts to look at, or not run yet), the numbers measured, the
advice on failure and the figures inline. No server, no network: figures are
files beside the page, styles are inline.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import jinja2

from recipe_keras.checks.result import worst
from recipe_keras.errors import ConfigError
from recipe_keras.recipe import ITEMS, STEPS
from recipe_keras.report import Report, atomic_write, read_report

__all__ = ["load_reports", "render_report", "write_html_report"]


def load_reports(reports_dir: str | os.PathLike[str]) -> dict[str, Report]:
    """Every readable ``<step>.json`` in the folder, by step; other JSON files are skipped."""
    found = {}
    for path in sorted(Path(reports_dir).glob("*.json")):
        try:
            report = read_report(path)
        except (ValueError, TypeError, OSError):
            continue  # not a recipe report (another schema, a folder): the page shows the rest
        found[report.step] = report
    return found


def _rows(reports: dict[str, Report]) -> dict[str, list[dict]]:
    checks = [c for r in reports.values() for c in r.details.get("checks", [])]
    step_figures = _step_figures(reports)
    sections: dict[str, list[dict]] = {step: [] for step in STEPS}
    for item in ITEMS:
        verdicts = [
            r.verdicts[item.recipe_id] for r in reports.values() if item.recipe_id in r.verdicts
        ]
        found = [c for c in checks if c["recipe_id"] == item.recipe_id]
        advice = [
            r.details["advice"][item.recipe_id]
            for r in reports.values()
            if item.recipe_id in r.details.get("advice", {})
        ]
        figures = [(f, c["name"]) for c in found for f in c["figures"]]
        figures += [(f, caption) for rid, f, caption in step_figures if rid == item.recipe_id]
        if verdicts:
            status, note = worst(verdicts), ""
        elif item.target:
            status, note = "not run yet", f"run {item.target}"
        else:
            status, note = "not run yet", "not in recipe-keras yet"
        sections[item.recipe_id.split(".")[0]].append(
            {
                "item": item,
                "status": status,
                "note": note,
                "checks": found,
                "figures": figures,
                "advice": advice,
            }
        )
    return sections


# Where a step's own figures (not its checks') appear: (step, figure file) -> id, caption.
_FIGURES = {
    ("train", "train_curves.png"): ("R2.3", "loss and accuracy per epoch"),
    ("train", "first_layer.png"): ("R4.13", "first-layer weights"),
    ("ladder", "ladder.png"): ("R3.3", "train and validation accuracy per rung"),
    ("learning_curve", "learning_curve.png"): ("R4.1", "accuracy vs training examples"),
    ("tune", "tune_trials.png"): ("R5.1", "objective per trial, best first"),
    ("ensemble", "ensemble.png"): (
        "R6.1",
        "test accuracy of each member, their mean, the ensemble",
    ),
    ("distill", "distill.png"): ("R6.2", "test accuracy against parameters: teacher, students"),
}


def _step_figures(reports: dict[str, Report]) -> list[tuple[str, str, str]]:
    """(recipe id, figure file, caption) of every step figure the page knows where to put."""
    found = []
    for step, report in reports.items():
        for f in report.figures:
            if (step, f) in _FIGURES:
                rid, caption = _FIGURES[(step, f)]
                found.append((rid, f, caption))
    return found


def _task(reports: dict[str, Report], name: str | None = None):
    """The task the reports were made for: ``name`` (the project's config's), else the
    one train.json's config names, else image classification."""
    from recipe_keras.task import get_task

    for report in reports.values():
        name = name or (report.details.get("config") or {}).get("task")
    try:
        return get_task(name or "image_classification")
    except ConfigError:  # a task of the user's own that this process cannot import
        return get_task("image_classification")


def _baselines(reports: dict[str, Report], task) -> list[tuple[str, float]]:
    """(who, test score) rows: the task's score (accuracy, or a regression's RMSE)."""
    m = task.score.metric
    rows = []
    if "human" in reports:
        rows.append(("human (you, R2.6)", reports["human"].numbers.get(f"human_{m}")))
    if "train" in reports:
        numbers = reports["train"].numbers
        rows.append(("model after make train", numbers.get(f"test_{m}")))
        rows.append((task.linear_label, numbers.get(f"linear_test_{m}")))
        rows.append(("gradient-boosted trees", numbers.get(f"trees_test_{m}")))
        rows.append(("length alone (a shortcut)", numbers.get(f"length_only_test_{m}")))
        rows.append((task.null_label, numbers.get(f"{task.null_name}_{m}")))
    if "ensemble" in reports:
        numbers = reports["ensemble"].numbers
        rows.append((f"ensemble of {numbers['members']} (R6.1)", numbers.get(f"ensemble_test_{m}")))
    if "distill" in reports:
        numbers = reports["distill"].numbers
        rows.append(("student alone (R6.2)", numbers.get(f"alone_test_{m}")))
        rows.append(("student distilled (R6.2)", numbers.get(f"distilled_test_{m}")))
    for check in reports["check"].details.get("checks", []) if "check" in reports else []:
        if check["recipe_id"] == "R2.7":
            steps = check["numbers"].get("steps")
            names = {
                "model": f"model after make check's {steps} steps",
                "linear": f"linear model after the same {steps} steps",
                "input_independent": "input-independent (zeros), same steps",
                "majority": "majority class",
            }
            found = check["numbers"].get(f"test_{m}", {})
            rows += [(names.get(k, k), v) for k, v in found.items()]
    return [(name, value) for name, value in rows if value is not None]


def render_report(reports_dir: str | os.PathLike[str], task: str | None = None) -> str:
    """The page's HTML for the reports in ``reports_dir`` (any subset of them); ``task``
    (config.task) says which score the baselines are read by."""
    reports = load_reports(reports_dir)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("recipe_keras", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    sections = _rows(reports)
    task = _task(reports, task)
    counts: dict[str, int] = {}
    for rows in sections.values():
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return env.get_template("report.html.j2").render(
        steps=STEPS,
        sections=sections,
        counts=counts,
        reports=reports,
        baselines=_baselines(reports, task),
        metric=task.score.metric,
        metric_label=task.score.label,
        train=reports.get("train"),
        escape=html.escape,
    )


def write_html_report(
    reports_dir: str | os.PathLike[str] = "reports", task: str | None = None
) -> Path:
    """Write ``<reports_dir>/index.html`` and return its path."""
    page = render_report(reports_dir, task)
    return atomic_write(
        Path(reports_dir) / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8")
    )
