"""Exception types shared by the whole stack.

Every error names the offending thing (parameter, file, message field) and what is allowed, so
a roboticist can fix it without reading the source.
"""


class HvpError(Exception):
    """Base class of all errors raised on purpose by human_video_policy."""


class ConfigError(HvpError, ValueError):
    """A configuration value or parameter is invalid."""


class ModelLoadError(HvpError):
    """A policy model file is missing, corrupt, or does not match what the caller expects."""


class InputError(HvpError, ValueError):
    """An observation or message given to the core is malformed (shape, NaN, stale...)."""
