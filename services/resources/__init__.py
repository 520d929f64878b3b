"""Files the code reads at run time, shipped inside the package so an installed wheel finds them.

`schemas` and `config` are links to the checkout's `schemas/` and `config/` folders: the
checkout keeps one copy, and building the wheel copies their files in (package data in
pyproject.toml). Paths are resolved, so a checkout reports `schemas/...`, not the link.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

SCHEMAS_DIR = (_HERE / "schemas").resolve()
CONFIG_DIR = (_HERE / "config").resolve()
DEFAULT_PIPELINE_CONFIG = CONFIG_DIR / "pipeline.yaml"
DEFAULT_TEMPLATES_DIR = CONFIG_DIR / "templates"
