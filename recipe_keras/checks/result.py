"""What every check returns: a verdict, measured vs expected, and one line of advice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "worst"]

_ORDER = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class CheckResult:
    recipe_id: str
    name: str
    # "pass", "warn" or "fail". A check that could not test anything (all-zero
    # gradients, a model that ignores its width) warns: it never passes vacuously.
    verdict: str
    measured: str
    expected: str
    # What to do about a warn or a fail; empty on a pass.
    advice: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.verdict not in _ORDER:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(_ORDER)}")


def worst(verdicts: list[str]) -> str:
    """The most severe of several verdicts (fail > warn > pass)."""
    return max(verdicts, key=_ORDER.__getitem__, default="pass")
