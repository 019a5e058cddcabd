"""The readers' queries: the documents of `import-pipeline summary`, `results` and `reference`,
and the figures the Dagster assets show."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from import_pipeline.domain.statuses import ImportResultStatus, record_status
from import_pipeline.errors import NotFound
from import_pipeline.store.schema import ALL_TABLES

RESULT_STATUSES = [s.value for s in ImportResultStatus]
#: The results a user has to look at.
_FAILING = [ImportResultStatus.FAILED.value, ImportResultStatus.PARTIALLY_FAILED.value]


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(RESULT_STATUSES, 0)


def _result_counts_by_batch(
    conn: duckdb.DuckDBPyConnection, record_key: str
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for batch_id, result_status, count in conn.execute(
        """
        SELECT r.import_batch_id::VARCHAR, r.status, count(*)
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = ? GROUP BY 1, 2
        """,
        [record_key],
    ).fetchall():
        counts.setdefault(batch_id, _zero_counts())[result_status] = count
    return counts


def _failure_details_by_batch(
    conn: duckdb.DuckDBPyConnection, record_key: str
) -> dict[str, list[str]]:
    failing: dict[str, list[str]] = {}
    for batch_id, text in conn.execute(
        """
        SELECT r.import_batch_id::VARCHAR, r.failure_details
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = ? AND r.failure_details IS NOT NULL
        ORDER BY b.name, r.line_number
        """,
        [record_key],
    ).fetchall():
        failing.setdefault(batch_id, []).append(text)
    return failing


def record_summary(conn: duckdb.DuckDBPyConnection, record_key: str) -> dict[str, Any]:
    """The `import-pipeline summary` document of one record."""
    columns = [
        "id", "record_key", "source_name", "processor_name", "processor_version",
        "expected_reference_count", "search_string", "searched_at", "notes",
        "collision_strategy", "problem", "finalised", "created_at", "updated_at",
    ]  # fmt: skip
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM import_records WHERE record_key = ?", [record_key]
    ).fetchone()
    if row is None:
        raise NotFound(f"no import record {record_key!r}")
    record = {c: _jsonable(v) for c, v in zip(columns, row, strict=True)}
    # Four queries for the whole record, whatever its number of batches.
    counts = _result_counts_by_batch(conn, record_key)
    failing = _failure_details_by_batch(conn, record_key)
    first_failing = _failing_lines_by_batch(conn, record_key)
    batches = []
    totals = _zero_counts()
    for batch_id, name, url, status, reason in conn.execute(
        """
        SELECT id::VARCHAR, name, storage_url, status, failure_details FROM import_batches
        WHERE record_key = ? ORDER BY name
        """,
        [record_key],
    ).fetchall():
        batch_counts = counts.get(batch_id, _zero_counts())
        for result_status, count in batch_counts.items():
            totals[result_status] += count
        batches.append(
            {
                "id": batch_id,
                "name": name,
                "storage_url": url,
                "status": status,
                "results": batch_counts,
                # The batch-level reason, else the failing lines' details (as DESTINY's summary).
                "failure_details": reason if reason is not None else failing.get(batch_id, []),
                # How many lines failed, and the first few with their first error (the table's).
                "failing_lines": first_failing.get(name, {"count": 0, "lines": []}),
            }
        )
    record["status"] = record_status(
        [b["status"] for b in batches], bool(record["finalised"])
    ).value
    total = sum(totals.values())
    expected = record.get("expected_reference_count")
    record["expected_reference_count_matches"] = (
        None if expected in (None, -1) else expected == total
    )
    return {"record": record, "batches": batches, "results": totals, "total": total}


def _check_exists(conn: duckdb.DuckDBPyConnection, record_key: str, batch: str | None) -> None:
    """Raises NotFound unless the record (and the batch, when named) exists."""
    if (
        conn.execute("SELECT 1 FROM import_records WHERE record_key = ?", [record_key]).fetchone()
        is None
    ):
        raise NotFound(f"no import record {record_key!r}")
    if batch is None:
        return
    found = conn.execute(
        "SELECT 1 FROM import_batches WHERE record_key = ? AND name = ?", [record_key, batch]
    ).fetchone()
    if found is None:
        raise NotFound(f"record {record_key!r} has no batch {batch!r}")


def list_results(
    conn: duckdb.DuckDBPyConnection,
    record_key: str,
    *,
    batch: str | None = None,
    status: str | list[str] | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """The `import-pipeline results` document: one page of results, by batch then line."""
    _check_exists(conn, record_key, batch)
    statuses = [status] if isinstance(status, str) else status
    where = (
        "b.record_key = $key AND ($batch IS NULL OR b.name = $batch) "
        "AND ($statuses IS NULL OR list_contains($statuses, r.status))"
    )
    params: dict[str, Any] = {"key": record_key, "batch": batch, "statuses": statuses}
    total_row = conn.execute(
        f"SELECT count(*) FROM import_results r JOIN import_batches b ON r.import_batch_id = b.id WHERE {where}",
        params,
    ).fetchone()
    rows = conn.execute(
        f"""
        SELECT r.id, r.import_batch_id, b.name, r.line_number, r.status, r.reference_id,
            r.errors, r.failure_details, r.unresolved_references
        FROM import_results r JOIN import_batches b ON r.import_batch_id = b.id
        WHERE {where}
        ORDER BY b.name, r.line_number
        LIMIT $limit OFFSET $offset
        """,
        {**params, "limit": limit, "offset": offset},
    ).fetchall()
    results = [
        {
            "id": str(rid),
            "import_batch_id": str(batch_id),
            "batch": name,
            "line_number": line,
            "status": result_status,
            "reference_id": str(ref) if ref else None,
            "errors": json.loads(errors),
            "failure_details": details,
            "unresolved_references": json.loads(unresolved),
        }
        for rid, batch_id, name, line, result_status, ref, errors, details, unresolved in rows
    ]
    return page(results, limit=limit, offset=offset, total=total_row[0] if total_row else 0)


def page(results: list[dict[str, Any]], *, limit: int, offset: int, total: int) -> dict[str, Any]:
    """A page of a listing command (`results`, `duplicates`): contract section 6's shape."""
    return {"limit": limit, "offset": offset, "count": len(results), "total": total,
            "results": results}  # fmt: skip


