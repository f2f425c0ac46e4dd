"""Text (task = "text_classification") without a model: reading a corpus from a folder
or a file, the vectoriser adapted on training texts alone, one line for each kind of
bad corpus, and `make inspect` finding what a planted corpus hides."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

from recipe_keras.audit.text import audit_text, normalised
from recipe_keras.config import ConfigError, DataConfig
from recipe_keras.text import TEXT_FILES, load_text_splits, read_corpus, tokens

TOPICS = {
    topic: words.split()
    for topic, words in {
        "health": "doctor nurse clinic vaccine fever diet sleep heart lungs virus",
        "money": "bank loan stock market price budget salary rent bond tax",
        "sport": "match goal team coach league score player stadium season ball",
    }.items()
}
SHARED = ["the", "a", "of", "today", "new", "says", "report", "week", "after", "people"]


def _text(rng: np.random.Generator, topic: str) -> str:
    words = list(rng.choice(TOPICS[topic], 5)) + list(rng.choice(SHARED, 4))
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _corpus(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [list(TOPICS)[i % 3] for i in range(n)]
    return pd.DataFrame({"text": [_text(rng, t) for t in labels], "label": labels})


def test_the_vocabulary_comes_from_the_training_split_only(tmp_path):
    frame = _corpus(90)
    path = tmp_path / "corpus.csv"
    frame.to_csv(path, index=False)
    data = DataConfig(dataset=str(path), batch_size=8)
    corpus = read_corpus(data, seed=1)
    # Words only the val and test texts hold: planted after carving, by their rows.
    test_rows = corpus.frames["test"].index
    frame.loc[test_rows, "text"] += " zebra"
    frame.loc[corpus.frames["val"].index, "text"] += " walrus"
    frame.to_csv(path, index=False)
    long = DataConfig(dataset=str(path), batch_size=8, sequence_length=12)
    splits = load_text_splits(long, seed=1, vocabulary=1000, verbose=False)
    vocabulary = set(splits.vocabulary)
    assert splits.vocabulary[:2] == ("", "[UNK]")
    assert "zebra" not in vocabulary and "walrus" not in vocabulary
    train_words = {w for t in corpus.frames["train"]["text"] for w in tokens(t)}
    assert vocabulary - {"", "[UNK]"} == train_words
    # Every test text ends in "zebra": its id is the out-of-vocabulary one.
    ids = np.concatenate([np.asarray(x) for x, _ in splits.test])
    lengths = (ids != 0).sum(axis=1)
    assert (ids[np.arange(len(ids)), lengths - 1] == 1).all()
    # The default sequence length: the training texts' 95th percentile of tokens (nine
    # words each: "zebra", the tenth token of a test text, is cut).
    counts = [len(tokens(t)) for t in corpus.frames["train"]["text"]]
    default = load_text_splits(data, seed=1, vocabulary=1000, verbose=False)
    assert default.input_shape == (max(8, int(np.ceil(np.quantile(counts, 0.95)))),) == (9,)
    # A capped vocabulary keeps the commonest training tokens.
    small = load_text_splits(data, seed=1, vocabulary=6, verbose=False)
    common = pd.Series([w for t in corpus.frames["train"]["text"] for w in tokens(t)])
    assert set(small.vocabulary[2:]) <= set(common.value_counts().index[:6])


def _folder(root: Path, texts: dict[str, list[tuple[str, str]]]) -> Path:
    for split, items in texts.items():
        for i, (label, text) in enumerate(items):
            path = root / split / label / f"{i:04d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def _planted(tmp_path: Path) -> tuple[Path, dict]:
    """A folder corpus with one of each problem, and where each was planted."""
    rng = np.random.default_rng(3)
    split_sizes = {"train": 450, "val": 60, "test": 90}
    texts = {}
    for split, n in split_sizes.items():
        labels = [list(TOPICS)[i % 3] for i in range(n)]
        texts[split] = [(t, _text(rng, t)) for t in labels]
    # 5% of the training labels flipped to the next topic.
    flipped = sorted(rng.choice(np.arange(20, 450), 22, replace=False).tolist())
    names = list(TOPICS)
    for i in flipped:
        label, text = texts["train"][i]
        texts["train"][i] = (names[(names.index(label) + 1) % 3], text)
    # A label-predicting URL in every money text of every split.
    for split in texts:
        texts[split] = [
            (label, f"{text} http://mny.ws/{split}{i}" if label == "money" else text)
            for i, (label, text) in enumerate(texts[split])
        ]
    planted = {
        "cross": texts["train"][0][1],
        "normal": texts["train"][1][1],
        "clash": texts["train"][2][1],
    }
    texts["test"][0] = texts["train"][0]  # the same text in train and test
    texts["train"][3] = (texts["train"][1][0], planted["normal"].upper().replace(" ", "  ") + "!!")
    label = texts["train"][2][0]
    texts["train"][4] = (names[(names.index(label) + 1) % 3], planted["clash"])
    texts["train"][5] = (texts["train"][5][0], "")  # empty
    texts["val"][0] = (texts["val"][0][0], "caf\xe9 au lait".encode("latin-1"))  # not UTF-8
    root = _folder(tmp_path / "corpus", texts)
    files = {
        split: [f"{split}/{label}/{i:04d}.txt" for i, (label, _) in enumerate(items)]
        for split, items in texts.items()
    }
    return root, {"flipped": [files["train"][i] for i in flipped], "files": files}


def test_make_inspect_finds_what_a_planted_corpus_hides(tmp_path):
    root, planted = _planted(tmp_path)
    files = planted["files"]
    data = DataConfig(dataset=str(root))
    # Training refuses the file that is not UTF-8, naming it.
    with pytest.raises(ConfigError, match=r"val/\w+/0000\.txt is not UTF-8"):
        read_corpus(data, seed=0)
    corpus = read_corpus(data, seed=0, strict=False)
    report = audit_text(corpus, tmp_path / "reports", seed=0, verbose=False, data=data)
    checks = {c["name"]: c for c in report.details["checks"]}

    def found(name: str) -> str:
        assert checks[name]["verdict"] == "warn", checks[name]
        return checks[name]["measured"]

    assert files["test"][0] in found("the same text in two splits (leakage)")
    assert files["train"][0] in found("the same text in two splits (leakage)")
    alike = found("duplicates up to case, spaces and punctuation")
    assert files["train"][1] in alike and files["train"][3] in alike
    clash = found("the same text with two labels")
    assert files["train"][2] in clash and files["train"][4] in clash
    assert files["train"][5] in found("empty texts")
    assert files["val"][0] in found("encoding damage (mojibake)")
    shortcut = checks["shortcuts (one token gives a label away)"]["numbers"]["shortcuts"]
    assert {"token": "url:mny.ws", "label": "money"}.items() <= shortcut[0].items()
    # R1.6: the flipped labels lead the suspects (TF-IDF + logistic regression, out of fold).
    suspects = report.details["findings"]["label_suspects"]
    top = [s["id"] for s in suspects[: len(planted["flipped"])]]
    precision = len(set(top) & set(planted["flipped"])) / len(top)
    assert precision >= 0.7, (precision, top)
    table = pd.read_csv(tmp_path / "reports" / "inspect" / "label_suspects.csv")
    assert table["id"].iloc[0] == suspects[0]["id"] and "text" in table.columns
    assert report.verdicts["R1.2"] == "pass"  # three balanced topics


def test_normalised_texts_drop_case_spacing_and_punctuation():
    assert normalised("  Hello,   WORLD!! ") == normalised("hello world") == "hello world"
    assert normalised("\uff23af\u00e9") == "caf\u00e9"  # NFKC: a full-width C is a C
    assert tokens("See http://bbc.in/1AbC — now") == ["see", "http", "bbc", "in", "1abc", "now"]


@pytest.mark.parametrize(
    ("frame", "settings", "message"),
    [
        (
            pd.DataFrame({"body": ["a b", "c d"], "label": ["x", "y"]}),
            {},
            r"data\.text = 'text' is not a column .* body, label",
        ),
        (
            pd.DataFrame({"text": ["a b", "c d"], "y": ["x", "y"]}),
            {},
            r"data\.target = 'label' is not a column",
        ),
        (
            pd.DataFrame({"text": ["a b"] * 30, "label": ["x"] * 30}),
            {},
            r"1 class \(x\); a classifier needs two",
        ),
        (
            pd.DataFrame({"text": ["!!", "?", "..."] * 10, "label": ["x", "y", "z"] * 10}),
            {},
            r"the vocabulary would be empty",
        ),
        (
            pd.DataFrame({"t": ["a b", "c d"] * 10, "c": ["x", "y"] * 10}),
            {"text": "t", "target": "nope"},
            r"data\.target = 'nope'",
        ),
    ],
)
def test_bad_corpora_stop_in_one_line(tmp_path, frame, settings, message):
    path = tmp_path / "corpus.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=message) as caught:
        load_text_splits(DataConfig(dataset=str(path), **settings), seed=0, verbose=False)
    assert "\n" not in str(caught.value)


def test_an_empty_corpus_and_a_folder_without_texts_stop_in_one_line(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("text,label\n")
    with pytest.raises(ConfigError, match="holds no rows"):
        read_corpus(DataConfig(dataset=str(path)), seed=0)
    (tmp_path / "folder" / "val" / "a").mkdir(parents=True)
    (tmp_path / "folder" / "val" / "a" / "1.txt").write_text("hello")
    with pytest.raises(ConfigError, match="holds no train/<label>/"):
        read_corpus(DataConfig(dataset=str(tmp_path / "folder")), seed=0)


def test_a_corpus_over_a_quarter_of_the_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import recipe_keras.storage

    monkeypatch.setattr(recipe_keras.storage, "memory_available", lambda: 4 * 2**20)
    folder = tmp_path / "texts"
    (folder / "train" / "a").mkdir(parents=True)
    (folder / "train" / "a" / "1.txt").write_text("word " * 300_000)  # 1.5 MB of 4 MiB
    as_file = tmp_path / "corpus.csv"
    pd.DataFrame({"text": ["word " * 300_000], "label": ["a"]}).to_csv(as_file, index=False)
    for path, kind in ((folder, "corpus"), (as_file, "table")):
        with pytest.raises(ConfigError) as caught:
            read_corpus(DataConfig(dataset=str(path)), seed=0)
        assert str(caught.value).startswith(f"data.dataset = {str(path)!r} takes 1 MiB, over ")
        assert f"memory available (4 MiB): a {kind} is read whole" in str(caught.value)


def test_the_embedded_corpus_is_sixteen_outlets_of_five_hundred_tweets():
    corpus = read_corpus(DataConfig(dataset="health_news"), seed=42)
    sizes = {s: len(f) for s, f in corpus.frames.items()}
    assert sizes == {"train": 5600, "val": 800, "test": 1600}
    whole = pd.concat(corpus.frames.values())
    assert whole["label"].value_counts().eq(500).all() and whole["label"].nunique() == 16
    assert set(TEXT_FILES) == {"health_news"}


class TinyReviews(tfds.core.GeneratorBasedBuilder):
    """A TFDS catalog corpus, as TFDS prepares one (registered as "tiny_reviews")."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "The test's corpus."}

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "review": tfds.features.Text(),
                    "mood": tfds.features.ClassLabel(names=["bad", "good"]),
                }
            ),
            supervised_keys=("review", "mood"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 100), "test": self._generate_examples(100, 130)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            good = i % 2 == 0
            yield (
                i,
                {"review": f"{'lovely' if good else 'awful'} film number {i}", "mood": int(good)},
            )


def test_a_tfds_catalog_corpus_is_read_by_its_name(tmp_path):
    TinyReviews(data_dir=str(tmp_path)).download_and_prepare()  # TFDS does it once, online
    data = DataConfig(dataset="tiny_reviews", data_dir=str(tmp_path))
    corpus = read_corpus(data, seed=0)
    # The supervised input is the text, the label its class names; bytes become text.
    assert (corpus.text, corpus.label) == ("review", "mood")
    assert {s: len(f) for s, f in corpus.frames.items()} == {"train": 90, "val": 10, "test": 30}
    train = corpus.frames["train"]
    assert set(train["label"]) == {"bad", "good"}
    assert all(
        t.startswith("lovely") == (m == "good")
        for t, m in zip(train["text"], train["label"], strict=True)
    )
    splits = load_text_splits(data, seed=0, verbose=False)
    assert splits.class_names == ("bad", "good") and "lovely" in splits.vocabulary
