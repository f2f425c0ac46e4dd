"""recipe-keras: Karpathy's recipe for training neural networks, as Keras 3 tools.

One module per step of the recipe; import them by name (``recipe_keras.data``,
``recipe_keras.train``, ...). This package imports nothing heavy, so
``recipe_keras.config.select_backend`` can run before Keras is imported.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recipe-keras")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
