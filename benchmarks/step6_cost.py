"""What step 6 costs beside one training run: ``make ensemble`` and ``make distill``.

For each backend (one process each), in one run on the embedded digits with the CNN:
T = one training run of the recipe (fit with its callbacks, then evaluate), then
an ensemble of N members (N training runs, each in its own folder, plus one
prediction pass per member and the saved ensemble), then distillation from that
ensemble (the student alone and the distilled student, at half width). Prints
seconds and ratios to T: the ensemble's goal is about N, distillation's about 2
(two student runs, each cheaper than T, plus the teacher's predictions in every
distilled step). Test accuracies are printed beside them.

Usage: python benchmarks/step6_cost.py [--epochs 10] [--members 3] [--backends jax,torch]
"""

from __future__ import annotations

import argparse
import time
import types

from _bench import machine, per_backend, quiet_config, report


def child(epochs: int, members: int) -> dict:
    from recipe_keras import data, models
    from recipe_keras.config import with_values
    from recipe_keras.distill import run_distill
    from recipe_keras.ensemble import run_ensemble
    from recipe_keras.project import Project
    from recipe_keras.seed import set_seed
    from recipe_keras.train import compile_model, fit_and_evaluate

    cfg = quiet_config(
        epochs,
        ensemble={"model_path": "{out}/ensemble.keras"},
        distill={"teacher": "{out}/ensemble.keras", "model_path": "{out}/student.keras"},
    )
    cfg = with_values(cfg, {"ensemble.members": members})

    def train(config):
        set_seed(config.seed)
        splits = data.load_splits(config.data, seed=config.seed)
        m = models.from_config(config.model, splits.input_shape, splits.num_classes)
        return fit_and_evaluate(compile_model(m, config.train), splits, config)

    loader = types.SimpleNamespace(load_data=lambda c: data.load_splits(c.data, seed=c.seed))
    net = types.SimpleNamespace(build_model=lambda s, k, mc: models.from_config(mc, s, k))
    project = Project(cfg, None, loader, net, types.SimpleNamespace(run=train))
    train(cfg)  # warm: data prepared, programs compiled once, as in a real session
    start = time.perf_counter()
    single = train(cfg)
    t_train = time.perf_counter() - start
    start = time.perf_counter()
    ensemble = run_ensemble(project, verbose=False)
    t_ensemble = time.perf_counter() - start
    start = time.perf_counter()
    distill = run_distill(project, verbose=False)
    t_distill = time.perf_counter() - start
    return {
        "train_s": t_train,
        "ensemble_s": t_ensemble,
        "distill_s": t_distill,
        "train_acc": single.numbers["test_accuracy"],
        "ensemble": ensemble.numbers,
        "distill": distill.numbers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(machine(), flush=True)
    if args.child:
        report(child(args.epochs, args.members))
        return
    print(f"digits, cnn, {args.epochs} epochs, ensemble of {args.members}, student at half width")
    print(
        f"{'backend':<11} {'train s':>7} {'ensemble s':>10} {'/train':>6} {'distill s':>9} "
        f"{'/train':>6} | test acc: {'single':>6} {'best m.':>7} {'ens.':>5} "
        f"{'alone':>5} {'dist.':>5}"
    )
    runs = per_backend(
        __file__, args.backends, f"--epochs={args.epochs}", f"--members={args.members}"
    )
    for backend, r in runs:
        e, d = r["ensemble"], r["distill"]
        print(
            f"{backend:<11} {r['train_s']:>7.1f} {r['ensemble_s']:>10.1f} "
            f"{r['ensemble_s'] / r['train_s']:>6.2f} {r['distill_s']:>9.1f} "
            f"{r['distill_s'] / r['train_s']:>6.2f} | {'':>9} {r['train_acc']:>6.3f} "
            f"{e['best_member_test_accuracy']:>7.3f} {e['ensemble_test_accuracy']:>5.3f} "
            f"{d['alone_test_accuracy']:>5.3f} {d['distilled_test_accuracy']:>5.3f}"
        )


if __name__ == "__main__":
    main()
