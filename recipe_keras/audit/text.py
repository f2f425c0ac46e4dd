"""``make inspect`` for text: the corpus as stored, every split, before tokenising.

Each finding names its texts (``split:row`` in the file, or the file of a folder):
exact, normalised and near duplicates, the same text across splits, the same text
with two labels, empty, cut and outlying lengths, encoding damage, tokens unseen in
training, class balance, label noise (cross-validated TF-IDF with a logistic
regression) and shortcuts (one token that gives a label away), and, once a model is
saved, its worst test texts and confusion matrix (R1.8).
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_keras.audit import classes, noise
from recipe_keras.audit.record import record_errors, recorder, write_audit
from recipe_keras.audit.table import Rows, finding, rows_of
from recipe_keras.audit.table_errors import table_errors
from recipe_keras.checks.result import CheckResult
from recipe_keras.report import Report
from recipe_keras.text import Corpus, sequence_length, tokens
from recipe_keras.verdicts import Verdict

__all__ = ["audit_text", "normalised", "shortcuts"]

# TF-IDF cosine at or above which two different texts are near duplicates.
NEAR = 0.9
# Texts the quick models and the near-duplicate search read at most (seeded sample).
MAX_TEXTS = 20_000
# A length (log tokens) this many robust deviations from the median is an outlier.
LENGTH_Z = 5.0
# Tokens unseen in training above this share of a split's tokens: a warning.
OOV_SHARE = 0.1
# A shortcut: a token in at least this share of one class's training texts, of which
# at least PURITY carry that class.
COVERAGE, PURITY = 0.2, 0.95
# Encoding damage: UTF-8 read as Latin-1 or cp1252 ("Ã©", "â€™"), or U+FFFD.
MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]|\u00e2\u20ac|\ufffd")
# Markup and addresses a shortcut is often made of, kept whole as a token.
_URL = re.compile(r"https?://([^/\s]+)", re.IGNORECASE)
_HANDLE = re.compile(r"@\w+")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*[^>]*>")


def normalised(text: str) -> str:
    """A text without case, accents' composition, punctuation or repeated spaces."""
    return " ".join(tokens(unicodedata.normalize("NFKC", text)))


def _quote(text: str, width: int = 60) -> str:
    one = " ".join(text.split())
    return repr(one if len(one) <= width else one[: width - 1] + "…")


def _finding(rid, name, found, expected, advice, numbers) -> CheckResult:
    return finding(rid, name, found, expected, advice, numbers, sep="; ")


def duplicates(rows: Rows, texts: list[str]) -> list[CheckResult]:
    """R1.3: exact and normalised duplicates, the same text across splits, and the same
    text with two labels, each group named by its texts' ids."""
    exact, normal = defaultdict(list), defaultdict(list)
    for i, text in enumerate(texts):
        exact[text].append(i)
        normal[normalised(text)].append(i)
    same = [g for g in exact.values() if len(g) > 1]
    # Normalised groups holding texts that differ as stored (case, spaces, punctuation).
    alike = [g for k, g in normal.items() if k and len({texts[i] for i in g}) > 1]
    across = [g for k, g in normal.items() if k and len({rows.splits[i] for i in g}) > 1]
    clash = [g for k, g in normal.items() if k and len({int(rows.labels[i]) for i in g}) > 1]

    def named(groups, labels=False):
        return [
            " = ".join(
                rows.ids[i] + (f" ({rows.class_names[rows.labels[i]]})" if labels else "")
                for i in g[:4]
            )
            + f" {_quote(texts[g[0]], 40)}"
            for g in sorted(groups, key=len, reverse=True)
        ]

    def ids(groups):
        return [[rows.ids[i] for i in g] for g in groups]

    return [
        _finding(
            "R1.3",
            "exact duplicate texts",
            named(same),
            "no text stored twice",
            "drop the copies (they weigh twice in training and in the test score)",
            {
                "groups": len(same),
                "extra_copies": sum(len(g) - 1 for g in same),
                "pairs": ids(same)[:50],
            },
        ),
        _finding(
            "R1.3",
            "duplicates up to case, spaces and punctuation",
            named(alike),
            "no two texts the same once normalised",
            "these are the same text written twice; keep one",
            {"groups": len(alike), "pairs": ids(alike)[:50]},
        ),
        _finding(
            "R1.3",
            "the same text in two splits (leakage)",
            named(across),
            "no text of val or test also in train",
            "remove them from val and test: the test score counts them as learnt",
            {"groups": len(across), "pairs": ids(across)[:50]},
        ),
        _finding(
            "R1.4",
            "the same text with two labels",
            named(clash, labels=True),
            "one label per text",
            "decide the label, or drop the text: no model can get both right",
            {"groups": len(clash), "pairs": ids(clash)[:50]},
        ),
    ]


