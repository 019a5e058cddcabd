"""What the store holds, record by record, for the UI's overview."""

from __future__ import annotations

import duckdb


def results_by_record(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Record → status → results, for every record with results (one query)."""
    rows = conn.execute(
        """
        SELECT b.record_key, r.status, count(*)
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        GROUP BY ALL
        """
    ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for record_key, status, count in rows:
        out.setdefault(record_key, {})[status] = int(count)
    return out
