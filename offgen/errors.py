"""Errors offgen raises.

Every error a user can cause derives from :class:`OffgenError`, carries a message that names the
file or name involved and says what to do next, and is printed by the CLI without a traceback.
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "CorruptStoreError",
    "DatasetNotFoundError",
    "DownloadError",
    "EnvSpecError",
    "EnvironmentUnavailableError",
    "FormatVersionError",
    "IncompleteStoreError",
    "MissingDependencyError",
    "OffgenError",
    "SchemaError",
    "StoreExistsError",
    "UnknownNameError",
    "UnsafeFileError",
]


class OffgenError(Exception):
    """Base class of every error offgen raises on bad input or a damaged dataset."""


class SchemaError(OffgenError, ValueError):
    """An episode or array does not match the offgen episode schema (shape, dtype, length, range)."""


class UnknownNameError(OffgenError, KeyError):
    """A dataset, game, split or option name is not known; the message suggests the closest one."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(OffgenError, FileNotFoundError):
    """A dataset that is known by name is not present locally; the message says how to get it."""


class CorruptStoreError(OffgenError):
    """A store file is unreadable, truncated or inconsistent; the message names the file."""


class ChecksumError(CorruptStoreError):
    """A file's size or sha256 does not match its manifest or lockfile entry."""


class FormatVersionError(OffgenError):
    """A store or file was written in a format version this offgen cannot read."""


class IncompleteStoreError(OffgenError):
    """A store is still being written, or its writer was interrupted before finishing."""


class StoreExistsError(OffgenError, FileExistsError):
    """A writer was asked to create a store where a different one already exists."""


class UnsafeFileError(OffgenError):
    """A legacy file or archive holds something offgen refuses to load (pickled code, path escapes)."""


class MissingDependencyError(OffgenError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class EnvironmentUnavailableError(OffgenError):
    """The Procgen environment backend cannot start; the message says what to install."""


class EnvSpecError(OffgenError, ValueError):
    """A game / distribution mode / level range that Procgen (as built into envpool) cannot run.

    Also a :class:`ValueError`, which is what :class:`~offgen.envs.EnvSpec` raised for bad level
    ranges before.
    """


class DownloadError(OffgenError):
    """A download failed after retries; the message names the URL and what was tried."""