def near_duplicates(rows: Rows, texts: list[str], picked: np.ndarray) -> CheckResult:
    """R1.3: pairs of different texts whose TF-IDF vectors have cosine >= ``NEAR``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    normal = [normalised(texts[i]) for i in picked]
    keep = [j for j, t in enumerate(normal) if t]
    pairs = []
    if len(keep) > 1:
        matrix = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False)
        x = matrix.fit_transform([normal[j] for j in keep])
        for start in range(0, x.shape[0], 1000):
            block = (x[start : start + 1000] @ x.T).tocoo()
            for a, b, v in zip(block.row + start, block.col, block.data, strict=True):
                if a < b and v >= NEAR and normal[keep[a]] != normal[keep[b]]:
                    pairs.append((float(v), picked[keep[a]], picked[keep[b]]))
    pairs.sort(reverse=True)
    found = [f"{rows.ids[a]} ~ {rows.ids[b]} ({v:.2f}) {_quote(texts[a], 40)}" for v, a, b in pairs]
    return _finding(
        "R1.3",
        f"near-duplicate texts (TF-IDF cosine >= {NEAR})",
        found,
        "no two texts nearly the same",
        "keep one of each pair, or keep each pair in one split",
        {
            "pairs": [[rows.ids[a], rows.ids[b], v] for v, a, b in pairs[:50]],
            "count": len(pairs),
            "texts_read": len(picked),
        },
    )


def lengths(
    rows: Rows, texts: list[str], words: list[list[str]], length: int, reports: Path
) -> list[CheckResult]:
    """R1.4 and R1.5: empty texts, texts cut by the sequence length, length outliers
    (with a histogram of tokens per text, per split) and encoding damage. ``words``:
    each text's tokens."""
    from recipe_keras.figures import plot_histograms

    counts = np.array([len(w) for w in words])
    per_split = {s: counts[rows.splits == s] for s in rows.split_names}
    figure = plot_histograms(per_split, reports / "inspect" / "lengths.png", "tokens per text")
    empty = [rows.ids[i] for i in np.flatnonzero(counts == 0)]
    logs = np.log1p(counts)
    mad = float(np.median(np.abs(logs - np.median(logs)))) or 1e-9
    z = (logs - np.median(logs)) / (1.4826 * mad)
    outliers = np.flatnonzero((np.abs(z) > LENGTH_Z) & (counts > 0))
    outliers = outliers[np.argsort(-np.abs(z[outliers]))]
    cut = int((counts > length).sum())
    damaged = [i for i, t in enumerate(texts) if MOJIBAKE.search(t)]
    outlying = _finding(
        "R1.5",
        f"length outliers (log tokens beyond {LENGTH_Z:g} robust SD)",
        [f"{rows.ids[i]} ({counts[i]} tokens)" for i in outliers],
        "lengths near the corpus's own",
        "look at them: a file joined with another, a page of markup, a stub",
        {
            "outliers": [rows.ids[i] for i in outliers[:50]],
            "tokens": {
                "median": float(np.median(counts)),
                "max": int(counts.max(initial=0)),
                "p95": float(np.quantile(counts, 0.95)) if len(counts) else 0.0,
            },
            "cut_by_sequence_length": cut,
            "sequence_length": length,
        },
    )
    outlying.measured += f" ({cut} texts longer than data.sequence_length = {length}: cut)"
    outlying.figures.append(str(figure.relative_to(reports)))
    return [
        _finding(
            "R1.4",
            "empty texts",
            empty,
            "every text holds a word",
            "drop them or fill them: an empty text is all padding",
            {"empty": empty[:50]},
        ),
        outlying,
        _finding(
            "R1.4",
            "encoding damage (mojibake)",
            [f"{rows.ids[i]} {_quote(texts[i], 40)}" for i in damaged],
            "no UTF-8 read as Latin-1, no U+FFFD",
            "re-read the source as UTF-8 (ftfy can repair what is stored)",
            {"damaged": [rows.ids[i] for i in damaged[:50]]},
        ),
    ]


