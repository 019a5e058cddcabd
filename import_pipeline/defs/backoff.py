"""A sensor that cannot work (the disk full, the store busy) says so once, then waits.

Left alone, a sensor whose tick raises fails every tick with a whole traceback: every 5 s, in
the daemon's log, for as long as the disk is full.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg

from import_pipeline.domain.recovery import transient_reason

#: The longest a sensor that cannot work (the disk full) waits before it tries again.
_MAX_BACK_OFF_SECONDS = 300.0
_FIRST_BACK_OFF_SECONDS = 5.0

_Result = TypeVar("_Result")


@dataclass
class _BackOff:
    until: float = 0.0  # time.monotonic()
    seconds: float = 0.0
    said: str | None = None


#: Per sensor, in the code server's process, which evaluates every tick of it.
_back_offs: dict[str, _BackOff] = {}


def backing_off(
    name: str, context: dg.SensorEvaluationContext, tick: Callable[[], _Result]
) -> _Result | dg.SkipReason:
    """Runs a sensor's `tick`. When it raises, the error is logged once (not a traceback on
    every tick), and the sensor's next ticks skip for a while that doubles from 5 s to 5 min
    before it tries again. An error that passes (`domain.recovery`: a full disk, a busy
    store) is the tick's skip reason; any other is raised, so the tick shows it as failed."""
    state = _back_offs.setdefault(name, _BackOff())
    now = time.monotonic()
    if now < state.until:
        return dg.SkipReason(f"trying again in {state.until - now:.0f} s: {state.said}")
    try:
        result = tick()
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:1000]
        state.seconds = min(max(state.seconds * 2, _FIRST_BACK_OFF_SECONDS), _MAX_BACK_OFF_SECONDS)
        state.until = now + state.seconds
        if message != state.said:
            context.log.error(
                "%s cannot work: %s; trying again in %.0f s", name, message, state.seconds
            )
        state.said = message
        if transient_reason(exc) is None:
            raise
        return dg.SkipReason(f"{message}; trying again in {state.seconds:.0f} s")
    if state.said is not None:
        context.log.info("%s works again (after: %s)", name, state.said)
    _back_offs[name] = _BackOff()
    return result
