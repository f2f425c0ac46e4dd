"""The recipe's training on each backend against the fastest plain loop of that backend.

Each backend trains the same CNN (the zoo's ``cnn`` at width 32: keras.io's MNIST
convnet with 'same' padding) on the same 28x28 grey images, batch 64, Adam 3e-4, and
the examples/s of its fastest epoch after the first (of ``EPOCHS``) are compared, in
one process per row so thread pools start clean:

- recipe, <backend>: what ``make train`` runs: the images as a PNG folder read by
  the recipe's loader (``data.load_splits``: decoded, cached, shuffled by epoch),
  the model built and compiled by ``build_compiled``, fitted with the recipe's
  callbacks (backups, best model, TensorBoard, heartbeat);
- bare Keras fit (TensorFlow): ``model.fit(x, y)`` on the decoded arrays, no callbacks;
- plain PyTorch: ``nn.Sequential`` of the same layers, batches sliced from tensors;
- pure JAX + optax: the same layers in ``jax.lax``, one jitted step, ``optax.adam``
  (``pip install optax`` for this row; it is no dependency of the recipe).

The rows alternate within a round, so a slow spell of the machine hits each round
rather than one row; each ratio is taken within its round, then the median of the
rounds is printed with their spread, beside the goal. Usage::

    python benchmarks/backend_speed.py [--examples 12800] [--repeats 3] [--backends tensorflow]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import machine

BATCH, WIDTH, RATE = 64, 32, 3e-4
# Epochs per row: the first compiles; the fastest of the others is kept. On a shared
# 2-vCPU VM whole epochs run at half speed at random (any row, any backend, one
# thread or two), so a single timed epoch is a coin toss.
EPOCHS = 5
# Row -> backend. Each recipe row is compared with the plain row of its backend.
ROWS = {
    "bare Keras fit": "tensorflow",
    "recipe, tensorflow": "tensorflow",
    "plain PyTorch": "torch",
    "recipe, torch": "torch",
    "pure JAX + optax": "jax",
    "recipe, jax": "jax",
}
# (recipe row, its reference, the goal: the recipe's examples/s at least this share).
GOALS = (
    ("recipe, tensorflow", "bare Keras fit", 0.95),
    ("recipe, torch", "plain PyTorch", 0.80),
    ("recipe, jax", "pure JAX + optax", 0.90),
)


def write_folder(root: Path, n: int) -> None:
    """``n`` random 28x28 grey PNGs in 10 classes (``train/<class>/<i>.png``), and a test split."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", max(10, n // 10))):
        for i in range(count):
            folder = root / split / str(i % 10)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                folder / f"{i:06d}.png"
            )


def arrays(root: Path):
    """The training files as the decoded float32 arrays the plain rows train on."""
    import numpy as np
    from PIL import Image

    files = sorted((root / "train").glob("*/*.png"))
    x = np.stack([np.asarray(Image.open(f)) for f in files])[..., None].astype(np.float32) / 255
    y = np.array([int(f.parent.name) for f in files], dtype=np.int64)
    return x, y


def fastest_epoch_timer():
    """A Keras callback keeping the fastest epoch after the first (which compiles and
    fills caches): slower ones are the machine's interference, as timeit's docs say of
    its repeats."""
    import keras

    class Timer(keras.callbacks.Callback):
        seconds = math.inf

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch >= 1:
                self.seconds = min(self.seconds, time.perf_counter() - self.start)

    return Timer()


def recipe(root: Path, out: Path) -> tuple[float, int]:
    import types

    import keras

    from recipe_keras import models
    from recipe_keras.config import from_dict
    from recipe_keras.data import load_splits
    from recipe_keras.train import build_compiled, callbacks

    config = from_dict(
        {
            "data": {
                "dataset": str(root),
                "batch_size": BATCH,
                "channels": 1,  # a folder decodes as RGB unless told
                "train_split": "train[:99%]",
                "val_split": "train[99%:]",
            },
            "model": {"name": "cnn", "width": WIDTH},
            "train": {
                "epochs": EPOCHS,
                "learning_rate": RATE,
                "verbose": 0,
                "reports_dir": str(out / "reports"),
                "backup_dir": str(out / "backup"),
                "model_path": str(out / "model.keras"),
                "best_model_path": str(out / "best.keras"),
            },
        }
    )
    keras.utils.set_random_seed(0)
    splits = load_splits(config.data, seed=0)
    network = types.SimpleNamespace(
        build_model=lambda shape, classes, m: models.build(m.name, shape, classes, m.width)
    )
    model = build_compiled(network, splits, config)
    timer = fastest_epoch_timer()
    model.fit(
        splits.fit_train, epochs=EPOCHS, verbose=0, callbacks=[*callbacks(config, splits), timer]
    )
    return timer.seconds, splits.sizes["train"]