def lookup_reference(
    conn: duckdb.DuckDBPyConnection,
    *,
    reference_id: str | None = None,
    identifier_type: str | None = None,
    identifier: str | None = None,
    other_identifier_name: str | None = None,
) -> str:
    """The id of the reference a lookup names (by id, or by a normalised identifier): the one
    lookup of every command that takes a REF (`reference`, `decide`, `duplicates --history`).

    Raises:
        NotFound: no reference has that id or identifier.
    """
    if reference_id is not None:
        row = conn.execute(
            "SELECT id::VARCHAR FROM reference WHERE id = ?::UUID", [reference_id]
        ).fetchone()
        if row is None:
            raise NotFound(f"no reference {reference_id}")
        return str(row[0])
    # Ordered: an `other` identifier (not trusted) may be on several references, and every
    # command must find the same one.
    row = conn.execute(
        """
        SELECT reference_id::VARCHAR FROM reference_identifier
        WHERE identifier_type = ? AND identifier = ?
            AND (? IS NULL OR other_identifier_name = ?)
        ORDER BY reference_id
        LIMIT 1
        """,
        [identifier_type, identifier, other_identifier_name, other_identifier_name],
    ).fetchone()
    if row is None:
        raise NotFound(f"no reference with {identifier_type} {identifier!r}")
    return str(row[0])


def titles(conn: duckdb.DuckDBPyConnection, references: list[str]) -> dict[str, str]:
    """The title of each of these references that has one: that of its first bibliographic
    enhancement with a title, in the order `find_reference` lists them."""
    if not references:
        return {}
    marks = ", ".join("?::UUID" for _ in references)  # a filter PostgreSQL is given too
    rows = conn.execute(
        f"""
        SELECT reference_id::VARCHAR, content->>'title' FROM reference_enhancement
        WHERE reference_id IN ({marks}) AND enhancement_type = 'bibliographic'
            AND (content->>'title') IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY reference_id ORDER BY source, created_at, content_hash) = 1
        """,
        list(references),
    ).fetchall()
    return {ref: title for ref, title in rows}


#: At most this many of a reference's results are listed as where it came from.
PROVENANCE_LIMIT = 100


def provenance(conn: duckdb.DuckDBPyConnection, reference: str) -> dict[str, Any]:
    """Where a reference came from: the results that point at it (record, batch, line,
    status), the first `PROVENANCE_LIMIT` by record, batch and line, and how many there are."""
    rows = conn.execute(
        """
        SELECT b.record_key, b.name, r.line_number, r.status, count(*) OVER ()
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE r.reference_id = ?::UUID
        ORDER BY b.record_key, b.name, r.line_number
        LIMIT ?
        """,
        [reference, PROVENANCE_LIMIT],
    ).fetchall()
    lines = [
        {"record_key": key, "batch": name, "line_number": line, "status": status}
        for key, name, line, status, _ in rows
    ]
    return {"provenance": lines, "provenance_total": rows[0][4] if rows else 0}


