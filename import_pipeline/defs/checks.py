"""Asset checks on each record's `import_results`: one query each, from `store`."""

import warnings

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.assets import IMPORT_RESULTS, failed_lines
from import_pipeline.defs.failing_lines import failures_command
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource

# Partitioned asset checks are "preview" in Dagster 1.13; they are what lets each record's
# results be checked on their own, so the warning is expected here.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def holds_when_empty(rows: list[tuple], count_name: str) -> dg.AssetCheckResult:
    """An invariant query returns its offending rows: none means the check passes."""
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            count_name: len(rows),
            "examples": dg.MetadataValue.json([list(map(str, row)) for row in rows[:20]]),
        },
    )


@dg.asset_check(
    asset=IMPORT_RESULTS,
    partitions_def=import_records,
    blocking=True,
    description="Every non-blank line of every finished batch has exactly one result.",
)
def every_line_has_one_result(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        rows = store.lines_without_one_result(conn, context.partition_key)
    return holds_when_empty(rows, "batches_off")


@dg.asset_check(
    asset=IMPORT_RESULTS,
    partitions_def=import_records,
    description="Every result that is not failed points at a reference that exists.",
)
def results_point_at_references(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        rows = store.results_with_missing_reference(conn, context.partition_key)
    return holds_when_empty(rows, "dangling_results")


@dg.asset_check(
    asset=IMPORT_RESULTS,
    partitions_def=import_records,
    description="No normalised trusted identifier of the record's references belongs to two "
    "references.",
)
def identifiers_belong_to_one_reference(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        rows = store.identifiers_on_two_references(conn, context.partition_key)
    return holds_when_empty(rows, "shared_identifiers")


@dg.asset_check(
    asset=IMPORT_RESULTS,
    partitions_def=import_records,
    description="The number of results matches record.json's expected_reference_count, when known.",
)
def expected_reference_count(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        summary = store.record_summary(conn, context.partition_key)
    expected = summary["record"].get("expected_reference_count")
    matches = summary["record"]["expected_reference_count_matches"]
    return dg.AssetCheckResult(
        passed=matches is not False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "expected": expected if expected is not None else -1,
            "results": summary["total"],
        },
    )


@dg.asset_check(
    asset=IMPORT_RESULTS,
    partitions_def=import_records,
    description="Every line of the record's batches imported: none failed or partially failed. "
    "A warning, so the record shows it is not clean; `import-pipeline failures KEY --out FILE` "
    "gives the lines to fix.",
)
def every_line_imported(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        summary = store.record_summary(conn, context.partition_key)
    by_batch = {
        batch["name"]: batch["results"]["failed"] + batch["results"]["partially_failed"]
        for batch in summary["batches"]
    }
    failing = failed_lines(summary)
    return dg.AssetCheckResult(
        passed=failing == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{failing} failing line(s)" if failing else "every line imported",
        metadata={
            "failed_lines": failing,
            "failed": int(summary["results"]["failed"]),
            "partially_failed": int(summary["results"]["partially_failed"]),
            "failing_lines_by_batch": dg.MetadataValue.json(
                {name: count for name, count in by_batch.items() if count}
            ),
            "fix_with": dg.MetadataValue.text(failures_command(context.partition_key)),
        },
    )


import_results_checks = [
    every_line_has_one_result,
    results_point_at_references,
    identifiers_belong_to_one_reference,
    expected_reference_count,
    every_line_imported,
]
