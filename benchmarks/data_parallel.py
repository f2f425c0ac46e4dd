"""Data parallelism's overhead on one device: ``train.distribution = "data_parallel"``
against plain training, same model, data and seed.

For TensorFlow and JAX (torch has no Keras data-parallel path), one process each,
with the one device the backend sees: A = the zoo's ``cnn`` built, compiled and
fitted plainly; B = the same inside ``recipe_keras._backend.data_parallel``, fed
``Splits.fit_train`` (with one device it trains plainly); C = the backend's
distribution forced over that one device (``DataParallel`` on JAX,
``MirroredStrategy`` on TensorFlow), what B would cost if it did not step aside.
Alternating A B C..., medians of the fit seconds after a warm-up, and A/B, A/C as
throughput (higher is better).

Usage: python benchmarks/data_parallel.py [--epochs 5] [--repeats 3] [--backends tensorflow,jax]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from _bench import machine, per_backend, quiet_config, report


def child(epochs: int, repeats: int) -> dict:
    cfg = quiet_config(epochs)
    from recipe_keras import data, models
    from recipe_keras._backend import data_parallel, devices_in_use
    from recipe_keras.seed import set_seed
    from recipe_keras.train import compile_model

    splits = data.load_splits(cfg.data, seed=cfg.seed)
    list(splits.train), list(splits.val)  # fill the caches first

    def forced():
        import keras

        if keras.backend.backend() == "jax":
            return keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(tf.config.list_logical_devices("CPU")[:1])

    def run(mode: str) -> tuple[float, list[str]]:
        set_seed(cfg.seed)
        scope = {
            "plain": contextlib.nullcontext,
            "recipe": lambda: data_parallel(cfg.data.batch_size),
            "forced": lambda: forced().scope(),
        }[mode]()
        with scope:
            net = models.build("cnn", splits.input_shape, splits.num_classes, cfg.model.width)
            model = compile_model(net, cfg.train)
            devices = devices_in_use()
            model.fit(splits.fit_train, epochs=1, verbose=0)  # warm-up: tracing, compiling
            start = time.perf_counter()
            model.fit(splits.fit_train, epochs=epochs, verbose=0)
            return time.perf_counter() - start, devices

    seconds = {"plain": [], "recipe": [], "forced": []}
    for _ in range(repeats):
        for mode, times in seconds.items():
            times.append(run(mode)[0])
    a, b, c = (statistics.median(seconds[m]) for m in ("plain", "recipe", "forced"))
    return {"plain_s": a, "recipe_s": b, "forced_s": c, "devices": run("forced")[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax")
    args = parser.parse_args()
    print(machine(), flush=True)
    if args.child:
        report(child(args.epochs, args.repeats))
        return
    print(
        f"{'backend':11} {'plain s':>8} {'recipe s':>8} {'ratio':>6} "
        f"{'forced s':>8} {'ratio':>6}  devices"
    )
    for backend, r in per_backend(
        __file__, args.backends, "--epochs", str(args.epochs), "--repeats", str(args.repeats)
    ):
        a, b, c = r["plain_s"], r["recipe_s"], r["forced_s"]
        print(
            f"{backend:11} {a:8.2f} {b:8.2f} {a / b:6.2f} {c:8.2f} {a / c:6.2f}  {r['devices']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
