"""R6.2 "distillation": ``make distill`` teaches a small student from a big teacher.

Keras has no built-in distiller, so ``Distiller`` is a ``keras.Model`` whose
``compute_loss`` (Keras's public hook) mixes the true labels' cross-entropy with
the KL divergence from the teacher's softened predictions (Hinton et al. 2015),
in ``keras.ops`` only: it trains on every backend. ``make distill`` trains the
student twice with the same seed and epochs, alone (the project's own train.py)
and from the teacher, and sets both beside the teacher on the whole test split
with their parameter counts and prediction speed. A regression's student learns
the teacher's predictions by squared error (no temperature: nothing to soften).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import keras
from keras import ops

from recipe_keras.backup import remove_backup
from recipe_keras.config import Config, ConfigError, with_values
from recipe_keras.report import Report, atomic_write, write_report
from recipe_keras.runs import run_in
from recipe_keras.verdicts import Verdict

__all__ = ["Distiller", "run_distill", "student_config"]


class Distiller(keras.Model):
    """The student, trained on ``soft_weight`` x the teacher's soft targets plus the rest
    x the true labels. Calling it calls the student; the teacher stays frozen.

    The soft term is ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``: the
    ``T**2`` keeps its gradients on the scale of the hard term's as ``T`` grows. For a
    ``regression`` both terms are mean squared errors, to the targets and to the
    teacher's predictions.
    """

    def __init__(
        self, student, teacher, temperature=4.0, soft_weight=0.9, regression=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.temperature, self.soft_weight = float(temperature), float(soft_weight)
        self.regression = bool(regression)
        self.hard_loss = (
            keras.losses.MeanSquaredError()
            if regression
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )

    def call(self, x, training=False):
        return self.student(x, training=training)

    def soft_loss(self, x, student_logits):
        t = self.temperature
        teacher = ops.stop_gradient(self.teacher(x, training=False))
        if self.regression:
            return ops.mean(ops.square(student_logits - teacher))
        target = ops.softmax(teacher / t, axis=-1)
        log_target = ops.log_softmax(teacher / t, axis=-1)
        log_student = ops.log_softmax(student_logits / t, axis=-1)
        return ops.mean(ops.sum(target * (log_target - log_student), axis=-1)) * t * t

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = self.hard_loss(y, y_pred)
        if self.soft_weight == 0.0:
            return hard
        return (1.0 - self.soft_weight) * hard + self.soft_weight * self.soft_loss(x, y_pred)


def student_config(config: Config) -> Config:
    """The config the student trains with, alone or distilled."""
    dc = config.distill
    return with_values(
        config,
        {
            "model.width": dc.student_width or max(1, config.model.width // 2),
            "model.name": dc.student_model or config.model.name,
            "train.epochs": dc.epochs or config.train.epochs,
        },
        source=f"{config.train.reports_dir}: distill",
    )


def _test_scores(model: keras.Model, splits, task) -> dict[str, float]:
    """The task's score (accuracy, RMSE) and loss on the whole test split (as ``make
    ensemble`` scores its members), parameters, and examples per second predicted."""

    from recipe_keras.data import labels_of
    from recipe_keras.ensemble import probabilities, regression_scores, scores
    from recipe_keras.initialise import targets_of

    labels = labels_of(splits.test) if task.classifies else targets_of(splits.test)
    model.predict(splits.test.take(1), verbose=0)  # trace once: speed is the steady state
    start = time.perf_counter()
    predicted = probabilities(model, splits.test, softmax=task.classifies)
    found = scores(predicted, labels) if task.classifies else regression_scores(predicted, labels)
    seconds = time.perf_counter() - start
    return {
        f"test_{task.score.metric}": found[task.score.metric],
        "test_loss": found["loss"],
        "params": int(model.count_params()),
        "predict_examples_per_second": round(len(labels) / max(seconds, 1e-9), 1),
    }


def run_distill(project, config: Config | None = None, verbose: bool = True) -> Report:
    """Train the student alone and from the teacher; write distill.json beside the models."""
    from recipe_keras import train as recipe
    from recipe_keras.seed import set_seed
    from recipe_keras.task import get_task

    config = config or project.config
    task = get_task(config.task)
    metric, label = task.score.metric, task.score.label
    dc, out = config.distill, Path(config.train.reports_dir)
    teacher_path = Path(dc.teacher)
    if not teacher_path.is_file():
        raise ConfigError(
            f"distill.teacher = {dc.teacher!r}: no such model; run make ensemble (or make "
            "train and set distill.teacher = train.model_path's file) first"
        )
    import recipe_keras.ensemble  # noqa: F401  (registers the ensemble's layer for loading)

    teacher = keras.models.load_model(teacher_path)
    student_cfg = student_config(config)

    if verbose:
        print(
            f"student alone: {student_cfg.model.name} width {student_cfg.model.width}", flush=True
        )
    alone, reused = run_in(project.train, student_cfg, out / "distill" / "alone")
    if verbose and reused:
        print("  (already trained)")

    if verbose:
        print(f"student from the teacher: T = {dc.temperature:g}, soft weight {dc.soft_weight:g}")
    folder = out / "distill" / "distilled"
    run_cfg = with_values(
        student_cfg,
        {
            "train.reports_dir": str(folder),
            "train.backup_dir": str(folder / "backup"),
            "train.best_model_path": "",
        },
    )
    set_seed(run_cfg.seed, run_cfg.deterministic)  # the same start as the student alone
    splits = project.load_data(run_cfg)
    student = recipe.build_compiled(project.network, splits, run_cfg)
    task.init_final_bias(student, splits)  # R2.5, as the student alone starts
    distiller = Distiller(
        student,
        teacher,
        dc.temperature,
        dc.soft_weight,
        regression=not task.classifies,
        name="distiller",
    )
    distiller(next(iter(splits.val))[0])  # built before fit, as resuming from a backup needs
    recipe.compile_as(project.network, distiller, splits, run_cfg)
    history = distiller.fit(
        splits.fit_train,
        validation_data=splits.val,
        epochs=run_cfg.train.epochs,
        shuffle=False,
        callbacks=recipe.callbacks(run_cfg, splits),
        verbose=run_cfg.train.verbose,
    )
    losses = history.history.get("loss", [])
    if not all(math.isfinite(v) for v in losses):
        raise ConfigError(
            "the distilled student's loss became non-finite; lower train.learning_rate or "
            "distill.temperature"
        )
    atomic_write(dc.model_path, student.save)

    scores = {
        "teacher": _test_scores(teacher, splits, task),
        "alone": _test_scores(keras.models.load_model(alone.details["model_path"]), splits, task),
        "distilled": _test_scores(student, splits, task),
    }
    found = {who: s[f"test_{metric}"] for who, s in scores.items()}
    # Accuracy points, or the share of the alone student's RMSE the distilled one removes.
    margin = task.score.gain(found["distilled"], found["alone"])
    numbers = {
        f"{who}_{key}": value for who, found in scores.items() for key, value in found.items()
    }
    numbers |= {
        "margin_over_alone": margin,
        "temperature": dc.temperature,
        "soft_weight": dc.soft_weight,
        "epochs": run_cfg.train.epochs,
    }
    advice = (
        ""
        if margin >= 0
        else f"the distilled student scores {label} {found['distilled']:.3f}, the "
        f"student alone {found['alone']:.3f}: try another "
        "distill.temperature or soft_weight, a stronger teacher, or more epochs"
    )
    from recipe_keras.figures import plot_distill

    figure = plot_distill(scores, out / "distill.png", metric, label)
    report = Report(
        step="distill",
        recipe_ids=["R6.2"],
        verdicts={"R6.2": Verdict.PASS if margin >= 0 else Verdict.WARN},
        numbers=numbers,
        figures=[figure.name],
        details={
            "teacher": str(teacher_path),
            "student": dataclasses.asdict(student_cfg.model),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "model_path": dc.model_path,
            "advice": {"R6.2": advice} if advice else {},
        },
        backend=keras.backend.backend(),
    )
    write_report(report, out)
    remove_backup(run_cfg.train.backup_dir)  # kept until now: an interruption loses no training
    if verbose:
        for who, row in scores.items():
            print(
                f"  {who:<9} test {label} {row[f'test_{metric}']:.3f}, loss "
                f"{row['test_loss']:.4f}, {row['params']} parameters, "
                f"{row['predict_examples_per_second']:.0f} examples/s"
            )
        print(f"distilled minus alone: {margin:+.3f}; student saved to {dc.model_path}")
        if advice:
            print(f"R6.2 WARN: {advice}")
    return report
