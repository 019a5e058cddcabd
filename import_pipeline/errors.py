"""The project's exceptions: each carries what a caller needs to report it."""

from __future__ import annotations


class ImportPipelineError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(ImportPipelineError):
    """An environment variable or setting has an unusable value."""


class LandingError(ImportPipelineError):
    """A path in the landing zone is refused (outside it, unsafe name, unreadable)."""


class BatchUnreadable(ImportPipelineError):
    """A whole batch file cannot be read: it ends `failed` with this reason on the batch."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreBusy(ImportPipelineError):
    """Another process held the reference store for longer than the caller would wait."""


class NotFound(ImportPipelineError):
    """A record, batch or reference asked for by a reader does not exist."""


class DecisionRefused(ImportPipelineError):
    """A person's duplicate decision that would break the rules of contract section 8 (a chain
    or a cycle): nothing is recorded."""


class StoreTooNew(ImportPipelineError):
    """The reference store was written by a later release (its schema version is newer than
    this code's): neither read nor written."""


class StoreNeedsUpgrade(ImportPipelineError):
    """A reader asked for what an older store lacks until a writer opens it and upgrades it."""
