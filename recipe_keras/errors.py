"""The errors a user can act on, at the bottom of the package: standard library only.

Every module may raise them; the ``recipe-keras`` command turns each into one line
and a non-zero exit (``ConfigError``: 2; the others: 1)::

    ValueError
    └── ConfigError       a config key, an answer or a dataset that is not allowed
    RuntimeError
    └── Busy              another training command holds the project (recipe_keras.lock)
    ConnectionError
    └── NoChief           a tune worker found no chief to serve it (recipe_keras.workers)
"""

from __future__ import annotations

__all__ = ["Busy", "ConfigError", "NoChief"]


class ConfigError(ValueError):
    """A config key is unknown or its value is not allowed."""


class Busy(RuntimeError):
    """Another command is training in this project."""


class NoChief(ConnectionError):
    """A worker found no chief answering at KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT."""
