"""A torch-backend project against a plain PyTorch loop: the same CNN, data and batch.

Where does a torch project lose? Each row trains keras.io's MNIST convnet (the
zoo's ``cnn`` at width 32) for one epoch on the same 28x28 images, batch 64,
Adam 3e-4, after a warm-up epoch, in one process per row so thread pools start
clean; ratios are examples/s against the plain loop:

- plain PyTorch: ``nn.Sequential`` of the same layers, batches sliced from tensors;
- Keras fit, NumPy: ``model.fit(x, y)`` on the torch backend (Keras's own per-step cost);
- Keras fit, tf.data: the same, fed from a tf.data pipeline (how projects feed);
- recipe fit: that plus the recipe's callbacks (backups, TensorBoard, heartbeat...).

``--tf-threads N`` gives TensorFlow's pools (tf.data's, in a torch process) N
threads, to see whether they compete with torch's. Usage::

    python benchmarks/torch_speed.py [--examples 12800] [--tf-threads 0] [--repeats 3]
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

from _bench import machine
from backend_speed import plain_torch

ROWS = ("plain PyTorch", "Keras fit, NumPy", "Keras fit, tf.data", "recipe fit")
BATCH = 64


def data(n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n).astype("int64")
    return x, y


def keras_fit(x, y, feed: str, out: str) -> float:
    import keras

    from recipe_keras import models
    from recipe_keras.config import from_dict
    from recipe_keras.train import callbacks, compile_model

    keras.utils.set_random_seed(0)
    model = compile_model(models.build("cnn", (28, 28, 1), 10, 32), from_dict({}).train)
    extra = []
    if feed == "numpy":
        args = {"x": x, "y": y, "batch_size": BATCH, "shuffle": True}
    else:
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
        args = {"x": ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)}
        if feed == "recipe":
            cfg = from_dict(
                {
                    "train": {
                        "verbose": 0,
                        "reports_dir": f"{out}/r",
                        "backup_dir": f"{out}/b",
                        "model_path": f"{out}/m.keras",
                        "best_model_path": "",
                    }
                }
            )
            extra = callbacks(cfg)
    model.fit(**args, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(**args, epochs=1, verbose=0, callbacks=extra)
    return time.perf_counter() - start


def child(row: str, n: int, tf_threads: int) -> None:
    if tf_threads:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(tf_threads)
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
    x, y = data(n)
    with tempfile.TemporaryDirectory() as out:
        if row == ROWS[0]:
            seconds, _ = plain_torch(x, y)
        else:
            feed = {ROWS[1]: "numpy", ROWS[2]: "tfdata", ROWS[3]: "recipe"}[row]
            seconds = keras_fit(x, y, feed, out)
    import torch

    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=12800)
    parser.add_argument("--tf-threads", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    print(machine(), flush=True)
    if args.child:
        child(args.child, args.examples, args.tf_threads)
        return 0
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
    seconds: dict[str, list[float]] = {row: [] for row in ROWS}
    threads = {}
    for round_ in range(args.repeats):  # the rows alternate: a slow spell hits each round
        for row in ROWS:
            cmd = [sys.executable, __file__, "--child", row, "--examples", str(args.examples)]
            cmd += ["--tf-threads", str(args.tf_threads)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(f"{row} failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            seconds[row].append(result["seconds"])
            threads[row] = result["threads"]
            print(f"round {round_ + 1}, {row}: {result}", flush=True)
    print(f"\ntorch backend, {args.examples} examples of 28x28x1, batch {BATCH}, cnn width 32")
    print(f"medians of {args.repeats} rounds; each round's ratio against that round's plain loop")
    print(f"{'':22} {'examples/s':>10} {'vs plain':>8} {'(min-max)':>11}  torch threads")
    for row in ROWS:
        ratios = [p / s for p, s in zip(seconds[ROWS[0]], seconds[row], strict=True)]
        rate = args.examples / statistics.median(seconds[row])
        ratio, spread = statistics.median(ratios), f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{row:22} {rate:10.0f} {ratio:8.2f} {spread:>11}  {threads[row]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
