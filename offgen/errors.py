"""Errors offgen raises.

Every error a user can cause derives from :class:`OffgenError`, carries a message that names the
file or name involved and says what to do next, and is printed by the CLI without a traceback.
"""

from __future__ import annotations

import errno

__all__ = [
    "AccessDeniedError",
    "ChecksumError",
    "CorruptStoreError",
    "DatasetLabelError",
    "DatasetNotFoundError",
    "DiskSpaceError",
    "DownloadError",
    "EnvSpecError",
    "EnvironmentUnavailableError",
    "EvaluationError",
    "FormatVersionError",
    "IncompleteStoreError",
    "MemoryBudgetError",
    "MissingDependencyError",
    "OffgenError",
    "SchemaError",
    "StoreExistsError",
    "StoreLockedError",
    "UnknownNameError",
    "UnsafeFileError",
    "os_error_message",
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


class StoreLockedError(OffgenError):
    """Another process is writing the store; the message names it (pid, host, start time)."""


class UnsafeFileError(OffgenError):
    """A legacy file or archive holds something offgen refuses to load (pickled code, path escapes)."""


class MemoryBudgetError(OffgenError, MemoryError):
    """A request would need more memory than allowed; the message says how much and what to do."""


class MissingDependencyError(OffgenError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class AccessDeniedError(OffgenError, PermissionError):
    """A remote store (an object-store bucket) refused the credentials; the message says which
    settings supply them."""


class EnvironmentUnavailableError(OffgenError):
    """The Procgen environment backend cannot start; the message says what to install."""


class EnvSpecError(OffgenError, ValueError):
    """A game / distribution mode / level range that Procgen (as built into envpool) cannot run.

    Also a :class:`ValueError`, which is what :class:`~offgen.envs.EnvSpec` raised for bad level
    ranges before.
    """


class DiskSpaceError(OffgenError, OSError):
    """Not enough free disk space for a download or an extraction; says how much is needed."""


class DownloadError(OffgenError):
    """A download failed after retries; the message names the URL and what was tried."""


class DatasetLabelError(OffgenError, ValueError):
    """Data is labelled as a registered dataset it cannot be (its levels, behaviour policies,
    final frames or size contradict it); the message lists why and how to force the label."""


class EvaluationError(OffgenError):
    """An evaluation cannot run or its results cannot be compared; the message says what to fix."""


# What to do about the machine's own refusals, by errno. The CLI prints these as one line.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free space or choose an output on another disk, then rerun "
    "the same command (finished episodes and downloaded bytes are kept and resumed)",
    errno.EDQUOT: "your disk quota is exhausted: free space or choose another output, then rerun",
    errno.EROFS: "the file system is read-only: choose an output on a writable disk",
    errno.EACCES: "permission denied: choose an output you can write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose an output you own",
    errno.ENOTDIR: "a file stands where a folder is needed: choose another path or move the file",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.EEXIST: "something already exists there: choose another path or remove it",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


def os_error_message(exc: OSError) -> str:
    """One line for an error the operating system raised: the path, what happened, what to do.

    Used by the command line so that a full disk, a read-only file system or a file standing where
    an output folder should be is one actionable line, not a traceback.
    """
    where = exc.filename if exc.filename is not None else "offgen"
    what = exc.strerror or type(exc).__name__
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and the disk, then rerun")
    return f"{where}: {what} ({fix})"
