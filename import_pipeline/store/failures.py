"""The failed and partially failed lines of a record's current batch versions, every one of
them (no page), with where the next entry starts: what `failures` and `patch` read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.errors import NotFound

FAILING = (ImportResultStatus.FAILED.value, ImportResultStatus.PARTIALLY_FAILED.value)
_FETCH = 1000


@dataclass(frozen=True)
class FailingLine:
    """A failing line's result, in its batch's current version."""

    batch: str
    checksum: str
    line_number: int
    next_entry: int | None  # the line the batch's next entry starts on
    status: str
    errors: list[dict[str, Any]]


#: Every result of the record's batches with the next one's line (`lead`): a failing export
#: entry ends before the next entry starts, whatever that one's status.
_LINES = """
    WITH numbered AS (
        SELECT b.name, b.checksum, r.line_number, r.status, r.errors::VARCHAR AS errors,
            lead(r.line_number) OVER (PARTITION BY r.import_batch_id ORDER BY r.line_number)
                AS next_entry
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = $key AND ($batch IS NULL OR b.name = $batch)
    )
    SELECT name, checksum, line_number, next_entry, status, errors FROM numbered
    WHERE {where}
    ORDER BY name, line_number
"""


def check_exists(conn: duckdb.DuckDBPyConnection, record_key: str, batch: str | None) -> None:
    """Raises NotFound unless the record (and the batch, when named) is in the store."""
    if conn.execute("SELECT 1 FROM import_records WHERE record_key = ?", [record_key]).fetchone():
        if (
            batch is None
            or conn.execute(
                "SELECT 1 FROM import_batches WHERE record_key = ? AND name = ?",
                [record_key, batch],
            ).fetchone()
        ):
            return
        raise NotFound(f"record {record_key!r} has no batch {batch!r}")
    raise NotFound(f"no import record {record_key!r}")


def count_failing(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    batch: str | None = None,
    statuses: list[str] | None = None,
) -> int:
    check_exists(conn, record_key, batch)
    found = conn.execute(
        """
        SELECT count(*) FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = $key AND ($batch IS NULL OR b.name = $batch)
            AND list_contains($statuses, r.status)
        """,
        {"key": record_key, "batch": batch, "statuses": list(statuses or FAILING)},
    ).fetchone()
    return int(found[0]) if found else 0


def failing_lines(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    batch: str | None = None,
    statuses: list[str] | None = None,
) -> Iterator[FailingLine]:
    """Every failing line, by batch then line, fetched a thousand at a time."""
    check_exists(conn, record_key, batch)
    cursor = conn.execute(
        _LINES.format(where="list_contains($statuses, status)"),
        {"key": record_key, "batch": batch, "statuses": list(statuses or FAILING)},
    )
    yield from _rows(cursor)


def entry_lines(
    conn: duckdb.DuckDBPyConnection, record_key: str, batch: str, line_numbers: list[int]
) -> dict[int, FailingLine]:
    """The results (any status) at `line_numbers` of a batch, by line: the entries a patch
    may replace."""
    cursor = conn.execute(
        _LINES.format(where="list_contains($lines, line_number)"),
        {"key": record_key, "batch": batch, "lines": line_numbers},
    )
    return {line.line_number: line for line in _rows(cursor)}


def _rows(cursor: duckdb.DuckDBPyConnection) -> Iterator[FailingLine]:
    while rows := cursor.fetchmany(_FETCH):
        for name, checksum, line, next_entry, status, errors in rows:
            yield FailingLine(name, checksum or "", line, next_entry, status, json.loads(errors))


def failing_batches(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    batch: str | None = None,
    statuses: list[str] | None = None,
) -> list[str]:
    """The names of the record's batches with failing lines, in order."""
    rows = conn.execute(
        """
        SELECT DISTINCT b.name
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = $key AND ($batch IS NULL OR b.name = $batch)
            AND list_contains($statuses, r.status)
        ORDER BY b.name
        """,
        {"key": record_key, "batch": batch, "statuses": list(statuses or FAILING)},
    ).fetchall()
    return [name for (name,) in rows]
