"""Text: short labelled texts from an embedded corpus, a CSV or Parquet file, a folder
of ``split/label/*.txt`` files or a TFDS catalog dataset, read into train/val/test and
turned into token ids by Keras's ``TextVectorization``, adapted on the training split
only.

A corpus is read whole into memory (its texts, not their token ids), so one larger
than a quarter of the memory available is refused rather than read. Tokenising runs
inside tf.data, so the same ids reach a network on any backend: 0 is padding, 1 an
out-of-vocabulary token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from recipe_keras.config import ConfigError, DataConfig
from recipe_keras.data import Splits, order_and_batch
from recipe_keras.storage import Storage, refuse_over_memory
from recipe_keras.tabular import (
    carve,
    catalog_tables,
    class_labels,
    is_catalog_name,
    read_table_file,
    table_file,
)
from recipe_keras.values import TABLE_SUFFIXES

__all__ = [
    "TEXT_FILES",
    "Corpus",
    "load_text_splits",
    "read_corpus",
    "sequence_length",
    "to_ids",
    "tokens",
    "vectoriser",
]

# The tokens per text a default sequence length keeps at most, and the share of
# training texts it keeps whole.
MAX_SEQUENCE = 500
LENGTH_QUANTILE = 0.95
# Letters and digits of any script make a token; everything else separates tokens
# (a URL's domain and path become words: "bbc in 1xyz"). The same rule in Python
# (``tokens``) and in TensorFlow (``_standardize``).
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class EmbeddedText:
    file: str
    text: str
    label: str


TEXT_FILES = {
    # UCI Health News in Twitter (Karami et al. 2017), CC BY 4.0 (docs/text.md): which
    # of 16 news outlets posted a health tweet; 500 tweets of each, seeded.
    "health_news": EmbeddedText("health_news.csv.gz", "text", "label"),
}


@dataclass(frozen=True)
class Corpus:
    """Every split's texts and labels as stored, and which columns they came from."""

    frames: dict[str, pd.DataFrame]  # train, val, test: columns text and label
    text: str
    label: str


def tokens(text: str) -> list[str]:
    """A text's tokens as the vectoriser splits them: lower case, letters and digits."""
    return _WORD.findall(text.lower())


def _standardize(texts: tf.Tensor) -> tf.Tensor:
    """``tokens``'s rule inside tf.data: lower case, anything but letters and digits
    becomes a space."""
    lowered = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.regex_replace(lowered, r"[^\pL\pN]+", " ")


def _read_text_file(path: Path, strict: bool = True) -> str:
    if not strict:  # make inspect: the damage shows as U+FFFD, named by the audit
        return path.read_bytes().decode("utf-8", "replace")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}); "
            "save it as UTF-8, or remove it"
        ) from exc


def _text_folder(root: Path, strict: bool = True) -> dict[str, pd.DataFrame]:
    """``root/<split>/<label>/*.txt`` (Keras's ``text_dataset_from_directory`` layout)."""
    files = sorted(root.glob("*/*/*.txt"))
    refuse_over_memory(
        sum(f.stat().st_size for f in files), f"data.dataset = {str(root)!r}", "corpus"
    )
    frames = {}
    for split in ("train", "val", "test"):
        found = [f for f in files if f.parts[-3] == split]
        if found:
            frames[split] = pd.DataFrame(
                {
                    "text": [_read_text_file(f, strict) for f in found],
                    "label": [f.parent.name for f in found],
                    "file": [str(f.relative_to(root)) for f in found],
                }
            )
    if "train" not in frames:
        raise ConfigError(
            f"data.dataset = {str(root)!r} holds no train/<label>/*.txt files; a text folder "
            "is laid out split/label/text.txt (train, and optionally val and test)"
        )
    return frames


def read_corpus(cfg: DataConfig, seed: int, *, strict: bool = True) -> Corpus:
    """Train, val and test as data frames of ``text`` and ``label`` (as stored: a label
    is a class name), each row keeping its index in the file so findings can name it.

    One file (or an embedded corpus) is carved into train, val and test by a seeded
    permutation, as a table is; a folder gives its own splits. ``strict``: a file of a
    folder that is not UTF-8 stops the run, naming it (``make inspect`` reads it with
    U+FFFD in place of what does not decode, and names it among its findings).
    """
    text_column, label_column = cfg.text, cfg.target
    path = Path(cfg.dataset).expanduser()
    if cfg.dataset in TEXT_FILES:
        known = TEXT_FILES[cfg.dataset]
        file = Path(__file__).parent / "datasets" / "texts" / known.file
        frames = {"train": read_table_file(file, "data.dataset")}
        text_column, label_column = text_column or known.text, label_column or known.label
    elif path.is_dir() and any(path.glob("*/*/*.txt")):
        frames = _text_folder(path, strict)
        text_column, label_column = "text", "label"
    elif path.is_dir():
        files = {split: table_file(path, split) for split in ("train", "val", "test")}
        frames = {s: read_table_file(f, "data.dataset") for s, f in files.items() if f is not None}
        if "train" not in frames:
            raise ConfigError(
                f"data.dataset = {cfg.dataset!r}: no train/<label>/*.txt files and no "
                "train.csv; a text folder holds either"
            )
    elif path.is_file() and path.name.endswith(TABLE_SUFFIXES):
        frames = {"train": read_table_file(path, "data.dataset")}
    elif is_catalog_name(cfg.dataset):
        frames, (text_key, label_key) = catalog_tables(cfg)
        text_column, label_column = text_column or text_key, label_column or label_key
    else:
        raise ConfigError(
            f"data.dataset = {cfg.dataset!r} is not a corpus: give an embedded corpus "
            f"({', '.join(TEXT_FILES)}), a .csv or .parquet file with a text and a label "
            "column, a folder laid out split/label/text.txt, or a TFDS catalog name such "
            "as 'imdb_reviews'"
        )
    text_column, label_column = text_column or "text", label_column or "label"
    for split, frame in frames.items():
        for key, column in (("data.text", text_column), ("data.target", label_column)):
            if column not in frame.columns:
                raise ConfigError(
                    f"{key} = {column!r} is not a column of the {split} split; its columns: "
                    f"{', '.join(map(str, frame.columns))}"
                )
    frames = {s: _as_text(f, text_column, label_column) for s, f in frames.items()}
    if not len(frames["train"]):
        raise ConfigError(f"data.dataset = {cfg.dataset!r} holds no texts")
    return Corpus(carve(frames, seed), text_column, label_column)


