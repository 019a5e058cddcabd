"""The ops of a record run: find the pending batches, then per batch load → validate → cluster
→ resolve and store, then summarise the record. Each op is a thin call into `stages`."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import dagster as dg

from import_pipeline import associations, stages, store
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


def _mapping_key(index: int, name: str) -> str:
    return f"b{index:04d}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)[:60]


@dg.op(
    ins={"landing_zone": dg.In(dg.Nothing)},
    out={"batches": dg.DynamicOut(BatchToImport), "record": dg.Out(RecordRun)},
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
    for index, item in enumerate(to_import):
        yield dg.DynamicOutput(
            item, mapping_key=_mapping_key(index, item.batch.name), output_name="batches"
        )


@dg.op(tags={"kind": "polars"})
def load_batch(
    context: dg.OpExecutionContext, item: BatchToImport, pipeline: ImportPipelineResource
) -> stages.LoadedBatch:
    """Reads the batch file into Parquet chunks of physical lines (Polars)."""
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


@dg.op(tags={"kind": "polars"})
def validate_batch(
    context: dg.OpExecutionContext, loaded: stages.LoadedBatch
) -> stages.ValidatedBatch:
    """Vectorised validation; pydantic explains only the lines that fail the screen."""
    with _failing_with(loaded.name, physical_lines=int(loaded.stats.get("physical_lines", 0))):
        validated = stages.validate_batch(loaded)
    context.log.info(
        "batch %s: %d lines read, %d with errors, %d explained by pydantic, in %.2fs",
        loaded.name,
        validated.lines_read,
        validated.lines_with_errors,
        validated.slow_path_lines,
        validated.seconds,
    )
    return validated


@dg.op(tags={"kind": "polars"})
def cluster_batch(
    context: dg.OpExecutionContext, validated: stages.ValidatedBatch
) -> stages.ClusteredBatch:
    """Groups lines that share trusted identifiers: each cluster ends as one reference."""
    with _failing_with(validated.loaded.name, lines_read=validated.lines_read):
        clustered = stages.cluster_batch(validated)
    context.log.info("batch %s: %d clusters", validated.loaded.name, clustered.clusters)
    return clustered


@dg.op(
    pool=DUCKDB_POOL,
    tags={"kind": "duckdb"},
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5),
)
def resolve_and_store_batch(
    context: dg.OpExecutionContext,
    item: BatchToImport,
    clustered: stages.ClusteredBatch,
    pipeline: ImportPipelineResource,
) -> stages.StoredBatch:
    """Matches the clusters to the store and writes references and results in one transaction."""
    lines_read = clustered.validated.lines_read
    with _failing_with(item.batch.name, lines_read=lines_read), pipeline.store() as conn:
        stored = stages.store_batch(
            conn, clustered, item.strategy, ttl=pipeline.settings().unresolved_ttl
        )
    stages.discard_staging(clustered.validated.loaded.staging)
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
def import_batch(item: BatchToImport) -> stages.StoredBatch:
    """One batch file: load → validate → cluster → resolve and store."""
    return resolve_and_store_batch(item, cluster_batch(validate_batch(load_batch(item))))


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
