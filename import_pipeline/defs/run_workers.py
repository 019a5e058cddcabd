"""Which process runs a run, and whether it still lives.

Dagster's default run launcher (`dagster dev`) cannot tell that a run's worker is gone when
the process that launched it died too. A run killed with the whole `dagster dev` stays
STARTED for ever and holds its pool slot. So every run says who runs it, in two tags. The
worker tag (`run_id@host:pid:start`) is written when the run's resources are set up. The heartbeat
(seconds since the epoch) is written every `HEARTBEAT_SECONDS` while the run goes on. On the
worker's own host the process is looked up directly. The start time tells a reused pid from
the worker. Elsewhere a heartbeat older than `HEARTBEAT_TIMEOUT_SECONDS` means it is gone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

WORKER_TAG = "import_pipeline/worker"
#: The worker tag's value (after `run_id@`) once the run is over in its process.
ENDED = "ended"
HEARTBEAT_TAG = "import_pipeline/heartbeat"

HEARTBEAT_SECONDS = 15.0
#: Four heartbeats missed: a worker on another machine is taken as gone.
HEARTBEAT_TIMEOUT_SECONDS = 4 * HEARTBEAT_SECONDS
#: A STARTED run that has said nothing of its worker this long after it started is gone (its
#: worker died before its resources were set up).
SILENT_START_SECONDS = 120.0


def _stat(pid: int) -> list[str] | None:
    """The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and
    parentheses: split from its end), None when there is no such process (or no `/proc`)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux `/proc`), "" elsewhere or
    when there is no such process."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def this_worker(run_id: str) -> str:
    """The worker tag of run `run_id` run by this process: `run_id@host:pid:start`. The run
    id in it tells this run's worker from one a re-execution copied with its parent's tags."""
    pid = os.getpid()
    return f"{run_id}@{socket.gethostname()}:{pid}:{process_start(pid)}"


def _process_alive(pid: int, start: str) -> bool:
    if start and Path("/proc").is_dir():
        fields = _stat(pid)  # a zombie ("Z") has ended, only not been collected yet
        return fields is not None and fields[19] == start and fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Liveness:
    alive: bool
    why: str = ""


def worker_liveness(
    run_id: str,
    tags: Mapping[str, str],
    started_at: float | None,
    now: float,
    host: str | None = None,
) -> Liveness:
    """Whether the worker of STARTED run `run_id` (its `tags`, started at `started_at`) is
    alive, as seen from `host` (this machine's name unless given) at `now`."""
    owner, _, worker = tags.get(WORKER_TAG, "").rpartition("@")
    if owner != run_id:
        worker = ""  # none, or its parent's, copied by a re-execution
    if worker == ENDED:
        return Liveness(False, "its worker ended without recording its end")
    if not worker:
        if started_at is not None and now - started_at > SILENT_START_SECONDS:
            return Liveness(
                False, f"it started {now - started_at:.0f} s ago and no worker says it runs it"
            )
        return Liveness(True)
    heartbeat = float(tags.get(HEARTBEAT_TAG) or 0) or None
    worker_host, pid, start = worker.rsplit(":", 2)
    if worker_host == (host or socket.gethostname()):
        if _process_alive(int(pid), start):
            return Liveness(True)
        return Liveness(False, f"its worker process {pid} on {worker_host} is gone")
    last = heartbeat or started_at
    if last is not None and now - last > HEARTBEAT_TIMEOUT_SECONDS:
        return Liveness(
            False, f"its worker on {worker_host} has not been heard from for {now - last:.0f} s"
        )
    return Liveness(True)


def worker_known_alive(run: dg.DagsterRun, now: float) -> bool:
    """Whether the run names a worker of its own that is alive (not: nothing says it is gone)."""
    return run.tags.get(WORKER_TAG, "").startswith(f"{run.run_id}@") and (
        worker_liveness(run.run_id, run.tags, None, now).alive
    )


class Heartbeat:
    """Writes the worker tag now and the heartbeat tag every `HEARTBEAT_SECONDS` until
    stopped. A write that fails (the instance's disk full) is tried again next beat: the
    run itself decides what fails."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self._instance = instance
        self._run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)

    def start(self) -> None:
        self._write()
        self._thread.start()

    def stop(self) -> None:
        """The run is over in this process (its resources torn down): the worker says so, so
        that a process that lives on (`ingest`'s, a test's) is not taken for the run's."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self._instance.add_run_tags(self._run_id, {WORKER_TAG: f"{self._run_id}@{ENDED}"})
        except Exception:  # noqa: BLE001 - the run then ends as a worker gone would
            pass

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._write()

    def _write(self) -> None:
        # Both tags each beat: a first write that failed (the disk full) is made good.
        tags = {WORKER_TAG: this_worker(self._run_id), HEARTBEAT_TAG: f"{time.time():.0f}"}
        try:
            self._instance.add_run_tags(self._run_id, tags)
        except Exception:  # noqa: BLE001 - a missed beat is not the run's failure
            pass
