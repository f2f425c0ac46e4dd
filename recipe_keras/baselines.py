"""R2.7's dumb baseline, done properly: a linear model fitted to convergence.

``make check`` compares the model with a linear one after the same few steps (a
short-run comparison). That says nothing about what a linear model can reach: on
small, clean data such as the digits, a converged multinomial logistic regression
beats a small CNN trained for 20 epochs. ``make train`` therefore fits one
(scikit-learn's ``LogisticRegression``, L-BFGS to convergence, on the flattened
model inputs) and sets it beside the trained network in train.json and the report.

A regression's baselines are the mean, a ridge regression (its penalty chosen by
leave-one-out, ``RidgeCV``) and gradient-boosted trees, scored by RMSE, MAE and
R² on the target's own scale.

A text's baselines read its words, not the network's token ids: TF-IDF of word 1-
and 2-grams with a converged logistic regression (the one to beat), and a logistic
regression on the text's length alone (if that scores well, length is a shortcut).
"""

from __future__ import annotations

import warnings

import numpy as np

from recipe_keras.data import Splits

__all__ = [
    "LINEAR_MARGIN",
    "fit_length",
    "fit_linear",
    "fit_ridge",
    "fit_tfidf",
    "fit_trees",
    "fit_trees_regressor",
    "mean_baseline",
    "regression_scores",
]

# The trained model must beat the converged linear model by this much: in test
# accuracy, or for a regression by this share of the linear model's test RMSE.
LINEAR_MARGIN = 0.01
# Training examples the fit reads into memory at most (the first of the shuffled
# training split), and the values (examples x features) it holds at most.
MAX_EXAMPLES = 20_000
MAX_VALUES = 50_000_000
MAX_ITERATIONS = 1000


