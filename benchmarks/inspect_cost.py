"""The cost of `make inspect` on 60,000 28x28 images, as a ratio to a plain pass over the data.

Writes a synthetic 10-class image set (class templates, shifted, noised and
rescaled; 1% planted duplicates) into a TFDS data_dir, the way a catalog
dataset such as MNIST is stored (PNG in TFRecords). Then, alternating, times
(a) a plain pass: iterate the very tf.data pipeline the audit reads, in batches
of 1024, to NumPy, and (b) the whole audit of the same splits: reading, hashes,
statistics, the cross-validated label-noise model, cleanlab and every figure.
Prints medians and the ratio; the issue's goal is <= 3x.

Usage: python benchmarks/inspect_cost.py [--examples 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import machine

ROOT = Path(__file__).resolve().parent.parent


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    templates = []
    for _ in range(10):  # a few Gaussian strokes per class
        t = np.zeros((28, 28))
        for cy, cx, s in rng.uniform((6, 6, 2), (22, 22, 5), (4, 3)):
            t += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        templates.append(t / t.max())
    labels = rng.integers(0, 10, n)
    images = np.stack([templates[c] for c in labels])
    for i, (dy, dx) in enumerate(rng.integers(-3, 4, (n, 2))):
        images[i] = np.roll(images[i], (dy, dx), axis=(0, 1))
    images = images * rng.uniform(0.6, 1.0, (n, 1, 1)) + rng.normal(0, 0.08, images.shape)
    images = np.clip(images * 255, 0, 255).astype(np.uint8)
    dup = rng.choice(n, n // 100, replace=False)
    images[dup] = images[rng.choice(n, len(dup))]  # planted duplicates
    return images[..., None], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine(), flush=True)
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from recipe_keras.audit import audit, read_datasets

    images, labels = synthetic(args.examples)
    test_at = args.examples * 6 // 7

    class SyntheticImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(28, 28, 1)),
                        "label": tfds.features.ClassLabel(num_classes=10),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(0, test_at),
                "test": self._generate_examples(test_at, args.examples),
            }

        def _generate_examples(self, start, stop):
            for i in range(start, stop):
                yield i, {"image": images[i], "label": int(labels[i])}

    work = Path(tempfile.mkdtemp(prefix="inspect-cost-"))
    start = time.perf_counter()
    builder = SyntheticImages(data_dir=str(work))
    builder.download_and_prepare()
    print(f"prepared {args.examples} examples in {time.perf_counter() - start:.1f} s")

    def datasets():
        return {
            s: builder.as_dataset(split=s, as_supervised=True, shuffle_files=False)
            for s in ("train", "test")
        }

    def plain() -> None:
        for ds in datasets().values():
            for _ in ds.batch(1024).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
                pass

    def whole_audit() -> None:
        ex = read_datasets(datasets(), [str(c) for c in range(10)], quiet=True)
        audit(ex, work / "reports", verbose=False)

    plain()  # warm the file cache and tf.data once
    times: dict[str, list[float]] = {"plain pass": [], "audit": []}
    for _ in range(args.repeats):
        for name, fn in (("plain pass", plain), ("audit", whole_audit)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    plain_s, audit_s = (statistics.median(times[k]) for k in ("plain pass", "audit"))
    report = (work / "reports" / "inspect.json").read_text()
    import json

    numbers = {c["recipe_id"]: c["measured"] for c in json.loads(report)["details"]["checks"]}
    print(f"R1.3: {numbers['R1.3']}")
    print(f"plain pass {plain_s:.2f} s, audit {audit_s:.2f} s (medians of {args.repeats})")
    print(f"audit / plain pass = {audit_s / plain_s:.2f} (goal <= 3)")
    print(f"first audit, with importing cleanlab and scikit-learn: {times['audit'][0]:.2f} s")


if __name__ == "__main__":
    main()
