"""The ops of a record run: find the pending batches, then per group of batches load →
validate → cluster → resolve and store, then summarise the record. Each op is a thin call into
`stages`; a group is one file when files are large, many when they are small
(`stages.import_groups`)."""

import json
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from import_pipeline import associations, progress, stages, store
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.landing import BatchFile, is_valid_record_key, record_key_problem
from import_pipeline.models import CollisionStrategy
from import_pipeline.records import pending_batches, read_record

#: Every op that touches the DuckDB file: one at a time across all runs (dagster.yaml).
DUCKDB_POOL = "duckdb_writer"


class PendingBatchesConfig(dg.Config):
    """Which batches of the record to import."""

    batches: list[str] = []  # empty: every batch whose current content is not yet imported
    checksums: list[str] = []  # parallel to `batches`: what the sensor read ("" if unknown)


@dataclass(frozen=True)
class BatchToImport:
    batch: BatchFile
    batch_id: str
    strategy: CollisionStrategy


@dataclass(frozen=True)
class BatchGroup:
    """Batches imported by one step of each stage (see `stages.import_groups`)."""

    batches: tuple[BatchToImport, ...]

    @property
    def names(self) -> str:
        return ", ".join(b.batch.name for b in self.batches)


@dataclass(frozen=True)
class RecordRun:
    record_key: str
    strategy: CollisionStrategy
    batch_names: tuple[str, ...]
    started_at: float


@contextmanager
def _failing_with(batch: str, **counts: int) -> Iterator[None]:
    """Turns an unexpected error into a Failure that says which batch and how far it got."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        raise dg.Failure(
            description=f"batch {batch}: {type(exc).__name__}: {exc}",
            metadata={"batch": batch, **{k: dg.MetadataValue.int(v) for k, v in counts.items()}},
        ) from exc


def _progress_in_log(context: dg.OpExecutionContext) -> AbstractContextManager[None]:
    """The step's stages report their progress in the run's log, every 10 s and at their end."""
    return progress.listening(
        progress.throttled(lambda report: context.log.info("progress: %s", report.describe()), 10.0)
    )


def _mapping_key(index: int, group: BatchGroup) -> str:
    """`g0003_<first file>` plus `_and_N_more`: readable in the UI's step list."""
    key = f"g{index:04d}_" + re.sub(r"[^A-Za-z0-9_]", "_", group.batches[0].batch.name)[:60]
    return key + (f"_and_{len(group.batches) - 1}_more" if len(group.batches) > 1 else "")


@dg.op(
    ins={"landing_zone": dg.In(dg.Nothing)},
    out={"groups": dg.DynamicOut(BatchGroup), "record": dg.Out(RecordRun)},
    pool=DUCKDB_POOL,
    tags={"kind": "landing"},
)
def find_pending_batches(
    context: dg.OpExecutionContext,
    config: PendingBatchesConfig,
    pipeline: ImportPipelineResource,
):
    """Reads the record folder, writes the record to the store and marks the batches to import."""
    started_at = time.time()
    record_key = context.partition_key
    if not is_valid_record_key(record_key):
        raise dg.Failure(description=record_key_problem(record_key), allow_retries=False)
    landing = pipeline.landing_zone()
    folder = landing.record_folder(record_key)
    reading = read_record(landing, folder)
    with pipeline.store() as conn:
        store.upsert_record(
            conn, record_key, reading.record, problem=reading.problem, finalised=folder.finalised
        )
        if reading.record is None:
            raise dg.Failure(
                description=reading.problem,
                metadata={"record_key": record_key},
                allow_retries=False,
            )
        imported = store.imported_checksums(conn, record_key)
        known = dict(zip(config.batches, config.checksums, strict=False))
        pending = pending_batches(
            landing, folder, imported, only=set(config.batches) or None, known=known
        )
        checksums = {batch.name: checksum for batch, checksum in pending}
        to_import = [
            BatchToImport(
                batch=batch,
                batch_id=store.start_batch(conn, record_key, batch.name, batch.url, context.run_id),
                strategy=reading.record.collision_strategy,
            )
            for batch, _ in pending
        ]
    for ignored in folder.ignored:
        context.log.warning(ignored)
    # Every run is findable by record, batch and checksum on the Runs page, however launched.
    context.instance.add_run_tags(
        context.run_id,
        {
            "import_pipeline/record": record_key,
            "import_pipeline/batches": ",".join(b.batch.name for b in to_import)[:4000] or "-",
            "import_pipeline/checksums": ",".join(checksums[b.batch.name][:12] for b in to_import)[
                :4000
            ]
            or "-",
        },
    )
    context.log.info(
        "record %s: %d batch(es) to import, %d already imported",
        record_key,
        len(to_import),
        len(folder.batches) - len(to_import),
    )
    yield dg.Output(
        RecordRun(
            record_key=record_key,
            strategy=reading.record.collision_strategy,
            batch_names=tuple(b.batch.name for b in to_import),
            started_at=started_at,
        ),
        output_name="record",
    )
    groups = stages.import_groups([item.batch.size for item in to_import])
    for index, members in enumerate(groups):
        group = BatchGroup(batches=tuple(to_import[i] for i in members))
        yield dg.DynamicOutput(group, mapping_key=_mapping_key(index, group), output_name="groups")


