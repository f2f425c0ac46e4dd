"""What every audit of rows (a table, a corpus) does with its findings: a line per
finding as it is made, then ``inspect.json`` and the table of verdicts."""

from __future__ import annotations

import time
from pathlib import Path

from recipe_keras.checks.result import CheckResult, format_table, results_report
from recipe_keras.report import Report, write_report
from recipe_keras.verdicts import Verdict

__all__ = ["record_errors", "recorder", "write_audit"]


def recorder(results: list[CheckResult], start: float, verbose: bool):
    """``record(result)``: keep it, and print its line as it finishes."""

    def record(result: CheckResult) -> None:
        results.append(result)
        if verbose:
            print(
                f"  {result.recipe_id:<5} {result.verdict:<5} {result.name} "
                f"({time.perf_counter() - start:.1f} s)",
                flush=True,
            )

    return record


def write_audit(
    results: list[CheckResult],
    count: int,
    unit: str,
    class_names: tuple[str, ...],
    suspects: list[dict],
    mistakes: list[dict],
    out: Path,
    start: float,
    verbose: bool,
) -> Report:
    """inspect.json of a table or a corpus (``unit``: "rows", "texts"), then its table."""
    seconds = time.perf_counter() - start
    report = results_report(
        "inspect",
        results,
        {
            unit: count,
            "seconds": round(seconds, 2),
            "warned": sum(r.verdict == Verdict.WARN for r in results),
            "failed": sum(r.verdict == Verdict.FAIL for r in results),
        },
        {
            "findings": {"label_suspects": suspects[:50], "top_loss": mistakes},
            "class_names": list(class_names),
        },
    )
    written = write_report(report, out)
    if verbose:
        print(format_table(results))
        print(f"\n{count} {unit} audited in {seconds:.1f} s -> {written}")
    return report


def record_errors(found, model_path, out: Path, record) -> list[dict]:
    """R1.8's result (``table_errors``'s: None until a model is saved) recorded with its
    figures; returns the worst rows (none yet without a model)."""
    if found is None:
        print(f"  no trained model at {model_path}: R1.8 waits for make train")
        return []
    errors, mistakes, paths = found
    errors.figures.extend(str(p.relative_to(out)) for p in paths)
    record(errors)
    return mistakes
