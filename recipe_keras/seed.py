"""R2.1: one seed for Python, NumPy, the backend and TensorFlow's input pipeline."""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["set_seed"]


def set_seed(seed: int) -> None:
    """Seed every RNG a run touches, so two runs with one seed give the same losses.

    ``keras.utils.set_random_seed`` seeds Python, NumPy and the active backend;
    tf.data runs on TensorFlow whatever the backend, so its ops are made
    deterministic too (the shuffle itself takes the seed in ``make_pipeline``).
    """
    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()
