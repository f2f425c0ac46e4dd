"""Tidy only: remove what the answers say the project does not need."""

import shutil
from pathlib import Path

if {{cookiecutter.ci | tojson}} == "none":
    shutil.rmtree(Path(".github"))
