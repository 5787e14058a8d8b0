"""Errors offgen_tools raises.

Every error a user can cause derives from :class:`OffgenToolsError` and carries a message that
names the file, flag or key involved; the console scripts print it as one line, without a
traceback. The input errors are also ``ValueError`` (a missing package is an ``ImportError``),
so code that caught the built-in class keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FilterError",
    "GridError",
    "LayoutError",
    "MissingDependencyError",
    "OffgenToolsError",
    "OfflineRunsError",
    "OptionError",
    "ResultError",
    "SubmitError",
    "WandbApiError",
    "WandbFileError",
]


class OffgenToolsError(Exception):
    """Base class of every error offgen_tools raises on bad input or a missing package."""


class MissingDependencyError(OffgenToolsError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class OptionError(OffgenToolsError, ValueError):
    """A command-line or download option is invalid or does not apply; the message names it."""


class OfflineRunsError(OffgenToolsError, FileNotFoundError):
    """An offline-run path does not exist or holds no ``.wandb`` run files."""


class WandbApiError(OffgenToolsError):
    """The WandB public API could not be opened or refused a request (login, project, network)."""


class FilterError(OffgenToolsError, ValueError):
    """A filter dictionary uses an operator or shape this evaluator does not know."""


class WandbFileError(OffgenToolsError, ValueError):
    """A ``.wandb`` file has an unknown header, version, or corrupt records."""


class LayoutError(OffgenToolsError, ValueError):
    """A layout definition is invalid."""


class ConfigError(OffgenToolsError, ValueError):
    """An exporter configuration error; the message names the experiment and key."""


class GridError(OffgenToolsError, ValueError):
    """A grid configuration is invalid."""


class ResultError(OffgenToolsError, ValueError):
    """A result file is missing fields or has an unknown format."""


class SubmitError(OffgenToolsError, ValueError):
    """Invalid submission settings."""
