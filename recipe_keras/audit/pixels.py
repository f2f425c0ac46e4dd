"""What the audit keeps of each example instead of its pixels: a grey thumbnail, a
content hash and a perceptual hash, computed a block at a time as the examples are read.

The perceptual hash is imagehash's ``phash`` (grey image at 32x32, 2-D DCT-II, the
8x8 lowest frequencies thresholded at their median: 64 bits), computed for a whole
block with two small matrix products instead of one Pillow call per image; at 32x32
it equals imagehash bit for bit (tested).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.fft

__all__ = ["THUMB", "Summary", "digests", "phash", "resize_matrix", "thumbnails"]

THUMB = 16


def thumbnails(images: np.ndarray, side: int = THUMB, batch: int = 8192) -> np.ndarray:
    """Grey images scaled to 0..1 and reduced to at most ``side`` x ``side``, flattened."""
    _, h, w, _ = images.shape
    left = resize_matrix(h, min(h, side)).astype(np.float32)
    right = resize_matrix(w, min(w, side)).astype(np.float32).T
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    out = []
    for start in range(0, len(images), batch):
        x = _grey(images[start : start + batch]) / scale
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        out.append((left @ x @ right).reshape(len(x), -1))
    return np.concatenate(out)


def _grey(images: np.ndarray) -> np.ndarray:
    """The channels' mean as float32: a sum of planes (``mean(axis=3)`` over 3 values a
    pixel runs several times slower)."""
    total = images[..., 0].astype(np.float32)
    for c in range(1, images.shape[3]):
        total += images[..., c]
    return total / np.float32(images.shape[3]) if images.shape[3] > 1 else total


def digests(images: np.ndarray) -> np.ndarray:
    """A 64-bit content hash per example (pixels, dtype and shape): equal means identical.

    64 bits: the chance of any collision among a million images is about 3e-8.
    """
    header = f"{images.dtype}{images.shape[1:]}".encode()
    rows = images.reshape(len(images), -1)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(header + r.tobytes(), digest_size=8).digest(), "little")
            for r in rows
        ],
        dtype=np.uint64,
    )


@cache
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows of weights that resize a length-n_in axis to n_out: box filter down, linear up."""
    m = np.zeros((n_out, n_in))
    if n_out <= n_in:
        edges = np.linspace(0.0, n_in, n_out + 1)
        for o in range(n_out):
            lo, hi = edges[o], edges[o + 1]
            for i in range(int(lo), int(np.ceil(hi))):
                m[o, i] = min(hi, i + 1) - max(lo, i)
    else:
        centre = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(centre).astype(int)
        frac = centre - lo
        m[np.arange(n_out), lo] += 1 - frac
        m[np.arange(n_out), np.minimum(lo + 1, n_in - 1)] += frac
    return m / m.sum(axis=1, keepdims=True)


@cache
def _phash_matrix(n_in: int) -> np.ndarray:
    """Resize to 32 then keep the 8 lowest DCT-II frequencies, as one (8, n_in) matrix."""
    dct = scipy.fft.dct(np.eye(32), axis=0)[:8]
    return (dct @ resize_matrix(n_in, 32)).astype(np.float32)


def phash(images: np.ndarray, batch: int = 8192) -> np.ndarray:
    """64-bit perceptual hashes (uint64) of (N, H, W, C) images."""
    _, h, w, _ = images.shape
    left, right = _phash_matrix(h), _phash_matrix(w).T
    out = []
    for start in range(0, len(images), batch):
        grey = _grey(images[start : start + batch])
        low = (left @ grey @ right).reshape(len(grey), 64)
        bits = low > np.median(low, axis=1, keepdims=True)
        out.append(np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64))
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


@dataclass
class Summary:
    """Per example: a grey thumbnail (R1.3's pixel check, R1.6, R1.7), a content hash
    and a perceptual hash (R1.3). About 1 KB an example, whatever the image's size."""

    thumbs: np.ndarray  # (N, <= THUMB * THUMB) float32, 0..1
    digest: np.ndarray  # (N,) uint64
    phash: np.ndarray  # (N,) uint64

    @classmethod
    def of(cls, images: np.ndarray) -> Summary:
        return cls(thumbnails(images), digests(images), phash(images))

    @classmethod
    def join(cls, parts: list[Summary], side: int) -> Summary:
        if not parts:
            return cls(
                np.zeros((0, side), np.float32), np.zeros(0, np.uint64), np.zeros(0, np.uint64)
            )
        return cls(
            *(np.concatenate([getattr(p, k) for p in parts]) for k in ("thumbs", "digest", "phash"))
        )
