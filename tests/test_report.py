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


def test_the_check_table_wraps_long_cells_and_cuts_nothing():
    from recipe_keras.checks.result import CheckResult, format_table

    measured = (
        "after 25 steps, 360 test examples: accuracy 0.400 (zero inputs 0.081, "
        "majority 0.081, linear 0.033), loss 2.225; 32% / 3% past input-blind"
    )
    results = [
        CheckResult("R2.4", "loss at init", "pass", "2.3090", "2.3026 = -log(1/C) (±10%)"),
        CheckResult("R2.7", "beats the dumb baselines", "fail", measured, ">= 10%", "feed it"),
        CheckResult("R2.10", "training batches mix the classes", "pass", "9%", "10%"),
    ]
    lines = format_table(results).splitlines()
    header = lines[0]
    assert header.split() == ["id", "check", "verdict", "measured", "expected"]
    assert max(map(len, lines)) <= 136
    # A row's further lines leave the id blank; each column's pieces read back whole.
    starts = [i for i, line in enumerate(lines) if line[:5].strip() and i > 1]
    assert [lines[i].split()[0] for i in starts] == ["R2.4", "R2.7", "R2.10", "R2.7"]
    column = slice(header.index("measured"), header.index("expected"))
    row = lines[starts[1] : starts[2]]
    assert " ".join(line[column].strip() for line in row) == measured
    check = slice(header.index("check"), header.index("verdict"))
    tail = lines[starts[2] : starts[3]]
    assert " ".join(line[check].strip() for line in tail).strip() == results[2].name
    assert lines[starts[3]] == "R2.7 FAIL: feed it"  # the advice, after a blank line
    assert lines[starts[3] - 1] == ""


def test_atomic_write_keeps_the_old_file_and_clears_a_killed_writers_leftover(tmp_path):
    import subprocess
    import sys

    from recipe_keras.report import atomic_write

    target = tmp_path / "model.keras"
    target.write_text("old")

    def fails(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):  # a full disk, say
        atomic_write(target, fails)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.keras"
    ]
    # A writer killed mid-write leaves its temporary file; the next write removes it
    # once that process is gone.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = tmp_path / f".model.{int(dead.stdout)}.tmp.keras"
    orphan.write_text("half")
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and not orphan.exists()


def test_a_commands_overrides_are_recorded_in_its_reports_and_shown_escaped(tmp_path, monkeypatch):
    from recipe_keras.config import OVERRIDES_ENV
    from recipe_keras.html import render_report

    given = ["train.epochs=2", 'data.dataset="<script>x</script>"']
    monkeypatch.setenv(OVERRIDES_ENV, json.dumps(given))
    report = Report(step="check", recipe_ids=["R2.1"], details={"run": "20261204-010203"})
    path = write_report(report, tmp_path)
    assert read_report(path).overrides == given
    page = render_report(tmp_path)
    assert "run 20261204-010203, with train.epochs=2" in page
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    monkeypatch.delenv(OVERRIDES_ENV)
    assert read_report(write_report(report, tmp_path)).overrides == []
