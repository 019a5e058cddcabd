"""Writes of records and batches: what record.json says, which batch is being imported, which
failed as a whole."""

from __future__ import annotations

from datetime import datetime

import duckdb

from import_pipeline.domain.records import ImportRecordInput
from import_pipeline.domain.statuses import (
    TERMINAL_BATCH_SQL,
    ImportBatchStatus,
    batch_status_sql,
)
from import_pipeline.store.connection import transaction

_STARTED = ImportBatchStatus.STARTED.value
_FAILED = ImportBatchStatus.FAILED.value


def upsert_record(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    record: ImportRecordInput | None,
    *,
    problem: str | None = None,
    finalised: bool = False,
) -> None:
    """Writes what record.json says (or why it is refused) for `record_key`."""
    values = record.model_dump(mode="json") if record else {}
    conn.execute(
        """
        INSERT INTO import_records AS r (id, record_key, source_name, processor_name,
            processor_version, expected_reference_count, search_string, searched_at, notes,
            collision_strategy, problem, finalised, created_at, updated_at)
        VALUES (uuid(), $key, $source_name, $processor_name, $processor_version,
            $expected_reference_count, $search_string, $searched_at, $notes,
            $collision_strategy, $problem, $finalised, now(), now())
        ON CONFLICT (record_key) DO UPDATE SET
            source_name = COALESCE(excluded.source_name, r.source_name),
            processor_name = COALESCE(excluded.processor_name, r.processor_name),
            processor_version = COALESCE(excluded.processor_version, r.processor_version),
            expected_reference_count =
                COALESCE(excluded.expected_reference_count, r.expected_reference_count),
            search_string = CASE WHEN excluded.problem IS NULL
                THEN excluded.search_string ELSE r.search_string END,
            searched_at = CASE WHEN excluded.problem IS NULL
                THEN excluded.searched_at ELSE r.searched_at END,
            notes = CASE WHEN excluded.problem IS NULL THEN excluded.notes ELSE r.notes END,
            collision_strategy = COALESCE(excluded.collision_strategy, r.collision_strategy),
            problem = excluded.problem,
            finalised = excluded.finalised,
            updated_at = now()
        """,
        {
            "key": record_key,
            "source_name": values.get("source_name"),
            "processor_name": values.get("processor_name"),
            "processor_version": values.get("processor_version"),
            "expected_reference_count": values.get("expected_reference_count"),
            "search_string": values.get("search_string"),
            "searched_at": values.get("searched_at"),
            "notes": values.get("notes"),
            "collision_strategy": values.get("collision_strategy"),
            "problem": problem,
            "finalised": finalised,
        },
    )


def record_first_seen(conn: duckdb.DuckDBPyConnection, record_key: str) -> datetime | None:
    """When the store first saw a record (its row's creation), or None for an unknown one."""
    row = conn.execute(
        "SELECT created_at FROM import_records WHERE record_key = ?", [record_key]
    ).fetchone()
    return None if row is None else row[0]


def imported_checksums(conn: duckdb.DuckDBPyConnection, record_key: str) -> dict[str, str]:
    """Batch name → checksum of the version whose import finished, for one record."""
    rows = conn.execute(
        f"""
        SELECT name, checksum FROM import_batches
        WHERE record_key = ? AND checksum IS NOT NULL AND status IN {TERMINAL_BATCH_SQL}
        """,
        [record_key],
    ).fetchall()
    return {name: checksum for name, checksum in rows}


def start_batch(
    conn: duckdb.DuckDBPyConnection, record_key: str, name: str, storage_url: str, run_id: str
) -> str:
    """Marks a batch as being imported; returns its id (stable across versions)."""
    return start_batches(conn, record_key, [(name, storage_url)], run_id)[name]


