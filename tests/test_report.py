"""The reports/*.json schema: what one step writes, another reads back unchanged."""

from __future__ import annotations

import json
import re

import pytest

from recipe_keras.report import SCHEMA_VERSION, Report, read_report, write_report


def test_round_trip_and_atomic_write(tmp_path):
    report = Report(
        step="check",
        recipe_ids=["R2.4"],
        verdicts={"R2.4": "warn"},
        numbers={"init_loss": 2.31},
        figures=["a.png"],
        backend="jax",
    )
    path = write_report(report, tmp_path / "reports")
    assert path == tmp_path / "reports" / "check.json"
    assert read_report(path) == report
    assert [p.name for p in path.parent.iterdir()] == ["check.json"]  # no temp file left
    assert json.loads(path.read_text())["schema"] == SCHEMA_VERSION


def test_bad_verdict_and_unknown_schema_are_refused(tmp_path):
    with pytest.raises(ValueError, match=re.escape("verdicts {'R2.4': 'ok'} are not allowed")):
        Report(step="check", recipe_ids=["R2.4"], verdicts={"R2.4": "ok"})
    path = write_report(Report(step="train", recipe_ids=[]), tmp_path)
    path.write_text(path.read_text().replace(f'"schema": {SCHEMA_VERSION}', '"schema": 99'))
    with pytest.raises(ValueError, match="schema 99 is not the supported 1"):
        read_report(path)
