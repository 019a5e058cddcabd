"""Runs that end without finishing their batches, however they end: none of their batches is
left `started`, none of their pool slots stays held, and their batches are imported again
when what stopped them passes (`domain.recovery` says when).

- `settle_ended_run` settles one ended run. It decides the retry and marks the batches the run
  left `started` as `failed`, with the reason and the retry to come. It frees the run's pool
  slots, removes its staging folder, and records all this on the run as tags
  (`RecoveryTags`), so the Runs page shows it.
- Run status sensors for FAILURE and for CANCELED settle a run as soon as it ends. They are
  Dagster's own way to react to a run's end. But their cursor moves past an evaluation that
  raised, so a store write that fails there (the store busy, the disk full) would be lost.
- `run_recovery`, every few seconds, is the net under them. It fails the STARTED runs whose
  worker is gone (`run_workers`), settles every ended run that is not settled yet, launches
  the retries that are due, and removes the staging folders of runs that ended. When it
  cannot work (the disk full), it says so once and looks again later, not on every tick.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from import_pipeline import store
from import_pipeline.defs import dagster_fixes, first_error
from import_pipeline.defs.backoff import backing_off
from import_pipeline.defs.jobs import import_record_job, resolve_associations
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.run_workers import (
    HEARTBEAT_TAG,
    WORKER_TAG,
    worker_known_alive,
    worker_liveness,
)
from import_pipeline.defs.tags import RunTags, retried_runs
from import_pipeline.domain.recovery import (
    WORKER_GONE,
    RetryDecision,
    decide_retry,
    transient_reason_in_text,
)
from import_pipeline.settings import Settings

#: How long the store may be waited for while settling a run (the failed run's own writer is
#: gone; another run may hold the store for a wave).
_STORE_WAIT_SECONDS = 30.0
#: How far back `run_recovery` looks for ended runs not settled yet.
_LOOKBACK_SECONDS = 7 * 24 * 3600.0
#: How far apart the clocks of the processes that write runs may be.
_CLOCKS_APART_SECONDS = 60.0
#: How long after a run ended its worker may go on before the run is settled all the same
#: (a cancel that timed out leaves the worker running; it must not write beside a retry).
_WORKER_GRACE_SECONDS = 300.0
#: Dagster's failure reasons that mean the run's worker died, not its work.
_WORKER_DIED = {"UNEXPECTED_TERMINATION", "RUN_WORKER_RESTART", "START_TIMEOUT"}
_FAILURE_REASON_TAG = "dagster/failure_reason"
_PARTITION_TAG = "dagster/partition"
_ENDED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class RecoveryTags:
    """What recovery writes on runs."""

    #: The attempt a run is (1 when absent).
    ATTEMPT = "import_pipeline/attempt"
    #: On a retry: the run it retries.
    RETRY_OF = "import_pipeline/retry_of"
    #: On an ended run, once settled: its own run id. (A re-execution copies its parent's
    #: tags: a run is settled only if this names it.)
    SETTLED = "import_pipeline/settled"
    #: On an ended run, once settled: "pending" (a retry is due at RETRY_AT), "launched", "no".
    RETRY = "import_pipeline/retry"
    RETRY_AT = "import_pipeline/retry_at"
    #: On an ended run, once settled: what happened and what comes next, as a person reads it.
    OUTCOME = "import_pipeline/outcome"


#: The tags a retry does not inherit from the run it retries.
_NOT_INHERITED = {
    RecoveryTags.SETTLED,
    WORKER_TAG,
    HEARTBEAT_TAG,
    RecoveryTags.RETRY,
    RecoveryTags.RETRY_AT,
    RecoveryTags.OUTCOME,
    RecoveryTags.ATTEMPT,
    RecoveryTags.RETRY_OF,
    RunTags.SOURCE,
    RunTags.RETRIED_RUNS,
}


@dataclass(frozen=True)
class _Failure:
    shown: str  # what a person reads: the description, or the error's own line
    full: str  # everything known of it, its causes included: where what passes is found


#: How Dagster's code server says that a run's worker died, in an engine event.
_WORKER_DEATH = "[DagsterApiServer] Run execution process"


def _failures(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[_Failure]:
    """The run's steps' failures, then the run's own, in the order they happened; a death of
    its worker that Dagster saw comes first."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.RUN_FAILURE,
            dg.DagsterEventType.ENGINE_EVENT,
        },
    ).records
    failures: list[_Failure] = []
    for record in records:
        event, message = record.event_log_entry.dagster_event, record.event_log_entry.message
        if event is not None and event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            if message.startswith(_WORKER_DEATH):  # its first sentence: the rest is advice
                failures.insert(0, _Failure(message.split(". ")[0] + ".", message))
            continue
        if event is not None and event.is_step_failure:
            data = event.step_failure_data
            error = data.error
            described = data.user_failure_data.description if data.user_failure_data else None
            shown = described or (error.message.strip() if error else "") or message
            failures.append(_Failure(shown, error.to_string() if error else shown))
        else:
            failures.append(_Failure(message, message))
    return failures


