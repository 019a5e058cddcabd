"""The `duplicate_decisions` asset (contract section 8): after a record run has stored its
batches, the references they created or merged are compared with the store; and its check."""

import warnings
from typing import Any

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.assets import RECORD_STORE_ASSET, REFERENCE_STORE
from import_pipeline.defs.checks import holds_when_empty
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.tags import retried_runs
from import_pipeline.detection.stars import detect
from import_pipeline.domain.duplicates import Decision
from import_pipeline.store.connection import TempTables
from import_pipeline.store.decision_history import references_without_one_active_decision

warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")

DUPLICATE_DECISIONS = dg.AssetKey("duplicate_decisions")
#: The pairs each table of the materialization shows (with how many there are in all).
SHOWN_PAIRS = 20

#: The references a record's run (and the runs it retries) wrote: a table in the store's
#: engine, never a Python list (3M references were ~0.5 GB of strings and their frame);
#: `detect` keeps each once.
_RUN_REFERENCES = """
    SELECT r.reference_id FROM import_results r
    JOIN import_batches b ON b.id = r.import_batch_id
    WHERE b.record_key = $record AND list_contains($runs, b.run_id)
        AND r.reference_id IS NOT NULL
"""


def _cell(value: Any, width: int = 80) -> str:
    """A table cell's text: on one line, `|` and the characters Markdown would read as
    formatting escaped, cut at `width` characters."""
    text = " ".join(str(value if value is not None else "").split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return "".join("\\" + c if c in "\\|*_`[]<>#" else c for c in text)


#: What each table shows: its columns, and the note under it.
_TABLES = {
    Decision.DUPLICATE: (("title", "canonical title", "score", "evidence"), ""),
    Decision.MAYBE: (
        ("title", "candidate title", "score"),
        "Review them all: `import-pipeline duplicates --decision maybe --record {record} "
        "--export maybe.csv`, fill in its `decision` column (`duplicate` or `distinct`), then "
        "`import-pipeline decide --from maybe.csv`.",
    ),
}


def pairs_markdown(decision: Decision, pairs: list[dict[str, Any]], total: int, record: str) -> str:
    """This run's references decided `decision` beside the reference each points to, the first
    of `total` (best score first), as a Markdown table."""
    if not pairs:
        return f"No {decision.value} decisions among this run's references."
    columns, note = _TABLES[decision]
    lines = [
        f"{len(pairs)} of {total} {decision.value} decisions of this run's references, "
        "best score first.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for pair in pairs:
        score = "" if pair["score"] is None else f"{pair['score']:.3f}"
        cells = [pair["title"], pair["other_title"], score, ", ".join(pair["evidence"])]
        lines.append("| " + " | ".join(_cell(v) for v in cells[: len(columns)]) + " |")
    return "\n".join([*lines, "", note.format(record=record)] if note else lines)


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
    with pipeline.store() as conn, TempTables(conn, "run_references") as tables:
        # A retry's, and those of the runs it retries (their stored batches are not imported
        # again, but their references are decided only now).
        runs = [context.run_id, *retried_runs(context.run)]
        subjects = tables.create(
            "subjects", _RUN_REFERENCES, {"record": context.partition_key, "runs": runs}
        )
        with store.transaction(conn):
            outcome = detect(conn, subjects, run_id=context.run_id)
        shown = {
            d: store.decided_pairs(conn, subjects, d, SHOWN_PAIRS)
            for d in (Decision.DUPLICATE, Decision.MAYBE)
        }
    metadata: dict[str, Any] = {
        decision.value: dg.MetadataValue.int(outcome.counts.get(decision.value, 0))
        for decision in Decision
    }
    metadata |= {
        "references_compared": dg.MetadataValue.int(outcome.subjects),
        "candidate_pairs_scored": dg.MetadataValue.int(outcome.pairs),
        "decisions_changed": dg.MetadataValue.int(outcome.changed),
        "duplicates_decided": dg.MetadataValue.md(
            pairs_markdown(Decision.DUPLICATE, *shown[Decision.DUPLICATE], context.partition_key)
        ),
        "maybe_pairs": dg.MetadataValue.md(
            pairs_markdown(Decision.MAYBE, *shown[Decision.MAYBE], context.partition_key)
        ),
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
    return holds_when_empty(rows, "duplicates_off")


@dg.asset_check(
    asset=DUPLICATE_DECISIONS,
    partitions_def=import_records,
    description="Every decided reference of the record has exactly one active decision in its "
    "history, the one the store applies.",
)
def every_reference_has_one_active_decision(
    context: dg.AssetCheckExecutionContext, pipeline: ImportPipelineResource
) -> dg.AssetCheckResult:
    with pipeline.store(read_only=True) as conn:
        rows = references_without_one_active_decision(conn, context.partition_key)
    return holds_when_empty(rows, "references_off")
