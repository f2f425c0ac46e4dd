"""What every check returns: a verdict, measured vs expected, and one line of advice."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from typing import Any

from recipe_keras.report import Report

__all__ = ["CheckResult", "format_table", "results_report", "worst"]

# "info": artefacts for a person to judge, no measurement compared (see report.VERDICTS).
_ORDER = {"info": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class CheckResult:
    recipe_id: str
    name: str
    # "pass", "warn" or "fail"; "info" where it leaves artefacts and compares nothing.
    # A check that could not test anything (all-zero gradients, a model that ignores
    # its width) warns: it never passes vacuously.
    verdict: str
    measured: str
    expected: str
    # What to do about a warn or a fail; empty on a pass.
    advice: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    # Wall seconds since the check before it finished (set by ``run_checks``); a check
    # whose training later checks reuse carries that training (R2.7's run feeds R2.9, R2.11).
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in _ORDER:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(_ORDER)}")


def worst(verdicts: list[str]) -> str:
    """The most severe of several verdicts (fail > warn > pass > info)."""
    return max(verdicts, key=_ORDER.__getitem__, default="info")


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