def unseen_tokens(rows: Rows, words: list[list[str]], vocabulary: int) -> CheckResult:
    """Tokens of val and test outside the vectoriser's vocabulary (train's commonest);
    ``words``: each text's tokens."""
    per_split = {
        split: Counter(t for i, w in enumerate(words) if rows.splits[i] == split for t in w)
        for split in rows.split_names
    }
    kept = {t for t, _ in per_split["train"].most_common(max(1, vocabulary - 2))}
    rates, worst = {}, {}
    for split, seen in per_split.items():
        total = sum(seen.values())
        unseen = Counter({t: n for t, n in seen.items() if t not in kept})
        rates[split] = sum(unseen.values()) / total if total else 0.0
        worst[split] = [t for t, _ in unseen.most_common(5)]
    high = [
        f"{s}: {r:.1%} (commonest {', '.join(worst[s])})"
        for s, r in rates.items()
        if s != "train" and r > OOV_SHARE
    ]
    measured = ", ".join(f"{s} {r:.1%}" for s, r in rates.items())
    return CheckResult(
        "R1.5",
        "tokens outside the training vocabulary",
        Verdict.WARN if high else Verdict.PASS,
        measured,
        f"val and test under {OOV_SHARE:.0%} of their tokens",
        f"{'; '.join(high)}: the vocabulary misses them (raise model.vocabulary, or the "
        "splits differ in what they talk about)"
        if high
        else "",
        {"rates": rates, "commonest_unseen": worst},
    )


def _marks(text: str, words: list[str]) -> set[str]:
    """The text's tokens, plus its URLs' domains, handles and markup tags kept whole."""
    marks = set(words)
    marks |= {f"url:{d.lower()}" for d in _URL.findall(text)}
    marks |= {h.lower() for h in _HANDLE.findall(text)}
    marks |= {t.split()[0].lower().rstrip(">") + ">" for t in _TAG.findall(text)}
    return marks


def shortcuts(rows: Rows, texts: list[str], words: list[list[str]] | None = None) -> CheckResult:
    """Tokens (or a URL's domain, a handle, a markup tag) in at least ``COVERAGE`` of one
    class's training texts and carrying that class in at least ``PURITY`` of theirs.
    ``words``: each text's tokens, when already made."""
    words = words if words is not None else [tokens(t) for t in texts]
    train = np.flatnonzero(rows.splits == "train")
    per_token: dict[str, Counter] = defaultdict(Counter)
    for i in train:
        for mark in _marks(texts[i], words[i]):
            per_token[mark][int(rows.labels[i])] += 1
    sizes = Counter(int(rows.labels[i]) for i in train)
    found = []
    for mark, by_class in per_token.items():
        label, n = by_class.most_common(1)[0]
        total = sum(by_class.values())
        if n / total >= PURITY and n >= COVERAGE * sizes[label] and n >= 5:
            found.append((n / sizes[label], mark, label, n / total, total))
    # The widest first; at a tie a whole address, handle or tag before its words.
    found.sort(key=lambda f: (f[0], f[1].startswith(("url:", "@", "<"))), reverse=True)
    shown = [
        f"{mark!r} -> {rows.class_names[label]} ({purity:.0%} of {total} texts; "
        f"{coverage:.0%} of the class)"
        for coverage, mark, label, purity, total in found
    ]
    return _finding(
        "R1.6",
        "shortcuts (one token gives a label away)",
        shown,
        f"no token in >= {COVERAGE:.0%} of a class's texts with >= {PURITY:.0%} of its own",
        "the network may learn the token, not the text: check it is there in production, "
        "or remove it (data.py) and compare",
        {
            "shortcuts": [
                {"token": m, "label": rows.class_names[c], "purity": p, "coverage": cov, "texts": t}
                for cov, m, c, p, t in found[:50]
            ]
        },
    )


