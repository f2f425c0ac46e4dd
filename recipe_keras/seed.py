"""R2.1: one seed for Python, NumPy, the backend and TensorFlow's input pipeline."""

from __future__ import annotations

import keras
import tensorflow as tf

from recipe_keras.config import deterministic_environment

__all__ = ["set_seed"]


def set_seed(seed: int, deterministic: bool | None = True) -> None:
    """Seed every RNG a run touches, so two runs with one seed give the same losses.

    ``keras.utils.set_random_seed`` seeds Python, NumPy and the active backend;
    tf.data runs on TensorFlow whatever the backend, so its ops are made
    deterministic too (the shuffle itself takes the seed in ``make_pipeline``).
    A seed is not enough on a GPU: some kernels (cuDNN convolutions, XLA's
    scatter and reductions) sum in a different order each run. ``deterministic``
    picks deterministic kernels on the active backend; JAX reads its flag only
    when it starts, so ``select_backend`` (run before Keras is imported) sets it.
    TensorFlow's switch cannot be turned off again within a process. ``None``
    reseeds and leaves the kernels as the run chose them (R2.1's reruns).
    """
    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        deterministic_environment()
    if deterministic is not None and keras.backend.backend() == "torch":
        import torch

        # warn_only: an op without a deterministic kernel warns instead of stopping a
        # run; `make check`'s R2.1 then reports whether reruns really match.
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.benchmark = not deterministic
