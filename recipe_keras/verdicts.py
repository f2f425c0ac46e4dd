"""Verdicts, and what every check returns: standard library only.

pass / warn / fail only where a measurement met (or missed) an expectation; info
where a step produced artefacts (figures, tables) for a person to judge. A check
that could not test anything (all-zero gradients, a model that ignores its width)
says info and why: it never passes vacuously.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Verdict", "worst"]


class Verdict(str, enum.Enum):
    """One recipe id's verdict; equal to its text ("pass"), which reports store."""

    INFO = "info"
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def severity(self) -> int:
        """info < pass < warn < fail: a step's verdict is the worst of its checks'."""
        return list(Verdict).index(self)


def worst(verdicts: list[str]) -> Verdict:
    """The most severe of several verdicts (fail > warn > pass > info)."""
    return max((Verdict(v) for v in verdicts), key=lambda v: v.severity, default=Verdict.INFO)


@dataclass
class CheckResult:
    recipe_id: str
    name: str
    verdict: Verdict
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
        try:
            self.verdict = Verdict(self.verdict)
        except ValueError:
            allowed = ", ".join(v.value for v in Verdict)
            raise ValueError(f"verdict {self.verdict!r} is not one of {allowed}") from None