@dg.op(tags={"kind": "polars"})
def load_batches(
    context: dg.OpExecutionContext, group: BatchGroup, pipeline: ImportPipelineResource
) -> list[stages.LoadedBatch]:
    """Reads each batch file of the group into Parquet chunks of physical lines (Polars)."""
    with _progress_in_log(context):
        return [_load_one(context, item, pipeline) for item in group.batches]


def _load_one(
    context: dg.OpExecutionContext, item: BatchToImport, pipeline: ImportPipelineResource
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
        )
    if loaded.unreadable:
        context.log.warning("batch %s cannot be read: %s", item.batch.name, loaded.unreadable)
    else:
        context.log.info(
            "batch %s: %d physical lines (%d blank) in %.2fs",
            item.batch.name,
            loaded.stats["physical_lines"],
            loaded.stats["blank_lines"],
            loaded.seconds,
        )
    return loaded


@dg.op(tags={"kind": "pydantic"})
def validate_batches(
    context: dg.OpExecutionContext, loaded: list[stages.LoadedBatch]
) -> list[stages.ValidatedBatch]:
    """Pydantic decides every line (on every core); a bad part fails alone."""
    names = ", ".join(b.name for b in loaded)
    physical_lines = sum(int(b.stats.get("physical_lines", 0)) for b in loaded)
    with _failing_with(names, physical_lines=physical_lines), _progress_in_log(context):
        validated_batches = stages.validate_batches(loaded)
    for validated in validated_batches:
        context.log.info(
            "batch %s: %d lines read, %d with errors, %d explained part by part, in %.2fs",
            validated.loaded.name,
            validated.lines_read,
            validated.lines_with_errors,
            validated.slow_path_lines,
            validated.seconds,
        )
    return validated_batches


@dg.op(tags={"kind": "polars"})
def cluster_batches(
    context: dg.OpExecutionContext, validated: list[stages.ValidatedBatch]
) -> list[stages.ClusteredBatch]:
    """Groups lines that share trusted identifiers: each cluster ends as one reference."""
    clustered_batches = []
    engine = store.scratch_engine()
    with _progress_in_log(context):
        lines = progress.Stage("cluster", sum(b.lines_read for b in validated))
        try:
            for batch in validated:
                with _failing_with(batch.loaded.name, lines_read=batch.lines_read):
                    clustered = stages.cluster_batch(batch, engine)
                context.log.info("batch %s: %d clusters", batch.loaded.name, clustered.clusters)
                clustered_batches.append(clustered)
                lines.advance(batch.lines_read)
        finally:
            engine.close()
    return clustered_batches


_STORED = "stored.json"


@dg.op(
    pool=DUCKDB_POOL,
    tags={"kind": "duckdb"},
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5),
)
def resolve_and_store_batches(
    context: dg.OpExecutionContext,
    group: BatchGroup,
    clustered: list[stages.ClusteredBatch],
    pipeline: ImportPipelineResource,
) -> list[stages.StoredBatch]:
    """Matches each batch's clusters to the store and writes its references and results in
    one transaction per batch. A batch that raises does not stop the others; a retry redoes
    only the batches not yet stored (each leaves `stored.json` in its staging folder)."""
    stored_batches: list[stages.StoredBatch] = []
    failures: dict[str, str] = {}
    with pipeline.store() as conn, _progress_in_log(context):
        lines = progress.Stage("store", sum(b.validated.lines_read for b in clustered))
        for item, batch in zip(group.batches, clustered, strict=True):
            try:
                stored_batches.append(_store_one(context, conn, item, batch, pipeline))
            except Exception as exc:
                context.log.exception("batch %s could not be stored", item.batch.name)
                failures[item.batch.name] = f"{type(exc).__name__}: {exc}"
            lines.advance(batch.validated.lines_read)
    if failures:
        raise dg.Failure(
            description="; ".join(f"batch {name}: {error}" for name, error in failures.items()),
            metadata={"failed_batches": ", ".join(failures), "stored_batches": len(stored_batches)},
        )
    for batch in clustered:
        stages.discard_staging(batch.validated.loaded.staging)
    return stored_batches


def _store_one(
    context: dg.OpExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    item: BatchToImport,
    batch: stages.ClusteredBatch,
    pipeline: ImportPipelineResource,
) -> stages.StoredBatch:
    marker = Path(batch.validated.loaded.staging) / _STORED
    if marker.exists():  # stored by an earlier attempt of this step
        return stages.StoredBatch(**json.loads(marker.read_text()))
    stored = stages.store_batch(conn, batch, item.strategy, ttl=pipeline.settings().unresolved_ttl)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(stored.as_dict()))
    context.log.info(
        "batch %s: %s — %s; %d references created, %d merged",
        stored.name,
        stored.status,
        ", ".join(f"{k} {v}" for k, v in stored.counts.items() if v),
        stored.references_created,
        stored.references_merged,
    )
    return stored


@dg.graph
def import_batch_group(group: BatchGroup) -> list[stages.StoredBatch]:
    """A group of batch files: load → validate → cluster → resolve and store."""
    return resolve_and_store_batches(group, cluster_batches(validate_batches(load_batches(group))))


@dg.op(pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def resolve_waiting_associations(
    context: dg.OpExecutionContext, pipeline: ImportPipelineResource
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
