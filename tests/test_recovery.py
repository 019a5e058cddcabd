"""Runs that end without finishing their batches: what passes and what would fail again, a
worker found gone, ended runs settled (no batch left started, no pool slot held), retries with
back-off, staging removed, and a sensor that cannot work backing off. Real Dagster instance,
real store, real processes."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.test_utils import create_run_for_test

from import_pipeline import store
from import_pipeline.defs import backoff, build_defs, first_error, recovery
from import_pipeline.defs.backoff import backing_off
from import_pipeline.defs.jobs import import_record_job, run_config_for
from import_pipeline.defs.recovery import (
    RecoveryTags,
    build_run_recovery_sensor,
    retry_request,
    settle_canceled_runs,
)
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.run_workers import (
    HEARTBEAT_TAG,
    SILENT_START_SECONDS,
    WORKER_TAG,
    process_start,
    this_worker,
    worker_liveness,
)
from import_pipeline.defs.tags import RunTags
from import_pipeline.domain.recovery import (
    MAX_RETRY_SECONDS,
    WORKER_GONE,
    decide_retry,
    retry_delay,
    transient_reason,
)
from import_pipeline.errors import StoreBusy
from import_pipeline.landing.records import BatchVersion
from import_pipeline.settings import Settings

from .conftest import write_batch, write_record

POOL = "duckdb_writer"


@pytest.fixture(autouse=True)
def _no_back_off_left_by_another_test():
    backoff._back_offs.clear()
    yield
    backoff._back_offs.clear()


def _chained(cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("batch b.jsonl: the store step failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded"),
        (MemoryError(), "out of memory"),
        (
            duckdb.IOException('IO Error: Could not write file "x.wal": No space left on device'),
            "no space left on device",
        ),
        (sqlite3.OperationalError("database or disk is full"), "no space left on device"),
        (duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate"), "out of memory"),
        (
            StoreBusy("the reference store x is held by another process (an import is writing)"),
            "the store was held by another writer",
        ),
        (_chained(OSError(errno.ENOSPC, "No space left on device")), "no space left on device"),
        (ValueError("invalid literal"), None),
        (FileNotFoundError(errno.ENOENT, "No such file"), None),
        (KeyError("identifiers"), None),
        (_chained(ValueError("bad")), None),
    ],
)
def test_a_failure_that_passes_is_told_from_one_that_would_fail_again(error, reason) -> None:
    assert transient_reason(error) == reason


def test_retries_wait_twice_as_long_each_time_up_to_a_bound() -> None:
    assert [retry_delay(attempt, 30) for attempt in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20, 30) == MAX_RETRY_SECONDS


@pytest.mark.parametrize(
    ("attempt", "transient", "canceled", "retry", "ending"),
    [
        (1, "no space left on device", False, True, ""),
        (3, "the run's worker died", False, True, ""),
        (4, "no space left on device", False, False, "failed 4 times (no space left on device)"),
        (1, None, False, False, "not retried: it would fail again"),
        (1, "the run's worker died", True, False, "not retried: the run was canceled"),
    ],
)
def test_a_run_is_retried_only_for_what_passes_and_only_so_often(
    attempt, transient, canceled, retry, ending
) -> None:
    decision = decide_retry(
        attempt=attempt, attempts=4, cause="run r failed", transient=transient,
        canceled=canceled, first_seconds=10,
    )  # fmt: skip
    assert decision.retry is retry
    if retry:
        assert decision.attempt == attempt + 1
        assert decision.delay == retry_delay(attempt, 10)
        assert decision.describe(4).endswith(f"(attempt {attempt + 1} of 4)")
    else:
        assert decision.describe(4).endswith(ending)


def _dead_worker(run_id: str) -> str:
    """The worker tag of run `run_id`, run by a process that has ended."""
    child = subprocess.Popen(["sleep", "30"])
    worker = f"{run_id}@{os.uname().nodename}:{child.pid}:{process_start(child.pid)}"
    child.kill()
    child.wait()
    return worker


def test_a_worker_is_alive_exactly_while_its_process_is() -> None:
    now = time.time()
    assert worker_liveness("r", {WORKER_TAG: this_worker("r")}, now, now).alive
    gone = worker_liveness("r", {WORKER_TAG: _dead_worker("r")}, now, now)
    assert not gone.alive and "is gone" in gone.why
    # A pid now used by another process (its start time differs) is not the worker.
    host, pid, start = this_worker("r").rsplit(":", 2)
    assert not worker_liveness("r", {WORKER_TAG: f"{host}:{pid}:{int(start) - 1}"}, now, now).alive
    # A zombie (ended, not yet collected by its parent) is not alive either.
    zombie = subprocess.Popen(["true"])
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    tag = f"r@{os.uname().nodename}:{zombie.pid}:{process_start(zombie.pid)}"
    assert not worker_liveness("r", {WORKER_TAG: tag}, now, now).alive
    zombie.wait()


def test_a_worker_tag_copied_from_another_run_is_not_this_runs() -> None:
    """A re-execution copies its parent's tags, the parent's (dead) worker among them."""
    now = time.time()
    copied = {WORKER_TAG: _dead_worker("parent")}
    assert worker_liveness("child", copied, now - 10, now).alive  # still setting up
    assert not worker_liveness("child", copied, now - SILENT_START_SECONDS - 1, now).alive


def test_a_worker_elsewhere_is_known_by_its_heartbeat_and_a_silent_run_by_its_age() -> None:
    now = time.time()
    elsewhere = {WORKER_TAG: "r@another-machine:12:34"}
    assert worker_liveness(
        "r", {**elsewhere, HEARTBEAT_TAG: f"{now - 20:.0f}"}, now - 600, now
    ).alive
    stale = worker_liveness("r", {**elsewhere, HEARTBEAT_TAG: f"{now - 200:.0f}"}, now - 600, now)
    assert not stale.alive and "has not been heard from" in stale.why
    assert worker_liveness("r", {}, now - 10, now).alive  # its resources are being set up
    assert not worker_liveness("r", {}, now - SILENT_START_SECONDS - 1, now).alive


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        yield inst


def _resource(settings: Settings, **changes: object) -> ImportPipelineResource:
    return ImportPipelineResource.from_settings(Settings(**{**settings.__dict__, **changes}))


def _started_run(
    instance, settings, landing, key: str, *, alive: bool, **tags: str
) -> dg.DagsterRun:
    """A run of `key` STARTED by a worker (`alive` or ended), holding the writer pool, its
    batch `started`."""
    write_record(landing, key)
    write_batch(
        landing,
        key,
        "b.jsonl",
        '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1/x"}]}\n',
    )
    run_id = str(uuid.uuid4())
    worker = this_worker(run_id) if alive else _dead_worker(run_id)
    run = create_run_for_test(
        instance,
        run_id=run_id,
        job_name=import_record_job.name,
        status=dg.DagsterRunStatus.STARTED,
        run_config=run_config_for([BatchVersion("b.jsonl")]),
        tags={"dagster/partition": key, "import_pipeline/record": key, WORKER_TAG: worker, **tags},
    )
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    claim = instance.event_log_storage.claim_concurrency_slot(
        POOL, run.run_id, "find_pending_batches"
    )
    assert claim.is_claimed
    with store.connect(settings.store) as conn:
        store.upsert_record(conn, key, None)
        store.start_batch(conn, key, "b.jsonl", "file:///b.jsonl", run.run_id)
    (settings.staging / run.run_id / key).mkdir(parents=True)
    return run


def _tick(instance, pipeline: ImportPipelineResource, cursor: str | None = None):
    sensor = build_run_recovery_sensor()
    with dg.build_sensor_context(
        instance=instance, resources={"pipeline": pipeline}, cursor=cursor
    ) as context:
        return sensor(context)


def _batch(settings: Settings, key: str) -> dict:
    with store.connect(settings.store, read_only=True) as conn:
        (batch,) = store.record_summary(conn, key)["batches"]
    return batch


def test_a_run_whose_worker_died_is_failed_freed_and_retried_after_its_back_off(
    settings, landing, instance
) -> None:
    run = _started_run(instance, settings, landing, "rec", alive=False)
    assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    pipeline = _resource(settings, retry_seconds=2.0)
    first = _tick(instance, pipeline)
    ended = instance.get_run_by_id(run.run_id)
    assert ended.status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert not (settings.staging / run.run_id).exists()
    batch = _batch(settings, "rec")
    assert batch["status"] == "failed"
    assert WORKER_GONE in batch["failure_details"]
    assert batch["failure_details"].endswith("retried in 2 s (attempt 2 of 4)")
    assert ended.tags[RecoveryTags.RETRY] == "pending"
    assert not first.run_requests  # the back-off has not passed
    time.sleep(2.1)
    (request,) = _tick(instance, pipeline).run_requests
    assert request.run_key == f"retry:{run.run_id}"
    assert request.partition_key == "rec"
    assert request.run_config == run.run_config
    assert request.tags[RecoveryTags.ATTEMPT] == "2"
    assert request.tags[RecoveryTags.RETRY_OF] == run.run_id
    assert WORKER_TAG not in request.tags
    assert request.tags[RunTags.RETRIED_RUNS] == run.run_id
    # Pending until a run that retries it exists (a request can be lost with its tick; the
    # run key keeps it to one), then launched.
    assert _tick(instance, pipeline).run_requests[0].run_key == request.run_key
    assert instance.get_run_by_id(run.run_id).tags[RecoveryTags.RETRY] == "pending"
    create_run_for_test(instance, job_name=import_record_job.name, tags=request.tags)
    assert not _tick(instance, pipeline).run_requests
    assert instance.get_run_by_id(run.run_id).tags[RecoveryTags.RETRY] == "launched"


def test_a_retry_of_a_retry_names_every_run_it_retries() -> None:
    first = create_run_for_test(
        dg.DagsterInstance.ephemeral(),
        job_name=import_record_job.name,
        tags={"dagster/partition": "rec"},
    )
    second = first.with_tags({**first.tags, **retry_request(first).tags})
    third_tags = retry_request(second).tags
    assert third_tags[RunTags.RETRIED_RUNS] == f"{first.run_id},{second.run_id}"
    assert third_tags[RecoveryTags.ATTEMPT] == "3"


def test_a_retry_decides_the_duplicates_of_what_the_run_it_retries_stored(
    settings, landing, instance, destiny
) -> None:
    """The run died after its batches were stored, before its duplicate decisions: the retry
    imports nothing again, but decides the references those batches made."""
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", (destiny / "eppi_import.jsonl").read_bytes())
    instance.add_dynamic_partitions("import_records", ["rec"])
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    died = job.execute_in_process(partition_key="rec", instance=instance)
    decisions = "SELECT reference_id, decision FROM duplicate_decisions ORDER BY 1"
    with store.connect(settings.store) as conn:
        decided = conn.execute(decisions).fetchall()
        conn.execute("DELETE FROM duplicate_decisions")  # as if it died before deciding them
    assert len(decided) == 4
    retry = job.execute_in_process(
        partition_key="rec",
        instance=instance,
        tags=retry_request(instance.get_run_by_id(died.run_id)).tags,
    )
    assert retry.success
    with store.connect(settings.store, read_only=True) as conn:
        assert conn.execute(decisions).fetchall() == decided


def test_a_run_whose_worker_still_lives_is_settled_once_it_ends(
    settings, landing, instance, monkeypatch
) -> None:
    """A cancel that timed out leaves the worker running: its batches are not marked and no
    retry writes beside it, until the worker ends or the grace has passed."""
    run = _started_run(instance, settings, landing, "rec", alive=True)
    instance.report_run_canceled(run, message="canceled; the worker did not stop in time")
    _tick(instance, _resource(settings))
    assert _batch(settings, "rec")["status"] == "started"
    monkeypatch.setattr(recovery, "_WORKER_GRACE_SECONDS", 0.0)
    _tick(instance, _resource(settings))
    assert _batch(settings, "rec")["status"] == "failed"


def test_a_re_execution_is_not_taken_for_the_run_it_copies(settings, landing, instance) -> None:
    """*Re-execute* copies its parent's tags: the parent's settlement, retry and dead worker
    are not the copy's."""
    parent = _started_run(instance, settings, landing, "rec", alive=False)
    _tick(instance, _resource(settings, retry_seconds=3600.0))  # failed, settled, retry pending
    copied = {**instance.get_run_by_id(parent.run_id).tags, "dagster/parent_run_id": parent.run_id}
    child = create_run_for_test(
        instance, job_name=import_record_job.name, status=dg.DagsterRunStatus.STARTED, tags=copied
    )
    with store.connect(settings.store) as conn:
        store.start_batch(conn, "rec", "b.jsonl", "file:///b.jsonl", child.run_id)
    _tick(instance, _resource(settings, retry_seconds=3600.0))
    assert instance.get_run_by_id(child.run_id).status == dg.DagsterRunStatus.STARTED  # alive
    instance.report_run_failed(child, message="IOException: No space left on device")
    _tick(instance, _resource(settings, retry_seconds=3600.0))
    tags = instance.get_run_by_id(child.run_id).tags
    assert tags[RecoveryTags.SETTLED] == child.run_id
    assert _batch(settings, "rec")["failure_details"].startswith(f"run {child.run_id} failed")


