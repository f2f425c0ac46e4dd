"""R2.1: one seed for Python, NumPy, the backend and TensorFlow's input pipeline."""

from __future__ import annotations

import keras
import tensorflow as tf

from recipe_keras._backend import deterministic_kernels

__all__ = ["set_seed"]


def set_seed(seed: int, deterministic: bool | None = True) -> None:
    """Seed every RNG a run touches, so two runs with one seed give the same losses.

    ``keras.utils.set_random_seed`` seeds Python, NumPy and the active backend;
    tf.data runs on TensorFlow whatever the backend, so its global seed is set too
    (the shuffle itself takes the seed in ``make_pipeline``). A seed is not enough on
    a GPU: some kernels (cuDNN convolutions, XLA's scatter and reductions) sum in a
    different order each run; ``deterministic`` picks deterministic kernels on the
    active backend. ``None`` reseeds and leaves the kernels as the run chose them
    (the checks' reruns).
    """
    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    if deterministic is not None:
        deterministic_kernels(deterministic)
