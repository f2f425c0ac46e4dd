{{ (cookiecutter.project_name ~ ": a recipe-keras project.") | tojson }}

from recipe_keras.project import activate

# Keras reads KERAS_BACKEND once, when first imported: take it from this project's
# config.toml (or the one a recipe-keras command was given) before anything imports keras.
CONFIG = activate(__file__)
