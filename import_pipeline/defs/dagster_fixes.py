"""Where Dagster's own timing costs this project, worked around: how a run waits for a pool
slot (`duckdb_writer`): a work-around for a Dagster bug, applied only while Dagster has the bug
(`apply` checks its behaviour, not its version), and a shorter re-claim; and how often the
sensor daemon really ticks a sensor (`sensor_minimum_interval`).

A step waiting for a pool slot (`duckdb_writer`) is re-claimed on a back-off (1 s, then 10%
longer each time, at most 15 s), and `ActiveExecution.sleep_til_ready` sleeps until the next
re-claim is due. Dagster 1.13 computes that wait as `min(0, ...)` in
`InstanceConcurrencyContext.interval_to_next_pending_claim_check`: never positive, so the run
never sleeps and spins on a core for as long as its step waits. With four runs sharing the
writer, three spin: measured here, the runs waiting for the pool used half a core each and
two to three times the CPU of a run that never waited, taken from the other runs' validation.
"""

from __future__ import annotations

import math
import time
from typing import Any

from dagster._core.execution.plan import instance_concurrency_context
from dagster._core.execution.plan.instance_concurrency_context import (
    InstanceConcurrencyContext,
)

#: Dagster's own method, kept to tell whether it has the bug.
_DAGSTERS_WAIT = InstanceConcurrencyContext.interval_to_next_pending_claim_check


def _seconds_to_next_claim_check(self: Any) -> float:
    """The wait until the earliest pending re-claim is due (0 when one is due or none waits)."""
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(self._pending_timeouts.values()) - time.time())


def dagster_sleeps_until_next_claim() -> bool:
    """Whether Dagster's own wait for a re-claim due in a minute is positive (it sleeps)."""

    class _Pending:
        _pending_claims = {"step"}
        _pending_timeouts = {"step": time.time() + 60}

    return _DAGSTERS_WAIT(_Pending()) > 0  # type: ignore[arg-type]


#: The longest a step waiting for a pool slot goes between two claims.
#:
#: Dagster's own back-off grows 10% a claim up to 15 s (7 s after a minute's wait). But a slot
#: that frees is assigned in the instance to the first waiting step by priority, and held for
#: it until its run claims again: the writer sat idle for that interval at each hand-over (up
#: to 8 s between the last runs' steps, while the cores waited for the writer). A claim is a
#: few queries of the instance; a run waits for one slot at a time.
RECLAIM_SECONDS = 1.0


def _reclaim_interval(sleep_interval: float | None, pending_claim_count: int) -> float:
    """The interval before a step claims its pool slot again: the storage's own when it names
    one, otherwise `RECLAIM_SECONDS` (Dagster's back-off starts there and only grows)."""
    return sleep_interval if sleep_interval is not None else RECLAIM_SECONDS


def apply() -> None:
    """Makes a step waiting for a pool slot sleep until its next re-claim, if Dagster does not,
    and claim again at least every `RECLAIM_SECONDS`."""
    if not dagster_sleeps_until_next_claim():
        InstanceConcurrencyContext.interval_to_next_pending_claim_check = (  # type: ignore[method-assign]
            _seconds_to_next_claim_check
        )
    instance_concurrency_context._calculate_timeout_interval = _reclaim_interval


#: How often Dagster's sensor daemon looks at its sensors (`MIN_INTERVAL_LOOP_TIME`).
SENSOR_DAEMON_LOOP_SECONDS = 5


def sensor_minimum_interval(seconds: int) -> int:
    """The `minimum_interval_seconds` that makes the daemon tick a sensor at its first look
    `seconds` or more after the last tick: every `seconds`, rounded up to a whole number of
    looks (the daemon cannot tick in between).

    The daemon looks every `SENSOR_DAEMON_LOOP_SECONDS` and skips a sensor whose last tick
    began less than its minimum interval ago. Its looks drift by milliseconds, so a minimum
    that is a multiple of the loop was often found a hair short and waited one more loop:
    measured with 5 s, ticks came 5 and 10 s apart in turn, and a stable batch waited up to
    5 s longer for its run. A minimum a second under the look it means absorbs the drift."""
    looks = max(1, math.ceil(seconds / SENSOR_DAEMON_LOOP_SECONDS))
    return looks * SENSOR_DAEMON_LOOP_SECONDS - 1
