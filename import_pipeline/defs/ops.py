"""The ops of a record run: find the pending batches, then per group of batches load →
validate → cluster → resolve and store, then summarise the record. Each op is a thin call into
`stages`; a group is one file when files are large, many when they are small
(`stages.import_groups`)."""

import re
import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import dagster as dg

from import_pipeline import store
from import_pipeline.defs import first_error
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.tags import run_tags
from import_pipeline.landing import record_key_problem
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import associations, progress, stages
from import_pipeline.pipeline.workers import niceness_behind

#: Every op that touches the DuckDB file: one at a time across all runs (dagster.yaml).
DUCKDB_POOL = "duckdb_writer"


#: Dagster's tag for a step's priority within its run (and its claim on a pool).
PRIORITY_TAG = "dagster/priority"

#: Step priorities. A run's executor takes the highest-priority step it can, so a group is
#: carried through to its store before the next group is loaded, and while the store step
#: waits for the writer pool the run loads and validates its next group. (Breadth-first,
#: every run would validate all its groups, then queue for the pool with nothing left to do
#: meanwhile.) Across runs the pool goes to the highest claim first: a run's first step
#: (finding its batches, short) so that a new run gets to its loading and validation, which
#: keep the cores busy while others store; then a run's last steps (summary, store counts,
#: duplicate decisions) before other runs' stores, so a run that is done importing ends and
#: frees its run slot for a queued one.
STEP_PRIORITIES = {"load": 1, "validate": 2, "cluster": 3, "store": 4, "finish": 5, "start": 6}


def step_tags(kind: str, step: str) -> dict[str, str]:
    """An op's tags: its kind, and its `STEP_PRIORITIES` entry as its priority."""
    return {"kind": kind, PRIORITY_TAG: str(STEP_PRIORITIES[step])}


class BatchVersionConfig(dg.Config):
    """One batch of the record, at the content its launcher saw."""

    name: str
    checksum: str = ""  # "" when the launcher did not read it: the run hashes the file


class PendingBatchesConfig(dg.Config):
    """Which batches of the record to import."""

    batches: list[BatchVersionConfig] = []  # empty: every batch whose content is not imported
    #: Import them even where their content is imported already (`reimport`): the results
    #: are made again, the store unchanged where the lines are.
    again: bool = False


@dataclass(frozen=True)
class BatchGroup:
    """Batches imported by one step of each stage (see `stages.import_groups`)."""

    batches: tuple[stages.BatchToImport, ...]


@dataclass(frozen=True)
class RecordRun:
    record_key: str
    started_at: float


