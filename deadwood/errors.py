"""Exceptions the engine raises on purpose.

Every message is meant to be shown to a person as it is: one line that names the
bad value and what would be accepted instead.
"""


class DeadwoodError(Exception):
    """Base class: an error the user can fix (bad input, missing files)."""


class ConfigError(DeadwoodError, ValueError):
    """A configuration value is out of range or unknown."""


class DatasetNotFound(DeadwoodError, FileNotFoundError):
    """A torchvision dataset's files are not where the user said they are."""


class DatasetFileError(DatasetNotFound):
    """A dataset's files are where they should be but cannot be read (truncated, garbage, unsafe)."""


class RunFileError(DeadwoodError):
    """A run directory or checkpoint is missing, corrupt, or not ours."""


class ExportError(DeadwoodError):
    """An export cannot be written: unknown format, unusable target, a check that failed."""


class RunStopped(DeadwoodError):
    """Raised from an ``on_event`` callback to stop a run; finished stages are kept."""


class ClusterError(DeadwoodError):
    """Ray is missing, a cluster cannot be reached, or a worker cannot run this code."""


class ModelOutputError(DeadwoodError, ValueError):
    """A model's output cannot be scored: its logits are NaN or infinite."""
