"""{{ cookiecutter.project_name }}: {{ cookiecutter.description }}"""

from recipe_keras.config import select_backend

# Keras reads KERAS_BACKEND once, when first imported: take it from config.toml
# (unless the environment already set it) before any module here imports keras.
select_backend("config.toml")