def audit_text(
    corpus: Corpus,
    reports_dir: str | os.PathLike[str] = "reports",
    *,
    folds: int = 5,
    seed: int = 0,
    vocabulary: int = 20_000,
    verbose: bool = True,
    model_path: str | os.PathLike[str] | None = None,
    data=None,
) -> Report:
    """Audit a corpus's splits as stored; write ``<reports_dir>/inspect.json``, figures
    and ``inspect/label_suspects.csv``. ``model_path`` and ``data``: R1.8 once ``make
    train`` has saved a model."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from recipe_keras import figures as fig
    from recipe_keras.report import atomic_write

    out = Path(reports_dir)
    (out / "inspect").mkdir(parents=True, exist_ok=True)
    (out / "inspect.json").unlink(missing_ok=True)
    start = time.perf_counter()
    frames = corpus.frames
    rows = rows_of({s: f[["text", "label"]] for s, f in frames.items()}, "label")
    if any("file" in f.columns for f in frames.values()):  # a folder: name the files
        rows.ids = [str(f) for s in frames for f in frames[s]["file"]]
    texts = rows.frame["text"].tolist()
    results: list[CheckResult] = []
    record = recorder(results, start, verbose)

    balance, counts = classes.class_counts(rows)
    path = fig.plot_counts(counts, list(rows.class_names), out / "inspect" / "counts.png")
    balance.figures.append(str(path.relative_to(out)))
    record(balance)
    for result in duplicates(rows, texts):
        record(result)
    picked = np.sort(np.random.default_rng(seed).permutation(len(texts))[:MAX_TEXTS])
    record(near_duplicates(rows, texts, picked))
    length = sequence_length(frames["train"]["text"], data or _Data())
    words = [tokens(t) for t in texts]  # once, for the checks of lengths and tokens
    for result in lengths(rows, texts, words, length, out):
        record(result)
    record(unseen_tokens(rows, words, vocabulary))
    record(shortcuts(rows, texts, words))
    sample = Rows(
        rows.frame.iloc[picked].reset_index(drop=True),
        rows.labels[picked],
        rows.splits[picked],
        [rows.ids[i] for i in picked],
        rows.class_names,
        rows.split_names,
    )
    # Word 1- and 2-grams seen twice or more: a quarter of the time of every bigram
    # (13 s against 48 s on the embedded corpus), out-of-fold accuracy within a point.
    features = TfidfVectorizer(
        tokenizer=tokens,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=2,
    ).fit_transform([texts[i] for i in picked])
    quick = LogisticRegression(max_iter=1000, C=4.0)
    result, suspects, _ = noise.label_suspects(
        sample, features, folds=folds, seed=seed, model=quick
    )
    where = {name: i for i, name in enumerate(rows.ids)}
    for s in suspects:
        s["text"] = texts[where[s["id"]]]
    result.numbers["suspect_rows"] = [s["id"] for s in suspects[:50]]
    table = pd.DataFrame(suspects[:200])
    atomic_write(out / "inspect" / "label_suspects.csv", lambda tmp: table.to_csv(tmp, index=False))
    result.figures.append("inspect/label_suspects.csv")
    record(result)
    mistakes: list[dict] = []
    if model_path is not None and data is not None:
        from recipe_keras.text import load_text_splits

        found = table_errors(
            model_path,
            frames,
            "label",
            data,
            seed,
            out,
            load=lambda: load_text_splits(data, seed, vocabulary=vocabulary, verbose=False),
        )
        mistakes = record_errors(found, model_path, out, record)
    return write_audit(
        results, len(rows), "texts", rows.class_names, suspects, mistakes, out, start, verbose
    )


class _Data:
    """The sequence length's default when no [data] config is given."""

    sequence_length = 0
