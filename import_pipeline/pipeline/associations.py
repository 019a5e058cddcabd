"""Reference associations (contract section 5): waiting, linked, expired.

A `reference_association` enhancement names other references by identifier or UUID. A target
not in the store leaves the line's result `retrying` with `unresolved_references`, in the
manner of the commercetools Import API's `unresolved` state; a later import that brings the
target links it and the result becomes `completed`; after the TTL it becomes
`partially_failed` with `UnresolvedReference`.

Two callers, two scopes: an import links its own associations and the waiting ones whose
targets it wrote (`link_batches`, inside its transaction); the hourly job links whatever is
left (`refresh_associations`). Both expire what waited past the TTL. `now` is a parameter so
tests can move the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.pipeline.frames import ERROR, TARGET
from import_pipeline.pipeline.results import error_struct, errors_json, failure_details
from import_pipeline.store.batch_writes import batch_ids_in
from import_pipeline.store.connection import TempTables
from import_pipeline.store.records import update_batch_statuses

#: The target type of an association that names a reference by its UUID.
UNRESOLVED_REFERENCE_TYPE = "reference_id"
_RETRYING = ImportResultStatus.RETRYING.value


@dataclass
class AssociationOutcome:
    linked: int
    expired: int
    waiting: int
    results_changed: int


def _batch_targets(own: str, references: str) -> str:
    """Which waiting associations an import links (`a2`, with the identifier `ri` of a
    target): its batches' own (`own`: a filter of `import_batch_id`), and those whose target
    is one of the references it wrote (a table of them)."""
    return f"""(a2.{own} OR ri.reference_id IN (SELECT reference_id FROM {references}))"""


def _batch_results(own: str) -> str:
    """Which `retrying` results (`r`) an import moves: its batches' own, and those it linked
    or expired."""
    return f"""(r.{own} OR EXISTS (
        SELECT 1 FROM reference_association x
        WHERE x.import_batch_id = r.import_batch_id AND x.line_number = r.line_number
            AND (x.linked_at = $now OR x.expired_at = $now)))"""


_ALL = "TRUE"


def _record_sql(parts: str) -> str:
    """The targets of the batch's lines that are waiting for them (`retrying`)."""
    return f"""
        INSERT INTO reference_association (reference_id, import_batch_id, line_number,
            association_type, target_type, target, target_other_name, created_at)
        SELECT DISTINCT r.reference_id, $batch::UUID, a.line_number, a.association_type,
            a.target_type, a.target, a.target_other_name, $now
        FROM {parts} a
        JOIN import_results r ON r.import_batch_id = $batch::UUID AND r.line_number = a.line_number
        WHERE r.status = $retrying AND a.target IS NOT NULL
    """


def _link_by_identifier_sql(scope: str) -> str:
    return f"""
        UPDATE reference_association a SET target_reference_id = m.reference_id, linked_at = $now
        FROM (
            SELECT a2.rowid AS row_id, min(ri.reference_id::VARCHAR)::UUID AS reference_id
            FROM reference_association a2 JOIN reference_identifier ri
                ON ri.identifier_type = a2.target_type AND ri.identifier = a2.target
                AND (a2.target_type <> 'other'
                     OR COALESCE(ri.other_identifier_name, '') = COALESCE(a2.target_other_name, ''))
            WHERE a2.target_reference_id IS NULL AND a2.expired_at IS NULL AND {scope}
            GROUP BY a2.rowid
        ) m
        WHERE a.rowid = m.row_id
    """


def _link_by_reference_id_sql(scope: str) -> str:
    return f"""
        UPDATE reference_association a SET target_reference_id = m.reference_id, linked_at = $now
        FROM (SELECT id AS reference_id FROM reference) m
        WHERE a.target_reference_id IS NULL AND a.expired_at IS NULL
            AND a.target_type = '{UNRESOLVED_REFERENCE_TYPE}' AND m.reference_id::VARCHAR = a.target
            AND ({scope})
    """


_EXPIRE_SQL = """
    UPDATE reference_association SET expired_at = $now
    WHERE target_reference_id IS NULL AND expired_at IS NULL AND created_at + $ttl <= $now
"""


def _waiting_results_sql(scope: str) -> str:
    """The `retrying` results in scope, with their associations still waiting and expired."""
    return f"""
        SELECT r.id::VARCHAR AS id, r.import_batch_id::VARCHAR AS batch_id, r.line_number,
            r.errors::VARCHAR AS errors,
            list(struct_pack(identifier_type := a.target_type, identifier := a.target))
                FILTER (WHERE a.target_reference_id IS NULL AND a.expired_at IS NULL) AS waiting,
            list(struct_pack(identifier_type := a.target_type, identifier := a.target))
                FILTER (WHERE a.expired_at IS NOT NULL) AS expired
        FROM import_results r JOIN reference_association a
            ON a.import_batch_id = r.import_batch_id AND a.line_number = r.line_number
        WHERE r.status = $retrying AND ({scope})
        GROUP BY ALL
    """


