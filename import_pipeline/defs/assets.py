"""Assets: the landing zone → `import_results` (partitioned by record) → the reference store."""

from typing import Any

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.ops import (
    DUCKDB_POOL,
    RecordRun,
    find_pending_batches,
    import_batch,
)
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.models import ImportResultStatus
from import_pipeline.stages import StoredBatch

landing_zone = dg.AssetSpec(
    "landing_zone",
    description="Record folders dropped by users: record.json plus batch files (.jsonl, .jsonl.gz).",
    group_name="import_pipeline",
    kinds={"file"},
)

reference_store = dg.AssetSpec(
    "reference_store",
    deps=["import_results"],
    description="The DuckDB reference store: references, their identifiers and enhancements. "
    "Written by every import_results run (one transaction per batch).",
    group_name="import_pipeline",
    kinds={"duckdb"},
)


def _record_metadata(summary: dict[str, Any], stored: list[StoredBatch]) -> dict[str, Any]:
    counts = summary["results"]
    metadata: dict[str, Any] = {
        status.value: dg.MetadataValue.int(int(counts.get(status.value, 0)))
        for status in ImportResultStatus
    }
    metadata.update(
        {
            "dagster/row_count": dg.MetadataValue.int(int(summary["total"])),
            "record_status": summary["record"]["status"],
            "batches": dg.MetadataValue.int(len(summary["batches"])),
            "batches_imported_this_run": dg.MetadataValue.int(len(stored)),
            "lines_read_this_run": dg.MetadataValue.int(sum(b.lines_read for b in stored)),
            "references_created": dg.MetadataValue.int(sum(b.references_created for b in stored)),
            "references_merged": dg.MetadataValue.int(sum(b.references_merged for b in stored)),
        }
    )
    return metadata


@dg.op(pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def summarise_record(
    context: dg.OpExecutionContext,
    record: RecordRun,
    stored: list[StoredBatch],
    pipeline: ImportPipelineResource,
) -> dg.Output[dict[str, Any]]:
    """The record's results after this run, as the asset's value and metadata."""
    with pipeline.store(read_only=True) as conn:
        summary = store.record_summary(conn, record.record_key)
        totals = store.table_counts(conn)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=reference_store.key,
            description=f"after importing record {record.record_key}",
            metadata={
                "references": dg.MetadataValue.int(totals["reference"]),
                "identifiers": dg.MetadataValue.int(totals["reference_identifier"]),
                "enhancements": dg.MetadataValue.int(totals["reference_enhancement"]),
                "import_results": dg.MetadataValue.int(totals["import_results"]),
            },
        )
    )
    return dg.Output(summary, metadata=_record_metadata(summary, stored))


@dg.graph_asset(
    partitions_def=import_records,
    ins={"landing_zone": dg.AssetIn(key=landing_zone.key, dagster_type=dg.Nothing)},
    group_name="import_pipeline",
    kinds={"polars", "duckdb"},
    description="One ImportResult per non-blank line of every batch of a record; one partition "
    "per import record. A run imports the record's batches that are new or changed.",
)
def import_results(landing_zone) -> dict[str, Any]:
    batches, record = find_pending_batches(landing_zone)
    stored = batches.map(import_batch)
    return summarise_record(record, stored.collect())
