"""Tables: a CSV or Parquet file, a folder with one per split, or an embedded table,
read into train/val/test, its columns typed, and encoded by Keras's ``FeatureSpace``
adapted on the training split only.

A table is read whole into memory (pandas), so one larger than a quarter of the
memory available is refused rather than read. Encoding happens inside tf.data
(FeatureSpace's layers run there on any backend); the network receives one flat
float vector per row.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from recipe_keras.config import ConfigError, DataConfig
from recipe_keras.data import Splits, order_and_batch
from recipe_keras.storage import Storage, refuse_over_memory
from recipe_keras.values import TABLE_SUFFIXES, dataset_kind

__all__ = [
    "MISSING",
    "TABLE_FILES",
    "Columns",
    "carve",
    "catalog_tables",
    "class_labels",
    "column_types",
    "encoder",
    "is_catalog_name",
    "load_table_splits",
    "predict_split",
    "read_table_file",
    "read_tables",
    "table_file",
]

# Missing-value markers besides pandas's own (empty, NA, NaN, null...): UCI's "?".
MISSING = ("?",)
# A single table is carved, seeded, into these shares of its rows (val, test).
CARVED = (0.1, 0.2)
# The category a missing value of a categorical column becomes.
MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class Embedded:
    file: str
    target: str


TABLE_FILES = {
    # UCI Adult (Becker & Kohavi 1996), CC BY 4.0 (docs/tables.md): income over 50K.
    "adult": Embedded("adult.csv.gz", "income"),
    # UCI Abalone (Nash et al. 1994), CC BY 4.0 (docs/tables.md): age as shell rings.
    "abalone": Embedded("abalone.csv.gz", "rings"),
}


@dataclass(frozen=True)
class Columns:
    """Each feature column by how it is encoded; ``missing``: numeric columns with
    missing values in the training split, which get a 0/1 indicator beside them."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ignored: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [
            f"numeric: {', '.join(self.numeric) or '-'}",
            f"categorical: {', '.join(self.categorical) or '-'}",
        ]
        if self.ignored:
            parts.append(f"ignored: {', '.join(self.ignored)}")
        return "; ".join(parts)


def read_table_file(path: Path, what: str) -> pd.DataFrame:
    size = path.stat().st_size * (8 if path.name.endswith(".gz") else 1)
    refuse_over_memory(size, f"{what} = {str(path)!r}", "table")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path, na_values=list(MISSING), skipinitialspace=True, low_memory=False
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{what} = {str(path)!r} cannot be read as a table: {first}") from exc
    if frame.empty:
        raise ConfigError(f"{what} = {str(path)!r} holds no rows")
    return frame


def table_file(folder: Path, split: str) -> Path | None:
    found = [folder / f"{split}{suffix}" for suffix in TABLE_SUFFIXES]
    return next((p for p in found if p.is_file()), None)