def bare_keras(x, y) -> tuple[float, int]:
    import keras

    from recipe_keras import models

    keras.utils.set_random_seed(0)
    model = models.build("cnn", (28, 28, 1), 10, WIDTH)
    model.compile(
        optimizer=keras.optimizers.Adam(RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    timer = fastest_epoch_timer()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0, callbacks=[timer])
    return timer.seconds, len(x)


def plain_torch(x, y) -> tuple[float, int]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, WIDTH, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(WIDTH, 2 * WIDTH, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(2 * WIDTH * 7 * 7, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=RATE)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    yt = torch.from_numpy(y)

    def epoch() -> float:
        start = time.perf_counter()
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    epoch()
    return min(epoch() for _ in range(EPOCHS - 1)), len(x)


def pure_jax(x, y) -> tuple[float, int]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    def conv(key, c_in, c_out):
        bound = np.sqrt(6 / (9 * c_in + 9 * c_out))  # glorot uniform, as Keras
        return jax.random.uniform(key, (3, 3, c_in, c_out), minval=-bound, maxval=bound)

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    flat = 2 * WIDTH * 7 * 7
    bound = np.sqrt(6 / (flat + 10))
    params = {
        "c1": (conv(k1, 1, WIDTH), jnp.zeros(WIDTH)),
        "c2": (conv(k2, WIDTH, 2 * WIDTH), jnp.zeros(2 * WIDTH)),
        "d": (jax.random.uniform(k3, (flat, 10), minval=-bound, maxval=bound), jnp.zeros(10)),
    }

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")

    def forward(p, images):
        h = images
        for name in ("c1", "c2"):
            w, b = p[name]
            h = jax.lax.conv_general_dilated(
                h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            h = pool(jax.nn.relu(h + b))
        w, b = p["d"]
        return h.reshape(len(h), -1) @ w + b

    opt = optax.adam(RATE)
    state = opt.init(params)

    @jax.jit
    def step(p, s, images, labels):
        def loss(p):
            logits = forward(p, images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        value, grads = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    xd, yd = jnp.asarray(x), jnp.asarray(y)
    rng = np.random.default_rng(0)

    def epoch(p, s):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            p, s, value = step(p, s, xd[idx], yd[idx])
        value.block_until_ready()
        return p, s, time.perf_counter() - start

    params, state, _ = epoch(params, state)
    fastest = math.inf
    for _ in range(EPOCHS - 1):
        params, state, seconds = epoch(params, state)
        fastest = min(fastest, seconds)
    return fastest, len(x)


def child(row: str, root: Path) -> None:
    with tempfile.TemporaryDirectory() as out:
        if row.startswith("recipe"):
            seconds, n = recipe(root, Path(out))
        else:
            x, y = arrays(root)
            run = {"bare Keras fit": bare_keras, "plain PyTorch": plain_torch}
            seconds, n = run.get(row, pure_jax)(x, y)
    print(json.dumps({"seconds": seconds, "examples": n}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=12800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--backends", default="tensorflow,torch,jax", help="whose rows to run (comma-separated)"
    )
    parser.add_argument("--child")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.folder))
        return 0
    print(machine(), flush=True)
    wanted = set(args.backends.split(","))
    rows = {row: backend for row, backend in ROWS.items() if backend in wanted}
    if "jax" in wanted and importlib.util.find_spec("optax") is None:
        print("optax is not installed: no JAX rows (pip install optax)", flush=True)
        rows = {row: backend for row, backend in rows.items() if backend != "jax"}
    rate: dict[str, list[float]] = {row: [] for row in rows}
    with tempfile.TemporaryDirectory() as folder:
        write_folder(Path(folder), args.examples)
        for round_ in range(args.repeats):
            for row, backend in rows.items():
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
                cmd = [sys.executable, __file__, "--child", row, "--folder", folder]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise SystemExit(f"{row} failed:\n{proc.stderr[-3000:]}")
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                rate[row].append(result["examples"] / result["seconds"])
                print(f"round {round_ + 1}, {row}: {rate[row][-1]:.0f} examples/s", flush=True)
    print(
        f"\n{args.examples} PNGs of 28x28x1, batch {BATCH}, cnn width {WIDTH}, the fastest "
        f"of epochs 2-{EPOCHS}; medians of {args.repeats} rounds, each ratio within its round"
    )
    print(
        f"{'':20} {'examples/s':>10}   {'against':<18} {'ratio':>5} {'(min-max)':>11} {'goal':>5}"
    )
    for row, reference, goal in GOALS:
        if row not in rows:
            continue
        for name in (reference, row):
            line = f"{name:20} {statistics.median(rate[name]):10.0f}"
            if name == row:
                ratios = [r / p for r, p in zip(rate[row], rate[reference], strict=True)]
                median = statistics.median(ratios)
                line += f"   {reference:<18} {median:5.2f} {min(ratios):5.2f}-{max(ratios):.2f}"
                line += f" {goal:5.2f} {'met' if median >= goal else 'NOT MET'}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
