"""The landing-zone sensor: new records become partitions, new or changed stable batches runs.

The cursor remembers, per batch file, the (size, version) seen on the last tick (a file is
taken only once it is unchanged across two ticks) and the (size, version, checksum) last
launched, so a tick reads file contents only for files that changed.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.jobs import import_record_job, run_config_for
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.errors import StoreBusy
from import_pipeline.landing import LandingZone, RecordFolder
from import_pipeline.records import read_record

SENSOR_INTERVAL_SECONDS = int(os.environ.get("IMPORT_PIPELINE_SENSOR_INTERVAL", "5"))
# The sensor never waits long for the store: the run writes the record anyway.
_STORE_WAIT_SECONDS = 2.0


@dataclass
class LandingCursor:
    seen: dict[str, list] = field(default_factory=dict)  # "key/name" -> [size, version]
    taken: dict[str, list] = field(default_factory=dict)  # "key/name" -> [size, version, checksum]
    problems: dict[str, str] = field(default_factory=dict)  # what was last reported, per place

    @classmethod
    def parse(cls, text: str | None) -> "LandingCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            seen=data.get("seen", {}),
            taken=data.get("taken", {}),
            problems=data.get("problems", {}),
        )

    def dump(self) -> str:
        return json.dumps({"seen": self.seen, "taken": self.taken, "problems": self.problems})


@dataclass
class _Tick:
    cursor: LandingCursor
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    waiting: int = 0


def _ready_batches(
    landing: LandingZone, folder: RecordFolder, previous: LandingCursor, tick: _Tick
) -> list[tuple[str, str]]:
    """The (name, checksum) of this folder's batches that are stable and not yet launched."""
    ready = []
    for batch in folder.batches:
        ident = f"{folder.key}/{batch.name}"
        observed = [batch.size, batch.version]
        tick.cursor.seen[ident] = observed
        taken = previous.taken.get(ident)
        if taken:
            tick.cursor.taken[ident] = taken
        if previous.seen.get(ident) != observed:
            tick.waiting += 1  # new or still changing: look again next tick
            continue
        if taken and taken[:2] == observed:
            continue
        try:
            checksum = landing.checksum(batch.path)
        except FileNotFoundError:
            tick.problems[ident] = f"batch {ident} disappeared before it could be read"
            continue
        tick.cursor.taken[ident] = [*observed, checksum]
        if taken and taken[2] == checksum:
            continue  # touched, same content: the same batch is not imported again
        ready.append((batch.name, checksum))
    return ready


def _run_request(record_key: str, ready: list[tuple[str, str]]) -> dg.RunRequest:
    identity = "\n".join(f"{name}:{checksum}" for name, checksum in sorted(ready))
    names = [name for name, _ in sorted(ready)]
    return dg.RunRequest(
        # The content checksums are in the key: a changed file gets a new run, the same never.
        run_key=f"{record_key}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}",
        partition_key=record_key,
        run_config=run_config_for(names, dict(ready)),
        tags={
            "import_pipeline/record": record_key,
            "import_pipeline/batches": ",".join(names)[:4000],
            "import_pipeline/checksums": ",".join(c[:12] for _, c in sorted(ready))[:4000],
        },
    )


@dg.sensor(
    job=import_record_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the landing zone: registers each valid record folder as an "
    "import_records partition and launches a run for its new or changed, stable batches.",
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource
) -> dg.SensorResult:
    landing = pipeline.landing_zone()
    previous = LandingCursor.parse(context.cursor)
    tick = _Tick(cursor=LandingCursor())
    scan = landing.scan()
    for problem in scan.refused:
        tick.problems[problem] = problem
    known = set(import_records.get_partition_keys(dynamic_partitions_store=context.instance))
    new_partitions: list[str] = []
    records_to_write = []
    for folder in scan.records:
        for ignored in folder.ignored:
            tick.problems[ignored] = ignored
        reading = read_record(landing, folder)
        records_to_write.append((folder, reading))
        if reading.record is None:
            tick.problems[folder.key] = reading.problem or "invalid record"
            continue
        if folder.key not in known:
            new_partitions.append(folder.key)
        ready = _ready_batches(landing, folder, previous, tick)
        if ready:
            tick.run_requests.append(_run_request(folder.key, ready))
    for ident in sorted(previous.seen.keys() - tick.cursor.seen.keys()):
        context.log.info("batch %s is no longer in the landing zone", ident)

    _write_records(context, pipeline, records_to_write, tick, previous)
    new_problems = {k: v for k, v in tick.problems.items() if previous.problems.get(k) != v}
    for problem in new_problems.values():
        context.log.warning(problem)
    tick.cursor.problems = tick.problems
    summary = (
        f"{len(tick.run_requests)} run(s) requested, {len(new_partitions)} new record(s), "
        f"{tick.waiting} batch(es) waiting to be stable"
    )
    if tick.problems:
        summary += "; refused: " + " | ".join(sorted(tick.problems.values()))[:2000]
    return dg.SensorResult(
        run_requests=tick.run_requests,
        dynamic_partitions_requests=[import_records.build_add_request(new_partitions)]
        if new_partitions
        else None,
        cursor=tick.cursor.dump(),
        skip_reason=None if tick.run_requests else summary,
    )


def _write_records(
    context: dg.SensorEvaluationContext,
    pipeline: ImportPipelineResource,
    records: list,
    tick: _Tick,
    previous: LandingCursor,
) -> None:
    """Best effort: the store learns of newly refused and newly launched records now (the run
    writes its record anyway), without taking the store's lock on every quiet tick."""
    launched = {r.partition_key for r in tick.run_requests}
    changed = [
        (folder, reading)
        for folder, reading in records
        if folder.key in launched
        or (reading.record is None and previous.problems.get(folder.key) != reading.problem)
    ]
    if not changed:
        return
    try:
        with pipeline.store(wait_seconds=_STORE_WAIT_SECONDS) as conn:
            for folder, reading in changed:
                store.upsert_record(
                    conn,
                    folder.key,
                    reading.record,
                    problem=reading.problem,
                    finalised=folder.finalised,
                )
    except StoreBusy:
        context.log.info("the store is busy; records will be written by their runs")


@dg.run_failure_sensor(
    monitored_jobs=[import_record_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When an import run dies, marks the batches it left `started` as `failed` in "
    "the store, with the run id and error, so the CLI and the UI agree.",
)
def mark_batches_of_failed_runs(
    context: dg.RunFailureSensorContext, pipeline: ImportPipelineResource
) -> None:
    run_id = context.dagster_run.run_id
    error = context.failure_event.message or "the run failed"
    reason = f"run {run_id} failed: {error}"[:2000]
    with pipeline.store(wait_seconds=60) as conn:
        failed = store.fail_batches_of_run(conn, run_id, reason)
    context.log.info(
        "marked %d batch(es) failed for run %s: %s", len(failed), run_id, ", ".join(failed)
    )