@contextmanager
def _failing_with(batch: str, **counts: int) -> Iterator[None]:
    """Turns an unexpected error into a Failure that says which batch and how far it got."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        first_error.remember(exc)
        raise dg.Failure(
            description=f"batch {batch}: {type(exc).__name__}: {exc}",
            metadata={"batch": batch, **{k: dg.MetadataValue.int(v) for k, v in counts.items()}},
        ) from exc


def _progress_in_log(context: dg.OpExecutionContext) -> AbstractContextManager[None]:
    """The step's stages report their progress in the run's log, every 10 s and at their end."""
    return progress.listening(
        progress.throttled(lambda report: context.log.info("progress: %s", report.describe()), 10.0)
    )


def _log_batches(context: dg.OpExecutionContext, what: str, lines: list[str]) -> None:
    """One message of one line per batch of the group: a step of a hundred files logs one
    event, not a hundred (each event is a write to the instance's event log)."""
    if lines:
        context.log.info(f"{what}:\n" + "\n".join(lines) if len(lines) > 1 else lines[0])


def _mapping_key(index: int, group: BatchGroup) -> str:
    """`g0003_<first file>` plus `_and_N_more`: readable in the UI's step list."""
    key = f"g{index:04d}_" + re.sub(r"[^A-Za-z0-9_]", "_", group.batches[0].batch.name)[:60]
    return key + (f"_and_{len(group.batches) - 1}_more" if len(group.batches) > 1 else "")


@dg.op(
    ins={"landing_zone": dg.In(dg.Nothing)},
    out={"groups": dg.DynamicOut(BatchGroup), "record": dg.Out(RecordRun)},
    pool=DUCKDB_POOL,
    tags=step_tags("landing", "start"),
)
def find_pending_batches(
    context: dg.OpExecutionContext,
    config: PendingBatchesConfig,
    pipeline: ImportPipelineResource,
) -> Iterator[dg.Output[RecordRun] | dg.DynamicOutput[BatchGroup]]:
    """Reads the record folder, writes the record to the store and marks the batches to import."""
    started_at = time.time()
    record_key = context.partition_key
    if problem := record_key_problem(record_key):
        raise dg.Failure(description=problem, allow_retries=False)
    started = stages.start_record(
        pipeline.store,
        pipeline.landing_zone(),
        record_key,
        [BatchVersion(b.name, b.checksum) for b in config.batches],
        context.run_id,
        again=config.again,
    )
    if started.problem is not None:
        raise dg.Failure(
            description=started.problem, metadata={"record_key": record_key}, allow_retries=False
        )
    for ignored in started.folder.ignored:
        context.log.warning(ignored)
    versions = [
        BatchVersion(b.batch.name, started.checksums[b.batch.name]) for b in started.batches
    ]
    context.instance.add_run_tags(context.run_id, run_tags(record_key, versions))
    context.log.info(
        "record %s: %d batch(es) to import, %d already imported",
        record_key,
        len(started.batches),
        len(started.folder.batches) - len(started.batches),
    )
    yield dg.Output(RecordRun(record_key, started_at), output_name="record")
    groups = stages.import_groups([item.batch.size for item in started.batches])
    for index, members in enumerate(groups):
        group = BatchGroup(batches=tuple(started.batches[i] for i in members))
        yield dg.DynamicOutput(group, mapping_key=_mapping_key(index, group), output_name="groups")


@dg.op(tags=step_tags("polars", "load"))
def load_batches(
    context: dg.OpExecutionContext, group: BatchGroup, pipeline: ImportPipelineResource
) -> list[stages.LoadedBatch]:
    """Reads each batch file of the group into Parquet chunks of physical lines (Polars)."""
    with _progress_in_log(context):
        loaded = [_load_one(context, item, pipeline) for item in group.batches]
    _log_batches(
        context,
        f"{len(loaded)} batches loaded",
        [
            f"batch {b.name}: {b.stats['physical_lines']} physical lines "
            f"({b.stats['blank_lines']} blank) in {b.seconds:.2f}s"
            for b in loaded
            if not b.skipped
        ],
    )
    return loaded


def _load_one(
    context: dg.OpExecutionContext, item: stages.BatchToImport, pipeline: ImportPipelineResource
) -> stages.LoadedBatch:
    settings = pipeline.settings()
    with _failing_with(item.batch.name, bytes_in_file=item.batch.size):
        loaded = stages.load_batch(
            pipeline.landing_zone(),
            item.batch,
            batch_id=item.batch_id,
            staging=stages.staging_dir(
                settings, context.run_id, item.batch.record_key, item.batch.name
            ),
            settings=settings,
            expected_checksum=item.checksum,
            run_id=context.run_id,
            reading=item.reading,
        )
    if loaded.unreadable:
        context.log.warning("batch %s cannot be read: %s", item.batch.name, loaded.unreadable)
    if loaded.changed:
        context.log.warning("batch %s: %s", item.batch.name, loaded.changed)
    return loaded


def _validation_niceness(context: dg.OpExecutionContext) -> int:
    """`validation_niceness` of this run among the runs going on."""
    running = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    own = next((r for r in running if r.dagster_run.run_id == context.run_id), None)
    started = own.start_time if own is not None and own.start_time else time.time()
    return validation_niceness(started, [r.start_time for r in running])


def validation_niceness(started: float, running_started: list[float | None]) -> int:
    """The CPU priority of a run's validation workers (the run started at `started`), below
    that of each older run still going (`running_started`): runs validating at once share
    the cores oldest first, so the first record dropped is imported first and the runs'
    serialised stores (the writer pool) spread out, instead of every run validating at the
    same pace and then queueing for the writer together while the cores wait. The writer
    itself is never niced."""
    older = sum(1 for other in running_started if other is not None and other < started)
    return niceness_behind(older)


@dg.op(tags=step_tags("pydantic", "validate"))
def validate_batches(
    context: dg.OpExecutionContext, loaded: list[stages.LoadedBatch]
) -> list[stages.ValidatedBatch]:
    """Pydantic decides every line (on every core); a bad part fails alone."""
    names = ", ".join(b.name for b in loaded)
    physical_lines = sum(int(b.stats.get("physical_lines", 0)) for b in loaded)
    with _failing_with(names, physical_lines=physical_lines), _progress_in_log(context):
        validated_batches = stages.validate_batches(loaded, _validation_niceness(context))
    _log_batches(
        context,
        f"{len(validated_batches)} batches validated",
        [
            f"batch {b.loaded.name}: {b.lines_read} lines read, {b.lines_with_errors} with "
            f"errors, {b.slow_path_lines} explained part by part, in {b.seconds:.2f}s"
            for b in validated_batches
        ],
    )
    return validated_batches


@dg.op(tags=step_tags("polars", "cluster"))
def cluster_batches(
    context: dg.OpExecutionContext, validated: list[stages.ValidatedBatch]
) -> list[stages.ClusteredBatch]:
    """Groups lines that share trusted identifiers: each cluster ends as one reference."""
    names = ", ".join(b.loaded.name for b in validated)
    lines_read = sum(b.lines_read for b in validated)
    with _failing_with(names, lines_read=lines_read), _progress_in_log(context):
        lines = progress.Stage("cluster", lines_read)
        clustered_batches = stages.cluster_batches(validated)
        lines.advance(lines_read)
    _log_batches(
        context,
        f"{len(clustered_batches)} batches clustered",
        [f"batch {b.validated.loaded.name}: {b.clusters} clusters" for b in clustered_batches],
    )
    return clustered_batches


@dg.op(
    pool=DUCKDB_POOL,
    tags=step_tags("duckdb", "store"),
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5),
)
def resolve_batches(
    context: dg.OpExecutionContext,
    group: BatchGroup,
    clustered: list[stages.ClusteredBatch],
    pipeline: ImportPipelineResource,
) -> list[stages.ResolvedBatch]:
    """Matches each batch's clusters to the store and writes its references and results, as
    one after another would, in as few transactions as that allows (`stages.resolve_group`).
    A batch that raises does not stop the others; a retry redoes only the batches not yet
    stored."""
    resolved_batches: list[stages.ResolvedBatch] = []
    failures: dict[str, str] = {}
    with pipeline.store() as conn, _progress_in_log(context):
        lines = progress.Stage("store", sum(b.validated.lines_read for b in clustered))
        strategy = group.batches[0].strategy  # one record, one strategy
        for index, outcome in stages.resolve_group(
            conn, clustered, strategy, ttl=pipeline.settings().unresolved_ttl
        ):
            name = group.batches[index].batch.name
            if isinstance(outcome, Exception):
                first_error.remember(outcome)
                context.log.error(
                    "batch %s could not be stored:\n%s",
                    name,
                    "".join(traceback.format_exception(outcome)),
                )
                failures[name] = f"{type(outcome).__name__}: {outcome}"
            else:
                resolved_batches.append(outcome)
            lines.advance(clustered[index].validated.lines_read)
    _log_batches(
        context,
        f"{len(resolved_batches)} batches stored",
        [_resolved_line(b) for b in resolved_batches],
    )
    if failures:
        raise dg.Failure(
            description="; ".join(f"batch {name}: {error}" for name, error in failures.items()),
            metadata={
                "failed_batches": ", ".join(failures),
                "stored_batches": len(resolved_batches),
            },
        )
    for batch in clustered:
        stages.discard_staging(batch.validated.loaded.staging)
    return resolved_batches


