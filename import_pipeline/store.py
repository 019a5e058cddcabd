"""The reference store: a DuckDB file, its schema, connections, and the readers' queries.

DuckDB lets one process hold the file at a time (even read-only opens fail while a writer holds
it), so every connection is short-lived and opened through `connect`, which waits a bounded
time for the lock instead of failing at once. Writers are also serialised by a Dagster pool.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.models import (
    ImportBatchStatus,
    ImportRecordInput,
    ImportRecordStatus,
    ImportResultStatus,
)
from import_pipeline.settings import DEFAULT_STORE_MEMORY

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE IF NOT EXISTS import_records (
    id UUID PRIMARY KEY,
    record_key VARCHAR NOT NULL UNIQUE,
    source_name VARCHAR,
    processor_name VARCHAR,
    processor_version VARCHAR,
    expected_reference_count BIGINT,
    search_string VARCHAR,
    searched_at TIMESTAMPTZ,
    notes VARCHAR,
    collision_strategy VARCHAR,
    problem VARCHAR,            -- why record.json blocks the record, or NULL
    finalised BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS import_batches (
    id UUID PRIMARY KEY,
    record_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    storage_url VARCHAR NOT NULL,
    checksum VARCHAR,           -- of the version whose results are stored
    status VARCHAR NOT NULL,
    failure_details VARCHAR,    -- the batch-level reason, when the batch cannot be read
    physical_lines BIGINT,
    blank_lines BIGINT,
    run_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (record_key, name)
);

CREATE TABLE IF NOT EXISTS import_results (
    id UUID NOT NULL,
    import_batch_id UUID NOT NULL,
    line_number BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    reference_id UUID,
    errors JSON NOT NULL,
    failure_details VARCHAR,
    unresolved_references JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference (
    id UUID PRIMARY KEY,
    visibility VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference_identifier (
    reference_id UUID NOT NULL,
    identifier_type VARCHAR NOT NULL,
    identifier VARCHAR NOT NULL,            -- normalised (contract section 3)
    other_identifier_name VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference_enhancement (
    id UUID NOT NULL,
    reference_id UUID NOT NULL,
    enhancement_type VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    visibility VARCHAR NOT NULL,
    robot_version VARCHAR,
    processor_version VARCHAR,
    content JSON NOT NULL,
    content_hash VARCHAR NOT NULL,          -- an exact duplicate has the same hash
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per target of a reference_association enhancement of a written line: waiting
-- (no target_reference_id yet), linked, or expired after IMPORT_PIPELINE_UNRESOLVED_TTL.
CREATE TABLE IF NOT EXISTS reference_association (
    reference_id UUID NOT NULL,             -- the reference that has the association
    import_batch_id UUID NOT NULL,          -- the result (batch, line) that brought it
    line_number BIGINT NOT NULL,
    association_type VARCHAR NOT NULL,
    target_type VARCHAR NOT NULL,           -- identifier type, or 'reference_id'
    target VARCHAR NOT NULL,                -- normalised identifier or reference UUID
    target_other_name VARCHAR,
    target_reference_id UUID,               -- set once linked
    created_at TIMESTAMPTZ NOT NULL,
    linked_at TIMESTAMPTZ,
    expired_at TIMESTAMPTZ
);
"""

#: The tables that hold references, for counts and checks.
REFERENCE_TABLES = (
    "reference",
    "reference_identifier",
    "reference_enhancement",
    "reference_association",
)
ALL_TABLES = ("import_records", "import_batches", "import_results", *REFERENCE_TABLES)

_LOCK_MARKERS = ("lock", "Conflicting", "being used by another process")


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _LOCK_MARKERS)


#: Memory of a scratch engine: chunks are processed a slice at a time, and what does not fit
#: spills to disk, so a batch of any size fits.
SCRATCH_MEMORY = "640MB"


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal, for the few places DuckDB takes no parameter
    (`COPY … TO`, a view's `read_parquet` list)."""
    return "'" + value.replace("'", "''") + "'"


def scratch_engine() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for a stage's own work (its JSON functions, clustering), never the
    store: capped memory, spilling to the system's temp folder (not `./.tmp`, DuckDB's default)."""
    engine = duckdb.connect(":memory:")
    engine.execute("SET enable_progress_bar = false")
    engine.execute(f"SET memory_limit = '{SCRATCH_MEMORY}'")
    spill = Path(tempfile.gettempdir()) / "import_pipeline-duckdb"
    engine.execute(f"SET temp_directory = '{spill.as_posix()}'")
    return engine


@contextmanager
def connect(
    path: Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 120.0,
    memory_limit: str = DEFAULT_STORE_MEMORY,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Opens the store, waiting up to `wait_seconds` while another process holds it.

    Raises:
        NotFound: a reader asked for a store that does not exist yet.
        StoreBusy: the store stayed locked for longer than `wait_seconds`.
    """
    if read_only and not path.exists():
        raise NotFound(f"no reference store at {path}: nothing has been imported yet")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"the reference store {path} is held by another process (an import is "
                    f"writing); gave up after waiting {wait_seconds:.0f}s — try again shortly"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        conn.execute("SET enable_progress_bar = false")
        conn.execute(f"SET memory_limit = '{memory_limit}'")
        if not read_only:
            ensure_schema(conn)
        yield conn
    finally:
        conn.close()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(_SCHEMA)
    conn.execute(
        "INSERT INTO store_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
        [str(SCHEMA_VERSION)],
    )


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commits when the body returns, rolls back when it raises."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ---------------------------------------------------------------------------------------------
# Records and batches
# ---------------------------------------------------------------------------------------------


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
            collision_strategy, problem, finalised)
        VALUES (uuid(), $key, $source_name, $processor_name, $processor_version,
            $expected_reference_count, $search_string, $searched_at, $notes,
            $collision_strategy, $problem, $finalised)
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


