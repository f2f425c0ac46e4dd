"""Checks' results as one step's report, and as a table.

``CheckResult`` and ``worst`` live in ``recipe_keras.verdicts``, below the training
run, which records R2.5 with them.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from recipe_keras.report import Report
from recipe_keras.verdicts import CheckResult, worst

__all__ = ["CheckResult", "format_table", "results_report", "worst"]


def results_report(
    step: str, results: list[CheckResult], numbers: dict[str, Any], details: dict | None = None
) -> Report:
    """One step's report: the worst verdict per recipe id, every result under details."""
    verdicts: dict[str, list[str]] = {}
    for r in results:
        verdicts.setdefault(r.recipe_id, []).append(r.verdict)
    return Report(
        step=step,
        recipe_ids=sorted(verdicts, key=lambda i: tuple(map(int, i[1:].split(".")))),
        verdicts={rid: worst(v) for rid, v in verdicts.items()},
        numbers=numbers,
        figures=[f for r in results for f in r.figures],
        details={**(details or {}), "checks": [dataclasses.asdict(r) for r in results]},
    )


# Widest each column of ``format_table`` may run before its text wraps (None: never):
# at most 136 characters in all, and no measured value cut off.
_WRAP = (None, 30, None, 44, 42)


def _wrapped(text: str, width: int | None) -> list[str]:
    if width is None:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def format_table(results: list[CheckResult]) -> str:
    """A plain-text table, then the advice for each warning and failure.

    Long cells wrap onto further lines of their row: cut at a width, R2.7's row lost
    the linear baseline's accuracy, which ``check.json`` alone then held.
    """
    rows = [("id", "check", "verdict", "measured", "expected")]
    rows += [(r.recipe_id, r.name, r.verdict.upper(), r.measured, r.expected) for r in results]
    cells = [[_wrapped(c, w) for c, w in zip(row, _WRAP, strict=True)] for row in rows]
    widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(_WRAP))]
    lines = []
    for row in cells:
        height = max(map(len, row))
        for parts in zip(*(c + [""] * (height - len(c)) for c in row), strict=True):
            cols = (p.ljust(w) for p, w in zip(parts, widths, strict=True))
            lines.append("  ".join(cols).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    advice = [f"{r.recipe_id} {r.verdict.upper()}: {r.advice}" for r in results if r.advice]
    return "\n".join([*lines, "", *advice] if advice else lines)
