"""The project's one typed config: ``config.toml`` read into dataclasses.

Every key has a type, a default and a comment; an unknown key or a bad value
raises :class:`ConfigError` naming the key, the value received and what is
allowed, so a typo never silently falls back to a default. Standard library
only: it runs before Keras is imported, because the backend is chosen here.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipe_keras.errors import ConfigError
from recipe_keras.values import (
    AUGMENTATIONS,
    DEFAULT_RUNGS,
    DEFAULT_SPACE,
    EMBEDDED_DATASETS,
    LABEL_CHANGING,
    MIXES,
    OVERRIDES_ENV,
    TUNABLE,
    active_overrides,
    check_augment,
    check_value,
    dataset_kind,
    override,
    parse_overrides,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "AUGMENTATIONS",
    "BACKENDS",
    "EMBEDDED_DATASETS",
    "MODELS",
    "OVERRIDES_ENV",
    "SCHEDULES",
    "TUNABLE",
    "CheckConfig",
    "Config",
    "ConfigError",
    "CurveConfig",
    "DataConfig",
    "DistillConfig",
    "EnsembleConfig",
    "InspectConfig",
    "LadderConfig",
    "ModelConfig",
    "TrainConfig",
    "TuneConfig",
    "active_overrides",
    "dataset_kind",
    "from_dict",
    "ladder_configs",
    "load_config",
    "parse_overrides",
    "recipe_learning_rate",
    "select_backend",
    "with_values",
]

BACKENDS = ("jax", "tensorflow", "torch")
TEXT_NETS = ("bag_of_embeddings", "conv1d", "transformer")
MODELS = ("linear", "mlp", "cnn", "resnet50", *TEXT_NETS)
SCHEDULES = ("constant", "cosine", "exponential")


def _choices(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


def _at_least(low: float) -> dict[str, Any]:
    return {"min": low}


@dataclass(frozen=True)
class DataConfig:
    # An embedded name ("digits": offline, ships with recipe-keras), a TFDS catalog name
    # such as "mnist" (downloaded once by TFDS), or a folder laid out split/label/image.
    dataset: str = "digits"
    # Where TFDS prepares datasets; "" means $TFDS_DATA_DIR or ~/tensorflow_datasets.
    data_dir: str = ""
    # TFDS split expressions; slicing carves validation out of train.
    train_split: str = "train[:90%]"
    val_split: str = "train[90%:]"
    test_split: str = "test"
    # [height, width] to resize to; [] keeps the stored size (a folder: its first image's).
    image_size: list[int] = field(default_factory=list)
    # 1 or 3 to convert to; 0 keeps what is stored (an image folder decodes as 3).
    channels: int = field(default=0, metadata=_choices(0, 1, 3))
    # Examples per training step; evaluation batches are the same size.
    batch_size: int = field(default=32, metadata=_at_least(1))
    # Train on the first share of the training split (its stored order); the learning
    # curve (R4.1) sets it per point.
    train_fraction: float = field(default=1.0, metadata={"min": 0.001, "max": 1.0})
    # Training-time augmentation with Keras preprocessing layers (R4.2), none by default
    # (R2.2): any of flip_horizontal, flip_vertical, rotate, translate, zoom, contrast,
    # and randaugment (R4.3: Keras's RandAugment, two random transforms per image from
    # shear, shift, rotation, brightness, contrast, sharpness, posterize, solarize...).
    augment: list[str] = field(default_factory=list, metadata=_choices(*AUGMENTATIONS))
    # Flips can change what a label means: list the ones that do not on this dataset.
    label_safe: list[str] = field(default_factory=list, metadata=_choices(*LABEL_CHANGING))
    # Mix pairs of training examples and their labels (R4.3): "mixup" (blended images)
    # or "cutmix" (a patch of one pasted on the other); "" = none. The labels fit sees
    # become soft, and the recipe's loss and accuracy take them (docs: step 6).
    mix: str = field(default="", metadata=_choices("", *MIXES))
    # Examples in the shuffle buffer (training split only; seeded, so repeatable). A
    # buffer of large images that would take over an eighth of the memory available
    # is cut to fit (the line the run prints says so).
    shuffle_buffer: int = field(default=10_000, metadata=_at_least(1))
    # Where the decoded splits stay between epochs: "memory" (fastest, when they fit),
    # "disk" (a file cache for this run, removed at its end), "none" (decoded again
    # each epoch, from TFDS's files or the image folder), or "auto": memory when
    # they take under a quarter of the memory available, else none.
    cache: str = field(default="auto", metadata=_choices("auto", "memory", "disk", "none"))
    # Tables (task = "tabular_classification" or "tabular_regression"): the column to
    # predict, a class or a number ("" takes an embedded table's own), and columns typed
    # by hand; the others are inferred (numbers numeric, else categorical) and printed.
    target: str = ""
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    # Text (task = "text_classification"): the column holding the text ("" takes an
    # embedded corpus's own, else "text"; data.target names the label column, else
    # "label"), and the tokens kept per text: 0 takes the training split's 95th
    # percentile, up to 500 (printed). Longer texts are cut, shorter ones padded.
    text: str = ""
    sequence_length: int = field(default=0, metadata=_at_least(0))


@dataclass(frozen=True)
class ModelConfig:
    # A model-zoo entry (R3.1, "don't be a hero"): linear, mlp, cnn or resnet50 (23.6M
    # parameters; inputs of at least 32x32x3: set data.image_size and data.channels);
    # for text, bag_of_embeddings, conv1d or transformer. The project's model.py may
    # build something else.
    name: str = field(default="cnn", metadata=_choices(*MODELS))
    # Base width: units of the MLP's hidden layers, filters of the CNN's first convolution.
    width: int = field(default=64, metadata=_at_least(1))
    # Dropout rate before the final layer (R4.9); 0 = none. The zoo has no BatchNorm.
    dropout: float = field(default=0.0, metadata={"min": 0.0, "max": 0.9})
    # resnet50 only (R4.4): start from ImageNet weights (downloads ~100 MB once, needs
    # the network), and whether those weights train too (false: only the new head).
    pretrained: bool = False
    fine_tune: bool = True
    # Text: the embedding table's rows, so the most tokens the vectoriser keeps (the
    # training split's commonest; two ids go to padding and out-of-vocabulary).
    vocabulary: int = field(default=20_000, metadata=_at_least(3))


@dataclass(frozen=True)
class TrainConfig:
    # Passes over the training split.
    epochs: int = field(default=40, metadata=_at_least(1))
    # Adam with a constant learning rate (R3.2, R3.4): the recipe starts a deep net at
    # 3e-4 and a linear model, which learns ten times slower per step, at 3e-3.
    # make train warns when a run starts elsewhere.
    learning_rate: float = field(default=3e-4, metadata=_at_least(0.0))
    # AdamW's decoupled weight decay (R4.10); 0 = plain Adam.
    weight_decay: float = field(default=0.0, metadata=_at_least(0.0))
    # "constant" (R3.4), "cosine" (to 0 at the last step) or "exponential"
    # (times lr_decay_rate each epoch). A schedule that falls under 1% of the initial
    # rate before half of training is reported as a warning.
    lr_schedule: str = field(default="constant", metadata=_choices(*SCHEDULES))
    lr_decay_rate: float = field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    # Stop after this many epochs without a better `monitor` and restore the best
    # epoch's weights (R4.11); 0 = train every epoch.
    early_stopping_patience: int = field(default=0, metadata=_at_least(0))
    # What "best" means for early stopping and the kept best model: the lowest
    # val_loss or the highest val_accuracy.
    monitor: str = field(default="val_loss", metadata=_choices("val_loss", "val_accuracy"))
    # The best epoch's model, kept beside the last one (R6.3); "" keeps none.
    best_model_path: str = "artifacts/best.keras"
    # train.json and the figures of the latest run go here; each run also keeps its
    # own copy in runs/<start time>/ with its config, model and TensorBoard logs.
    reports_dir: str = "reports"
    # The trained model, in Keras's native format (loads on any backend).
    model_path: str = "artifacts/model.keras"
    # Epoch-end backups: an interrupted `make train` resumes where it stopped
    # (keras.callbacks.BackupAndRestore); deleted when training finishes.
    backup_dir: str = "artifacts/backup"
    # Keras fit output: 0 silent, 1 progress bar, 2 one line per epoch (and within a
    # long epoch or evaluation, a line every few seconds).
    verbose: int = field(default=2, metadata=_choices(0, 1, 2))
    # "data_parallel": make train splits each batch over every local device (GPUs,
    # else CPUs): keras.distribution.DataParallel on JAX, tf.distribute's
    # MirroredStrategy on TensorFlow; torch has no Keras path and says so. "" = one
    # device. data.batch_size stays the global batch. On JAX also over several
    # processes or hosts, from Keras's KERAS_DISTRIBUTION_* variables (docs/scale.md).
    distribution: str = field(default="", metadata=_choices("", "data_parallel"))


@dataclass(frozen=True)
class CheckConfig:
    # Training steps per round behind the baselines, loss-decrease, capacity and
    # dynamics checks (R2.7, R2.9, R2.11), on batches of the project's own training
    # pipeline. The model trains up to 8 rounds, until its loss has clearly fallen and
    # it beats every input-blind model: digits need one (25-51% of the way from the
    # best constant guess to perfect test accuracy after 25 steps), 100 classes or a
    # 9:1 imbalance a few more. These are steps at a batch of 64 or more: smaller
    # batches get sqrt(64 / batch) times as many (batch 8: 71), their loss being noisier.
    steps: int = field(default=25, metadata=_at_least(10))
    # Step budget to overfit one batch of 8 examples to ~zero loss (R2.8).
    overfit_steps: int = field(default=500, metadata=_at_least(1))
    # How far past every input-blind model the model must get (R2.7): this share of
    # the way from the best constant guess's test accuracy to 1, or from the test
    # labels' entropy (the least loss without inputs) to 0.
    baseline_margin: float = field(default=0.1, metadata=_at_least(0.0))
    # Test examples R2.7 scores its models on: N spread evenly over the test split (0:
    # all), so a split sorted by class is sampled fairly. 2,000 measure accuracy to
    # about +-0.01; the check predicts them up to 10 times, so more only slow it down.
    test_examples: int = field(default=2000, metadata=_at_least(0))
    # Test examples on the sheet `make human-sheet` draws for you to label (R2.6).
    human_examples: int = field(default=40, metadata=_at_least(1))


@dataclass(frozen=True)
class InspectConfig:
    # Perceptual-hash bits (of 64) within which two images are near duplicates (R1.3).
    near_duplicate_bits: int = field(default=5, metadata={"min": 0, "max": 16})
    # Folds of the quick cross-validated model behind the label-noise suspects (R1.6).
    folds: int = field(default=5, metadata=_at_least(2))
    # Audit only the first N examples of each split; 0 audits everything.
    limit: int = field(default=0, metadata=_at_least(0))


@dataclass(frozen=True)
class LadderConfig:
    # `make ladder` (R3.3): epochs of every rung's training run.
    epochs: int = field(default=10, metadata=_at_least(1))
    # The rungs after the base run (the config as it is). Each changes exactly ONE
    # setting (a quoted "section.key") and keeps the changes of the rungs before it.
    # A table or text project's config.toml leaves out the rungs that change images.
    rungs: list[dict] = field(default_factory=lambda: [dict(r) for r in DEFAULT_RUNGS])


@dataclass(frozen=True)
class EnsembleConfig:
    # `make ensemble` (R6.1): how many members to train and average.
    members: int = field(default=3, metadata=_at_least(2))
    # How they differ: "seeds" (the config with seed, seed+1, ...) or "tune" (the
    # best configurations of a finished `make tune`, best first).
    source: str = field(default="seeds", metadata=_choices("seeds", "tune"))
    # Epochs of every member's training run; 0 = train.epochs.
    epochs: int = field(default=0, metadata=_at_least(0))
    # The ensemble as one model (logits of the averaged probabilities); loads on any
    # backend once recipe_keras.ensemble is imported.
    model_path: str = "artifacts/ensemble.keras"


@dataclass(frozen=True)
class DistillConfig:
    # `make distill` (R6.2): the teacher, a saved model (the ensemble by default).
    teacher: str = "artifacts/ensemble.keras"
    # The student: the project's model at this width (0 = half of model.width)...
    student_width: int = field(default=0, metadata=_at_least(0))
    # ...and this zoo name ("" = model.name).
    student_model: str = field(default="", metadata=_choices("", *MODELS))
    # Soft targets are the teacher's softmax at this temperature (Hinton et al. 2015).
    temperature: float = field(default=4.0, metadata={"min": 0.05, "max": 100.0})
    # Share of the soft-target loss; the rest is cross-entropy on the true labels.
    soft_weight: float = field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    # Epochs of the student's runs (alone and distilled); 0 = train.epochs.
    epochs: int = field(default=0, metadata=_at_least(0))
    # The distilled student, saved on its own (loads on any backend).
    model_path: str = "artifacts/student.keras"


@dataclass(frozen=True)
class CurveConfig:
    # `make learning-curve` (R4.1): shares of the training split to train on.
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    # Epochs of every point's training run.
    epochs: int = field(default=10, metadata=_at_least(1))


@dataclass(frozen=True)
class TuneConfig:
    # `make tune`, KerasTuner's search: "random" (R5.1), "bayesian" or "hyperband" (R5.2).
    algorithm: str = field(default="random", metadata=_choices("random", "bayesian", "hyperband"))
    # Trials to run (hyperband: a budget it divides between brackets instead).
    trials: int = field(default=10, metadata=_at_least(1))
    # Epochs per trial (hyperband: the most any trial gets).
    epochs: int = field(default=5, metadata=_at_least(1))
    # What the search optimises: "val_loss" (lowest) or "val_accuracy" (highest).
    objective: str = field(default="val_loss", metadata=_choices("val_loss", "val_accuracy"))
    # The search's state: re-running `make tune` resumes, skipping finished trials.
    directory: str = "artifacts/tune"
    # Seconds a distributed search's worker waits for its chief to answer before it
    # stops, saying so (R5.3).
    wait_for_chief: int = field(default=120, metadata=_at_least(1))
    # The search space: config keys (quoted, dotted) and how to draw them:
    # {type = "float", min, max, sampling = "linear" | "log"}, {type = "int", min, max,
    # step}, or {type = "choice", values = [...]}. Tunable keys: model.name,
    # model.width, model.dropout, train.learning_rate, train.weight_decay.
    space: dict = field(default_factory=lambda: dict(DEFAULT_SPACE))


# R3.2: Adam at 3e-4 is the recipe's safe default for a deep net. A linear model learns
# ten times slower per step: on the digits, 3e-4 gave 0.64 test accuracy after 20
# epochs and failed make check's R2.7 and R2.8; 3e-3 gave 0.95 and passed them.
# An embedding table learns each row only from the texts holding its token: the text
# models start at 3e-3 too (see docs/text.md for the measurement).
RECIPE_LEARNING_RATES = {"linear": 3e-3, **dict.fromkeys(TEXT_NETS, 3e-3)}
RECIPE_LEARNING_RATE = 3e-4


def recipe_learning_rate(model_name: str) -> float:
    """The learning rate the recipe (and the template) starts a zoo model with (R3.2)."""
    return RECIPE_LEARNING_RATES.get(model_name, RECIPE_LEARNING_RATE)


# A task's name, or the import path of a task class: "my_package.tasks:MyTask".
_TASK = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Config:
    # The project's Python package: its data.py defines load_data(config) and its
    # model.py build_model(input_shape, num_classes, config); every recipe-keras
    # command runs on what they return (the project contract).
    package: str = ""
    # Keras backend: "jax", "tensorflow" or "torch". KERAS_BACKEND in the environment
    # wins, so `KERAS_BACKEND=torch make train` switches without editing this file.
    backend: str = field(default="tensorflow", metadata=_choices(*BACKENDS))
    # What the project learns: "image_classification", "tabular_classification",
    # "tabular_regression", or a task of your own by its import path
    # ("my_package.tasks:MyTask"; docs/tasks.md).
    task: str = "image_classification"
    # One seed for Python, NumPy, the backend and the input pipeline (R2.1).
    seed: int = field(default=42, metadata={"min": 0, "max": 2**32 - 1})
    # Deterministic kernels on every backend, so a rerun repeats exactly (R2.1). On a
    # GPU, false is faster but reruns differ. No effect on a CPU's results.
    deterministic: bool = True
    # Where JAX keeps the programs it compiles, so the next run loads them instead of
    # compiling again; "" turns it off. JAX_COMPILATION_CACHE_DIR in the environment
    # wins. Other backends ignore it.
    compile_cache: str = "~/.cache/recipe_keras/jax"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    inspect: InspectConfig = field(default_factory=InspectConfig)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    learning_curve: CurveConfig = field(default_factory=CurveConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)


# The tables a ladder rung may change (one key of one of them).
RUNG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def load_config(
    path: str | os.PathLike[str] = "config.toml", overrides: typing.Sequence[str] = ()
) -> Config:
    """Read and validate a project's config.toml, with ``KEY=VALUE`` overrides applied.

    An override is validated as if it were written in the file: an unknown key or a
    bad value fails with the same message, naming the override.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"no config file at {str(path)!r}; run from the project folder or pass its path"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if not overrides:
        return from_dict(raw, source=str(path))
    source = f"{path} with {' '.join(overrides)}"
    override(raw, parse_overrides(overrides), source)
    return from_dict(raw, source=source)


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build a validated :class:`Config` from nested dicts (as TOML gives them)."""
    config = _build(Config, raw, prefix="", source=source)
    ladder_configs(config, source, strict=False)  # every rung must make a valid config
    return config


def with_values(config: Config, values: dict[str, Any], source: str = "config") -> Config:
    """``config`` with dotted keys ("model.width") replaced, validated like config.toml."""
    raw = dataclasses.asdict(config)
    override(raw, values, source)
    return _build(Config, raw, prefix="", source=source)


def ladder_configs(
    config: Config, source: str = "config", strict: bool = True
) -> list[tuple[str, Config]]:
    """The base run and each rung's config, every rung adding its one change to the last.

    ``strict``: a rung that changes nothing is an error too (make ladder); loading a
    config only checks that every rung makes a valid one.
    """
    runs = [("base", config)]
    for i, rung in enumerate(config.ladder.rungs, 1):
        ((key, value),) = rung.items()
        where = f"{source}: ladder.rungs[{i}]"
        changed = with_values(runs[-1][1], rung, where)
        if strict and changed == runs[-1][1]:
            raise ConfigError(f"{where}: {key} = {value!r} changes nothing; it already is")
        runs.append((f"{key} = {value!r}", changed))
    return runs


def select_backend(config: Config | str | os.PathLike[str] = "config.toml") -> str:
    """Set KERAS_BACKEND from the config unless the environment already chose one.

    It also sets what the libraries read once, when they start: deterministic GPU
    kernels, JAX's compilation cache and random numbers, TensorFlow's log level
    (``recipe_keras._backend.prepare_environment``). Keras reads KERAS_BACKEND once,
    at import, so this must run first; a Keras already imported with another
    backend is an error, not a silent mismatch.
    A config path that does not exist leaves the environment as it is.
    """
    if not isinstance(config, Config):
        path = Path(config)
        config = load_config(path) if path.is_file() else None
    if config is not None:
        os.environ.setdefault("KERAS_BACKEND", config.backend)
        from recipe_keras._backend import prepare_environment  # imports no Keras

        prepare_environment(config.deterministic, config.compile_cache)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise ConfigError(
            f"KERAS_BACKEND={backend!r} is not a supported backend; allowed: {', '.join(BACKENDS)}"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise RuntimeError(
            f"keras was imported with backend {keras.backend.backend()!r} before "
            f"select_backend() asked for {backend!r}; call it before importing keras"
        )
    return backend


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{source}: unknown key {prefix + key!r}{hint}; "
            f"allowed in {where}: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, value in raw.items():
        key, hint = prefix + name, hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, prefix=key + ".", source=source)
        else:
            values[name] = check_value(
                key, value, hint, fields[name].metadata, source, RUNG_SECTIONS
            )
    built = cls(**values)
    if isinstance(built, Config) and built.package and not _PACKAGE.match(built.package):
        raise ConfigError(
            f"{source}: package = {built.package!r} is not allowed; expected a Python "
            "package name (letters, digits, _), such as 'my_project'"
        )
    if isinstance(built, Config) and not _TASK.match(built.task):
        raise ConfigError(
            f"{source}: task = {built.task!r} is not allowed; expected a task's name such as "
            "'image_classification', or the import path of your own, 'my_package.tasks:MyTask'"
        )
    if isinstance(built, DataConfig):
        dataset_kind(built.dataset)  # fails loudly on a name that can be nothing
        check_augment(built, source)
    return built