def start_batches(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    batches: list[tuple[str, str]],
    run_id: str,
) -> dict[str, str]:
    """Marks batches (name, storage URL) of a record as being imported, in one transaction;
    their ids by name (stable across versions). (No `RETURNING`: the PostgreSQL store's
    engine does not take it.)"""
    if not batches:
        return {}
    params = {
        "key": record_key,
        "names": [name for name, _ in batches],
        "urls": [url for _, url in batches],
        "started": _STARTED,
        "run": run_id,
    }
    with transaction(conn):
        conn.execute(
            """
            INSERT INTO import_batches AS b (id, record_key, name, storage_url, status, run_id,
                created_at, updated_at)
            SELECT uuid(), $key, name, url, $started, $run, now(), now()
            FROM (SELECT unnest($names) AS name, unnest($urls) AS url)
            ON CONFLICT (record_key, name) DO UPDATE SET
                status = $started, storage_url = excluded.storage_url, run_id = excluded.run_id,
                updated_at = now()
            """,
            params,
        )
        rows = conn.execute(
            "SELECT name, id FROM import_batches WHERE record_key = $key AND name IN "
            "(SELECT unnest($names))",
            {"key": record_key, "names": params["names"]},
        ).fetchall()
    return {name: str(batch_id) for name, batch_id in rows}


def fail_batch(
    conn: duckdb.DuckDBPyConnection,
    batch_id: str,
    reason: str,
    *,
    checksum: str | None,
    physical_lines: int | None = None,
    blank_lines: int | None = None,
) -> None:
    """A batch that cannot be read at all: `failed`, with the reason on the batch."""
    with transaction(conn):
        conn.execute("DELETE FROM import_results WHERE import_batch_id = ?", [batch_id])
        conn.execute("DELETE FROM reference_association WHERE import_batch_id = ?", [batch_id])
        conn.execute(
            """
            UPDATE import_batches SET status = ?, failure_details = ?, checksum = ?,
                physical_lines = ?, blank_lines = ?, updated_at = now()
            WHERE id = ?
            """,
            [_FAILED, reason, checksum, physical_lines, blank_lines, batch_id],
        )


def fail_batches_of_run(conn: duckdb.DuckDBPyConnection, run_id: str, reason: str) -> list[str]:
    """Marks the batches a dead run left `started` as `failed`, with the reason; their names."""
    left = {"run": run_id, "started": _STARTED}
    with transaction(conn):
        rows = conn.execute(
            "SELECT record_key || '/' || name FROM import_batches "
            "WHERE run_id = $run AND status = $started ORDER BY 1",
            left,
        ).fetchall()
        conn.execute(
            """
            UPDATE import_batches SET status = $failed, failure_details = $reason,
                updated_at = now()
            WHERE run_id = $run AND status = $started
            """,
            {**left, "failed": _FAILED, "reason": reason},
        )
    return [name for (name,) in rows]


def release_batch(conn: duckdb.DuckDBPyConnection, batch_id: str, run_id: str, reason: str) -> str:
    """Gives back a batch this run marked `started` but did not import (its file changed):
    its status is derived again from the results it has (those of its earlier version, or
    none: `created`), with the reason. A batch another run has taken since is left to that
    run. Returns the batch's status."""
    with transaction(conn):
        taken = conn.execute(
            "SELECT 1 FROM import_batches WHERE id = $id AND status = $started AND run_id = $run",
            {"id": batch_id, "started": _STARTED, "run": run_id},
        ).fetchone()
        if taken is not None:
            update_batch_statuses(conn, [batch_id])
            conn.execute(
                "UPDATE import_batches SET failure_details = ? WHERE id = ?", [reason, batch_id]
            )
        (status,) = conn.execute(
            "SELECT status FROM import_batches WHERE id = ?", [batch_id]
        ).fetchone() or ("",)
    return str(status)


def update_batch_statuses(conn: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> None:
    """Re-derives the status of these batches from their results (the ladder of contract
    section 4), in one statement."""
    if not batch_ids:
        return
    conn.execute(
        f"""
        UPDATE import_batches b SET status = s.status, updated_at = now()
        FROM (
            SELECT b2.id, {batch_status_sql("list(DISTINCT r.status) FILTER (WHERE r.status IS NOT NULL)")}
                AS status
            FROM import_batches b2 LEFT JOIN import_results r ON r.import_batch_id = b2.id
            WHERE list_contains($ids, b2.id::VARCHAR)
            GROUP BY b2.id
        ) s
        WHERE b.id = s.id
        """,
        {"ids": [str(batch_id) for batch_id in batch_ids]},
    )