def _decision(
    instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings
) -> RetryDecision:
    canceled = run.status == dg.DagsterRunStatus.CANCELED
    failures = [] if canceled else _failures(instance, run)
    cause = f"run {run.run_id} was canceled" if canceled else f"run {run.run_id} failed"
    if failures:
        cause += ": " + failures[0].shown.strip().splitlines()[0][:500]
    transient = next((r for f in failures if (r := transient_reason_in_text(f.full))), None)
    if transient is None and run.tags.get(_FAILURE_REASON_TAG) in _WORKER_DIED:
        transient = "the run's worker died"
    return decide_retry(
        attempt=int(run.tags.get(RecoveryTags.ATTEMPT, "1")),
        attempts=settings.run_attempts,
        cause=cause,
        transient=transient,
        canceled=canceled,
        first_seconds=settings.retry_seconds,
    )


def _remove_staging(settings: Settings, run_id: str) -> None:
    shutil.rmtree(settings.staging / run_id, ignore_errors=True)


def settle_ended_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, pipeline: ImportPipelineResource
) -> RetryDecision | None:
    """Settles a run of `import_record` that ended FAILURE or CANCELED (see the module's
    docstring); None when it was settled already, or when its worker still lives (a cancel
    that timed out: it is settled once the worker ends, or `_WORKER_GRACE_SECONDS` after the
    run ended). Raises what stopped the store's write: the run is then settled by a later
    call."""
    record = instance.get_run_record_by_id(run.run_id)  # as it is now, not as it was listed
    if record is None or _settled(record.dagster_run):
        return None
    run = record.dagster_run
    ended = record.end_time or time.time()
    if time.time() - ended < _WORKER_GRACE_SECONDS and worker_known_alive(run, time.time()):
        return None
    settings = pipeline.settings()
    decision = _decision(instance, run, settings)
    outcome = decision.describe(settings.run_attempts)
    with pipeline.store(wait_seconds=_STORE_WAIT_SECONDS) as conn:
        store.fail_batches_of_run(conn, run.run_id, outcome[:2000])
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    _remove_staging(settings, run.run_id)
    tags = {
        RecoveryTags.SETTLED: run.run_id,
        RecoveryTags.RETRY: "pending" if decision.retry else "no",
        RecoveryTags.OUTCOME: outcome[:4000],
    }
    if decision.retry:
        tags[RecoveryTags.RETRY_AT] = f"{time.time() + decision.delay:.3f}"
    instance.add_run_tags(run.run_id, tags)
    return decision


def _settled(run: dg.DagsterRun) -> bool:
    return run.tags.get(RecoveryTags.SETTLED) == run.run_id


def _settle_as_it_ends(
    context: dg.RunStatusSensorContext, pipeline: ImportPipelineResource
) -> None:
    """A run status sensor's body: settles the run now if it can; `run_recovery` does it
    later if the store cannot take it now."""
    run = context.dagster_run
    try:
        decision = settle_ended_run(context.instance, run, pipeline)
    except Exception as exc:  # noqa: BLE001 - run_recovery settles it later
        context.log.warning("run %s not settled yet (%s); run_recovery will", run.run_id, exc)
        return
    if decision is not None:
        context.log.info(
            "run %s: %s", run.run_id, decision.describe(pipeline.settings().run_attempts)
        )


def _settling_sensor(
    name: str, status: dg.DagsterRunStatus, description: str
) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name=name,
        run_status=status,
        monitored_jobs=[import_record_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=5,
        description=description,
    )
    def settle(context: dg.RunStatusSensorContext, pipeline: ImportPipelineResource) -> None:
        _settle_as_it_ends(context, pipeline)

    return settle


settle_failed_runs = _settling_sensor(
    "settle_failed_runs",
    dg.DagsterRunStatus.FAILURE,
    "When an import run fails: its batches left `started` become `failed` with the reason, "
    "its pool slots are freed, and a failure that passes is retried (see run_recovery).",
)
settle_canceled_runs = _settling_sensor(
    "settle_canceled_runs",
    dg.DagsterRunStatus.CANCELED,
    "When an import run is canceled: its batches left `started` become `failed` with the "
    "reason, and its pool slots are freed. A canceled run is not retried.",
)


