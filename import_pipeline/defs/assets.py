"""Assets: the landing zone → `import_results` → `reference_store`, both partitioned by record
and materialised by each record run."""

import time
from typing import Any

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.failing_lines import failures_command, first_failing, markdown, texts_of
from import_pipeline.defs.ops import (
    DUCKDB_POOL,
    PRIORITY_TAG,
    STEP_PRIORITIES,
    RecordRun,
    find_pending_batches,
    import_batch_group,
    step_tags,
)
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.results_plot import as_markdown_image, results_svg
from import_pipeline.defs.tags import RunTags
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.pipeline.stages import ResolvedBatch
from import_pipeline.store.overview import results_by_record

OWNERS = ["team:evidence-data-engineering"]
TAGS = {"domain": "references", "pipeline": "import"}

landing_zone = dg.AssetSpec(
    "landing_zone",
    owners=OWNERS,
    tags=TAGS,
    description="Record folders dropped by users: record.json plus batch files (.jsonl, .jsonl.gz).",
    group_name="import_pipeline",
    kinds={"file"},
)

#: What every asset written by a record run shares: a partition per record, the writer pool
#: (claimed as a run's last steps, `STEP_PRIORITIES`).
RECORD_STORE_ASSET: dict[str, Any] = {
    "partitions_def": import_records,
    "pool": DUCKDB_POOL,
    "op_tags": {PRIORITY_TAG: str(STEP_PRIORITIES["finish"])},
    "group_name": "import_pipeline",
    "kinds": {"duckdb"},
    "owners": OWNERS,
    "tags": TAGS,
}

IMPORT_RESULTS = dg.AssetKey("import_results")
REFERENCE_STORE = dg.AssetKey("reference_store")


def failed_lines(summary: dict[str, Any]) -> int:
    """The record's failed and partially failed lines."""
    counts = summary["results"]
    return int(counts.get("failed", 0)) + int(counts.get("partially_failed", 0))


def _record_metadata(
    summary: dict[str, Any], stored: list[ResolvedBatch], failing_md: str, seconds: float
) -> dict[str, Any]:
    counts = summary["results"]
    record_key = summary["record"]["record_key"]
    lines_read = sum(b.lines_read for b in stored)
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
            "lines_read_this_run": dg.MetadataValue.int(lines_read),
            "references_created": dg.MetadataValue.int(sum(b.references_created for b in stored)),
            "references_merged": dg.MetadataValue.int(sum(b.references_merged for b in stored)),
            "duration_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "lines_per_second": dg.MetadataValue.float(
                round(lines_read / seconds, 1) if seconds else 0.0
            ),
            "failed_lines": dg.MetadataValue.int(failed_lines(summary)),
            "failing_lines": dg.MetadataValue.md(failing_md),
            "list_failing_lines": dg.MetadataValue.text(failures_command(record_key)),
        }
    )
    return metadata


@dg.op(pool=DUCKDB_POOL, tags=step_tags("duckdb", "finish"))
def summarise_record(
    context: dg.OpExecutionContext,
    record: RecordRun,
    resolved_groups: list[list[ResolvedBatch]],
    pipeline: ImportPipelineResource,
) -> dg.Output[dict[str, Any]]:
    """The record's results after this run, as the asset's value and metadata."""
    resolved = [batch for group in resolved_groups for batch in group]
    with pipeline.store(read_only=True) as conn:
        summary = store.record_summary(conn, record.record_key)
        failing = first_failing(conn, record.record_key)
    seconds = time.time() - record.started_at
    # The Runs list shows it: a run that left failing lines is told from a clean one.
    context.instance.add_run_tags(
        context.run_id, {RunTags.FAILED_LINES: str(failed_lines(summary))}
    )
    texts = texts_of(pipeline.landing_zone(), record.record_key, failing)
    failing_md = markdown(
        record.record_key, failing, texts, failed_lines(summary), int(summary["total"])
    )
    return dg.Output(summary, metadata=_record_metadata(summary, resolved, failing_md, seconds))


@dg.graph_asset(
    key=IMPORT_RESULTS,
    partitions_def=import_records,
    ins={"landing_zone": dg.AssetIn(key=landing_zone.key, dagster_type=dg.Nothing)},
    group_name="import_pipeline",
    kinds={"polars", "duckdb"},
    owners=OWNERS,
    tags=TAGS,
    description="One ImportResult per non-blank line of every batch of a record; one partition "
    "per import record. A run imports the record's batches that are new or changed.",
)
def import_results(landing_zone: Any) -> Any:
    groups, record = find_pending_batches(landing_zone)
    resolved = groups.map(import_batch_group)
    return summarise_record(record, resolved.collect())


@dg.asset(
    key=REFERENCE_STORE,
    deps=[IMPORT_RESULTS],
    **RECORD_STORE_ASSET,
    description="The reference store: references, their identifiers and enhancements, "
    "as each record's run left it (one partition per record; the counts are the whole store's).",
)
def reference_store(pipeline: ImportPipelineResource) -> dg.MaterializeResult:
    with pipeline.store(read_only=True) as conn:
        totals = store.table_counts(conn)
        by_record = results_by_record(conn)
    return dg.MaterializeResult(
        metadata={
            "results_by_record": dg.MetadataValue.md(as_markdown_image(results_svg(by_record))),
            "references": dg.MetadataValue.int(totals["reference"]),
            "identifiers": dg.MetadataValue.int(totals["reference_identifier"]),
            "enhancements": dg.MetadataValue.int(totals["reference_enhancement"]),
            "import_results": dg.MetadataValue.int(totals["import_results"]),
        }
    )
