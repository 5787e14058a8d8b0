"""Reading the configuration files of the console scripts (YAML, or JSON by suffix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offgen_tools._optional import require
from offgen_tools.errors import OffgenToolsError

__all__ = ["load_config_file"]


def load_config_file(path: Path, error: type[OffgenToolsError]) -> Any:
    """Parse a ``.json`` file as JSON and anything else as YAML.

    Args:
        path: The file.
        error: The error raised on a syntax error, with the parser's message on one line.

    Returns:
        The parsed content.

    Raises:
        OffgenToolsError: ``error`` when the file does not parse.
        MissingDependencyError: When a YAML file is read without PyYAML.
    """
    text = path.read_text()
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{path}: invalid JSON: {exc}") from exc
    yaml = require("yaml", "wandb")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