def _count(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def record_associations(
    conn: duckdb.DuckDBPyConnection, batch_id: str, parts: list[str], now: datetime
) -> None:
    """Stores the targets of the batch's waiting lines (`parts`: its staged
    `frames.ASSOCIATIONS` files), replacing what an older version of the batch stored."""
    conn.execute("DELETE FROM reference_association WHERE import_batch_id = ?", [batch_id])
    conn.execute(
        _record_sql("read_parquet($parts)"),
        {"parts": parts, "batch": batch_id, "now": now, "retrying": _RETRYING},
    )


def link_batches(
    conn: duckdb.DuckDBPyConnection,
    *,
    batch_ids: list[str],
    parts: list[str] | None,
    references: str,
    now: datetime,
    ttl: timedelta,
) -> AssociationOutcome:
    """Records the batches' associations, then links those whose targets exist and the
    waiting ones of other batches whose target is one of `references` (a table of the
    references the batches wrote), expires those that waited past `ttl` (so that a
    deployment without the hourly job still sees them expire), and moves the results they
    belong to. Inside the batches' transaction.

    `parts` are the staged `frames.ASSOCIATIONS` files of the one batch that has
    associations (the resolver stores such a batch alone); None when no batch has any, which
    still replaces what older versions of them stored."""
    own = batch_ids_in(batch_ids)
    if parts is None:
        conn.execute(f"DELETE FROM reference_association WHERE {own}")
    else:
        (batch_id,) = batch_ids
        record_associations(conn, batch_id, parts, now)
    params: dict[str, object] = {"now": now}
    linked = _count(conn, _link_by_identifier_sql(_batch_targets(own, references)), params)
    if parts is not None:
        linked += _count(conn, _link_by_reference_id_sql(f"a.{own}"), params)
    expired = _count(conn, _EXPIRE_SQL, {"now": now, "ttl": ttl})
    moved = _move_results(conn, _batch_results(own), params)
    waiting = 0
    if parts is not None:
        waiting = _count(
            conn,
            f"SELECT count(*) FROM reference_association WHERE {own} "
            "AND target_reference_id IS NULL AND expired_at IS NULL",
            {},
        )
    return AssociationOutcome(
        linked=linked, expired=expired, waiting=waiting, results_changed=moved
    )


def refresh_associations(
    conn: duckdb.DuckDBPyConnection, *, now: datetime, ttl: timedelta
) -> AssociationOutcome:
    """Links every waiting association whose target now exists, expires those older than
    `ttl`, and moves the `retrying` results they belong to. Call inside a transaction."""
    params: dict[str, object] = {"now": now}
    linked = _count(conn, _link_by_identifier_sql(_ALL), params)
    linked += _count(conn, _link_by_reference_id_sql(_ALL), params)
    expired = _count(conn, _EXPIRE_SQL, {"now": now, "ttl": ttl})
    moved = _move_results(conn, _ALL, {})
    waiting = _count(
        conn,
        "SELECT count(*) FROM reference_association "
        "WHERE target_reference_id IS NULL AND expired_at IS NULL",
        {},
    )
    return AssociationOutcome(
        linked=linked, expired=expired, waiting=waiting, results_changed=moved
    )


def _move_results(conn: duckdb.DuckDBPyConnection, scope: str, params: dict[str, object]) -> int:
    """Moves the `retrying` results in `scope` to their next state; how many changed."""
    waiting = conn.sql(_waiting_results_sql(scope), params={**params, "retrying": _RETRYING}).pl()
    changed = _next_states(waiting)
    if not changed.height:
        return 0
    # Rewritten (delete, then insert with the same ids) rather than updated in place: the
    # PostgreSQL store's engine cannot UPDATE a JSON column from a frame.
    columns = (
        "id, import_batch_id, line_number, status, reference_id, errors, failure_details, "
        "unresolved_references, created_at"
    )
    conn.register("frame_moved", changed)
    try:
        with TempTables(conn, "moved") as tables:
            moved = tables.create(
                "results",
                """
                SELECT r.id, r.import_batch_id, r.line_number, m.status, r.reference_id,
                    m.errors::JSON AS errors, m.failure_details,
                    m.unresolved_references::JSON AS unresolved_references, r.created_at
                FROM import_results r JOIN frame_moved m ON r.id::VARCHAR = m.id
                """,
            )
            conn.execute(f"DELETE FROM import_results WHERE id IN (SELECT id FROM {moved})")
            conn.execute(f"INSERT INTO import_results ({columns}) SELECT {columns} FROM {moved}")
    finally:
        conn.unregister("frame_moved")
    update_batch_statuses(conn, changed["batch_id"].unique().to_list())
    return changed.height


def _next_states(results: pl.DataFrame) -> pl.DataFrame:
    """The new state of each `retrying` result, by the state of its associations."""
    waiting = pl.col("waiting").fill_null(pl.lit([], pl.List(TARGET)))
    target = pl.element().struct
    expired_errors = (
        pl.col("expired")
        .fill_null(pl.lit([], pl.List(TARGET)))
        .list.eval(
            error_struct(
                ErrorCode.UNRESOLVED_REFERENCE,
                pl.format(
                    "associated reference {} {} was not found before the association expired",
                    target.field("identifier_type"),
                    target.field("identifier"),
                ),
                "enhancements",
            )
        )
    )
    still_waiting = waiting.list.len() > 0
    errors = (
        pl.when(still_waiting)
        .then("old_errors")
        .otherwise(pl.concat_list("old_errors", expired_errors))
    )
    return (
        results.with_columns(old_errors=pl.col("errors").str.json_decode(pl.List(ERROR)))
        .with_columns(new_errors=errors)
        .select(
            "id",
            "batch_id",
            status=pl.when(still_waiting)
            .then(pl.lit(_RETRYING))
            .when(pl.col("new_errors").list.len() > 0)
            .then(pl.lit(ImportResultStatus.PARTIALLY_FAILED.value))
            .otherwise(pl.lit(ImportResultStatus.COMPLETED.value)),
            errors=errors_json(pl.col("new_errors")),
            failure_details=failure_details(pl.col("line_number"), pl.col("new_errors")),
            unresolved_references=pl.format(
                "[{}]",
                pl.when(still_waiting)
                .then(waiting.list.eval(pl.element().struct.json_encode()).list.join(","))
                .otherwise(pl.lit("")),
            ),
        )
    )
