"""Progress of an import, stage by stage, for whoever watches: a terminal's bar, a run's log.

The data path reports what it has done (`report`); listeners registered with `listening`
receive every report of the thread that registered them, so a CLI's bar and a Dagster step's
log each see their own import. No Dagster here, and nothing is reported per line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Progress:
    """How far one stage of one batch group is."""

    stage: str  # load, validate, cluster, store
    done: int
    total: int
    unit: str  # "bytes" or "lines"
    seconds: float  # since the stage started

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        if not self.rate or self.total <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def describe(self) -> str:
        """`validate 400,000/1,000,000 lines (40%) 52,000 lines/s, 12 s left`."""
        if self.unit == "bytes":
            done, total, rate = self.done / 1e6, self.total / 1e6, f"{self.rate / 1e6:,.0f} MB/s"
            amount = f"{done:,.0f}/{total:,.0f} MB"
        else:
            amount, rate = f"{self.done:,}/{self.total:,} lines", f"{self.rate:,.0f} lines/s"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total > 0 else ""
        left = self.seconds_left
        eta = f", {left:,.0f} s left" if left is not None and self.done < self.total else ""
        return f"{self.stage} {amount}{share} {rate}{eta}"


Listener = Callable[[Progress], None]
_listeners = threading.local()


def _current() -> list[Listener]:
    if not hasattr(_listeners, "stack"):
        _listeners.stack = []
    stack: list[Listener] = _listeners.stack
    return stack


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """`listener` receives this thread's reports for the body's duration."""
    stack = _current()
    stack.append(listener)
    try:
        yield
    finally:
        stack.remove(listener)


class Stage:
    """One stage's counter: `advance` as work is done, each call reported to the listeners."""

    def __init__(self, stage: str, total: int, unit: str = "lines") -> None:
        self.stage, self.total, self.unit = stage, total, unit
        self.done = 0
        self.started = time.perf_counter()
        self._listeners = list(_current())

    def advance(self, amount: int) -> None:
        self.done += amount
        if not self._listeners:
            return
        report = Progress(
            self.stage, self.done, self.total, self.unit, time.perf_counter() - self.started
        )
        for listener in self._listeners:
            listener(report)


def throttled(listener: Listener, every_seconds: float) -> Listener:
    """`listener`, called at most once every `every_seconds` per stage name, and at the end of
    a stage it was shown unfinished (so a bar or a log it started is seen to end). Many short
    stages of one name (a thousand small files loaded in turn) are shown once a period, not
    once each: each report shown may be a Dagster event."""
    last: dict[str, float] = {}
    unfinished: set[str] = set()

    def call(report: Progress) -> None:
        now = time.monotonic()
        finished = report.total > 0 and report.done >= report.total
        due = report.stage not in last or now - last[report.stage] >= every_seconds
        if due or (finished and report.stage in unfinished):
            last[report.stage] = now
            if finished:
                unfinished.discard(report.stage)
            else:
                unfinished.add(report.stage)
            listener(report)

    return call


def to_terminal(stream: TextIO = sys.stderr) -> Listener:
    """A bar redrawn in place on a terminal; plain lines every 10 s anywhere else."""
    if not stream.isatty():
        return throttled(lambda report: print(report.describe(), file=stream, flush=True), 10.0)
    width = 30

    def draw(report: Progress) -> None:
        filled = int(width * report.done / report.total) if report.total > 0 else 0
        bar = "#" * filled + "." * (width - filled)
        end = "\n" if report.total > 0 and report.done >= report.total else ""
        stream.write(f"\r[{bar}] {report.describe()}\x1b[K{end}")
        stream.flush()

    return throttled(draw, 0.2)
