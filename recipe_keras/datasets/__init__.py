"""Datasets that ship with recipe-keras, as TFDS builders (no network needed)."""