def test_a_run_that_names_no_record_is_not_retried(settings, landing, instance) -> None:
    run = _started_run(instance, settings, landing, "rec", alive=False)
    instance.add_run_tags(run.run_id, {"dagster/partition": ""})  # as a run launched by hand
    untagged = create_run_for_test(
        instance, job_name=import_record_job.name, status=dg.DagsterRunStatus.STARTED,
        tags={k: v for k, v in run.tags.items() if k != "dagster/partition"},
    )  # fmt: skip
    instance.report_run_failed(untagged, message="IOException: No space left on device")
    pipeline = _resource(settings, retry_seconds=0.0)
    _tick(instance, pipeline)
    result = _tick(instance, pipeline)
    assert not result.run_requests
    for failed in (run, untagged):
        tags = instance.get_run_by_id(failed.run_id).tags
        assert tags[RecoveryTags.RETRY] == "no" and "names no record" in tags[RecoveryTags.OUTCOME]


def test_a_run_alive_is_left_alone(settings, landing, instance) -> None:
    run = _started_run(instance, settings, landing, "rec", alive=True)
    _tick(instance, _resource(settings))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert _batch(settings, "rec")["status"] == "started"
    assert (settings.staging / run.run_id).exists()


def test_a_failure_that_passes_ends_failed_with_its_reason_after_the_last_attempt(
    settings, landing, instance
) -> None:
    before = _tick(instance, _resource(settings, retry_seconds=0.0))
    run = _started_run(
        instance, settings, landing, "rec", alive=False, **{RecoveryTags.ATTEMPT: "4"}
    )
    instance.report_run_failed(run, message="IOException: No space left on device")
    # The next tick finds the run that ended since the last (its cursor).
    _tick(instance, _resource(settings, retry_seconds=0.0), cursor=before.cursor)
    batch = _batch(settings, "rec")
    assert batch["status"] == "failed"
    assert batch["failure_details"].endswith(
        "not retried: failed 4 times (no space left on device)"
    )
    assert instance.get_run_by_id(run.run_id).tags[RecoveryTags.RETRY] == "no"
    assert not _tick(instance, _resource(settings, retry_seconds=0.0)).run_requests


