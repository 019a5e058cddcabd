"""The landing-zone sensor: new records become partitions, new or changed stable batches runs.

The cursor remembers, per batch file, the (size, version) seen on the last tick (a file is
taken only once it is unchanged across two ticks) and the (size, version, checksum) last
launched, so a tick reads file contents only for files that changed. A record's stable
batches wait while others of the same record are still arriving (at most `SETTLE_SECONDS`),
so that files dropped together are imported by one run; their checksums, read once, wait in
the cursor with them.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from import_pipeline import store
from import_pipeline.defs import dagster_fixes
from import_pipeline.defs.assets import import_results
from import_pipeline.defs.backoff import backing_off
from import_pipeline.defs.jobs import import_record_job, run_request
from import_pipeline.defs.ops import find_pending_batches
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.tags import RunTags
from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.landing import RecordFolder
from import_pipeline.landing.records import BatchVersion, PlannedRecord, plan_record_runs

# The sensor never waits long for the store: the run writes the record anyway.
_STORE_WAIT_SECONDS = 2.0


#: How long a record's stable batches wait for its other batches, still arriving, to be stable
#: too: files dropped together are imported by one run, unless they keep coming that long.
SETTLE_SECONDS = 60.0


@dataclass
class LandingCursor:
    # "key/name" -> [size, version] as last seen, plus the checksum once read while it held
    seen: dict[str, list] = field(default_factory=dict)
    taken: dict[str, list] = field(default_factory=dict)  # "key/name" -> [size, version, checksum]
    problems: dict[str, str] = field(default_factory=dict)  # what was last reported, per place
    settling: dict[str, float] = field(default_factory=dict)  # record -> held since (epoch s)

    @classmethod
    def parse(cls, text: str | None) -> "LandingCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            seen=data.get("seen", {}),
            taken=data.get("taken", {}),
            problems=data.get("problems", {}),
            settling=data.get("settling", {}),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "seen": self.seen,
                "taken": self.taken,
                "problems": self.problems,
                "settling": self.settling,
            }
        )


#: The sensor's clock (seconds since the epoch); a test's to set.
_clock = time.time


@dataclass
class _Tick:
    cursor: LandingCursor
    now: float  # `_clock()` when the tick began
    interval: float  # until the next tick
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    waiting: int = 0
    held: int = 0


def _unchanged_since_last_tick(ident: str, observed: list, previous: LandingCursor) -> bool:
    seen = previous.seen.get(ident)
    return seen is not None and seen[:2] == observed


def _checksum_seen(ident: str, observed: list, previous: LandingCursor) -> str | None:
    """The checksum read on an earlier tick, while the batch was held, if it is unchanged."""
    if not _unchanged_since_last_tick(ident, observed, previous):
        return None
    seen = previous.seen[ident]
    return seen[2] if len(seen) > 2 else None


def _launched_at(ident: str, observed: list, previous: LandingCursor) -> bool:
    """Already launched at this size and version: its content need not be read again."""
    taken = previous.taken.get(ident)
    return taken is not None and taken[:2] == observed


def _to_read(folder: RecordFolder, previous: LandingCursor) -> list[str]:
    """The paths of this folder's batches whose content must be read: stable since the last
    tick, not launched at this size and version, and not read already while held."""
    paths = []
    for batch in folder.batches:
        ident, observed = f"{folder.key}/{batch.name}", [batch.size, batch.version]
        if (
            _unchanged_since_last_tick(ident, observed, previous)
            and not _launched_at(ident, observed, previous)
            and not _checksum_seen(ident, observed, previous)
        ):
            paths.append(batch.path)
    return paths


def _ready_batches(
    folder: RecordFolder,
    previous: LandingCursor,
    tick: _Tick,
    checksums: dict[str, str | None],
) -> list[BatchVersion]:
    """The versions of this folder's batches that are stable and not yet launched
    (`checksums`: the content of those `_to_read` named, read already). While other batches
    of the folder are still arriving, they are held (for at most `SETTLE_SECONDS`): none."""
    ready: dict[str, BatchVersion] = {}
    arriving = 0
    for batch in folder.batches:
        ident, observed = f"{folder.key}/{batch.name}", [batch.size, batch.version]
        tick.cursor.seen[ident] = observed
        taken = previous.taken.get(ident)
        if taken:
            tick.cursor.taken[ident] = taken
        if not _unchanged_since_last_tick(ident, observed, previous):
            arriving += 1  # new or still changing: look again next tick
            continue
        if _launched_at(ident, observed, previous):
            continue
        checksum = _checksum_seen(ident, observed, previous) or checksums.get(batch.path)
        if checksum is None:
            tick.problems[ident] = f"batch {ident} disappeared or changed before it could be read"
            continue
        if taken and taken[2] == checksum:
            tick.cursor.taken[ident] = [*observed, checksum]
            continue  # touched, same content: the same batch is not imported again
        tick.cursor.seen[ident] = [*observed, checksum]
        ready[ident] = BatchVersion(batch.name, checksum)
    tick.waiting += arriving
    # (Never later than now: a clock set back must not stretch the wait.)
    held_since = min(previous.settling.get(folder.key, tick.now), tick.now)
    # Held only if the next tick still falls within the wait: never past it by an interval.
    if ready and arriving and tick.now + tick.interval - held_since <= SETTLE_SECONDS:
        tick.cursor.settling[folder.key] = held_since
        tick.held += len(ready)
        return []
    for ident in ready:
        tick.cursor.taken[ident] = list(tick.cursor.seen[ident])  # [size, version, checksum]
    return list(ready.values())


#: The statuses of a run that has not ended yet.
_UNENDED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _versions_of(run: dg.DagsterRun) -> set[BatchVersion]:
    """The batch versions a record run was asked to import (`jobs.run_config_for`'s config)."""
    run_config: dict[str, Any] = dict(run.run_config)
    ops = run_config.get("ops", {}).get(import_results.node_def.name, {}).get("ops", {})
    config = ops.get(find_pending_batches.name, {}).get("config", {})
    return {BatchVersion(b["name"], b.get("checksum") or "") for b in config.get("batches", [])}


def _imported_or_under_way(
    context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource, keys: list[str]
) -> set[tuple[str, BatchVersion]]:
    """The batch versions of these records that the store has imported, or that a run not
    ended yet imports, whoever launched it (`import-pipeline ingest` runs the job itself)."""
    found: set[tuple[str, BatchVersion]] = set()
    unended = dg.RunsFilter(statuses=_UNENDED, tags={RunTags.RECORD: keys})
    for run in context.instance.get_runs(filters=unended):
        found |= {(run.tags[RunTags.RECORD], version) for version in _versions_of(run)}
    try:
        with pipeline.store(read_only=True, wait_seconds=_STORE_WAIT_SECONDS) as conn:
            for key in keys:
                imported = store.imported_checksums(conn, key)
                found |= {(key, BatchVersion(name, c)) for name, c in imported.items()}
    except NotFound:
        pass  # no store yet: nothing is imported
    except StoreBusy:
        context.log.info("the store is busy: a batch imported meanwhile may get a run of its own")
    return found


def _not_imported_elsewhere(
    context: dg.SensorEvaluationContext,
    pipeline: ImportPipelineResource,
    chosen: dict[str, list[BatchVersion]],
) -> dict[str, list[BatchVersion]]:
    """`chosen` without the versions imported, or being imported, by a run this sensor did
    not launch (`ingest`'s): the cursor knows only its own runs. They stay taken."""
    keys = sorted(key for key, versions in chosen.items() if versions)
    if not keys:
        return chosen
    elsewhere = _imported_or_under_way(context, pipeline, keys)
    kept = {
        key: [v for v in versions if (key, v) not in elsewhere] for key, versions in chosen.items()
    }
    for key in keys:
        if skipped := len(chosen[key]) - len(kept[key]):
            context.log.info(
                f"record {key}: {skipped} batch(es) imported or being imported by another "
                "run (an ingest?): not launched again"
            )
    return kept


def _landing_zone_tick(
    context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource, interval: float
) -> dg.SensorResult:
    landing = pipeline.landing_zone()
    previous = LandingCursor.parse(context.cursor)
    tick = _Tick(cursor=LandingCursor(), now=_clock(), interval=interval)
    scan = landing.scan()
    for problem in scan.refused:
        tick.problems[problem] = problem
    known = set(import_records.get_partition_keys(dynamic_partitions_store=context.instance))

    def ready(folders: list[RecordFolder]) -> dict[str, list[BatchVersion]]:
        # The contents to hash are read together: on object storage each read is a round trip.
        checksums = landing.checksums([path for f in folders for path in _to_read(f, previous)])
        chosen = {f.key: _ready_batches(f, previous, tick, checksums) for f in folders}
        return _not_imported_elsewhere(context, pipeline, chosen)

    planned = plan_record_runs(landing, scan.records, ready)
    new_partitions = [
        p.folder.key for p in planned if p.reading.record is not None and p.folder.key not in known
    ]
    for record in planned:
        for ignored in record.folder.ignored:
            tick.problems[ignored] = ignored
        if record.reading.record is None:
            tick.problems[record.folder.key] = record.reading.problem or "invalid record"
        if record.plan is not None:
            # The content checksums are in the key: a changed file gets a new run, the same never.
            run_key = f"{record.plan.record_key}:{record.plan.identity}"
            tick.run_requests.append(run_request(record.plan, run_key=run_key, source="sensor"))
    for ident in sorted(previous.seen.keys() - tick.cursor.seen.keys()):
        context.log.info("batch %s is no longer in the landing zone", ident)
    _write_records(context, pipeline, planned, tick, previous)
    return _result(context, tick, previous, new_partitions)


def _result(
    context: dg.SensorEvaluationContext,
    tick: _Tick,
    previous: LandingCursor,
    new_partitions: list[str],
) -> dg.SensorResult:
    """The tick's runs, new partitions and cursor; its refusals logged once each."""
    new_problems = {k: v for k, v in tick.problems.items() if previous.problems.get(k) != v}
    for problem in new_problems.values():
        context.log.warning(problem)
    tick.cursor.problems = tick.problems
    summary = (
        f"{len(tick.run_requests)} run(s) requested, {len(new_partitions)} new record(s), "
        f"{tick.waiting} batch(es) waiting to be stable"
    )
    if tick.held:
        summary += f", {tick.held} stable batch(es) held until their record's others are stable"
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


def build_landing_zone_sensor(minimum_interval_seconds: int) -> dg.SensorDefinition:
    """The landing-zone sensor, looking every `minimum_interval_seconds`."""

    @dg.sensor(
        name="landing_zone_sensor",
        job=import_record_job,
        minimum_interval_seconds=dagster_fixes.sensor_minimum_interval(minimum_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Watches the landing zone: registers each valid record folder as an "
        "import_records partition and launches a run for its new or changed, stable batches.",
    )
    def landing_zone_sensor(
        context: dg.SensorEvaluationContext, pipeline: ImportPipelineResource
    ) -> dg.SensorResult | dg.SkipReason:
        return backing_off(
            "landing_zone_sensor",
            context,
            lambda: _landing_zone_tick(context, pipeline, minimum_interval_seconds),
        )

    return landing_zone_sensor


def _write_records(
    context: dg.SensorEvaluationContext,
    pipeline: ImportPipelineResource,
    planned: list[PlannedRecord],
    tick: _Tick,
    previous: LandingCursor,
) -> None:
    """Best effort: the store learns of newly refused and newly launched records now (the run
    writes its record anyway), without taking the store's lock on every quiet tick."""
    launched = {r.partition_key for r in tick.run_requests}
    changed = [
        (p.folder, p.reading)
        for p in planned
        if p.folder.key in launched
        or (p.reading.record is None and previous.problems.get(p.folder.key) != p.reading.problem)
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
