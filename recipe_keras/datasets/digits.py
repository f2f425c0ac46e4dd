"""The embedded default dataset: scikit-learn's handwritten digits as a TFDS builder.

1,797 real 8x8 grayscale digits (UCI optdigits test set) that ship inside the
scikit-learn wheel, so a fresh project trains offline in seconds through the
same TFDS code path a catalog name or an image folder takes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

# 360 test examples (20%) drawn with a fixed permutation: the split never changes.
TEST_SIZE = 360
_SPLIT_SEED = 0


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's digits: 10 classes, 8x8x1 uint8 (0-16 rescaled to 0-255)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "First release: 1,437 train and 360 test examples."
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = np.random.default_rng(_SPLIT_SEED).permutation(len(digits.target))
        return {
            "train": self._generate_examples(digits, order[TEST_SIZE:]),
            "test": self._generate_examples(digits, order[:TEST_SIZE]),
        }

    def _generate_examples(self, digits, indices):
        # Pixel intensities are 0..16; rescale to the 0..255 of every other image dataset.
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
        for i in indices:
            yield int(i), {"image": images[i], "label": int(digits.target[i])}
