"""An image folder laid out ``split/label/image``: what its files may be, and the
check that it is laid out so (before TensorFlow's own errors, which name no folder)."""

from __future__ import annotations

from pathlib import Path

from recipe_keras.config import ConfigError, DataConfig

__all__ = ["IMAGE_SUFFIXES", "check_folder", "split_names"]


# The suffixes an image folder's images may have.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def split_names(cfg: DataConfig) -> dict[str, str]:
    """{config key: split folder} for each split expression: "train[:90%]" reads train."""
    keys = ("train_split", "val_split", "test_split")
    return {f"data.{key}": getattr(cfg, key).split("[")[0].strip() for key in keys}


def check_folder(root: Path, splits: dict[str, str] | str = "train") -> None:
    """An image folder must be laid out split/label/image, with images in every class
    folder, a folder for every split the config reads and two classes or more.

    TensorFlow's own errors for a folder that is not (``ReadFile`` on a float32, an
    empty list, a StopIteration) name no folder; this names the one to fix.
    ``splits``: {config key: split name} (a bare name: the training split's).
    """
    if isinstance(splits, str):
        splits = {"data.train_split": splits}
    found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not found:
        raise ConfigError(
            f"data.dataset = {str(root)!r}: no split folders in it; an image folder is laid out "
            "split/label/image, e.g. train/cat/001.png and test/cat/002.png"
        )
    for split in found:
        classes = [p for p in split.iterdir() if p.is_dir()]
        if not classes:
            raise ConfigError(
                f"{split}: no class folders in this split; lay it out {split.name}/<label>/<image>"
            )
        for folder in classes:
            if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir()):
                raise ConfigError(
                    f"{folder}: no image in this class folder ({', '.join(IMAGE_SUFFIXES)}); "
                    "add images or remove the folder"
                )
    names = {s.name for s in found}
    for key, name in splits.items():
        if name not in names:
            carve = (
                '; or carve it out of train: data.train_split = "train[:80%]", '
                'data.val_split = "train[80%:90%]", data.test_split = "train[90%:]"'
                if key != "data.train_split" and "train" in names
                else ""
            )
            raise ConfigError(
                f"{key} = {name!r}: {root} has no such split folder (it has "
                f"{', '.join(sorted(names))}); add {name}/<label>/<image>{carve}"
            )
    train = root / splits.get("data.train_split", "train")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ConfigError(
            f"{train}: {len(classes)} class folder ({', '.join(classes)}); a classifier needs "
            "two classes or more, one folder each"
        )
