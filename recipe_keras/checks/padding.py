"""R2.12 for token ids: padding changes nothing.

A text is padded with id 0 to the sequence length. A network that honours the
padding mask gives the same output for a batch and for the same batch with its
trailing padding trimmed away; one that reads padding as content (an Embedding
without ``mask_zero``, a convolution whose padded positions reach the pooling)
gives another, and its prediction depends on how much padding a text happened to
get: on its length, or on the longest text of its batch.
"""

from __future__ import annotations

import numpy as np

from recipe_keras.verdicts import CheckResult, Verdict

__all__ = ["check_padding", "text_lengths"]

# The largest change in any logit, relative to the logits' size, that still counts as
# the same output (float32 sums in another order).
TOLERANCE = 1e-4


def text_lengths(x: np.ndarray) -> np.ndarray:
    """Each row's tokens up to its last non-padding id (trailing padding excluded)."""
    real = np.asarray(x) != 0
    return np.where(real.any(axis=1), real.shape[1] - np.argmax(real[:, ::-1], axis=1), 0)


def check_padding(model, x: np.ndarray) -> CheckResult:
    """The model's output on ``x`` against its output on ``x`` cut after the longest
    text it holds (only padding is removed)."""
    name = "padding changes nothing (trimmed away)"
    x = np.asarray(x)
    lengths = text_lengths(x)
    padded = lengths < x.shape[1]
    if not padded.any():
        return CheckResult(
            "R2.12",
            name,
            Verdict.INFO,
            "no text of the batch is padded",
            "texts shorter than data.sequence_length",
            advice="every text fills data.sequence_length; nothing to trim",
        )
    # The shorter half of the padded texts: the most padding to trim.
    x = x[padded & (lengths <= np.median(lengths[padded]))]
    keep = max(1, int(lengths[padded].max()))
    full = np.asarray(model.predict_on_batch(x), dtype=np.float64)
    try:
        trimmed = np.asarray(model.predict_on_batch(x[:, :keep]), dtype=np.float64)
    except Exception as exc:  # a network built for exactly sequence_length tokens
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return CheckResult(
            "R2.12",
            name,
            Verdict.INFO,
            f"the model takes exactly {x.shape[1]} tokens ({first})",
            "a model that takes any length",
            advice="build the network on keras.Input((None,), dtype='int32') so the check "
            "can trim the padding (a positional embedding takes the first positions)",
        )
    change = float(np.max(np.abs(full - trimmed)))
    scale = 1.0 + float(np.max(np.abs(full)))
    ok = change <= TOLERANCE * scale
    return CheckResult(
        "R2.12",
        name,
        Verdict.PASS if ok else Verdict.FAIL,
        measured=f"largest change in an output {change:.3g} after trimming "
        f"{x.shape[1] - keep} padding positions from {len(x)} texts",
        expected=f"at most {TOLERANCE * scale:.2g}",
        advice=""
        if ok
        else "padding reaches the output: give the Embedding mask_zero=True and pool with "
        "the mask (GlobalAveragePooling1D takes it), or zero padded positions before a "
        "convolution and pass the mask to the pooling (the zoo's conv1d does)",
        numbers={"change": change, "texts": len(x), "trimmed": int(x.shape[1] - keep)},
    )