def _as_text(frame: pd.DataFrame, text: str, label: str) -> pd.DataFrame:
    """Columns ``text`` and ``label`` (a missing text is empty), plus ``file`` if any."""
    out = pd.DataFrame(index=frame.index)
    out["text"] = frame[text].map(_plain_text)
    out["label"] = frame[label]
    if "file" in frame.columns and text != "file":
        out["file"] = frame["file"]
    return out


def _plain_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def sequence_length(texts: pd.Series, cfg: DataConfig) -> int:
    """``data.sequence_length``, or the training split's 95th percentile of tokens per
    text (at least 8, at most ``MAX_SEQUENCE``)."""
    if cfg.sequence_length:
        return cfg.sequence_length
    counts = texts.map(lambda t: len(tokens(t)))
    return int(min(MAX_SEQUENCE, max(8, np.ceil(np.quantile(counts, LENGTH_QUANTILE)))))


def vectoriser(train_texts: pd.Series, vocabulary: int, length: int):
    """A ``keras.layers.TextVectorization`` adapted on the training texts alone: the
    commonest ``vocabulary - 2`` tokens, each text padded or cut to ``length`` ids.

    It takes texts already through ``_standardize`` (``to_ids`` does both): on JAX
    and torch the layer refuses a standardizing function of its own inside tf.data.
    """
    from keras import layers

    layer = layers.TextVectorization(
        max_tokens=vocabulary, standardize=None, output_mode="int", output_sequence_length=length
    )
    texts = tf.data.Dataset.from_tensor_slices(train_texts.to_numpy(str)).batch(1024)
    layer.adapt(texts.map(_standardize))
    if layer.vocabulary_size() <= 2:
        raise ConfigError(
            "the training texts hold no token (letters or digits): the vocabulary would be "
            "empty; are they empty, or is data.text the wrong column?"
        )
    return layer


def to_ids(layer, texts: tf.Tensor) -> tf.Tensor:
    """A batch of texts as int32 token ids, inside tf.data (any backend)."""
    return tf.cast(layer(_standardize(texts)), tf.int32)


def load_text_splits(
    cfg: DataConfig, seed: int, *, vocabulary: int = 20_000, verbose: bool = True
) -> Splits:
    """Batched train/val/test pipelines of (token ids, integer label).

    ``vocabulary`` is ``model.vocabulary``: the network's embedding has that many rows,
    so the vectoriser keeps at most that many tokens.
    """
    if cfg.augment or cfg.mix:
        raise ConfigError(
            "data.augment and data.mix transform images; a text takes neither (set them "
            "to [] and '')"
        )
    corpus = read_corpus(cfg, seed)
    frames = corpus.frames
    if cfg.train_fraction < 1.0:  # R4.1: the first share, in the split's stored order
        keep = max(1, round(cfg.train_fraction * len(frames["train"])))
        frames = {**frames, "train": frames["train"].iloc[:keep]}
    labels, names = class_labels(frames, "label")
    length = sequence_length(frames["train"]["text"], cfg)
    layer = vectoriser(frames["train"]["text"], vocabulary, length)
    if verbose:
        print(
            f"Text: {corpus.text!r} classified by {corpus.label!r} ({len(names)} classes); "
            f"{layer.vocabulary_size()} tokens kept (model.vocabulary = {vocabulary}), "
            f"{length} per text (data.sequence_length)",
            flush=True,
        )
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    storage = Storage("memory", cfg.shuffle_buffer, None)
    pipelines = {}
    for split, frame in frames.items():
        rows = tf.data.Dataset.from_tensor_slices((frame["text"].to_numpy(str), labels[split]))
        ids = rows.batch(1024).map(lambda t, y: (to_ids(layer, t), y)).unbatch()
        ids = ids.apply(tf.data.experimental.assert_cardinality(len(frame))).cache()
        pipelines[split] = order_and_batch(
            ids,
            cfg,
            training=split == "train",
            seed=seed,
            epoch=epoch if split == "train" else None,
            storage=storage,
        )
    words = np.array(layer.get_vocabulary(), dtype=object)

    def rows_as_stored(n: int) -> tuple[pd.DataFrame, np.ndarray]:
        """R2.10: the first ``n`` training texts as stored, their token ids, and the ids
        decoded back to words (padding dropped, out-of-vocabulary as [UNK])."""
        head = frames["train"].head(n).copy()
        texts = tf.data.Dataset.from_tensors(head["text"].to_numpy(str))
        ids = next(iter(texts.map(lambda t: to_ids(layer, t)))).numpy()
        head["tokens the network reads"] = [" ".join(words[row[row > 0]]) for row in ids]
        return head, ids

    return Splits(
        **pipelines,
        input_shape=(length,),
        num_classes=len(names),
        class_names=names,
        sizes={split: len(frame) for split, frame in frames.items()},
        epoch=epoch,
        rows_as_stored=rows_as_stored,
        texts={split: (frame["text"].tolist(), labels[split]) for split, frame in frames.items()},
        vocabulary=tuple(words),
    )
