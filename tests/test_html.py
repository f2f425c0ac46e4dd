"""The recipe report page: rendered from real reports, opened in headless Chromium.

Chromium and chromedriver come from Debian's packages (`make setup` installs
them as root); outside CI a machine without them skips the browser test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from recipe_keras.recipe import ITEMS
from tests.conftest import ROOT, project_config

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def reports(tmp_path_factory, tfds_dir) -> Path:
    """check (planted zero-feeding pipeline: R2.7 fails), train, human and inspect reports."""
    import tensorflow as tf

    from recipe_keras import data, models
    from recipe_keras.checks.human import record_human_score, write_sheet
    from recipe_keras.checks.subject import Subject
    from recipe_keras.checks.suite import run_checks
    from recipe_keras.config import CheckConfig
    from recipe_keras.seed import set_seed
    from recipe_keras.train import compile_model, fit_and_evaluate

    out = tmp_path_factory.mktemp("project")
    cfg = project_config(out, tfds_dir, train={"epochs": 3})
    set_seed(cfg.seed)

    def zeros() -> data.Splits:
        s = data.load_splits(cfg.data, cfg.seed)
        z = {
            k: getattr(s, k).map(lambda x, y: (tf.zeros_like(x), y))
            for k in ("train", "val", "test")
        }
        return dataclasses.replace(s, **z)

    def build(mc):
        return compile_model(models.build(mc.name, (8, 8, 1), 10, mc.width), cfg.train)

    run_checks(
        Subject(zeros, build, cfg.model, cfg.seed),
        cfg.train.reports_dir,
        CheckConfig(steps=40, overfit_steps=300),
        verbose=False,
    )
    splits = data.load_splits(cfg.data, cfg.seed)
    fit_and_evaluate(build(cfg.model), splits, cfg)
    sheet = write_sheet(splits.test, splits.class_names, out / "reports" / "human", n=10)
    key = json.loads((sheet.parent / "key.json").read_text())["labels"]
    sheet.write_text("number,label\n" + "".join(f"{i},{k}\n" for i, k in enumerate(key)))
    record_human_score(sheet, out / "reports")
    from recipe_keras.audit import inspect_dataset

    inspect_dataset(cfg.data, out / "reports", model_path=cfg.train.model_path, verbose=False)
    return out


pytestmark = [
    pytest.mark.backend,
    pytest.mark.skipif(BACKEND != "tensorflow", reason="the page does not depend on the backend"),
]


def test_page_lists_every_id_with_a_verdict_and_makes_no_request(reports):
    from recipe_keras.cli import main

    assert main(["report", str(reports)]) == 0
    page = (reports / "reports" / "index.html").read_text()
    for item in ITEMS:
        assert f'data-id="{item.recipe_id}"' in page
    rows = re.findall(
        r'<tr class="item" data-id="([^"]+)">.*?class="verdict ([a-z-]+)"', page, re.S
    )
    assert [r[0] for r in rows] == [i.recipe_id for i in ITEMS]
    verdicts = dict(rows)
    assert verdicts["R2.7"] == "fail" and verdicts["R2.4"] == "pass"
    # Artefacts without an expectation are shown as such, not as passes.
    assert verdicts["R2.3"] == "info" and verdicts["R2.6"] == "info"
    assert verdicts["R1.4"] == "pass" and verdicts["R1.8"] == "info"
    assert verdicts["R5.1"] == "not-run-yet"
    assert "inspect/confusion.png" in page and "inspect/duplicates.png" not in page
    assert "never sees its inputs" in page
    # Static and offline: nothing to fetch from anywhere but the page's own folder.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    for src in re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page):
        assert (reports / "reports" / src[0]).is_file() and src[1].strip()


def test_partial_reports_still_render(tmp_path):
    from recipe_keras.html import render_report
    from recipe_keras.report import Report, write_report

    assert "not run yet" in render_report(tmp_path)  # nothing at all yet
    write_report(
        Report(
            step="human",
            recipe_ids=["R2.6"],
            verdicts={"R2.6": "pass"},
            numbers={"human_accuracy": 0.9},
        ),
        tmp_path,
    )
    (tmp_path / "notes.json").write_text("[1, 2]")  # not a report: skipped
    page = render_report(tmp_path)
    assert "run make check" in page and "human (you, R2.6)" in page


def test_report_command_refuses_a_missing_folder(tmp_path, capsys):
    from recipe_keras.cli import main

    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver (make setup installs them)")
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1800",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_page_in_headless_chromium(reports):
    from recipe_keras.html import write_html_report

    page = write_html_report(reports / "reports")
    browser = _browser()
    try:
        browser.get(page.as_uri())
        browser.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        browser.set_script_timeout(30)
        loaded = browser.execute_async_script(
            """const done = arguments[0];
            Promise.all([...document.images].map(i => i.decode().catch(() => null)))
              .then(() => done([...document.images].map(
                i => [i.getAttribute('src'), i.naturalWidth])));"""
        )
        assert loaded and all(width > 0 for _, width in loaded), loaded
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        # Every request the browser made (DevTools network log) was for a file on disk.
        fetched = [
            event["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            for event in [json.loads(entry["message"])["message"]]
            if event["method"] == "Network.requestWillBeSent"
        ]
        assert len(fetched) > len(loaded), fetched  # the page and each figure
        assert all(url.startswith("file://") for url in fetched), fetched
        rows = browser.execute_script(
            """return [...document.querySelectorAll('tr.item')].map(r =>
                 [r.dataset.id, r.querySelector('.verdict').textContent,
                  [...r.querySelectorAll('.advice')].map(a => a.textContent).join(' | ')])"""
        )
        assert [r[0] for r in rows] == [i.recipe_id for i in ITEMS]
        assert all(r[1] in ("pass", "warn", "fail", "info", "not run yet") for r in rows)
        r27 = next(r for r in rows if r[0] == "R2.7")
        assert r27[1] == "fail" and "never sees its inputs" in r27[2]
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "report.png"))
        assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    finally:
        browser.quit()
