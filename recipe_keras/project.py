"""The project contract: what a generated project declares once, and every step reads.

A project is a config file plus a Python package (config.toml's ``package``):

- ``<package>.data.load_data(config) -> Splits``: where the data comes from;
- ``<package>.model.build_model(input_shape, num_classes, model_config)``: the
  network (uncompiled, logits out). Optional hooks beside it:
  ``compile_model(model, config, steps_per_epoch, epochs)`` for a compile of its
  own, and ``build_trial_model(hp, input_shape, num_classes, config)`` for a search
  that draws more than ``[tune.space]``;
- ``<package>.train.run(config) -> Report``: the training run (``make train``;
  ``make ladder`` and ``make learning-curve`` call it once per variant).

Every ``recipe-keras`` command opens the project through ``open_project``: the
config file it is given chooses the backend, determinism and compile cache
before Keras is imported, then the package is imported. The package's
``__init__`` calls ``activate``, so importing it from a notebook anywhere also
finds the project's own config (next to the package, or the one a command named).
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from recipe_keras.config import (
    OVERRIDES_ENV,
    Config,
    ConfigError,
    active_overrides,
    load_config,
    select_backend,
)

__all__ = ["CONFIG_ENV", "Project", "activate", "open_project"]

# The config file a command was given, for the package's ``activate`` to honour.
CONFIG_ENV = "RECIPE_KERAS_CONFIG"


def activate(package_file: str | os.PathLike[str]) -> Path:
    """The project's config file, its backend selected: call from the package's ``__init__``.

    The file is the one a ``recipe-keras`` command was given (``--config``), or the
    one ``python -m <package>.train --config FILE`` names, else ``config.toml`` in the
    folder above the package, wherever Python runs from.
    """
    named, overrides = os.environ.get(CONFIG_ENV), active_overrides()
    if not named:
        named, given = _train_command_line(package_file)
        overrides = overrides or given
    path = Path(named) if named else Path(package_file).resolve().parent.parent / "config.toml"
    select_backend(load_config(path, overrides) if path.is_file() else path)
    return path


def _train_command_line(package_file: str | os.PathLike[str]) -> tuple[str | None, list[str]]:
    """``--config`` and ``--set`` of ``python -m <package>.train ...``: the process runs
    the package's train.py, which hands them on to ``recipe-keras train``. The backend
    is chosen here, before train.py imports Keras, so it must be that config's."""
    import argparse

    # The package is imported before runpy names train.py in sys.argv: read the
    # interpreter's own command line instead.
    argv = list(getattr(sys, "orig_argv", []))
    module = f"{Path(package_file).resolve().parent.name}.train"
    starts = [i + 2 for i, a in enumerate(argv[:-1]) if a == "-m" and argv[i + 1] == module]
    if not starts:
        return None, []
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--set", nargs="+", action="extend", default=[])
    known, _ = parser.parse_known_args(argv[starts[0] :])
    return known.config, known.set


@dataclass(frozen=True)
class Project:
    """A project's config and the functions its package declares."""

    config: Config
    path: Path
    data: ModuleType
    network: ModuleType
    train_module: ModuleType

    def load_data(self, config: Config | None = None):
        return self.data.load_data(config or self.config)

    def seeded_data(self):
        """The splits as a fresh run loads them: right after seeding (R2.1)."""
        from recipe_keras.seed import set_seed

        set_seed(self.config.seed, self.config.deterministic)
        return self.load_data()

    def train(self, config: Config | None = None):
        """One training run of ``config`` through the project's own train.py."""
        config = config or self.config
        if not config.train.distribution:
            return self.train_module.run(config)
        from recipe_keras._backend import data_parallel

        with data_parallel(config.data.batch_size):  # build, fit and evaluate on every device
            return self.train_module.run(config)

    @property
    def task(self):
        """The project's task (``config.task``): what varies with the kind of problem."""
        from recipe_keras.task import get_task

        return get_task(self.config.task)

    def hook(self, name: str) -> Callable[..., Any] | None:
        """An optional function of model.py (``compile_model``, ``build_trial_model``)."""
        return getattr(self.network, name, None)


def _outputs_of_process(config: Config) -> Config:
    """``config``, its outputs in a temporary folder on all but the first process of a
    multi-process data-parallel run: every process runs the same steps, one writes.
    Each process keeps a backup of its own (``<backup_dir>-process<i>`` beyond the
    first), so a rerun resumes every process from its last finished epoch."""
    from recipe_keras._backend import PROCESS_ENV, process_index

    index, processes = process_index()
    if not config.train.distribution:
        if processes > 1:  # several processes meant, none configured
            print(
                f"warning: {PROCESS_ENV[1]} = {processes}, but train.distribution is not "
                '"data_parallel": each process runs alone and writes its own outputs',
                file=sys.stderr,
                flush=True,
            )
        return config
    if not index:
        return config
    out = Path(tempfile.mkdtemp(prefix=f"recipe-keras-process{index}-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    train = dataclasses.replace(
        config.train,
        reports_dir=str(out / "reports"),
        model_path=str(out / "model.keras"),
        backup_dir=f"{config.train.backup_dir}-process{index}",
        best_model_path=str(out / "best.keras"),
    )
    return dataclasses.replace(config, train=train)


def _writable(folder: Path, what: str) -> None:
    """Fail before any work when outputs cannot be written there (read-only, full, a file)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write in {existing} ({exc.strerror})") from exc


def open_project(
    config_path: str | os.PathLike[str] = "config.toml", overrides: Sequence[str] = ()
) -> Project:
    """Read the config, select its backend (before Keras), import the project's package.

    ``overrides``: ``KEY=VALUE`` pairs over the file for this run (``--set``); they
    are validated as the file is, and recorded in every report the run writes.
    Raises ``ConfigError`` for a bad config or a package that is missing or lacks
    ``load_data``, ``build_model`` or ``run``, naming what to fix.
    """
    path = Path(config_path)
    config = load_config(path, overrides)
    config = _outputs_of_process(config)
    if not config.package:
        raise ConfigError(
            f"{path}: package is not set; name the Python package whose data.py and model.py "
            'define load_data and build_model (e.g. package = "my_project")'
        )
    tc = config.train
    for key, folder in (
        ("train.reports_dir", Path(tc.reports_dir)),
        ("train.model_path", Path(tc.model_path).parent),
        ("train.backup_dir", Path(tc.backup_dir).parent),
    ):
        _writable(folder, f"{path}: {key}")
    os.environ[CONFIG_ENV] = str(path.resolve())
    os.environ[OVERRIDES_ENV] = json.dumps(list(overrides))
    select_backend(config)
    modules = {}
    for name, needs in (("data", "load_data"), ("model", "build_model"), ("train", "run")):
        module_name = f"{config.package}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in (config.package, module_name):
                raise  # the project's own import failed: show it whole
            raise ConfigError(
                f"{path}: package = {config.package!r}: cannot import {module_name} "
                "(is the project installed? `make install`)"
            ) from exc
        if not callable(getattr(module, needs, None)):
            raise ConfigError(f"{path}: {module_name} defines no function {needs}()")
        modules[name] = module
    from recipe_keras.backup import check_backup_dir, outputs  # imports Keras, as the package did
    from recipe_keras.task import get_task

    get_task(config.task)  # an unknown task fails here, in one line, before any work
    check_backup_dir(tc.backup_dir, [path.resolve().parent, *outputs(config)])
    return Project(config, path, modules["data"], modules["model"], modules["train"])