def test_a_canceled_run_leaves_no_batch_started_and_is_not_retried(
    settings, landing, instance
) -> None:
    run = _started_run(instance, settings, landing, "rec", alive=False)
    instance.report_run_canceled(run, message="canceled by a person")
    (event,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_CANCELED)
    with dg.build_run_status_sensor_context(
        sensor_name=settle_canceled_runs.name,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        dagster_event=event.dagster_event,
        resources={"pipeline": _resource(settings)},
    ) as context:
        settle_canceled_runs(context)
    batch = _batch(settings, "rec")
    assert batch["status"] == "failed"
    assert (
        batch["failure_details"]
        == f"run {run.run_id} was canceled; not retried: the run was canceled"
    )
    assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert not _tick(instance, _resource(settings, retry_seconds=0.0)).run_requests


def test_a_run_says_which_worker_runs_it(settings, landing, instance) -> None:
    write_record(landing, "rec")
    write_batch(
        landing,
        "rec",
        "b.jsonl",
        '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1/x"}]}\n',
    )
    instance.add_dynamic_partitions("import_records", ["rec"])
    result = (
        build_defs(settings)
        .resolve_job_def(import_record_job.name)
        .execute_in_process(partition_key="rec", instance=instance)
    )
    tags = instance.get_run_by_id(result.run_id).tags
    # It beat while it ran, and says it ended: this process, which lives on, is not its worker.
    assert tags[WORKER_TAG] == f"{result.run_id}@ended"
    assert not worker_liveness(result.run_id, tags, None, time.time()).alive
    assert abs(float(tags[HEARTBEAT_TAG]) - time.time()) < 120


