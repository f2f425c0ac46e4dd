"""R4.2 data augmentation: label-aware Keras preprocessing layers, run inside tf.data."""

from __future__ import annotations

__all__ = ["augmenter"]


def augmenter(names: list[str], seed: int):
    """R4.2: Keras preprocessing layers for the configured transforms, seeded (R2.1).

    They run inside tf.data on every backend. Empty space after a shift or turn
    is filled with 0 (the background of most scans), not mirrored content.
    """
    from keras import layers

    fill = {"fill_mode": "constant", "fill_value": 0.0}
    make = {
        "flip_horizontal": lambda s: layers.RandomFlip("horizontal", seed=s),
        "flip_vertical": lambda s: layers.RandomFlip("vertical", seed=s),
        "rotate": lambda s: layers.RandomRotation(0.05, seed=s, **fill),
        "translate": lambda s: layers.RandomTranslation(0.1, 0.1, seed=s, **fill),
        "zoom": lambda s: layers.RandomZoom(0.1, seed=s, **fill),
        "contrast": lambda s: layers.RandomContrast(0.2, value_range=(0, 1), seed=s),
        "randaugment": lambda s: layers.RandAugment(value_range=(0, 1), seed=s),
    }
    steps = [make[name](seed + i) for i, name in enumerate(names)]

    def augment(x, training: bool = True):
        # Layer by layer: each switches to TF ops inside tf.data, a Sequential does not.
        for layer in steps:
            x = layer(x, training=training)
        return x

    return augment
