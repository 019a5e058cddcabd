"""What a stored wave did, read back from the store inside its transaction: per batch, its
results' counts by status, the references it created and merged into, and its status."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from import_pipeline.domain.statuses import ImportResultStatus, derive_batch_status
from import_pipeline.pipeline import associations
from import_pipeline.store import batch_writes


@dataclass
class BatchOutcome:
    """What one batch's import did."""

    counts: dict[str, int]
    references_created: int
    references_merged: int
    status: str
    associations_linked: int = 0
    associations_waiting: int = 0
    seconds: float = 0.0  # the batch's share (by lines) of its wave's time


def _references_written(
    conn: duckdb.DuckDBPyConnection, targets: str, lines: str, batch_ids: list[str]
) -> dict[tuple[int, bool], int]:
    """Per (batch, is_new): the references each stored batch created (True) or merged into
    (False): those of clusters with a line that was written (a cluster whose lines all
    failed wrote nothing)."""
    rows = conn.execute(
        f"""
        SELECT t.batch, t.is_new, count(*) FROM {targets} t
        SEMI JOIN (
            SELECT l.batch, l.cluster FROM {lines} l
            JOIN {batch_writes.batch_ids_sql(batch_ids)} USING (batch)
            JOIN import_results r
                ON r.import_batch_id = ids.batch_id AND r.line_number = l.line_number
            WHERE r.{batch_writes.batch_ids_in(batch_ids)} AND r.status <> $failed
        ) w ON w.batch = t.batch AND w.cluster = t.cluster
        GROUP BY ALL
        """,
        {"failed": ImportResultStatus.FAILED.value},
    ).fetchall()
    return {(int(batch), bool(is_new)): int(count) for batch, is_new, count in rows}


def _result_counts(
    conn: duckdb.DuckDBPyConnection, batch_ids: list[str]
) -> dict[str, dict[str, int]]:
    """Per batch id: its results' counts by status (every status named)."""
    counts = {
        batch_id: {status.value: 0 for status in ImportResultStatus} for batch_id in batch_ids
    }
    rows = conn.execute(
        "SELECT import_batch_id::VARCHAR, status, count(*) FROM import_results "
        f"WHERE {batch_writes.batch_ids_in(batch_ids)} GROUP BY ALL"
    ).fetchall()
    for batch_id, status, count in rows:
        counts[batch_id][status] = int(count)
    return counts


def read_outcomes(
    conn: duckdb.DuckDBPyConnection,
    targets: str,
    lines: str,
    batch_ids: list[str],
    linked: associations.AssociationOutcome | None,
) -> list[BatchOutcome]:
    """What each stored batch did, read after its associations were linked (which may move
    its results); `targets` and `lines` are the wave's tables of them; `linked` is the links
    of a batch stored alone with its associations."""
    written = _references_written(conn, targets, lines, batch_ids)
    counts = _result_counts(conn, batch_ids)
    return [
        BatchOutcome(
            counts=counts[batch_id],
            references_created=written.get((index, True), 0),
            references_merged=written.get((index, False), 0),
            status=derive_batch_status(counts[batch_id]).value,
            associations_linked=linked.linked if linked else 0,
            associations_waiting=linked.waiting if linked else 0,
        )
        for index, batch_id in enumerate(batch_ids)
    ]