def read_tables(cfg: DataConfig, seed: int) -> tuple[dict[str, pd.DataFrame], str]:
    """(train, val and test as data frames, the target column's name).

    One table (a file, an embedded name) is carved into train, val and test by a
    seeded permutation (``CARVED``); a folder gives ``train`` and, where present,
    ``val`` and ``test`` (each carved from train when absent); a TFDS catalog table
    gives the splits ``data.train_split``, ``val_split`` and ``test_split`` name.
    """
    if cfg.dataset in TABLE_FILES:
        known = TABLE_FILES[cfg.dataset]
        path = Path(__file__).parent / "datasets" / "tables" / known.file
        frames = {"train": read_table_file(path, "data.dataset")}
        target = cfg.target or known.target
    else:
        path = Path(cfg.dataset).expanduser()
        target = cfg.target
        if path.is_dir():
            frames = {}
            for split in ("train", "val", "test"):
                file = table_file(path, split)
                if file is not None:
                    frames[split] = read_table_file(file, "data.dataset")
            if "train" not in frames:
                raise ConfigError(
                    f"data.dataset = {cfg.dataset!r}: no train.csv (or train.parquet) in "
                    "this folder; a table folder holds train.csv and, optionally, val.csv "
                    "and test.csv"
                )
        elif path.is_file() and path.name.endswith(TABLE_SUFFIXES):
            frames = {"train": read_table_file(path, "data.dataset")}
        elif is_catalog_name(cfg.dataset):
            frames, (_, label) = catalog_tables(cfg)
            target = cfg.target or label
        else:
            raise ConfigError(
                f"data.dataset = {cfg.dataset!r} is not a table: give a .csv or .parquet "
                f"file, a folder holding train.csv, an embedded table "
                f"({', '.join(TABLE_FILES)}) or a TFDS catalog table such as 'titanic'"
            )
    columns = list(frames["train"].columns)
    if not target:
        raise ConfigError(
            f"data.target = '': name the column to predict; the table has {', '.join(columns)}"
        )
    for split, frame in frames.items():
        if target not in frame.columns:
            raise ConfigError(
                f"data.target = {target!r} is not a column of the {split} table; its "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
    return carve(frames, seed), target


def is_catalog_name(dataset: str) -> bool:
    """A TFDS catalog name (not a path): values.dataset_kind's rule."""
    try:
        return dataset_kind(dataset) == "tfds"
    except ConfigError:
        return False


def catalog_tables(cfg: DataConfig) -> tuple[dict[str, pd.DataFrame], tuple[str, str]]:
    """A TFDS catalog dataset's train/val/test splits (``data.*_split``) as data frames,
    and its supervised input's and label's names ("" where it has none).

    Prepared once by TFDS (online, like any catalog name); a dataset that takes over a
    quarter of the memory available is refused, as a table file is. Nested features
    (``features/age``) keep their last name where that is unique; bytes become text.
    """
    import tensorflow_datasets as tfds

    from recipe_keras.data import make_builder

    builder = make_builder(cfg)
    info = builder.info
    refuse_over_memory(info.dataset_size, f"data.dataset = {cfg.dataset!r}", "table")
    frames = {}
    for split, expression in (("train", cfg.train_split), ("val", cfg.val_split)):
        frames[split] = tfds.as_dataframe(builder.as_dataset(split=expression), info)
    if cfg.test_split:
        # A catalog table with no test split: carved from train, as a file's is.
        with contextlib.suppress(ValueError):
            frames["test"] = tfds.as_dataframe(builder.as_dataset(split=cfg.test_split), info)
    frames = {s: _plain(f) for s, f in frames.items()}
    for name, feature in info.features.items():  # a class index as its class's name
        if isinstance(feature, tfds.features.ClassLabel) and feature.names:
            for frame in frames.values():
                frame[name] = frame[name].map(lambda i, f=feature: f.int2str(int(i)))
    keys = [k if isinstance(k, str) else "" for k in (info.supervised_keys or ("", ""))[:2]]
    names = [_plain_name(k, frames["train"].columns) if k else "" for k in keys]
    return frames, (names[0], names[1])


def _plain_name(name: str, columns) -> str:
    last = name.rsplit("/", 1)[-1]
    return last if sum(str(c).rsplit("/", 1)[-1] == last for c in columns) == 1 else name


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names without their feature-dict prefix where unique; bytes as text."""
    out = frame.rename(columns={c: _plain_name(str(c), frame.columns) for c in frame.columns})
    for name in out.columns:
        if out[name].dtype == object and len(out) and isinstance(out[name].iloc[0], bytes):
            out[name] = out[name].map(lambda b: b.decode("utf-8", "replace"))
    return out


def carve(frames: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """val and test carved from train where absent: a seeded permutation of its rows."""
    train = frames["train"]
    missing = [s for s in ("val", "test") if s not in frames]
    if not missing:
        return frames
    order = np.random.default_rng(seed).permutation(len(train))
    cut, start = {}, 0
    for split in missing:
        n = math.ceil(CARVED[("val", "test").index(split)] * len(train))
        cut[split], start = order[start : start + n], start + n
    # Each row keeps its index in the file, so an error can name it.
    out = {s: train.iloc[np.sort(rows)] for s, rows in cut.items()}
    out["train"] = train.iloc[np.sort(order[start:])]
    return {s: out[s] if s in out else frames[s] for s in ("train", "val", "test")}


def column_types(frames: dict[str, pd.DataFrame], target: str, cfg: DataConfig) -> Columns:
    """Columns named in ``data.numeric`` / ``data.categorical`` / ``data.ignore`` as
    given; the others inferred from the training split: numbers are numeric, anything
    else categorical. A numeric column must hold numbers in every split."""
    train = frames["train"]
    named = {"data.numeric": cfg.numeric, "data.categorical": cfg.categorical}
    named["data.ignore"] = cfg.ignore
    for key, names in named.items():
        for name in names:
            if name not in train.columns or name == target:
                raise ConfigError(
                    f"{key} names {name!r}, which is not a feature column; the table has "
                    f"{', '.join(str(c) for c in train.columns if c != target)}"
                )
    numeric, categorical = [], []
    for name in train.columns:
        if name == target or name in cfg.ignore:
            continue
        column = train[name]
        if name in cfg.numeric or (
            name not in cfg.categorical and pd.api.types.is_numeric_dtype(column)
        ):
            for split, frame in frames.items():
                values = pd.to_numeric(frame[name], errors="coerce")
                bad = frame[name][values.isna() & frame[name].notna()]
                if len(bad):
                    why = "data.numeric names it" if name in cfg.numeric else "numeric in train"
                    raise ConfigError(
                        f"column {name!r} ({why}): data row {bad.index[0] + 1} of the "
                        f"table ({split} split) holds {bad.iloc[0]!r}, not a number"
                    )
            numeric.append(name)
        else:
            distinct = column.nunique(dropna=True)
            if distinct == len(column) and len(column) > 20:
                raise ConfigError(
                    f"column {name!r} has a different value in every row ({distinct}): a "
                    "category per row teaches nothing; list it in data.ignore (an ID?)"
                )
            categorical.append(name)
    missing = [n for n in numeric if train[n].isna().any()]
    return Columns(tuple(numeric), tuple(categorical), tuple(cfg.ignore), tuple(missing))


def _features(frame: pd.DataFrame, columns: Columns, medians: dict[str, float]) -> dict:
    """The columns FeatureSpace reads: numerics as float32 (missing values as the
    training median, plus an indicator), categoricals as strings."""
    out = {}
    for name in columns.numeric:
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        if name in columns.missing:
            out[f"{name}__missing"] = values.isna().to_numpy(np.float32)
        out[name] = values.fillna(medians[name]).to_numpy(np.float32)
    for name in columns.categorical:
        text = frame[name].astype("string").fillna(MISSING_CATEGORY)
        out[name] = text.to_numpy(dtype=object).astype(str)
    return out


def encoder(train: pd.DataFrame, columns: Columns):
    """A ``keras.utils.FeatureSpace`` adapted on the training rows alone, and the
    training medians that fill missing numbers."""
    from keras.utils import FeatureSpace

    medians = {n: float(pd.to_numeric(train[n], errors="coerce").median()) for n in columns.numeric}
    medians = {n: 0.0 if math.isnan(v) else v for n, v in medians.items()}
    specs = {n: FeatureSpace.float_normalized() for n in columns.numeric}
    specs |= {f"{n}__missing": FeatureSpace.float() for n in columns.missing}
    specs |= {
        n: FeatureSpace.string_categorical(num_oov_indices=1, output_mode="one_hot")
        for n in columns.categorical
    }
    space = FeatureSpace(specs, output_mode="concat")
    rows = tf.data.Dataset.from_tensor_slices(_features(train, columns, medians))
    space.adapt(rows.batch(1024))
    return space, medians


def class_labels(frames: dict[str, pd.DataFrame], target: str) -> tuple[dict, tuple[str, ...]]:
    """Integer labels per split, and the class names (the training split's, sorted)."""
    train = frames["train"][target]
    if train.isna().any():
        row = int(np.flatnonzero(train.isna().to_numpy())[0])
        raise ConfigError(f"data.target = {target!r}: row {row} of the training table has no value")
    names = tuple(sorted(train.astype(str).unique()))
    if len(names) < 2:
        raise ConfigError(
            f"data.target = {target!r} has {len(names)} class ({', '.join(names)}); a "
            "classifier needs two classes or more"
        )
    index = {name: i for i, name in enumerate(names)}
    labels = {}
    for split, frame in frames.items():
        text = frame[target].astype(str)
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ConfigError(
                f"data.target = {target!r}: the {split} table has classes the training "
                f"table lacks ({', '.join(unknown[:5])}); a classifier cannot learn them"
            )
        labels[split] = text.map(index).to_numpy(np.int64)
    return labels, names


def _targets(frames: dict[str, pd.DataFrame], target: str) -> dict[str, np.ndarray]:
    """A regression's targets per split as (rows, 1) float32: a number in every row."""
    out = {}
    for split, frame in frames.items():
        values = pd.to_numeric(frame[target], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0.0))
        if bad.any():
            row = frame.index[np.flatnonzero(bad.to_numpy())[0]]
            raise ConfigError(
                f"data.target = {target!r}: data row {row + 1} of the table ({split} split) "
                f"holds {frame[target].loc[row]!r}, not a finite number; a regression "
                "predicts a number for every row (drop the row, or fill it)"
            )
        out[split] = values.to_numpy(np.float32).reshape(-1, 1)
    if np.ptp(out["train"]) == 0:
        raise ConfigError(
            f"data.target = {target!r} holds {out['train'][0, 0]:g} in every training "
            "row: there is nothing to predict"
        )
    return out


def load_table_splits(
    cfg: DataConfig, seed: int, *, regression: bool = False, verbose: bool = True
) -> Splits:
    """Batched train/val/test pipelines of (encoded row, integer label), or for a
    ``regression`` of (encoded row, target as a (1,) float vector).

    A regression's Splits has one output (``num_classes`` 1) named after the target.
    """
    if cfg.augment or cfg.mix:
        raise ConfigError(
            "data.augment and data.mix transform images; a table takes neither (set them "
            "to [] and '')"
        )
    frames, target = read_tables(cfg, seed)
    if cfg.train_fraction < 1.0:  # R4.1: the first share, in the split's stored order
        keep = max(1, round(cfg.train_fraction * len(frames["train"])))
        frames["train"] = frames["train"].iloc[:keep]
    if regression:
        labels, names = _targets(frames, target), (target,)
    else:
        labels, names = class_labels(frames, target)
    columns = column_types(frames, target, cfg)
    if verbose:
        print(f"Table columns ({target!r} is the target): {columns.describe()}", flush=True)
    space, medians = encoder(frames["train"], columns)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    storage = Storage("memory", cfg.shuffle_buffer, None)
    pipelines = {}
    for split, frame in frames.items():
        rows = tf.data.Dataset.from_tensor_slices(
            (_features(frame, columns, medians), labels[split])
        )
        encoded = rows.batch(1024).map(lambda x, y: (space(x), y)).unbatch()
        encoded = encoded.apply(tf.data.experimental.assert_cardinality(len(frame))).cache()
        pipelines[split] = order_and_batch(
            encoded,
            cfg,
            training=split == "train",
            seed=seed,
            epoch=epoch if split == "train" else None,
            storage=storage,
        )
    width = int(pipelines["train"].element_spec[0].shape[-1])

    def rows_as_stored(n: int) -> tuple[pd.DataFrame, np.ndarray]:
        """R2.10: the first ``n`` training rows as stored, and what the network
        receives for them (encoded as every split is, inside tf.data)."""
        head = frames["train"].head(n)
        rows = tf.data.Dataset.from_tensor_slices(_features(head, columns, medians))
        (encoded,) = rows.batch(n).map(space).take(1)
        return head, np.asarray(encoded)

    return Splits(
        **pipelines,
        input_shape=(width,),
        num_classes=len(names),
        class_names=names,
        sizes={split: len(frame) for split, frame in frames.items()},
        epoch=epoch,
        rows_as_stored=rows_as_stored,
    )


def predict_split(model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs over a batched (rows, labels) split and its labels, in the
    split's order: a table's split fits in memory."""
    outputs, labels = [], []
    for x, y in dataset:
        # As arrays: JAX's predict function takes no TensorFlow tensor.
        outputs.append(np.asarray(model.predict_on_batch(np.asarray(x)), dtype=np.float64))
        labels.append(np.asarray(y))
    return np.concatenate(outputs), np.concatenate(labels)
