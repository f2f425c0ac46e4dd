"""The cost of `make check` as a ratio to one full `make train`, per backend.

Renders a default project (embedded digits) into a temporary folder and times
the two commands as a user runs them (whole processes, imports included),
alternating train, check, train, check ... and printing medians. Ratios:
- suite / make train: the suite's own seconds (check.json) against the whole
  `make train` command. This is the issue's goal (<= 0.3);
- make check / make train: both whole processes, so both pay the imports
  (8-12 s here);
- suite / fit: against train.json's fit seconds (the epochs alone), without the
  start-up and the evaluation.
JAX runs twice: with the project's compile cache warm (the usual case from the
second run on), and cold, with an empty cache for every command (a first run).
Then each check's seconds (median), to show where the suite's time goes.

With ``--folder N`` the project reads an image folder of N synthetic 16x16 digits
(the embedded ones upscaled, shifted and noised; a fifth of them the test split)
instead: a dataset nearer a real one's size, where `make train` grows and the
suite does not.

With ``--against REF`` (a commit) it also times the suite of that commit's
recipe_keras on the same project, alternating with this checkout's: on a shared,
noisy machine a change's effect shows only side by side, not across days.

Usage: python benchmarks/check_cost.py [--repeats 2] [--backends tensorflow,jax,torch]
                                        [--folder 10000] [--against REF] [--no-table]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import machine

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def write_folder(root: Path, n: int, seed: int = 0) -> str:
    """N digits as 16x16 PNGs in split/label/image.png: upscaled x2, shifted up to 2 px, noised."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = rng.integers(len(digits.target))
        image = np.kron(digits.images[k] * (255 / 16), np.ones((2, 2)))
        image = np.roll(image, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        image = np.clip(image + rng.normal(0, 16, image.shape), 0, 255).astype(np.uint8)
        folder = root / ("test" if i % 5 == 0 else "train") / str(digits.target[k])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:06d}.png")
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--folder", type=int, default=0, help="synthetic folder of N images")
    parser.add_argument("--against", metavar="REF", help="also time the suite at this commit")
    parser.add_argument(
        "--table", action=argparse.BooleanOptionalAction, default=True, help="the ratio table"
    )
    args = parser.parse_args()
    print(machine(), flush=True)
    sys.path.insert(0, str(ROOT))
    from recipe_keras.new import new_project

    work = Path(tempfile.mkdtemp(prefix="check-cost-"))
    project = new_project(
        work, {"recipe_keras_requirement": f"recipe-keras @ {ROOT.as_uri()}"}, no_input=True
    )
    dataset = "digits, default project"
    if args.folder:
        config = project / "config.toml"
        folder = write_folder(work / "folder", args.folder)
        text = config.read_text().replace('dataset = "digits"', f'dataset = "{folder}"', 1)
        config.write_text(text)
        dataset = f"a folder of {args.folder} synthetic 16x16 digits, default project otherwise"
    make = ["make", f"PYTHON={sys.executable}"]
    env = {**os.environ, "TFDS_DATA_DIR": str(work / "tfds")}
    timed([*make, "train"], project, env)  # prepare the dataset once, outside the timings
    reports = project / "reports"
    print(f"{dataset}, median of {args.repeats} alternating runs (wall seconds)")
    if args.table:
        print(
            f"{'backend':<16} {'make train':>10} {'make check':>10} {'ratio':>6}   "
            f"{'suite':>6} {'/ make train':>12}   {'fit':>5} {'suite / fit':>11}"
        )
    per_check: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(",") if args.table else []:
        for cold in (False, True) if backend == "jax" else (False,):
            name = f"{backend} (cold)" if cold else backend
            train, check, fit, suite, checks = [], [], [], [], {}
            for _ in range(args.repeats):
                benv = {**env, "KERAS_BACKEND": backend}
                if cold:  # a new, empty compile cache for each command: a first run
                    benv["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                train.append(timed([*make, "train"], project, benv))
                report = json.loads((reports / "train.json").read_text())
                fit.append(report["numbers"]["fit_seconds"])
                if cold:
                    benv["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                check.append(timed([*make, "check"], project, benv))
                report = json.loads((reports / "check.json").read_text())
                suite.append(report["numbers"]["seconds"])
                for c in report["details"]["checks"]:
                    checks.setdefault(f"{c['recipe_id']} {c['name'].split(' (')[0]}", []).append(
                        c["seconds"]
                    )
            t, c = statistics.median(train), statistics.median(check)
            f, s = statistics.median(fit), statistics.median(suite)
            per_check[name] = {k: statistics.median(v) for k, v in checks.items()}
            print(
                f"{name:<16} {t:>10.1f} {c:>10.1f} {c / t:>6.2f}   "
                f"{s:>6.1f} {s / t:>12.2f}   {f:>5.1f} {s / f:>11.2f}",
                flush=True,
            )
    names = list(per_check)
    if names:
        print("\nseconds per check (median; R2.7 includes the training R2.9 and R2.11 reuse)")
        print(f"{'check':<52} " + " ".join(f"{n:>16}" for n in names))
        for check_name in per_check[names[0]]:
            cells = " ".join(f"{per_check[n].get(check_name, float('nan')):>16.2f}" for n in names)
            print(f"{check_name[:52]:<52} {cells}")
    if args.against:
        compare(args.against, args.backends.split(","), args.repeats, project, make, env, work)


def compare(
    ref: str, backends: list[str], repeats: int, project: Path, make: list[str], env, work: Path
) -> None:
    """The suite's seconds at REF against this checkout's, alternating, in turn first.

    REF's recipe_keras renders its own default project (its config may not know
    this checkout's keys, nor this one REF's) and runs it through PYTHONPATH.
    """
    old = work / "ref"
    old.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "recipe_keras", "template"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    render = (
        "import sys; from pathlib import Path; from recipe_keras.new import new_project; "
        "print(new_project(Path(sys.argv[1]), {'recipe_keras_requirement': 'recipe-keras'}, "
        "no_input=True))"
    )
    ref_env = {**env, "PYTHONPATH": str(old)}
    out = subprocess.run(
        [sys.executable, "-c", render, str(old / "out")],
        cwd=old,  # `python -c` puts its folder first on sys.path, before PYTHONPATH
        env=ref_env,
        check=True,
        capture_output=True,
        text=True,
    )
    ref_project = Path(out.stdout.strip().splitlines()[-1])
    print(f"\nsuite seconds, {ref} against this checkout (median of {repeats}, alternating)")
    print(f"{'backend':<16} {ref[:10]:>10} {'now':>6} {'now/ref':>8}")
    for backend in backends:
        times: dict[str, list[float]] = {"ref": [], "now": []}
        pair = [("ref", ref_project), ("now", project)]
        for i in range(repeats):
            # Each goes first every other round: the second of two runs in a row was
            # about 4% slower on TF (benchmarks page), which a fixed order counts as the change.
            for which, where in pair if i % 2 == 0 else pair[::-1]:
                benv = {**env, "KERAS_BACKEND": backend}
                if which == "ref":  # PYTHONPATH wins over the editable install
                    benv["PYTHONPATH"] = os.pathsep.join([str(old), str(ref_project)])
                subprocess.run(
                    [*make, "check"], cwd=where, env=benv, check=True, capture_output=True
                )
                report = json.loads((where / "reports" / "check.json").read_text())
                times[which].append(report["numbers"]["seconds"])
        r, n = statistics.median(times["ref"]), statistics.median(times["now"])
        print(f"{backend:<16} {r:>10.2f} {n:>6.2f} {n / r:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
