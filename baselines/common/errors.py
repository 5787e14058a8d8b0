"""Errors the trainers raise on bad input; each message is one line that says what to do."""

from __future__ import annotations

from offgen.errors import OffgenError

__all__ = ["ConfigError", "DeviceError", "ResumeError"]


class ConfigError(OffgenError, ValueError):
    """A flag value, or a combination of flags, that a trainer cannot run with."""


class DeviceError(OffgenError):
    """The requested torch device is not available on this machine."""


class ResumeError(OffgenError):
    """A run folder cannot be resumed (different settings, or it exists and --resume is off)."""
