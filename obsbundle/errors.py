"""Errors that end in a one-line message and a non-zero exit, never a traceback."""


class ObsbundleError(Exception):
    """A user-facing problem (bad config, bad DSN, unreachable target at start-up)."""

    exit_code = 2


class ConfigError(ObsbundleError):
    """The configuration file is missing, unreadable or invalid; the message names the path."""
