"""The same error, logged again and again, shown once a minute with a count.

When the Dagster instance cannot be written (its disk full), every daemon of `dagster dev`
logs a whole traceback at every step of its loop: it tries its heartbeat again each time.
That is measured here at ~900 lines a second, which fills what disk the log is on and hides
what happened. `RepeatedErrors` lets the first of each error through. It holds back the same
one from the same logger for `WINDOW_SECONDS`, then lets the next through with the number
held back. Nothing but the standard library: it is loaded at the start of every Python process
that `import-pipeline dev` starts (`sitecustomize.py` beside it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Dagster's daemon loggers (`dagster.daemon.<daemon class>`); a test checks the list against
#: the daemons of the Dagster installed.
DAEMON_LOGGERS = (
    "dagster.daemon",
    "dagster.daemon.AssetDaemon",
    "dagster.daemon.BackfillDaemon",
    "dagster.daemon.EventLogConsumerDaemon",
    "dagster.daemon.FreshnessDaemon",
    "dagster.daemon.MonitoringDaemon",
    "dagster.daemon.QueuedRunCoordinatorDaemon",
    "dagster.daemon.SchedulerDaemon",
    "dagster.daemon.SensorDaemon",
)

WINDOW_SECONDS = 60.0
#: Two messages alike this far are one error (past it: its traceback's lines, which repeat).
_KEY_CHARACTERS = 500


class RepeatedErrors(logging.Filter):
    """Holds back a warning or error that its logger gave already within the window (the same
    message template), and counts it on the next one let through."""

    def __init__(
        self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # → (shown at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # The message as logged, not its template: "Caught error:\n%s" is many errors.
        key, now = (record.name, record.getMessage()[:_KEY_CHARACTERS]), self._clock()
        shown_at, held = self._seen.get(key, (None, 0))
        if shown_at is not None and now - shown_at < self.window:
            self._seen[key] = (shown_at, held + 1)
            return False
        if shown_at is not None and held:
            record.msg = (
                f"{record.msg}\n(the same error {held} more time(s) in the last "
                f"{now - shown_at:.0f} s, not shown)"
            )
        self._seen[key] = (now, 0)
        return True


def install() -> None:
    """Puts one `RepeatedErrors` on each of Dagster's daemon loggers."""
    repeated = RepeatedErrors()
    for name in DAEMON_LOGGERS:
        logging.getLogger(name).addFilter(repeated)
