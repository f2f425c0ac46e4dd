"""R1.8: what a trained model gets wrong, once ``make train`` has saved one.

Predictions run on the audit's own reading of the split, a block at a time, through
the training preprocessing (:func:`recipe_keras.data.make_pipeline`), so each mistake comes
with its example id or file path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recipe_keras.audit.examples import Examples
from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = ["model_errors", "predict_split", "saved_model_probabilities"]


def predict_split(model, ex: Examples, data_cfg=None, split: str = "test") -> np.ndarray:
    """Class probabilities of ``model`` for every example of ``split``, in the audit's order.

    ``data_cfg``: the images are as stored, and go through the training preprocessing
    first (:func:`recipe_keras.data.make_pipeline`); None: they are the model's inputs.
    """
    import keras
    import tensorflow as tf

    from recipe_keras.data import make_pipeline
    from recipe_keras.storage import Storage

    probabilities = [np.zeros((0, len(ex.class_names)))]
    for rows, images in ex.split_blocks(split):  # a block at a time: a streamed table
        ds = tf.data.Dataset.from_tensor_slices((images, np.maximum(ex.labels[rows], 0)))
        if data_cfg is None:
            ds = ds.batch(256)
        else:
            shape = tuple(model.input_shape[1:])
            streamed = Storage("none", 1, None)  # each block is read once
            ds = make_pipeline(ds, data_cfg, shape, training=False, seed=0, storage=streamed)
        logits = model.predict(ds, verbose=0)
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
    return np.concatenate(probabilities).astype(np.float32)


def model_errors(
    ex: Examples, probs: np.ndarray, split: str = "test", top: int = 16
) -> tuple[CheckResult, np.ndarray, list[dict]]:
    """Confusion matrix (rows: true class) and the examples with the highest loss."""
    rows = np.flatnonzero((ex.splits == split) & (ex.labels >= 0))
    keep = np.isin(np.flatnonzero(ex.splits == split), rows)
    probs, labels = probs[keep], ex.labels[rows]
    classes = len(ex.class_names)
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))
    worst = np.argsort(-loss, kind="stable")[:top]
    errors = [
        {
            "id": ex.ids[rows[i]],
            "given": ex.class_names[labels[i]],
            "predicted": ex.class_names[predicted[i]],
            "loss": float(loss[i]),
            "row": int(rows[i]),
        }
        for i in worst
    ]
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    accuracy = float((predicted == labels).mean()) if len(labels) else 0.0
    weakest = int(per_class.argmin())
    numbers = {
        "accuracy": accuracy,
        "confusion": confusion.tolist(),
        "per_class_accuracy": per_class.tolist(),
        "top_loss": [e["id"] for e in errors],
    }
    result = CheckResult(
        "R1.8",
        "model errors",
        Verdict.INFO,  # a confusion matrix and mistakes to look at
        f"{split} accuracy {accuracy:.3f}; weakest class {ex.class_names[weakest]} "
        f"({per_class[weakest]:.3f})",
        "look at the confusion matrix and the top-loss examples",
        "",
        numbers,
    )
    return result, confusion, errors


def saved_model_probabilities(
    model_path: str | os.PathLike[str], ex: Examples, data_cfg=None, split: str = "test"
) -> np.ndarray | None:
    """Test probabilities of the model ``make train`` saved; None until there is one."""
    if not Path(model_path).is_file():
        return None
    import keras

    return predict_split(keras.saving.load_model(model_path), ex, data_cfg, split)
