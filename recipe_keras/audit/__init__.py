"""Step 1 of the recipe, "become one with the data": ``make inspect`` (R1.1-R1.8).

The audit reads what the project's ``load_data`` returns (``inspect_project``), or
a dataset named on the command line (``inspect_dataset``). It needs no Keras
backend: it reads every split once into NumPy
(:mod:`.read`), computes per-example hashes and statistics in batches, and
writes ``inspect.json`` plus figures (:mod:`.run`). Only R1.8, which looks at
a trained model's mistakes, takes predictions from Keras.
"""

from recipe_keras.audit.examples import Examples
from recipe_keras.audit.read import read_arrays, read_config, read_datasets, read_folder
from recipe_keras.audit.run import audit, inspect_dataset, inspect_project

__all__ = [
    "Examples",
    "audit",
    "inspect_dataset",
    "inspect_project",
    "read_arrays",
    "read_config",
    "read_datasets",
    "read_folder",
]
