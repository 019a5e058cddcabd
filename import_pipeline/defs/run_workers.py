"""Which process runs a run, and whether it still lives.

Dagster's default run launcher (`dagster dev`) cannot tell that a run's worker is gone when
the process that launched it died too. A run killed with the whole `dagster dev` stays
STARTED for ever and holds its pool slot. So every run says who runs it, in two tags. The
worker tag (`host:pid:start`) is written when the run's resources are set up. The heartbeat
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
from pydantic import PrivateAttr

from import_pipeline.defs import first_error
from import_pipeline.defs.resources import ImportPipelineResource

WORKER_TAG = "import_pipeline/worker"
HEARTBEAT_TAG = "import_pipeline/heartbeat"

HEARTBEAT_SECONDS = 15.0
#: Four heartbeats missed: a worker on another machine is taken as gone.
HEARTBEAT_TIMEOUT_SECONDS = 4 * HEARTBEAT_SECONDS
#: A STARTED run that has said nothing of its worker this long after it started is gone (its
#: worker died before its resources were set up).
SILENT_START_SECONDS = 120.0


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux `/proc`), "" elsewhere or
    when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.rsplit(")", 1)[1].split()[19]


def this_worker() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def _process_alive(pid: int, start: str) -> bool:
    if start and Path("/proc").is_dir():
        return process_start(pid) == start
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
    tags: Mapping[str, str], started_at: float | None, now: float, host: str | None = None
) -> Liveness:
    """Whether the worker of a STARTED run (its `tags`, started at `started_at`) is alive, as
    seen from `host` (this machine's name unless given) at `now`."""
    worker = tags.get(WORKER_TAG)
    heartbeat = float(tags.get(HEARTBEAT_TAG) or 0) or None
    if worker is None:
        if started_at is not None and now - started_at > SILENT_START_SECONDS:
            return Liveness(
                False, f"it started {now - started_at:.0f} s ago and no worker says it runs it"
            )
        return Liveness(True)
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
        self._write({WORKER_TAG: this_worker(), HEARTBEAT_TAG: f"{time.time():.0f}"})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._write({HEARTBEAT_TAG: f"{time.time():.0f}"})

    def _write(self, tags: dict[str, str]) -> None:
        try:
            self._instance.add_run_tags(self._run_id, tags)
        except Exception:  # noqa: BLE001 - a missed beat is not the run's failure
            pass


class RunWorker(dg.ConfigurableResource):
    """The process that runs a run: says who it is and beats (`Heartbeat`) from the moment
    the run's resources are set up to its end, and keeps its first error where a full disk
    still takes it (`first_error`). The first op of each job requires it, so that it is set
    up when the run starts."""

    pipeline: ImportPipelineResource  # where the run's staging folder is

    _heartbeat: Heartbeat | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.dagster_run is None or context.instance is None:
            return
        run_id = context.dagster_run.run_id
        self._heartbeat = Heartbeat(context.instance, run_id)
        self._heartbeat.start()
        first_error.keep_in(first_error.path_of(self.pipeline.settings().staging, run_id))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        first_error.keep_in(None)


#: The resource key of `RunWorker`.
RUN_WORKER = "run_worker"