def fit_linear(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """A multinomial logistic regression on the training split, scored on the whole test split.

    Returns its test accuracy and cross-entropy, the training examples it used,
    its iterations and whether L-BFGS converged within ``MAX_ITERATIONS``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x, y = _training(splits, MAX_EXAMPLES)
    model = LogisticRegression(max_iter=MAX_ITERATIONS, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return _result(model, splits, len(y), int(np.max(model.n_iter_)), converged)


def fit_trees(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) on the
    encoded training rows, early-stopped on a tenth of them, scored on the whole test split.

    On tables of medium size trees usually beat a small MLP: the report says so when
    they do.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _training(splits, MAX_EXAMPLES * 10)
    model = HistGradientBoostingClassifier(random_state=seed, early_stopping=True)
    model.fit(x, y)
    return _result(model, splits, len(y), int(model.n_iter_), model.n_iter_ < model.max_iter)


def fit_tfidf(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """R2.7 for text: TF-IDF of word 1- and 2-grams (sublinear counts, the vectoriser's
    tokens) and a multinomial logistic regression, fitted to convergence on the
    training texts and scored on the whole test split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from recipe_keras.text import tokens

    vectoriser = TfidfVectorizer(
        tokenizer=tokens, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True
    )
    model = make_pipeline(vectoriser, LogisticRegression(max_iter=MAX_ITERATIONS, C=10.0))
    return _fit_texts(model, splits, lambda texts: texts)


def fit_length(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """A shortcut detector: a logistic regression on each text's length alone (log
    characters and log tokens). Close to the network's score, length is doing the work."""
    from sklearn.linear_model import LogisticRegression

    from recipe_keras.text import tokens

    def lengths(texts: list[str]) -> np.ndarray:
        return np.log1p([[len(t), len(tokens(t))] for t in texts])

    return _fit_texts(LogisticRegression(max_iter=MAX_ITERATIONS), splits, lengths)


def _fit_texts(model, splits: Splits, features) -> dict[str, float | int | bool]:
    """``model`` fitted on ``features`` of the training texts, scored on the test texts."""
    from sklearn.exceptions import ConvergenceWarning

    if splits.texts is None:
        raise ValueError("these splits hold no texts (Splits.texts): a text baseline reads words")
    texts, y = splits.texts["train"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features(texts), y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    test, labels = splits.texts["test"]
    probs = np.zeros((len(labels), splits.num_classes))
    probs[:, model.classes_] = model.predict_proba(features(test))
    picked = np.maximum(probs[np.arange(len(labels)), labels], 1e-12)
    last = model[-1] if hasattr(model, "steps") else model
    return {
        "test_accuracy": float(np.mean(probs.argmax(axis=1) == labels)),
        "test_loss": float(-np.mean(np.log(picked))),
        "train_examples": len(y),
        "iterations": int(np.max(last.n_iter_)),
        "converged": converged,
    }


def regression_scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and the mean squared error (the compiled loss), over every output."""
    y, predicted = y.reshape(len(y), -1), predicted.reshape(len(y), -1)
    error = predicted - y
    mse = float(np.mean(error**2))
    variance = float(np.mean((y - y.mean(axis=0)) ** 2))
    return {
        "test_rmse": mse**0.5,
        "test_mae": float(np.mean(np.abs(error))),
        "test_r2": 1.0 - mse / variance if variance > 0 else float("nan"),
        "test_loss": mse,
    }


def mean_baseline(splits: Splits) -> dict[str, float]:
    """R2.7's dumbest regression: always the training split's mean target."""
    _, y = _training(splits, MAX_EXAMPLES * 10, float)
    mean = y.mean(axis=0)
    return _regression_result(lambda x: np.broadcast_to(mean, (len(x), len(mean))), splits)


def fit_ridge(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """A ridge regression, its penalty chosen by leave-one-out over a grid (``RidgeCV``,
    solved exactly: converged by construction), scored on the whole test split."""
    from sklearn.linear_model import RidgeCV

    x, y = _training(splits, MAX_EXAMPLES, float)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y)
    found = _regression_result(model.predict, splits)
    return found | {"train_examples": len(y), "iterations": 1, "converged": True}


def fit_trees_regressor(splits: Splits, seed: int = 0) -> dict[str, float | int | bool]:
    """Gradient-boosted trees (HistGradientBoostingRegressor, squared error) on the
    encoded training rows, early-stopped on a tenth of them; one output only."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = _training(splits, MAX_EXAMPLES * 10, float)
    model = HistGradientBoostingRegressor(random_state=seed, early_stopping=True)
    model.fit(x, y.ravel())
    found = _regression_result(model.predict, splits)
    iterations = int(model.n_iter_)
    converged = iterations < model.max_iter
    return found | {"train_examples": len(y), "iterations": iterations, "converged": converged}


def _regression_result(predict, splits: Splits) -> dict[str, float]:
    ys, predicted = [], []
    for xb, yb in splits.test:
        xb = _flat(xb)
        ys.append(np.asarray(yb, dtype=np.float64).reshape(len(xb), -1))
        predicted.append(np.asarray(predict(xb), dtype=np.float64).reshape(len(xb), -1))
    return regression_scores(np.concatenate(ys), np.concatenate(predicted))


def _training(splits: Splits, examples: int, kind: type = int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``examples`` training examples (fewer where they would hold over
    ``MAX_VALUES`` values), flattened; labels as ``kind`` (int: classes; float: targets)."""
    features = int(np.prod(splits.input_shape))
    limit = max(splits.num_classes, min(examples, MAX_VALUES // features))
    return _arrays(splits.train, limit, kind)


def _result(model, splits: Splits, examples: int, iterations: int, converged: bool) -> dict:
    """A fitted scikit-learn classifier's accuracy and mean cross-entropy on the whole
    test split, with how it was fitted."""
    hits, loss, n = 0, 0.0, 0
    for xb, yb in splits.test:
        xb, yb = _flat(xb), np.asarray(yb).ravel().astype(int)
        probs = np.zeros((len(yb), splits.num_classes))
        probs[:, model.classes_] = model.predict_proba(xb)
        hits += int((probs.argmax(axis=1) == yb).sum())
        loss -= float(np.log(np.maximum(probs[np.arange(len(yb)), yb], 1e-12)).sum())
        n += len(yb)
    return {
        "test_accuracy": hits / n,
        "test_loss": loss / n,
        "train_examples": examples,
        "iterations": iterations,
        "converged": bool(converged),
    }


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _arrays(dataset, limit: int, kind: type = int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` (x, y) examples of a batched pipeline, flattened, as NumPy arrays:
    integer labels, or float targets as (examples, outputs)."""
    xs, ys, n = [], [], 0
    for x, y in dataset:
        xs.append(_flat(x))
        y = np.asarray(y)
        ys.append(y.ravel().astype(int) if kind is int else y.reshape(len(y), -1).astype(float))
        n += len(ys[-1])
        if n >= limit:
            break
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]
