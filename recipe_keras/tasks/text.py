"""Text: short labelled texts, tokenised by Keras's TextVectorization, classified by a
network over token ids, set against TF-IDF with a logistic regression and a
length-only model (R2.7)."""

from __future__ import annotations

from typing import Any

from recipe_keras.task import Task

__all__ = ["TextClassification"]


class TextClassification(Task):
    name = "text_classification"
    next_step = "make inspect adds the model's worst test texts and its confusion matrix (R1.8)"
    padded_tokens = True
    linear_label = "TF-IDF (word 1- and 2-grams) with a converged logistic regression"

    def load_splits(self, data, seed: int, vocabulary: int = 20_000):
        """``vocabulary``: ``model.vocabulary``, the embedding's rows (data.py passes it)."""
        from recipe_keras.text import load_text_splits

        return load_text_splits(data, seed, vocabulary=vocabulary)

    def linear_baseline(self, splits, seed: int) -> dict[str, Any]:
        """R2.7's linear model for text: TF-IDF of word 1- and 2-grams, logistic regression."""
        from recipe_keras.baselines import fit_tfidf

        return fit_tfidf(splits, seed)

    def baselines(self, splits, seed: int) -> dict[str, dict[str, Any]]:
        from recipe_keras.baselines import fit_length

        return {**super().baselines(splits, seed), "length_only": fit_length(splits, seed)}

    def inspect(self, project):
        """``make inspect``: the corpus as stored (every split), before any tokenising."""
        from recipe_keras.audit.text import audit_text
        from recipe_keras.text import read_corpus

        config = project.config
        corpus = read_corpus(config.data, config.seed, strict=False)
        print(f"Reading {config.data.dataset} (every split): {corpus.text!r} by {corpus.label!r}")
        return audit_text(
            corpus,
            config.train.reports_dir,
            folds=config.inspect.folds,
            seed=config.seed,
            vocabulary=config.model.vocabulary,
            model_path=config.train.model_path,
            data=config.data,
        )