def _resolved_line(resolved: stages.ResolvedBatch) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in resolved.counts.items() if v)
    return (
        f"batch {resolved.name}: {resolved.status} — {counts}; "
        f"{resolved.references_created} references created, {resolved.references_merged} merged"
    )


@dg.graph
def import_batch_group(group: BatchGroup) -> list[stages.ResolvedBatch]:
    """A group of batch files: load → validate → cluster → resolve and store."""
    return resolve_batches(group, cluster_batches(validate_batches(load_batches(group))))


@dg.op(pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def resolve_waiting_associations(
    context: dg.OpExecutionContext,
    pipeline: ImportPipelineResource,
) -> dg.Output[dict]:
    """Links waiting associations whose targets arrived; expires those past the TTL."""
    settings = pipeline.settings()
    with pipeline.store() as conn, store.transaction(conn):
        outcome = associations.refresh_associations(
            conn, now=datetime.now(UTC), ttl=settings.unresolved_ttl
        )
    context.log.info(
        "associations: %d linked, %d expired, %d still waiting; %d results moved",
        outcome.linked,
        outcome.expired,
        outcome.waiting,
        outcome.results_changed,
    )
    return dg.Output(
        asdict(outcome),
        metadata={k: dg.MetadataValue.int(v) for k, v in asdict(outcome).items()},
    )