def test_a_sensor_that_cannot_work_says_so_once_and_waits(instance) -> None:
    calls: list[int] = []

    def full() -> dg.SensorResult:
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    with dg.build_sensor_context(instance=instance) as context:
        first = backing_off("full-disk-test", context, full)
        second = backing_off("full-disk-test", context, full)
    assert isinstance(first, dg.SkipReason) and "No space left on device" in str(first.skip_message)
    assert isinstance(second, dg.SkipReason) and "trying again in" in str(second.skip_message)
    assert len(calls) == 1  # the second tick did not try


def test_a_sensor_with_a_bug_fails_its_tick_then_waits(instance) -> None:
    def broken() -> dg.SensorResult:
        raise ValueError("a bug")

    with dg.build_sensor_context(instance=instance) as context:
        with pytest.raises(ValueError):
            backing_off("bug-test", context, broken)
        assert isinstance(backing_off("bug-test", context, broken), dg.SkipReason)


def test_staging_of_ended_runs_is_removed(settings, landing, instance) -> None:
    ended = create_run_for_test(
        instance, job_name=import_record_job.name, status=dg.DagsterRunStatus.SUCCESS
    )
    going = _started_run(instance, settings, landing, "rec", alive=True)
    unknown = settings.staging / "not-a-run-of-this-instance"
    for folder in (settings.staging / ended.run_id, unknown):
        folder.mkdir(parents=True)
    _tick(instance, _resource(settings))
    assert not (settings.staging / ended.run_id).exists()
    assert (settings.staging / going.run_id).exists()
    assert unknown.exists()
    assert Path(settings.staging).is_dir()


def test_a_runs_first_error_is_kept_in_bytes_allocated_when_it_started(tmp_path: Path) -> None:
    path = first_error.path_of(tmp_path, "run-1")
    first_error.keep_in(path)
    assert path.stat().st_size == 4096  # allocated: writing it needs no new space
    first_error.remember(OSError(errno.ENOSPC, "No space left on device"))
    first_error.remember(sqlite3.OperationalError("disk I/O error"))  # its consequence
    assert first_error.read(tmp_path, "run-1") == "OSError: [Errno 28] No space left on device"
    assert path.stat().st_size == 4096
    first_error.keep_in(None)  # the run ended: the next run of this process starts afresh
    first_error.remember(ValueError("another run's"))
    assert first_error.read(tmp_path, "run-1").startswith("OSError")
    assert first_error.read(tmp_path, "run-2") is None