def fail_runs_whose_worker_is_gone(
    instance: dg.DagsterInstance, now: float, staging: Path
) -> list[str]:
    """Fails every STARTED run of this project's jobs whose worker is gone, with the first
    error its worker kept (`first_error`, in `staging`), and frees its pool slots; their ids."""
    failed = []
    for record in instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    ):
        run = record.dagster_run
        if run.job_name not in (import_record_job.name, resolve_associations.name):
            continue
        liveness = worker_liveness(run.run_id, run.tags, record.start_time, now)
        if liveness.alive:
            continue
        now_run = instance.get_run_by_id(run.run_id)
        if now_run is None or now_run.status != dg.DagsterRunStatus.STARTED:
            continue  # it ended meanwhile, by itself
        message = f"{WORKER_GONE}: {liveness.why}"
        if kept := first_error.read(staging, run.run_id):
            message += f"; its first error: {kept[:1000]}"
        instance.report_run_failed(run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


def _ended_unsettled(instance: dg.DagsterInstance, since: float) -> list[dg.RunRecord]:
    """The import runs that ended (or changed) after `since` and are not settled yet."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=import_record_job.name,
            statuses=_ENDED,
            updated_after=datetime.fromtimestamp(since, UTC),
        )
    )
    return [r for r in records if not _settled(r.dagster_run)]


def retry_request(run: dg.DagsterRun) -> dg.RunRequest:
    """The run that imports again what `run` left: its record, its batch versions, its tags,
    one attempt further."""
    tags = {
        k: v
        for k, v in run.tags.items()
        if k.startswith("import_pipeline/") and k not in _NOT_INHERITED
    }
    tags[RecoveryTags.ATTEMPT] = str(int(run.tags.get(RecoveryTags.ATTEMPT, "1")) + 1)
    tags[RecoveryTags.RETRY_OF] = run.run_id
    tags[RunTags.RETRIED_RUNS] = ",".join([*retried_runs(run), run.run_id])
    tags[RunTags.SOURCE] = "retry"
    return dg.RunRequest(
        run_key=f"retry:{run.run_id}",
        partition_key=run.tags[_PARTITION_TAG],
        run_config=run.run_config,
        tags=tags,
    )


def _due_retries(instance: dg.DagsterInstance, now: float) -> list[dg.RunRequest]:
    """The retries that are due. A run stays `pending` until a run that retries it exists
    (its request may not reach Dagster if the tick fails after this); the run key
    `retry:<run id>` keeps it to one."""
    requests = []
    for record in instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=import_record_job.name, statuses=_ENDED, tags={RecoveryTags.RETRY: "pending"}
        )
    ):
        run = record.dagster_run
        if not _settled(run) or float(run.tags.get(RecoveryTags.RETRY_AT, "0")) > now:
            continue
        if instance.get_run_ids(dg.RunsFilter(tags={RecoveryTags.RETRY_OF: run.run_id}), limit=1):
            instance.add_run_tags(run.run_id, {RecoveryTags.RETRY: "launched"})
        elif not run.tags.get(_PARTITION_TAG):
            instance.add_run_tags(
                run.run_id,
                {RecoveryTags.RETRY: "no", RecoveryTags.OUTCOME: "not retried: it names no record"},
            )
        else:
            requests.append(retry_request(run))
    return requests


def _sweep_staging(instance: dg.DagsterInstance, settings: Settings) -> int:
    """Removes the staging folders of runs that ended; how many."""
    if not settings.staging.is_dir():
        return 0
    removed = 0
    for folder in settings.staging.iterdir():
        run = instance.get_run_by_id(folder.name)
        if run is not None and run.is_finished:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _recover(
    context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource
) -> dg.SensorResult:
    instance, now, settings = context.instance, time.time(), pipeline.settings()
    gone = fail_runs_whose_worker_is_gone(instance, now, settings.staging)
    for run_id in gone:
        context.log.warning("run %s failed: %s", run_id, WORKER_GONE)
    # Runs that ended since the cursor (the last tick, or the oldest run it could not
    # settle), less a margin for clocks apart; on the first tick, the last week's.
    since = (
        float(context.cursor) - _CLOCKS_APART_SECONDS if context.cursor else now - _LOOKBACK_SECONDS
    )
    settled, unsettled = 0, []
    for record in _ended_unsettled(instance, since):
        try:
            settled += settle_ended_run(instance, record.dagster_run, pipeline) is not None
        except Exception as exc:  # noqa: BLE001 - the others are settled; this one next tick
            context.log.warning("run %s not settled yet: %s", record.dagster_run.run_id, exc)
            unsettled.append(record.update_timestamp.timestamp())
    requests = _due_retries(instance, now)
    swept = _sweep_staging(instance, settings)
    summary = (
        f"{len(gone)} run(s) failed for a worker gone, {settled} ended run(s) settled, "
        f"{len(requests)} retried, {swept} staging folder(s) removed"
    )
    # Next tick: what ended since now, or since the oldest run not settled yet.
    cursor = min([now, *unsettled])
    return dg.SensorResult(
        run_requests=requests, skip_reason=None if requests else summary, cursor=f"{cursor:.3f}"
    )


def build_run_recovery_sensor(minimum_interval_seconds: int = 5) -> dg.SensorDefinition:
    @dg.sensor(
        name="run_recovery",
        job=import_record_job,
        minimum_interval_seconds=dagster_fixes.sensor_minimum_interval(minimum_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Fails import runs whose worker is gone (killed, or its machine), settles "
        "every ended import run (no batch left started, no pool slot held), relaunches those "
        "whose failure passes with back-off (IMPORT_PIPELINE_RUN_ATTEMPTS, "
        "IMPORT_PIPELINE_RETRY_SECONDS), and removes the staging folders of ended runs.",
    )
    def run_recovery(
        context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource
    ) -> dg.SensorResult | dg.SkipReason:
        return backing_off("run_recovery", context, lambda: _recover(context, pipeline))

    return run_recovery