def find_reference(
    conn: duckdb.DuckDBPyConnection,
    *,
    reference_id: str | None = None,
    identifier_type: str | None = None,
    identifier: str | None = None,
    other_identifier_name: str | None = None,
) -> dict[str, Any]:
    """One reference with its title, identifiers, enhancements and provenance, by id or by
    identifier (found by `lookup_reference`)."""
    found = lookup_reference(
        conn,
        reference_id=reference_id,
        identifier_type=identifier_type,
        identifier=identifier,
        other_identifier_name=other_identifier_name,
    )
    ref = conn.execute(
        "SELECT id, visibility, created_at, updated_at FROM reference WHERE id = ?", [found]
    ).fetchone()
    if ref is None:
        raise NotFound(f"no reference {found}")
    identifiers = [
        {"identifier_type": t, "identifier": v, **({"other_identifier_name": n} if n else {})}
        for t, v, n in conn.execute(
            """
            SELECT identifier_type, identifier, other_identifier_name FROM reference_identifier
            WHERE reference_id = ? ORDER BY identifier_type, identifier
            """,
            [found],
        ).fetchall()
    ]
    return {
        "id": str(ref[0]),
        "visibility": ref[1],
        "created_at": _jsonable(ref[2]),
        "updated_at": _jsonable(ref[3]),
        "title": titles(conn, [found]).get(found),
        "identifiers": identifiers,
        "enhancements": _enhancements(conn, found),
        **provenance(conn, found),
        **_duplicate_links(conn, found),
    }


def _enhancements(conn: duckdb.DuckDBPyConnection, reference: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(eid),
            "source": source,
            "visibility": visibility,
            "robot_version": robot_version,
            "processor_version": processor_version,
            "content": json.loads(content),
        }
        for eid, source, visibility, robot_version, processor_version, content in conn.execute(
            """
            SELECT id, source, visibility, robot_version, processor_version, content
            FROM reference_enhancement WHERE reference_id = ?
            ORDER BY enhancement_type, source, created_at, content_hash
            """,
            [reference],
        ).fetchall()
    ]


def _duplicate_links(conn: duckdb.DuckDBPyConnection, reference_id: str) -> dict[str, Any]:
    """A reference's duplicate decision, its canonical, and a canonical's duplicates."""
    decided = conn.execute(
        "SELECT decision, duplicate_of::VARCHAR FROM duplicate_decisions WHERE reference_id = ?",
        [reference_id],
    ).fetchone()
    duplicates = [
        ref for (ref,) in conn.execute(
            "SELECT reference_id::VARCHAR FROM duplicate_decisions "
            "WHERE duplicate_of = ? AND decision = 'duplicate' ORDER BY 1",
            [reference_id],
        ).fetchall()
    ]  # fmt: skip
    return {
        "duplicate_decision": decided[0] if decided else None,
        "duplicate_of": decided[1] if decided and decided[0] == "duplicate" else None,
        "duplicates": duplicates,
    }


def table_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    out = {}
    for table in ALL_TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # names are constants
        out[table] = int(row[0]) if row else 0
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _failing_line(batch: str, line: int, status: str, errors_text: str) -> dict[str, Any]:
    """A failing line with its first error, and how many more it has."""
    errors = json.loads(errors_text) or [{"code": "", "field": None, "message": ""}]
    first = errors[0]
    return {
        "batch": batch,
        "line": line,
        "status": status,
        "code": first["code"],
        "field": first.get("field"),
        "message": first["message"] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
    }


def failing_lines(
    conn: duckdb.DuckDBPyConnection, record_key: str, limit: int = 25
) -> list[dict[str, Any]]:
    """The first failed or partially failed lines of a record, by batch then line, each with
    its first error and how many more it has."""
    rows = conn.execute(
        """
        SELECT b.name, r.line_number, r.status, r.errors::VARCHAR
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = ? AND list_contains(?, r.status)
        ORDER BY b.name, r.line_number
        LIMIT ?
        """,
        [record_key, _FAILING, limit],
    ).fetchall()
    return [_failing_line(*row) for row in rows]


def _failing_lines_by_batch(
    conn: duckdb.DuckDBPyConnection, record_key: str, first: int = 3
) -> dict[str, dict[str, Any]]:
    """Per batch name of a record that has failed or partially failed lines: how many
    (`count`), and the `first` of them by line (`lines`, as `failing_lines` gives them)."""
    rows = conn.execute(
        """
        SELECT name, line_number, status, errors, total FROM (
            SELECT b.name, r.line_number, r.status, r.errors::VARCHAR AS errors,
                row_number() OVER (PARTITION BY b.name ORDER BY r.line_number) AS place,
                count(*) OVER (PARTITION BY b.name) AS total
            FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
            WHERE b.record_key = ? AND list_contains(?, r.status)
        ) WHERE place <= ?
        ORDER BY name, line_number
        """,
        [record_key, _FAILING, first],
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for name, line, status, errors_text, total in rows:
        batch = out.setdefault(name, {"count": total, "lines": []})
        batch["lines"].append(_failing_line(name, line, status, errors_text))
    return out
