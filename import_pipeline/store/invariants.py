"""The store's invariants, as the asset checks ask them: each query returns the rows that
break its rule, none when it holds."""

from __future__ import annotations

import duckdb

from import_pipeline.domain.formats import ENTRY_KEY_NAME
from import_pipeline.domain.statuses import TERMINAL_BATCH_SQL, ImportResultStatus

_FAILED = ImportResultStatus.FAILED.value


def lines_without_one_result(conn: duckdb.DuckDBPyConnection, record_key: str) -> list[tuple]:
    """Finished batches whose result count differs from their non-blank line count."""
    return conn.execute(
        f"""
        SELECT b.name, b.physical_lines - b.blank_lines AS lines, count(r.id) AS results,
            count(DISTINCT r.line_number) AS distinct_lines
        FROM import_batches b LEFT JOIN import_results r ON r.import_batch_id = b.id
        WHERE b.record_key = ? AND b.status IN {TERMINAL_BATCH_SQL}
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
        WHERE b.record_key = ? AND r.status <> ? AND ref.id IS NULL
        ORDER BY b.name, r.line_number LIMIT 100
        """,
        [record_key, _FAILED],
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
        WHERE (identifier_type <> 'other' OR other_identifier_name = '{ENTRY_KEY_NAME}') {scope}
        GROUP BY identifier_type, identifier
        HAVING count(DISTINCT reference_id) > 1
        LIMIT 100
        """,
        params,
    ).fetchall()
