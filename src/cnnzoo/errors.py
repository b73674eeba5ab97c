"""The one base class for errors that a user can fix.

The CLI prints a :class:`CnnzooError` as a single clear message (no stack trace) and exits with
status 2; set ``CNNZOO_DEBUG=1`` to see the traceback. Every cnnzoo error also derives from the
matching builtin (KeyError, ValueError, FileNotFoundError), so library users can catch either.
"""

from __future__ import annotations

__all__ = ["CnnzooError", "ConfigError"]


class CnnzooError(Exception):
    """Base of every user-fixable cnnzoo error; the message says what to do."""


class ConfigError(CnnzooError, ValueError):
    """An option or config value that cannot work (e.g. an input size below the model's minimum)."""
