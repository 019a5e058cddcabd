"""Reference associations (contract section 5): waiting, linked, expired.

A `reference_association` enhancement names other references by identifier or UUID. A target
not in the store leaves the line's result `retrying` with `unresolved_references`, in the
manner of the commercetools Import API's `unresolved` state; a later import that brings the
target links it and the result becomes `completed`; after the TTL it becomes
`partially_failed` with `UnresolvedReference`. `refresh_associations` applies all of that and
runs at the end of every batch import and on the hourly schedule; `now` is a parameter so
tests can move the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from import_pipeline.models import ErrorCode, ImportResultStatus, derive_batch_status
from import_pipeline.results import ERROR, errors_json, failure_details

UNRESOLVED_REFERENCE_TYPE = "reference_id"


@dataclass
class AssociationOutcome:
    linked: int
    expired: int
    waiting: int
    results_changed: int


def record_associations(
    conn: duckdb.DuckDBPyConnection, batch_id: str, now: datetime, source: str = "f_associations"
) -> None:
    """Stores the targets of a batch's written lines (`source` has the ASSOCIATIONS_SCHEMA
    columns plus `reference_id`), replacing what an older version of the batch stored."""
    conn.execute("DELETE FROM reference_association WHERE import_batch_id = ?", [batch_id])
    conn.execute(
        f"""
        INSERT INTO reference_association (reference_id, import_batch_id, line_number,
            association_type, target_type, target, target_other_name, created_at)
        SELECT DISTINCT reference_id::UUID, $batch::UUID, line_number, association_type,
            target_type, target, target_other_name, $now
        FROM {source} WHERE target IS NOT NULL
        """,
        {"batch": batch_id, "now": now},
    )


def refresh_associations(
    conn: duckdb.DuckDBPyConnection, *, now: datetime, ttl: timedelta
) -> AssociationOutcome:
    """Links waiting associations whose target now exists, expires those older than `ttl`,
    and moves the `retrying` results they belong to. Call inside the caller's transaction."""
    linked_by_identifier = conn.execute(
        """
        UPDATE reference_association a
        SET target_reference_id = m.reference_id, linked_at = $now
        FROM (
            SELECT a2.rowid AS row_id, min(ri.reference_id::VARCHAR)::UUID AS reference_id
            FROM reference_association a2 JOIN reference_identifier ri
                ON ri.identifier_type = a2.target_type AND ri.identifier = a2.target
                AND (a2.target_type <> 'other'
                     OR COALESCE(ri.other_identifier_name, '') = COALESCE(a2.target_other_name, ''))
            WHERE a2.target_reference_id IS NULL AND a2.expired_at IS NULL
            GROUP BY a2.rowid
        ) m
        WHERE a.rowid = m.row_id
        """,
        {"now": now},
    ).fetchone()
    linked_by_id = conn.execute(
        """
        UPDATE reference_association a
        SET target_reference_id = r.id, linked_at = $now
        FROM reference r
        WHERE a.target_reference_id IS NULL AND a.expired_at IS NULL
            AND a.target_type = 'reference_id' AND r.id::VARCHAR = a.target
        """,
        {"now": now},
    ).fetchone()
    expired = conn.execute(
        """
        UPDATE reference_association SET expired_at = $now
        WHERE target_reference_id IS NULL AND expired_at IS NULL AND created_at + $ttl <= $now
        """,
        {"now": now, "ttl": ttl},
    ).fetchone()
    waiting_results = conn.sql(
        """
        SELECT r.id::VARCHAR AS id, r.import_batch_id::VARCHAR AS batch_id, r.line_number,
            r.errors::VARCHAR AS errors,
            list(struct_pack(identifier_type := a.target_type, identifier := a.target))
                FILTER (WHERE a.target_reference_id IS NULL AND a.expired_at IS NULL) AS waiting,
            list(struct_pack(identifier_type := a.target_type, identifier := a.target))
                FILTER (WHERE a.expired_at IS NOT NULL) AS expired
        FROM import_results r JOIN reference_association a
            ON a.import_batch_id = r.import_batch_id AND a.line_number = r.line_number
        WHERE r.status = 'retrying'
        GROUP BY ALL
        """
    ).pl()
    changed = _next_states(waiting_results)
    if changed.height:
        conn.register("f_moved", changed)
        try:
            conn.execute(
                """
                UPDATE import_results r SET status = m.status, errors = m.errors,
                    failure_details = m.failure_details,
                    unresolved_references = m.unresolved_references
                FROM f_moved m WHERE r.id::VARCHAR = m.id
                """
            )
        finally:
            conn.unregister("f_moved")
        update_batch_statuses(conn, changed["batch_id"].unique().to_list())
    waiting = conn.execute(
        """
        SELECT count(*) FROM reference_association
        WHERE target_reference_id IS NULL AND expired_at IS NULL
        """
    ).fetchone()
    return AssociationOutcome(
        linked=int((linked_by_identifier or [0])[0]) + int((linked_by_id or [0])[0]),
        expired=int((expired or [0])[0]),
        waiting=int((waiting or [0])[0]),
        results_changed=changed.height,
    )


_TARGET = pl.Struct({"identifier_type": pl.String, "identifier": pl.String})


def _next_states(results: pl.DataFrame) -> pl.DataFrame:
    """The new state of each `retrying` result, by the state of its associations."""
    waiting = pl.col("waiting").fill_null(pl.lit([], pl.List(_TARGET)))
    expired_errors = (
        pl.col("expired")
        .fill_null(pl.lit([], pl.List(_TARGET)))
        .list.eval(
            pl.struct(
                code=pl.lit(ErrorCode.UNRESOLVED_REFERENCE.value),
                message=pl.format(
                    "associated reference {} {} was not found before the association expired",
                    pl.element().struct.field("identifier_type"),
                    pl.element().struct.field("identifier"),
                ),
                field=pl.lit("enhancements"),
            )
        )
    )
    errors = (
        pl.when(waiting.list.len() > 0)
        .then("old_errors")
        .otherwise(pl.concat_list("old_errors", expired_errors))
    )
    return (
        results.with_columns(
            old_errors=pl.col("errors").str.json_decode(pl.List(ERROR)),
        )
        .with_columns(new_errors=errors)
        .select(
            "id",
            "batch_id",
            status=pl.when(waiting.list.len() > 0)
            .then(pl.lit(ImportResultStatus.RETRYING.value))
            .when(pl.col("new_errors").list.len() > 0)
            .then(pl.lit(ImportResultStatus.PARTIALLY_FAILED.value))
            .otherwise(pl.lit(ImportResultStatus.COMPLETED.value)),
            errors=errors_json(pl.col("new_errors")),
            failure_details=failure_details(pl.col("line_number"), pl.col("new_errors")),
            unresolved_references=pl.when(waiting.list.len() > 0)
            .then(waiting.list.eval(pl.element().struct.json_encode()).list.join(","))
            .otherwise(pl.lit(""))
            .pipe(lambda joined: pl.format("[{}]", joined)),
        )
    )


def update_batch_statuses(conn: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> None:
    """Re-derives the status of these batches from their results (contract section 4)."""
    for batch_id in batch_ids:
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM import_results WHERE import_batch_id = ? GROUP BY 1",
                [batch_id],
            ).fetchall()
        )
        conn.execute(
            "UPDATE import_batches SET status = ?, updated_at = now() WHERE id = ?",
            [derive_batch_status(counts).value, batch_id],
        )
