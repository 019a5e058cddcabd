"""The `duplicate_decisions` asset (contract section 8): after a record run has stored its
batches, the references they created or merged are compared with the store; and its check."""

import warnings
from typing import Any

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.assets import RECORD_STORE_ASSET, REFERENCE_STORE
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.tags import retried_runs
from import_pipeline.detection.stars import detect
from import_pipeline.domain.duplicates import Decision
from import_pipeline.store.connection import values_table

warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")

DUPLICATE_DECISIONS = dg.AssetKey("duplicate_decisions")
MAYBE_ROWS = 10

_RUN_REFERENCES = """
    SELECT DISTINCT r.reference_id::VARCHAR FROM import_results r
    JOIN import_batches b ON b.id = r.import_batch_id
    WHERE b.record_key = ? AND list_contains(?, b.run_id) AND r.reference_id IS NOT NULL
"""


def _cell(value: Any, width: int = 50) -> str:
    text = str(value if value is not None else "").replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def maybe_markdown(rows: list[dict[str, Any]]) -> str:
    """The first `maybe` pairs side by side, for a person to look at."""
    if not rows:
        return "No pairs to look at."
    lines = [
        "| score | title | authors | year | venue | pages | title (other) | authors (other) "
        "| year (other) | venue (other) | pages (other) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        own = [row[f"a_{f}"] for f in ("title", "authors", "year", "venue", "pages")]
        other = [row[f"b_{f}"] for f in ("title", "authors", "year", "venue", "pages")]
        lines.append("| " + " | ".join(_cell(v) for v in [row["score"], *own, *other]) + " |")
    lines += [
        "",
        "Decide one: `import-pipeline decide REF --duplicate-of CANONICAL` or `--distinct`",
    ]
    return "\n".join(lines)


@dg.asset(
    key=DUPLICATE_DECISIONS,
    deps=[REFERENCE_STORE],
    **RECORD_STORE_ASSET,
    description="A duplicate decision per reference (canonical, duplicate, maybe, distinct) for "
    "the references this run's batches created or merged, compared with the whole store on "
    "their bibliographic records. Never a merge or a delete; a person's decision is final.",
)
def duplicate_decisions(
    context: dg.AssetExecutionContext, pipeline: ImportPipelineResource
) -> dg.MaterializeResult:
    with pipeline.store() as conn:
        subjects = [
            ref for (ref,) in conn.execute(
                # A retry's, and those of the runs it retries (their stored batches are not
                # imported again, but their references are decided only now).
                _RUN_REFERENCES, [context.partition_key, [context.run_id, *retried_runs(context.run)]]
            ).fetchall()
        ]  # fmt: skip
        with values_table(conn, "frame_subjects", subjects) as table, store.transaction(conn):
            outcome = detect(
                conn, f"(SELECT value::UUID AS reference_id FROM {table})", run_id=context.run_id
            )
        maybes = store.maybe_pairs(conn, subjects, MAYBE_ROWS)
    metadata: dict[str, Any] = {
        decision.value: dg.MetadataValue.int(outcome.counts.get(decision.value, 0))
        for decision in Decision
    }
    metadata |= {
        "references_compared": dg.MetadataValue.int(outcome.subjects),
        "candidate_pairs_scored": dg.MetadataValue.int(outcome.pairs),
        "decisions_changed": dg.MetadataValue.int(outcome.changed),
        "maybe_pairs": dg.MetadataValue.md(maybe_markdown(maybes)),
    }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=DUPLICATE_DECISIONS,
    partitions_def=import_records,
    description="Every duplicate points to a canonical (stars, never chains).",
)
def every_duplicate_points_to_a_canonical(
    pipeline: ImportPipelineResource,
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        rows = store.duplicates_without_canonical(conn)
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "duplicates_off": len(rows),
            "examples": dg.MetadataValue.json([list(map(str, row)) for row in rows[:20]]),
        },
    )
