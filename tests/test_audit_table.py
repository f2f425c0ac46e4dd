"""``make inspect`` for a table (recipe_keras.audit.table): a table with every flaw the
audit looks for, planted where the test knows, is found and named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_keras.config import DataConfig
from recipe_keras.tabular import read_tables


def _planted(root: Path) -> tuple[str, dict]:
    """A table with every flaw the audit looks for, each planted where the test knows."""
    rng = np.random.default_rng(1)
    n = 1200
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    label = np.where(x1 + 0.8 * x2 + (colour == "red") > 0.3, "yes", "no")
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n),  # an ID
            "x1": x1.round(6),
            "x2": x2.round(6),
            "colour": colour,
            "colour_code": pd.Series(colour).map({"red": 1, "green": 2, "blue": 3}),  # redundant
            "country": "NL",  # constant
            "label": label,
        }
    )
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[[5, 17, 40], "x2"] = "?"  # UCI's missing marker
    flipped = rng.choice(np.arange(1000), 50, replace=False)  # 5% of train: flipped labels
    frame.loc[flipped, "label"] = np.where(frame.loc[flipped, "label"] == "yes", "no", "yes")
    frame.insert(6, "leak", np.where(frame["label"] == "yes", "Y", "N"))  # the target, copied
    train, test = frame.iloc[:1000].copy(), frame.iloc[1000:].copy()
    test.iloc[0] = train.iloc[10]  # a training row, repeated in test
    test.iloc[1] = train.iloc[11]
    test.iloc[1, test.columns.get_loc("label")] = (
        "no" if train.iloc[11]["label"] == "yes" else "yes"
    )
    test.iloc[2, test.columns.get_loc("colour")] = "purple"  # unseen in train
    test.iloc[2, test.columns.get_loc("colour_code")] = 4
    root.mkdir()
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    return str(root), {"flipped": {f"train:{i}" for i in flipped}, "train_rows": 1000}


def test_make_inspect_finds_every_flaw_planted_in_a_table(tmp_path):
    from recipe_keras.audit.table import audit_table

    folder, planted = _planted(tmp_path / "table")
    cfg = DataConfig(dataset=folder, target="label")
    frames, target = read_tables(cfg, seed=0)
    report = audit_table(frames, target, tmp_path / "reports", seed=0, verbose=False)
    found = {r["name"]: r for r in report.details["checks"]}
    assert found["missing values"]["verdict"] == "pass"  # 3 of 1,200 is not a warning...
    assert "x2: 3" in found["missing values"]["measured"]  # ...but it is counted
    useless = found["constant and ID-like columns"]
    assert useless["verdict"] == "warn"
    assert useless["numbers"] == {"constant": ["country"], "id_like": ["row_id"]}
    dup = found["duplicate rows"]
    assert dup["verdict"] == "warn"
    # test:1's target differs from its training copy's: a conflicting duplicate too.
    # (Each test.csv row is named by its row in that file; val is carved from train.)
    assert {p.split(" = ")[0] for p in dup["numbers"]["across"]} == {"test:0", "test:1"}
    assert [c.split(" = ")[0] for c in dup["numbers"]["conflicting"]] == ["test:1"]
    assert "colour ~ colour_code" in found["redundant column pairs"]["numbers"]["pairs"]
    unseen = found["categories unseen in training"]
    assert unseen["verdict"] == "warn" and unseen["numbers"]["colour"]["values"] == ["purple"]
    leak = found["target leakage"]
    assert leak["verdict"] == "warn" and "leak (" in leak["measured"]
    assert leak["numbers"]["single_column_score"]["x1"] < 0.9
    assert found["train/test shift"]["verdict"] == "warn"  # row_id: test rows come last
    assert "row_id" in found["train/test shift"]["measured"]
    # The flipped labels: the suspects the quick model ranks first are mostly them.
    suspects = found["label noise"]["numbers"]["suspect_rows"]
    top = [s for s in suspects if s.startswith("train:")][:40]
    precision = len(set(top) & planted["flipped"]) / len(top)
    assert precision >= 0.7, (precision, top)
    assert (tmp_path / "reports" / "inspect.json").is_file()
    assert (tmp_path / "reports" / "inspect" / "counts.png").is_file()


def test_make_inspect_on_a_regression_finds_planted_targets_and_a_leak(tmp_path):
    from recipe_keras.audit.table import audit_table

    rng = np.random.default_rng(3)
    n = 1500
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    price = 50 + 10 * x1 - 6 * x2 + 8 * (colour == "red") + rng.normal(0, 1, n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "price": price})
    wrong = rng.choice(np.arange(1200), 60, replace=False)  # 5% of train: wrong targets
    frame.loc[wrong, "price"] += rng.choice([-1, 1], 60) * rng.uniform(15, 25, 60)
    frame.insert(3, "price_copy", (frame["price"] * 1.5 + 3).round(6))  # the target, leaked

    def audit(test_shift: float, name: str):
        root = tmp_path / name
        root.mkdir()
        frame.iloc[:1200].to_csv(root / "train.csv", index=False)
        frame.iloc[1200:].assign(price=lambda f: f["price"] + test_shift).to_csv(
            root / "test.csv", index=False
        )
        frames, target = read_tables(DataConfig(dataset=str(root), target="price"), seed=0)
        report = audit_table(frames, target, root / "reports", seed=0, regression=True)
        return frames, {c["name"]: c for c in report.details["checks"]}

    frames, checks = audit(0.0, "alike")
    # R1.5: the copied target, by its cross-validated R² alone.
    leak = checks["target leakage"]
    assert leak["verdict"] == "warn" and "price_copy (R² 0.99" in leak["measured"]
    assert leak["numbers"]["single_column_score"]["x2"] < 0.5
    # R1.6: the wrong targets, with the leak left out of the quick model.
    noise = checks["target noise"]
    assert noise["verdict"] == "warn"
    found = noise["numbers"]["suspect_rows"]
    planted = {f"train:{i}" for i in wrong}
    top = found[: len(planted)]
    assert len(set(top) & planted) / len(top) >= 0.7, top
    spread = checks["target distribution"]
    assert spread["verdict"] == "pass", spread["measured"]
    assert spread["numbers"]["per_split"]["train"]["mean"] == pytest.approx(
        frames["train"]["price"].mean()
    )
    assert (tmp_path / "alike" / "reports" / "inspect" / "target.png").is_file()
    # R1.2: a test split whose targets sit two standard deviations higher.
    _, checks = audit(25.0, "shifted")
    spread = checks["target distribution"]
    assert spread["verdict"] == "warn" and spread["measured"].startswith("test mean")
    assert spread["numbers"]["per_split"]["test"]["mean_shift_sd"] > 1.5
