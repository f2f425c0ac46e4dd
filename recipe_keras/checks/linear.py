"""R2.7's linear baseline: multinomial logistic regression trained by Adam, in NumPy.

The same model and training as ``models.linear`` compiled by ``compile_model`` with
``TrainConfig()``'s defaults (Flatten, Dense with a Glorot-uniform kernel and a zero
bias; sparse cross-entropy on logits; Adam at 3e-4 with Keras's constants), on the
same batches for the same steps. Written out because as a Keras model it paid a
traced train and predict function for what is two matrix products a step: 0.33-0.35 s
of TensorFlow's ~5 s suite on the digits (build 0.02 s, first step 0.24-0.32 s), and
on JAX a compilation. scikit-learn's ``MLPClassifier(hidden_layer_sizes=())`` trains
the same model by Adam, but took 4 ms a ``partial_fit`` step plus a 1 s import. A
test trains this and the Keras model from the same weights on the same batches, and
their losses agree on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recipe_keras.config import TrainConfig

__all__ = ["LinearBaseline"]


class LinearBaseline:
    """Logits ``flatten(x) @ kernel + bias``, trained one batch at a time like ``train_on_batch``.

    Has the two methods R2.7 calls on a Keras model (``train_on_batch``,
    ``predict_on_batch``), so it is scored by the same code. Float32, as Keras trains.
    """

    # keras.optimizers.Adam's defaults.
    BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7

    def __init__(
        self,
        features: int,
        num_classes: int,
        learning_rate: float = TrainConfig.learning_rate,  # the dataclass default, 3e-4
        seed: int = 0,
    ) -> None:
        if features < 1 or num_classes < 2:
            raise ValueError(
                f"a linear classifier needs features >= 1 and num_classes >= 2, "
                f"got features={features}, num_classes={num_classes}"
            )
        limit = np.sqrt(6.0 / (features + num_classes))  # Keras's glorot_uniform
        rng = np.random.default_rng(seed)
        kernel = rng.uniform(-limit, limit, (features, num_classes)).astype("float32")
        self.weights = [kernel, np.zeros(num_classes, "float32")]
        self.learning_rate = learning_rate
        self._m = [np.zeros_like(w) for w in self.weights]
        self._v = [np.zeros_like(w) for w in self.weights]
        self.iterations = 0

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """The logits of a batch."""
        kernel, bias = self.weights
        return np.asarray(x, "float32").reshape(len(x), -1) @ kernel + bias

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> float:
        """One Adam step on the mean cross-entropy; the loss before it, as Keras reports."""
        flat = np.asarray(x, "float32").reshape(len(x), -1)
        labels = np.asarray(y).astype(int).ravel()
        classes = self.weights[1].shape[0]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"labels must be class indices in [0, {classes}), "
                f"got {labels.min()}..{labels.max()}"
            )
        logits = self.predict_on_batch(flat)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(labels))
        loss = float(np.mean(np.log(total[:, 0]) - logits[rows, labels]))
        grad = exp / total  # d loss / d logits: (softmax - one-hot) / n
        grad[rows, labels] -= 1.0
        grad /= len(labels)
        self._adam([flat.T @ grad, grad.sum(axis=0)])
        return loss

    def fit_steps(
        self, batches: Sequence[tuple[np.ndarray, np.ndarray]], steps: int
    ) -> list[float]:
        """``steps`` steps cycling over ``batches`` (as ``subject.fit_steps``); each step's loss."""
        return [self.train_on_batch(*batches[step % len(batches)]) for step in range(steps)]

    def _adam(self, gradients: list[np.ndarray]) -> None:
        # keras.optimizers.Adam.update_step, term for term.
        self.iterations += 1
        t = self.iterations
        alpha = self.learning_rate * float(np.sqrt(1 - self.BETA_2**t)) / (1 - self.BETA_1**t)
        for w, m, v, g in zip(self.weights, self._m, self._v, gradients, strict=True):
            m += (g - m) * (1 - self.BETA_1)
            v += (np.square(g) - v) * (1 - self.BETA_2)
            w -= alpha * m / (np.sqrt(v) + self.EPSILON)
