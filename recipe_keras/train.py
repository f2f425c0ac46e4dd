"""The training run, as a project's train.py reads it (``from recipe_keras import train
as recipe``): the few calls a Keras training script makes, each from its own module.

- ``build_compiled`` / ``compile_as`` (``recipe_keras.compile``): model.py's network,
  compiled as every step compiles it;
- ``init_from_priors`` / ``init_to_mean`` (``recipe_keras.initialise``): R2.5, the final
  bias from the data (log class priors; a regression's target mean);
- ``callbacks`` (``recipe_keras.callbacks``): resume, best model, TensorBoard, timing;
- ``evaluate`` (``recipe_keras.evaluate``): whole splits, baselines, figures, train.json.
"""

from __future__ import annotations

from recipe_keras.callbacks import (
    EpochSeconds,
    KeepBest,
    ResumeRecord,
    ShuffleByEpoch,
    StopOnNonFinite,
    callbacks,
    heartbeat,
)
from recipe_keras.compile import (
    build_compiled,
    build_optimizer,
    compile_as,
    compile_model,
    learning_rate_at,
    schedule_warning,
)
from recipe_keras.evaluate import evaluate, fit_and_evaluate
from recipe_keras.initialise import init_from_priors, init_to_mean

__all__ = [
    "EpochSeconds",
    "KeepBest",
    "ResumeRecord",
    "ShuffleByEpoch",
    "StopOnNonFinite",
    "build_compiled",
    "build_optimizer",
    "callbacks",
    "compile_as",
    "compile_model",
    "evaluate",
    "fit_and_evaluate",
    "heartbeat",
    "init_from_priors",
    "init_to_mean",
    "learning_rate_at",
    "schedule_warning",
]
