"""pytest loads this first: importing the package picks the backend from config.toml
before any test module imports keras (Keras reads KERAS_BACKEND only once)."""

import {{ cookiecutter.project_slug }}  # noqa: F401
