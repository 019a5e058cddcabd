"""How work is shared out: worker processes for the work that holds the GIL (splitting lines,
validating them), and consecutive items packed into bounded groups (steps, passes)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

#: Worker processes for the work that holds the GIL (splitting lines, validating them): one
#: per core of the machine the benchmarks and CI run on.
WORKER_PROCESSES = 2

#: How much less CPU priority the workers have than the step that started them: when runs
#: overlap, the serialised writer (resolve + store, one at a time across runs) is what every
#: run waits for, so it goes first and other runs' validation takes the cores it leaves.
WORKER_NICENESS = 10
#: The lowest priority there is (Linux: 19).
LOWEST_NICENESS = 19
#: How much lower each older run still going puts a run's workers (`niceness_behind`).
NICENESS_PER_OLDER_RUN = 3


def niceness_behind(older_runs: int) -> int:
    """The workers' niceness of a run behind `older_runs` runs still going: nice 10, 13, 16,
    19 get ~52, 27, 14 and 7% of a contended core, so the oldest goes first (`worker_pool`
    caps it at `LOWEST_NICENESS`)."""
    return WORKER_NICENESS + NICENESS_PER_OLDER_RUN * older_runs


class InThisProcess(Executor):
    """The executor of work too small to be worth a worker process: runs each call at once."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by `result()`, as a pool does
            future.set_exception(exc)
        return future


@contextmanager
def worker_pool(processes: int, niceness: int = WORKER_NICENESS) -> Iterator[Executor]:
    """`processes` worker processes, or this process for 0 or 1 (one worker would only add
    the hand-over), `niceness` below this one's CPU priority. Workers start from a fork server
    that has imported the data path, so each starts in milliseconds and never inherits the
    threads of a Dagster step."""
    if processes <= 1:
        yield InThisProcess()
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["import_pipeline.pipeline.stages"])
    niceness = max(0, min(niceness, LOWEST_NICENESS))
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=os.nice, initargs=(niceness,)
    ) as pool:
        yield pool


def pack_consecutive(
    sizes: list[int], max_size: int, max_items: int | None = None
) -> list[list[int]]:
    """The indexes of `sizes`, in order, packed into groups of consecutive items: a group
    closes before it would pass `max_size` (an item as big alone is a group of its own) or hold
    more than `max_items`."""
    groups: list[list[int]] = []
    group: list[int] = []
    group_size = 0
    for index, size in enumerate(sizes):
        full = max_items is not None and len(group) == max_items
        if group and (group_size + size > max_size or full):
            groups.append(group)
            group, group_size = [], 0
        group.append(index)
        group_size += size
    if group:
        groups.append(group)
    return groups