def imported_checksums(conn: duckdb.DuckDBPyConnection, record_key: str) -> dict[str, str]:
    """Batch name → checksum of the version whose import finished, for one record."""
    rows = conn.execute(
        """
        SELECT name, checksum FROM import_batches
        WHERE record_key = ? AND checksum IS NOT NULL AND status NOT IN ('created', 'started')
        """,
        [record_key],
    ).fetchall()
    return {name: checksum for name, checksum in rows}


def start_batch(
    conn: duckdb.DuckDBPyConnection, record_key: str, name: str, storage_url: str, run_id: str
) -> str:
    """Marks a batch as being imported; returns its id (stable across versions)."""
    row = conn.execute(
        """
        INSERT INTO import_batches AS b (id, record_key, name, storage_url, status, run_id)
        VALUES (uuid(), ?, ?, ?, 'started', ?)
        ON CONFLICT (record_key, name) DO UPDATE SET
            status = 'started', storage_url = excluded.storage_url, run_id = excluded.run_id,
            updated_at = now()
        RETURNING id
        """,
        [record_key, name, storage_url, run_id],
    ).fetchone()
    assert row is not None
    return str(row[0])


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
            UPDATE import_batches SET status = 'failed', failure_details = ?, checksum = ?,
                physical_lines = ?, blank_lines = ?, updated_at = now()
            WHERE id = ?
            """,
            [reason, checksum, physical_lines, blank_lines, batch_id],
        )


# ---------------------------------------------------------------------------------------------
# Readers (the CLI)
# ---------------------------------------------------------------------------------------------

RESULT_STATUSES = [s.value for s in ImportResultStatus]


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(RESULT_STATUSES, 0)


def record_status(batch_statuses: list[str], finalised: bool) -> ImportRecordStatus:
    """`created` until a batch starts, then `started`; `completed` once finalised and all
    batches are terminal (contract section 4)."""
    if not batch_statuses:
        return ImportRecordStatus.CREATED
    terminal = all(
        s not in (ImportBatchStatus.CREATED, ImportBatchStatus.STARTED) for s in batch_statuses
    )
    if finalised and terminal:
        return ImportRecordStatus.COMPLETED
    return ImportRecordStatus.STARTED


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
    # Three queries for the whole record, whatever its number of batches.
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
    if (
        conn.execute("SELECT 1 FROM import_records WHERE record_key = ?", [record_key]).fetchone()
        is None
    ):
        raise NotFound(f"no import record {record_key!r}")
    if (
        batch is not None
        and conn.execute(
            "SELECT 1 FROM import_batches WHERE record_key = ? AND name = ?", [record_key, batch]
        ).fetchone()
        is None
    ):
        raise NotFound(f"record {record_key!r} has no batch {batch!r}")
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
        SELECT r.id, r.import_batch_id, r.line_number, r.status, r.reference_id, r.errors,
            r.failure_details, r.unresolved_references
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
            "line_number": line,
            "status": result_status,
            "reference_id": str(ref) if ref else None,
            "errors": json.loads(errors),
            "failure_details": details,
            "unresolved_references": json.loads(unresolved),
        }
        for rid, batch_id, line, result_status, ref, errors, details, unresolved in rows
    ]
    return {
        "limit": limit,
        "offset": offset,
        "count": len(results),
        "total": total_row[0] if total_row else 0,
        "results": results,
    }


def find_reference(
    conn: duckdb.DuckDBPyConnection,
    *,
    reference_id: str | None = None,
    identifier_type: str | None = None,
    identifier: str | None = None,
    other_identifier_name: str | None = None,
) -> dict[str, Any]:
    """One reference with its identifiers and enhancements, by id or by identifier."""
    if reference_id is None:
        row = conn.execute(
            """
            SELECT reference_id FROM reference_identifier
            WHERE identifier_type = ? AND identifier = ?
                AND (? IS NULL OR other_identifier_name = ?)
            LIMIT 1
            """,
            [identifier_type, identifier, other_identifier_name, other_identifier_name],
        ).fetchone()
        if row is None:
            raise NotFound(f"no reference with {identifier_type} {identifier!r}")
        reference_id = str(row[0])
    ref = conn.execute(
        "SELECT id, visibility, created_at, updated_at FROM reference WHERE id = ?", [reference_id]
    ).fetchone()
    if ref is None:
        raise NotFound(f"no reference {reference_id}")
    identifiers = [
        {"identifier_type": t, "identifier": v, **({"other_identifier_name": n} if n else {})}
        for t, v, n in conn.execute(
            """
            SELECT identifier_type, identifier, other_identifier_name FROM reference_identifier
            WHERE reference_id = ? ORDER BY identifier_type, identifier
            """,
            [reference_id],
        ).fetchall()
    ]
    enhancements = [
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
            [reference_id],
        ).fetchall()
    ]
    return {
        "id": str(ref[0]),
        "visibility": ref[1],
        "created_at": _jsonable(ref[2]),
        "updated_at": _jsonable(ref[3]),
        "identifiers": identifiers,
        "enhancements": enhancements,
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


# ---------------------------------------------------------------------------------------------
# Invariants (the asset checks): each returns the offending rows, empty when it holds
# ---------------------------------------------------------------------------------------------


def lines_without_one_result(conn: duckdb.DuckDBPyConnection, record_key: str) -> list[tuple]:
    """Finished batches whose result count differs from their non-blank line count."""
    return conn.execute(
        """
        SELECT b.name, b.physical_lines - b.blank_lines AS lines, count(r.id) AS results,
            count(DISTINCT r.line_number) AS distinct_lines
        FROM import_batches b LEFT JOIN import_results r ON r.import_batch_id = b.id
        WHERE b.record_key = ? AND b.status NOT IN ('created', 'started')
            AND b.failure_details IS NULL
        GROUP BY b.name, b.physical_lines, b.blank_lines
        HAVING count(r.id) <> b.physical_lines - b.blank_lines OR count(r.id) <> count(DISTINCT r.line_number)
        """,
        [record_key],
    ).fetchall()


def results_with_missing_reference(conn: duckdb.DuckDBPyConnection, record_key: str) -> list[tuple]:
    """Non-failed results whose reference does not exist (or that have none)."""
    return conn.execute(
        """
        SELECT b.name, r.line_number, r.status, r.reference_id
        FROM import_results r JOIN import_batches b ON r.import_batch_id = b.id
        LEFT JOIN reference ref ON ref.id = r.reference_id
        WHERE b.record_key = ? AND r.status <> 'failed' AND ref.id IS NULL
        ORDER BY b.name, r.line_number LIMIT 100
        """,
        [record_key],
    ).fetchall()


def identifiers_on_two_references(
    conn: duckdb.DuckDBPyConnection, record_key: str | None = None
) -> list[tuple]:
    """Normalised trusted identifiers that belong to more than one reference.

    With `record_key`, only the identifiers of the references that record's results point at:
    an import can only break the rule there, and the whole store need not be grouped.
    """
    scope = ""
    params: list[str] = []
    if record_key is not None:
        scope = """
            AND (identifier_type, identifier) IN (
                SELECT (ri.identifier_type, ri.identifier)
                FROM import_results r JOIN import_batches b ON r.import_batch_id = b.id
                JOIN reference_identifier ri ON ri.reference_id = r.reference_id
                WHERE b.record_key = ?)"""
        params = [record_key]
    return conn.execute(
        f"""
        SELECT identifier_type, identifier, count(DISTINCT reference_id) AS refs
        FROM reference_identifier
        WHERE identifier_type <> 'other' {scope}
        GROUP BY identifier_type, identifier
        HAVING count(DISTINCT reference_id) > 1
        LIMIT 100
        """,
        params,
    ).fetchall()


def failing_lines(
    conn: duckdb.DuckDBPyConnection, record_key: str, limit: int = 25
) -> list[dict[str, Any]]:
    """The first failed or partially failed lines of a record, by batch then line, each with
    its first error and how many more it has."""
    rows = conn.execute(
        """
        SELECT b.name, r.line_number, r.status, r.errors::VARCHAR
        FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
        WHERE b.record_key = ? AND r.status IN ('failed', 'partially_failed')
        ORDER BY b.name, r.line_number
        LIMIT ?
        """,
        [record_key, limit],
    ).fetchall()
    out = []
    for batch, line, status, errors_text in rows:
        errors = json.loads(errors_text) or [{"code": "", "field": None, "message": ""}]
        first = errors[0]
        out.append(
            {
                "batch": batch,
                "line": line,
                "status": status,
                "code": first["code"],
                "field": first.get("field"),
                "message": first["message"]
                + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
            }
        )
    return out


def fail_batches_of_run(conn: duckdb.DuckDBPyConnection, run_id: str, reason: str) -> list[str]:
    """Marks the batches a dead run left `started` as `failed`, with the reason; their names."""
    rows = conn.execute(
        """
        UPDATE import_batches SET status = 'failed', failure_details = ?, updated_at = now()
        WHERE run_id = ? AND status = 'started'
        RETURNING record_key || '/' || name
        """,
        [reason, run_id],
    ).fetchall()
    return [name for (name,) in rows]
