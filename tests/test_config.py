"""The config: every default documented in the template, every bad value a loud error."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import types

import pytest

from recipe_keras._backend import JAX_THREEFRY
from recipe_keras.config import (
    Config,
    ConfigError,
    dataset_kind,
    from_dict,
    load_config,
    select_backend,
)
from tests.conftest import render


def test_rendered_config_holds_the_library_defaults(tmp_path):
    # The template's config.toml lists every key with the library's default value.
    project = render(tmp_path)
    # The one key with no library default: the package the template wrote.
    expected = dataclasses.replace(Config(), package="digits_classifier")
    assert load_config(project / "config.toml") == expected
    text = (project / "config.toml").read_text()
    for section in dataclasses.fields(Config):
        value = getattr(Config(), section.name)
        if dataclasses.is_dataclass(value):
            for key in dataclasses.fields(value):
                documented = (
                    f"\n{key.name} = " in text or f"\n[{section.name}.{key.name}]\n" in text
                )
                assert documented, f"{section.name}.{key.name} is not documented"


def test_answers_reach_the_config(tmp_path):
    project = render(tmp_path, backend="torch", model="mlp", epochs="3", batch_size="16", seed="7")
    config = load_config(project / "config.toml")
    assert (config.backend, config.model.name, config.seed) == ("torch", "mlp", 7)
    assert (config.train.epochs, config.data.batch_size) == (3, 16)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"trian": {}}, "unknown key 'trian' (did you mean 'train'?)"),
        ({"train": {"epoch": 3}}, "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
        ({"train": {"epochs": "ten"}}, "train.epochs = 'ten' is not allowed; expected an integer"),
        ({"train": {"epochs": 0}}, "train.epochs = 0 is not allowed; expected an integer >= 1"),
        ({"train": {"epochs": True}}, "train.epochs = True is not allowed"),
        ({"train": {"learning_rate": -1}}, "train.learning_rate = -1 is not allowed"),
        ({"backend": "theano"}, "backend = 'theano' is not allowed; expected one of 'jax'"),
        ({"package": "my-project"}, "package = 'my-project' is not allowed; expected a Python"),
        ({"model": {"name": "resnet"}}, "model.name = 'resnet' is not allowed; expected one of"),
        ({"data": {"image_size": [8]}}, "data.image_size = [8] is not allowed"),
        ({"data": {"image_size": ["8", 8]}}, "expected a list of integers"),
        ({"data": {"channels": 2}}, "data.channels = 2 is not allowed; expected one of 0, 1, 3"),
        ({"data": 3}, "[data] must be a table"),
        ({"data": {"dataset": "My Data!"}}, "data.dataset = 'My Data!' is not allowed"),
    ],
)
def test_bad_config_names_key_value_and_what_is_allowed(raw, expected):
    with pytest.raises(ConfigError) as err:
        from_dict(raw)
    assert expected in str(err.value)


def test_float_keys_take_integers_and_stay_floats():
    assert from_dict({"train": {"learning_rate": 1}}).train.learning_rate == 1.0
    assert isinstance(from_dict({"train": {"learning_rate": 1}}).train.learning_rate, float)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text("backend = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "config.toml")


def test_dataset_kind(tmp_path):
    assert dataset_kind("digits") == "embedded"
    assert dataset_kind("mnist") == "tfds"
    assert dataset_kind("mnist:3.*.*") == "tfds"
    assert dataset_kind("cifar10_corrupted/brightness_1") == "tfds"
    assert dataset_kind(str(tmp_path)) == "folder"
    with pytest.raises(ConfigError, match="no such folder"):
        dataset_kind(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="an embedded name"):
        dataset_kind("Not A Name")


@pytest.fixture(autouse=True)
def _gpu_environment(monkeypatch):
    # select_backend sets these (deterministic kernels): restore them after each test.
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    for name in (*CACHE_VARIABLES, JAX_THREEFRY):
        monkeypatch.delenv(name, raising=False)
    # A JAX already started would take each test's cache live (see the subprocess test).
    monkeypatch.delitem(sys.modules, "jax", raising=False)


CACHE_VARIABLES = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)


def test_jax_compile_cache_is_set_before_jax_starts(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("HOME", str(tmp_path))
    select_backend(Config())
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / ".cache/recipe_keras/jax")
    # Every compilation is kept, not only JAX's default of those over 1 s.
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] == "-1"
    # A relative folder is the project's, made absolute while the project is the cwd.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    select_backend(Config(compile_cache="artifacts/jax"))
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "artifacts/jax")
    # A user's own cache (and thresholds) win; "" leaves the environment alone.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")
    select_backend(Config())
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    select_backend(Config(compile_cache=""))
    assert not any(name in os.environ for name in CACHE_VARIABLES)


def test_jax_compile_cache_is_taken_live_when_jax_started_first(tmp_path):
    # A notebook imports keras (JAX starts, reading its environment) before the
    # project's package runs select_backend: the cache must still be used.
    script = (
        "import os, sys; os.environ['KERAS_BACKEND'] = 'jax'\n"
        "import keras, numpy as np\n"
        "keras.ops.sum(keras.ops.ones(3)).block_until_ready()  # a first compilation\n"
        "from recipe_keras.config import Config, select_backend\n"
        "select_backend(Config(compile_cache=sys.argv[1]))\n"
        "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
        "model.predict_on_batch(np.ones((4, 3), 'float32'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES}
    cache = tmp_path / "jax-cache"
    subprocess.run([sys.executable, "-c", script, str(cache)], env=env, check=True)
    assert cache.is_dir() and len(list(cache.iterdir())) > 0  # predict's program, at least


def test_jax_is_asked_for_its_fast_compiling_random_numbers(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    # Whatever the other settings: toggling the cache must not change the weights drawn.
    select_backend(Config(deterministic=False, compile_cache=""))
    assert os.environ[JAX_THREEFRY] == "0"
    monkeypatch.setenv(JAX_THREEFRY, "1")  # the user's own choice wins
    select_backend(Config())
    assert os.environ[JAX_THREEFRY] == "1"


def test_a_notebook_and_a_project_process_draw_the_same_initial_weights():
    # A project process runs select_backend before JAX starts; a notebook may import
    # keras first. Both must draw the same weights from one seed, and they must be
    # the classic threefry's, not JAX's default partitionable stream.
    draw = "keras.initializers.GlorotUniform(seed=7)((5, 3)).tolist()"
    project = (
        "import json, os; os.environ['KERAS_BACKEND'] = 'jax'\n"
        "from recipe_keras.config import Config, select_backend\n"
        "select_backend(Config(compile_cache=''))\n"
        f"import keras; print(json.dumps({draw}))\n"
    )
    notebook = (
        "import json, os; os.environ['KERAS_BACKEND'] = 'jax'\n"
        f"import keras; print(json.dumps({draw}))\n"
        "from recipe_keras.config import Config, select_backend\n"
        "select_backend(Config(compile_cache=''))\n"
        f"print(json.dumps({draw}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*CACHE_VARIABLES, JAX_THREEFRY)}

    def weights(script: str) -> list:
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("[")]

    (ours,) = weights(project)
    default, after = weights(notebook)
    assert after == ours
    assert default != ours  # the setting changes the stream: it took effect


def test_deterministic_kernels_are_asked_for_before_the_backends_start(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    select_backend(Config())
    # A user's own XLA flags are kept; the deterministic one is added once.
    flags = "--xla_force_host_platform_device_count=2 --xla_gpu_deterministic_ops=true"
    assert os.environ["XLA_FLAGS"] == flags
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    select_backend(Config())
    assert os.environ["XLA_FLAGS"] == flags
    # deterministic = false leaves the environment alone.
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    select_backend(Config(deterministic=False))
    assert "XLA_FLAGS" not in os.environ and "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_environment_backend_wins_over_config(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert select_backend(Config(backend="torch")) == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    assert select_backend(Config(backend="torch")) == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(ConfigError, match="KERAS_BACKEND='theano'"):
        select_backend(Config())


def test_select_backend_reads_a_config_path_and_tolerates_none(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    (tmp_path / "config.toml").write_text('backend = "jax"\n')
    assert select_backend(tmp_path / "config.toml") == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    assert select_backend(tmp_path / "absent.toml") == "tensorflow"  # Keras's own default


def test_select_backend_refuses_a_keras_imported_with_another_backend(monkeypatch):
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "tensorflow"))
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(RuntimeError, match="before importing keras"):
        select_backend(Config())


def test_tune_space_is_checked(tmp_path):
    # Every name must be a tunable config key and every spec complete; values drawn
    # by a trial are validated like config.toml itself.
    from recipe_keras.config import from_dict

    bad = {
        "model.depth": {"type": "int", "min": 1, "max": 3},
        "model.width": {"type": "range", "min": 1, "max": 3},
        "train.learning_rate": {"type": "float", "min": 1e-2, "max": 1e-4},
        "model.dropout": {"type": "choice", "values": []},
    }
    messages = {
        "model.depth": "is not tunable; allowed: model.name",
        "model.width": 'expected a table with type = "float", "int" or "choice"',
        "train.learning_rate": "min 0.01 must be below max 0.0001",
        "model.dropout": "expected a non-empty list",
    }
    for name, spec in bad.items():
        with pytest.raises(ConfigError, match=re.escape(messages[name])):
            from_dict({"tune": {"space": {name: spec}}})
    with pytest.raises(ConfigError, match=r"a float spec takes max, min, sampling, type; got"):
        from_dict({"tune": {"space": {"train.learning_rate": {"type": "float", "min": 0}}}})


def test_label_changing_augmentation_is_refused_unless_declared_safe():
    from recipe_keras.config import from_dict

    with pytest.raises(ConfigError, match=r"'flip_horizontal' is refused for 'digits': a mirrored"):
        from_dict({"data": {"augment": ["flip_horizontal"]}})
    # Declaring it safe does not override what is known about the digits.
    with pytest.raises(ConfigError, match=r"'flip_vertical' is refused for 'digits'"):
        from_dict({"data": {"augment": ["flip_vertical"], "label_safe": ["flip_vertical"]}})
    with pytest.raises(
        ConfigError, match=r"add it to data.label_safe if it does not for 'cifar10'"
    ):
        from_dict({"data": {"dataset": "cifar10", "augment": ["flip_horizontal"]}})
    ok = from_dict(
        {
            "data": {
                "dataset": "cifar10",
                "augment": ["flip_horizontal"],
                "label_safe": ["flip_horizontal"],
            }
        }
    )
    assert ok.data.augment == ["flip_horizontal"]
    assert from_dict({"data": {"augment": ["rotate", "zoom"]}}).data.augment == ["rotate", "zoom"]
    with pytest.raises(
        ConfigError, match=r"data.augment = \['blur'\] is not allowed; expected a list"
    ):
        from_dict({"data": {"augment": ["blur"]}})


def test_a_ladder_rung_changes_exactly_one_valid_setting():
    from recipe_keras.config import Config, from_dict, ladder_configs

    two = [{"model.width": 64, "model.dropout": 0.1}]
    with pytest.raises(
        ConfigError, match=r"rungs\[1\] changes 2 settings \(model.width, model.dropout\)"
    ):
        from_dict({"ladder": {"rungs": two}})
    with pytest.raises(ConfigError, match=r"rungs\[1\] changes 0 settings"):
        from_dict({"ladder": {"rungs": [{}]}})
    with pytest.raises(ConfigError, match=r"'model.widht' is not a setting a rung can change"):
        from_dict({"ladder": {"rungs": [{"model.widht": 3}]}})
    with pytest.raises(ConfigError, match=r"rungs\[2\]: model.dropout = 2.0 is not allowed"):
        from_dict({"ladder": {"rungs": [{"model.width": 8}, {"model.dropout": 2.0}]}})
    same = from_dict({"ladder": {"rungs": [{"model.width": 64}]}})  # loads: width is already 64
    with pytest.raises(ConfigError, match=r"model.width = 64 changes nothing"):
        ladder_configs(same)
    runs = ladder_configs(Config())
    assert [name for name, _ in runs][:2] == ["base", "model.width = 128"]
    assert runs[-1][1].model.dropout == 0.25 and runs[-1][1].model.width == 128  # cumulative


def test_tensorflow_info_lines_are_hidden_unless_the_user_asks(tmp_path):
    # TFDS reads TFRecords with a buffer of its own, and TensorFlow logs that at INFO
    # level on every run; warnings still show. A user's own level wins.
    record = tmp_path / "one.tfrecord"
    script = (
        "import sys\n"
        "from recipe_keras.config import Config, select_backend\n"
        "select_backend(Config())\n"
        "import tensorflow as tf\n"
        "with tf.io.TFRecordWriter(sys.argv[1]) as w: w.write(b'x')\n"
        "print(len(list(tf.data.TFRecordDataset(sys.argv[1], buffer_size=1 << 23))))\n"
    )
    base = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def stderr(**env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(record)],
            env={**base, "KERAS_BACKEND": "tensorflow", **env},
            check=True,
            capture_output=True,
            text=True,
        )
        assert done.stdout.strip() == "1"
        return done.stderr

    info = "The default buffer size is 262144"
    assert info not in stderr()
    assert info in stderr(TF_CPP_MIN_LOG_LEVEL="0")


def test_overrides_are_read_as_toml_and_validated_as_the_file_is(tmp_path):
    from recipe_keras.config import parse_overrides

    assert parse_overrides(
        [
            *("train.epochs=2", "train.learning_rate=3e-3", "data.dataset=mnist", "seed=7"),
            *("data.image_size=[16, 16]", "train.early_stopping_patience=0", 'model.name="mlp"'),
        ]
    ) == {
        "train.epochs": 2,
        "train.learning_rate": 3e-3,
        "data.dataset": "mnist",  # not TOML: taken as text
        "seed": 7,
        "data.image_size": [16, 16],
        "train.early_stopping_patience": 0,
        "model.name": "mlp",
    }
    path = tmp_path / "config.toml"
    path.write_text("[train]\nepochs = 20\n[model]\nwidth = 32\n")
    config = load_config(path, ["train.epochs=2", "model.width=16", "data.augment=[]"])
    assert (config.train.epochs, config.model.width, config.data.augment) == (2, 16, [])
    assert load_config(path).train.epochs == 20  # the file itself is untouched
    for pairs, message in [
        (["train.epoch=2"], "with train.epoch=2: unknown key 'train.epoch' (did you mean "),
        (["train.epochs=0"], "with train.epochs=0: train.epochs = 0 is not allowed"),
        (["train.epochs"], "'train.epochs' is not KEY=VALUE"),
        (["=3"], "'=3' is not KEY=VALUE"),
        (["train.epochs.x=1"], "train.epochs.x: train.epochs is a value, not a table"),
        (["train.learning_rate=nan"], "expected a finite number"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path, pairs)


def test_model_paths_must_be_keras_files_and_the_best_one_may_be_off():
    assert from_dict({"train": {"best_model_path": ""}}).train.best_model_path == ""
    for key, section in (
        ("best_model_path", "train"),
        ("model_path", "train"),
        ("model_path", "ensemble"),
        ("model_path", "distill"),
        ("teacher", "distill"),
    ):
        with pytest.raises(ConfigError, match=rf"{section}\.{key} = 'm\.h5' is not allowed"):
            from_dict({section: {key: "m.h5"}})


def test_every_key_is_documented_with_its_default():
    # docs/config.md is the reference page: one row per key, the library's default in it.
    from pathlib import Path

    rows = [
        line.split("|")
        for line in (Path(__file__).parent.parent / "docs" / "config.md").read_text().splitlines()
        if line.startswith("| `")
    ]

    def keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            has_factory = f.default_factory is not dataclasses.MISSING
            default = f.default_factory() if has_factory else f.default
            if dataclasses.is_dataclass(default):
                yield from keys(type(default), f"{prefix}{f.name}.")
            else:
                yield prefix + f.name, default

    for key, default in keys(Config):
        row = next((r for r in rows if f"`{key}`" in r[1]), None)
        assert row is not None, f"{key} is not in docs/config.md"
        cell = row[2]
        if isinstance(default, bool) or not isinstance(default, (int, float, str)) or not default:
            continue
        if isinstance(default, str):
            assert default in cell, (key, default, cell)
        else:
            numbers = [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", cell)]
            assert any(math.isclose(n, default) for n in numbers), (key, default, cell)


def test_config_toml_and_the_docs_table_are_generated_from_configpy():
    """One source: config.py's comments and defaults write the template's config.toml and
    docs/config.md's table (scripts/config_reference.py); a stale copy fails here."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    script = root / "scripts" / "config_reference.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, f"{done.stdout}: run python scripts/config_reference.py"
    toml = (root / "template/{{cookiecutter.project_slug}}/config.toml").read_text()
    # Each comment sits right above its key, word for word, in both files.
    assert "# Passes over the training split.\nepochs = {{ cookiecutter.epochs }}\n" in toml
    docs = (root / "docs/config.md").read_text()
    assert "| `train.epochs` | `40` | Passes over the training split. |" in docs
