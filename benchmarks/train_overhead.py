"""Recipe training vs a bare ``model.fit`` of the same model on the same pipeline.

For each backend (one process each, since Keras picks its backend once), runs
A = bare ``model.fit`` and B = a generated project's training run (``model.fit``
with ``recipe_keras.train.callbacks``, then ``evaluate``) in alternation (A B A B
...), same seed, same tf.data splits, and prints median seconds and the B/A ratios:

- fit ratio: the ``fit`` calls alone (what the recipe's callbacks cost: backups,
  TensorBoard, the resume record, the per-step non-finite check);
- wall ratio: everything B does (fit, plus whole-split evaluation of train/val/test,
  the converged linear baseline, saving the .keras model, the figures and
  train.json) over A's fit.

Usage: python benchmarks/train_overhead.py [--epochs 10] [--repeats 3] [--backends jax,torch]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _bench import machine, per_backend, quiet_config, report


def child(epochs: int, repeats: int) -> dict:
    cfg = quiet_config(epochs)
    from recipe_keras import data, models
    from recipe_keras.seed import set_seed
    from recipe_keras.train import callbacks, compile_model, evaluate

    splits = data.load_splits(cfg.data, seed=cfg.seed)
    list(splits.train), list(splits.val), list(splits.test)  # fill the caches first

    def fresh():
        set_seed(cfg.seed)
        model = models.build("cnn", splits.input_shape, splits.num_classes, cfg.model.width)
        return compile_model(model, cfg.train)

    bare, fit, wall = [], [], []
    for _ in range(repeats):
        model = fresh()
        start = time.perf_counter()
        model.fit(splits.train, validation_data=splits.val, epochs=epochs, shuffle=False, verbose=0)
        bare.append(time.perf_counter() - start)
        model = fresh()
        start = time.perf_counter()
        history = model.fit(
            splits.train,
            validation_data=splits.val,
            epochs=epochs,
            shuffle=False,
            callbacks=callbacks(cfg, splits),
            verbose=0,
        )
        fit.append(time.perf_counter() - start)
        evaluate(model, history, splits, cfg)
        wall.append(time.perf_counter() - start)
    return {
        "bare_fit_s": statistics.median(bare),
        "recipe_fit_s": statistics.median(fit),
        "recipe_wall_s": statistics.median(wall),
        "examples_per_s_bare": splits.sizes["train"] * epochs / statistics.median(bare),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(machine(), flush=True)
    if args.child:
        report(child(args.epochs, args.repeats))
        return
    print(f"digits, cnn, {args.epochs} epochs, median of {args.repeats} alternating runs")
    print(
        f"{'backend':<11} {'bare fit s':>10} {'recipe fit s':>12} {'fit ratio':>9} "
        f"{'recipe wall s':>13} {'wall ratio':>10} {'bare ex/s':>9}"
    )
    runs = per_backend(
        __file__, args.backends, f"--epochs={args.epochs}", f"--repeats={args.repeats}"
    )
    for backend, r in runs:
        print(
            f"{backend:<11} {r['bare_fit_s']:>10.2f} {r['recipe_fit_s']:>12.2f} "
            f"{r['recipe_fit_s'] / r['bare_fit_s']:>9.2f} {r['recipe_wall_s']:>13.2f} "
            f"{r['recipe_wall_s'] / r['bare_fit_s']:>10.2f} {r['examples_per_s_bare']:>9.0f}"
        )


if __name__ == "__main__":
    main()
