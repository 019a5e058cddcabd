"""When a run that ended without finishing its batches is run again, as data.

A failure that passes is retried, a bounded number of times with back-off. That covers a
worker that died, a disk, quota or memory that ran out, or a store held by another writer
too long. Every other failure is deterministic (a bug, a refused record) and is not retried:
the same input would fail the same way. A run a person canceled is not retried either, since
relaunching it would fight them. No I/O here: the callers say what happened.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

#: errno → what a person reads.
TRANSIENT_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOMEM: "out of memory",
}

#: A worker that died leaves no error behind: the run is failed for it with this reason.
WORKER_GONE = "the run's worker process ended without recording an outcome"

#: Text that engines put in their messages for the same conditions (DuckDB's IOException and
#: OutOfMemoryException, SQLite's "database or disk is full"), lower-cased → what a person reads.
TRANSIENT_MESSAGES = {
    "no space left on device": "no space left on device",
    "database or disk is full": "no space left on device",
    "disk quota exceeded": "disk quota exceeded",
    # SQLite's word (the Dagster instance) for a write that failed, a full disk among them.
    "disk i/o error": "a disk I/O error (the disk full?)",
    "out of memory": "out of memory",
    # StoreBusy's own messages (DuckDB's file lock, PostgreSQL's advisory lock).
    "is held by another process": "the store was held by another writer",
    "has another writer": "the store was held by another writer",
    # A worker that died: found gone (`WORKER_GONE`), or seen to die by Dagster's code server
    # ("... was terminated by signal 9 (SIGKILL)"), which then fails the run "from outside the
    # execution context". A failure of the work itself is always recorded from inside.
    WORKER_GONE: "the run's worker died",
    "terminated unexpectedly": "the run's worker died",
    "was terminated by signal": "the run's worker died",
    "from outside the execution context": "the run's worker died",
}


#: Attempts of one batch version, the first run included.
DEFAULT_ATTEMPTS = 4
#: The wait before the first retry; each later one waits twice as long ...
DEFAULT_RETRY_SECONDS = 30.0
#: ... but never longer than this.
MAX_RETRY_SECONDS = 15 * 60.0


def transient_reason(error: BaseException) -> str | None:
    """What passes in `error` or in what caused it ("no space left on device"), or None when
    nothing in it passes by itself (a deterministic failure)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return "out of memory"
        if isinstance(current, OSError) and current.errno in TRANSIENT_ERRNOS:
            return TRANSIENT_ERRNOS[current.errno]
        if reason := transient_reason_in_text(str(current)):
            return reason
        current = current.__cause__ or current.__context__
    return None


def transient_reason_in_text(text: str) -> str | None:
    """`transient_reason` of an error known only by its message (a run's failure event)."""
    lowered = text.lower()
    return next((reason for key, reason in TRANSIENT_MESSAGES.items() if key in lowered), None)


def retry_delay(attempt: int, first_seconds: float) -> float:
    """The wait before attempt `attempt + 1`, after attempt `attempt` (from 1) failed."""
    return min(first_seconds * 2 ** max(attempt - 1, 0), MAX_RETRY_SECONDS)


@dataclass(frozen=True)
class RetryDecision:
    """What happens to a run's batches after the run ended without finishing them."""

    retry: bool
    #: Why the run ended, as a person reads it.
    cause: str
    #: The seconds to wait before the retry (0 when there is none).
    delay: float = 0.0
    #: The attempt the retry is (the run's attempt + 1), or the run's own when none.
    attempt: int = 1

    def describe(self, attempts: int) -> str:
        if self.retry:
            return f"{self.cause}; retried in {self.delay:.0f} s (attempt {self.attempt} of {attempts})"
        return self.cause


def decide_retry(
    *,
    attempt: int,
    attempts: int,
    cause: str,
    transient: str | None,
    canceled: bool,
    first_seconds: float,
) -> RetryDecision:
    """Whether a run's batches are imported again after the run (its `attempt`) ended.

    Args:
        attempt: which attempt the run was (1: the first).
        attempts: how many attempts a batch version gets at most.
        cause: why the run ended, as a person reads it.
        transient: what passes in the failure (`transient_reason`), None if nothing does.
        canceled: a person canceled the run.
        first_seconds: the wait before the first retry.
    """
    if canceled:
        return RetryDecision(False, f"{cause}; not retried: the run was canceled", attempt=attempt)
    if transient is None:
        return RetryDecision(False, f"{cause}; not retried: it would fail again", attempt=attempt)
    if attempt >= attempts:
        return RetryDecision(
            False, f"{cause}; not retried: failed {attempt} times ({transient})", attempt=attempt
        )
    return RetryDecision(True, cause, retry_delay(attempt, first_seconds), attempt + 1)
