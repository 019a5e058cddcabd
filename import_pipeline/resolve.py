"""Resolve: cluster a batch's lines, match the clusters to the store, write them and the results.

Both work in DuckDB over the batch's staged Parquet files, so a batch of any size is bounded by
DuckDB's memory cap (it spills) instead of being held in Python. `resolve_and_store` is one
transaction: matching against the store and writing must see the same store, so they are not
split (contract section 5); results are computed in Polars a slice of lines at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from import_pipeline.associations import (
    record_associations,
    refresh_associations,
    update_batch_statuses,
)
from import_pipeline.identifiers import TRUSTED_TYPES
from import_pipeline.models import (
    CollisionStrategy,
    ErrorCode,
    ImportResultStatus,
    derive_batch_status,
)
from import_pipeline.results import ERROR, errors_json, failure_details
from import_pipeline.store import sql_literal, transaction

_TRUSTED = sorted(TRUSTED_TYPES)


def cluster_lines_in(engine: duckdb.DuckDBPyConnection, lines: str, identifiers: str) -> None:
    """Writes temp table `c_labels` (`line_number`, `cluster`): each line's cluster is the
    smallest line number it is linked to through shared trusted identifiers, directly or through
    a chain; lines with none are clusters of their own. `lines` and `identifiers` are SQL
    sources (a table, or `read_parquet(...)`). In DuckDB, so a batch of any size spills rather
    than filling memory.

    Label propagation with pointer jumping: O(log(chain length)) rounds of joins.
    """
    engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE c_edges AS
            SELECT DISTINCT line_number, identifier_type, identifier FROM {identifiers}
            WHERE identifier_type IN ({", ".join(f"'{t}'" for t in _TRUSTED)});
        CREATE OR REPLACE TEMP TABLE c_labels AS
            SELECT line_number, line_number AS cluster FROM {lines};
        """
    )
    while True:
        engine.execute(
            """
            CREATE OR REPLACE TEMP TABLE c_next AS
            WITH by_key AS (
                SELECT e.identifier_type, e.identifier, min(l.cluster) AS cluster
                FROM c_edges e JOIN c_labels l USING (line_number)
                GROUP BY e.identifier_type, e.identifier
            ), proposed AS (
                SELECT e.line_number, min(k.cluster) AS proposed
                FROM c_edges e JOIN by_key k USING (identifier_type, identifier)
                GROUP BY e.line_number
            ), step AS (
                SELECT l.line_number, least(l.cluster, COALESCE(p.proposed, l.cluster)) AS cluster
                FROM c_labels l LEFT JOIN proposed p USING (line_number)
            )
            -- Pointer jumping: a line takes its label's label, so long chains collapse fast.
            SELECT s.line_number, least(s.cluster, COALESCE(j.cluster, s.cluster)) AS cluster
            FROM step s LEFT JOIN step j ON j.line_number = s.cluster
            """
        )
        (changed,) = engine.execute(
            "SELECT count(*) FROM c_next n JOIN c_labels l USING (line_number) "
            "WHERE n.cluster <> l.cluster"
        ).fetchall()[0]
        engine.execute("DROP TABLE c_labels; ALTER TABLE c_next RENAME TO c_labels")
        if not changed:
            engine.execute("DROP TABLE c_edges")
            return


def cluster_lines(identifiers: pl.DataFrame, lines: pl.Series) -> pl.DataFrame:
    """`cluster_lines_in` over frames: `line_number` → `cluster`, sorted by line."""
    engine = duckdb.connect(":memory:")
    try:
        engine.register("f_identifiers", identifiers)
        engine.register("f_lines", pl.DataFrame({"line_number": lines}))
        cluster_lines_in(engine, "f_lines", "f_identifiers")
        return engine.sql("SELECT * FROM c_labels ORDER BY line_number").pl()
    finally:
        engine.close()


@dataclass
class BatchOutcome:
    """What one batch's import did."""

    counts: dict[str, int]
    references_created: int
    references_merged: int
    status: str
    associations_linked: int = 0
    associations_waiting: int = 0


def _merge_sql(strategy: CollisionStrategy) -> list[str]:
    """Statements applying `strategy` to matched references (table t_target: cluster → ref)."""
    replaces_identifiers = strategy in (
        CollisionStrategy.MERGE_AGGRESSIVE,
        CollisionStrategy.APPEND,
        CollisionStrategy.OVERWRITE,
    )
    statements = []
    if replaces_identifiers:
        # Incoming replaces existing identifiers of the same type (and other_identifier_name).
        statements.append(
            """
            DELETE FROM reference_identifier ri USING (
                SELECT DISTINCT t.reference_id, i.identifier_type,
                    COALESCE(i.other_identifier_name, '') AS other_name
                FROM t_ids i JOIN t_target t USING (cluster) WHERE NOT t.is_new
            ) k
            WHERE ri.reference_id = k.reference_id AND ri.identifier_type = k.identifier_type
                AND COALESCE(ri.other_identifier_name, '') = k.other_name
                AND NOT EXISTS (
                    SELECT 1 FROM t_ids i JOIN t_target t USING (cluster)
                    WHERE t.reference_id = ri.reference_id AND i.identifier_type = ri.identifier_type
                        AND i.identifier = ri.identifier)
            """
        )
    if strategy == CollisionStrategy.MERGE_AGGRESSIVE:
        statements.append(
            """
            DELETE FROM reference_enhancement re USING (
                SELECT DISTINCT t.reference_id, e.enhancement_type, e.source
                FROM t_enh e JOIN t_target t USING (cluster) WHERE NOT t.is_new
            ) k
            WHERE re.reference_id = k.reference_id AND re.enhancement_type = k.enhancement_type
                AND re.source = k.source
            """
        )
    if strategy == CollisionStrategy.OVERWRITE:
        statements.append(
            """
            DELETE FROM reference_enhancement
            WHERE reference_id IN (SELECT reference_id FROM t_target WHERE NOT is_new)
            """
        )
    return statements


def parquet_source(paths: list[str]) -> str:
    """SQL reading the Parquet files `paths` (one schema) as one table."""
    return "read_parquet([" + ", ".join(sql_literal(p) for p in paths) + "])"


#: Results are computed and written this many lines at a time: memory stays bounded.
RESULTS_SLICE_LINES = 250_000


def resolve_and_store(
    conn: duckdb.DuckDBPyConnection,
    *,
    batch_id: str,
    checksum: str,
    strategy: CollisionStrategy,
    parts: dict[str, list[str]],
    physical_lines: int,
    blank_lines: int,
    now: datetime,
    ttl: timedelta,
) -> BatchOutcome:
    """Matches each cluster to the store, writes references and one result per line, all in
    one transaction. The batch is read from Parquet by DuckDB (capped memory, spilling), never
    held whole in Python.

    Args:
        parts: Parquet files of each part of the validated batch:
            lines: every non-blank line (`line_number`, `visibility`).
            identifiers: the valid identifiers (`validate.IDENTIFIERS_SCHEMA`).
            enhancements: the valid enhancements (`validate.ENHANCEMENTS_SCHEMA`).
            errors: `validate.ERRORS_SCHEMA`; a `fatal` error fails its line.
            clusters: `line_number` → `cluster` (see `cluster_lines_in`).
            associations: targets of the valid reference_association enhancements
                (`validate.ASSOCIATIONS_SCHEMA`); their lines wait until the targets exist.
        now, ttl: the clock and how long an unresolved association waits.
    """
    source = {name: parquet_source(paths) for name, paths in parts.items()}
    trusted = ", ".join(f"'{t}'" for t in _TRUSTED)
    with transaction(conn):
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE t_errors AS SELECT * FROM {source["errors"]};
            CREATE OR REPLACE TEMP TABLE t_all_lines AS
                SELECT l.line_number, l.visibility, c.cluster FROM {source["lines"]} l
                JOIN {source["clusters"]} c USING (line_number);
            -- The lines that are written: not failed; `has_errors` if a part of it failed.
            CREATE OR REPLACE TEMP TABLE t_lines AS
                SELECT l.*, l.line_number IN (SELECT line_number FROM t_errors WHERE NOT fatal)
                    AS has_errors
                FROM t_all_lines l
                WHERE l.line_number NOT IN (SELECT line_number FROM t_errors WHERE fatal);
            CREATE OR REPLACE TEMP TABLE t_ids AS
                SELECT i.*, l.cluster FROM {source["identifiers"]} i JOIN t_lines l USING (line_number);
            CREATE OR REPLACE TEMP TABLE t_enh AS
                SELECT e.*, l.cluster FROM {source["enhancements"]} e JOIN t_lines l USING (line_number);
            CREATE OR REPLACE TEMP TABLE t_match AS
                SELECT i.cluster, list(DISTINCT ri.reference_id ORDER BY ri.reference_id) AS refs
                FROM t_ids i JOIN reference_identifier ri
                    ON ri.identifier_type = i.identifier_type AND ri.identifier = i.identifier
                WHERE i.identifier_type IN ({trusted})
                GROUP BY i.cluster;
            CREATE OR REPLACE TEMP TABLE t_cluster AS
                SELECT c.cluster, c.visibility, m.refs,
                    COALESCE(len(m.refs), 0) AS matched
                FROM (SELECT cluster, arg_min(visibility, line_number) AS visibility
                      FROM t_lines GROUP BY cluster) c
                LEFT JOIN t_match m USING (cluster);
            """
        )
        writes = strategy not in (CollisionStrategy.DISCARD, CollisionStrategy.FAIL)
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE t_target AS
                SELECT cluster, visibility, matched = 0 AS is_new,
                    CASE WHEN matched = 0 THEN uuid() ELSE refs[1] END AS reference_id
                FROM t_cluster
                WHERE matched = 0 OR (matched = 1 AND {"TRUE" if writes else "FALSE"});
            """
        )
        conn.execute(
            """
            INSERT INTO reference (id, visibility)
                SELECT reference_id, visibility FROM t_target WHERE is_new;
            """
        )
        if strategy in (
            CollisionStrategy.MERGE_AGGRESSIVE,
            CollisionStrategy.APPEND,
            CollisionStrategy.OVERWRITE,
        ):
            conn.execute(
                """
                UPDATE reference SET visibility = t.visibility, updated_at = now()
                FROM t_target t WHERE reference.id = t.reference_id AND NOT t.is_new
                """
            )
        for statement in _merge_sql(strategy):
            conn.execute(statement)
        defensive = strategy == CollisionStrategy.MERGE_DEFENSIVE
        # Only the stored references this batch touches are compared with, not whole
        # tables: small hash tables, however big the store.
        conn.execute(
            """
            CREATE OR REPLACE TEMP TABLE t_stored_ids AS
                SELECT ri.reference_id, ri.identifier_type, ri.identifier,
                    ri.other_identifier_name
                FROM reference_identifier ri
                WHERE ri.reference_id IN (SELECT reference_id FROM t_target WHERE NOT is_new);
            CREATE OR REPLACE TEMP TABLE t_stored_enh AS
                SELECT re.reference_id, re.content_hash, re.enhancement_type, re.source
                FROM reference_enhancement re
                WHERE re.reference_id IN (SELECT reference_id FROM t_target WHERE NOT is_new);
            """
        )
        conn.execute(
            """
            INSERT INTO reference_identifier (reference_id, identifier_type, identifier,
                    other_identifier_name)
            SELECT DISTINCT t.reference_id, i.identifier_type, i.identifier,
                i.other_identifier_name
            FROM t_ids i JOIN t_target t USING (cluster)
            WHERE NOT EXISTS (
                SELECT 1 FROM t_stored_ids ri
                WHERE ri.reference_id = t.reference_id
                    AND ri.identifier_type = i.identifier_type
                    AND COALESCE(ri.other_identifier_name, '') =
                        COALESCE(i.other_identifier_name, '')
                    -- merge_defensive: a type the stored reference has already is kept
                    AND (ri.identifier = i.identifier OR $defensive))
            """,
            {"defensive": defensive},
        )
        conn.execute(
            f"""
            INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
                visibility, robot_version, processor_version, content, content_hash)
            WITH keyed AS NOT MATERIALIZED (  -- narrow: scanned twice rather than stored
                SELECT e.line_number, e.position, t.reference_id,
                    hash(t.reference_id, e.content_hash) AS copy_key
                FROM t_enh e JOIN t_target t USING (cluster)
            ), repeated AS (
                -- Where a second copy of an enhancement of a reference can be, found on one
                -- 64-bit key per row (a batch's millions of rows stay a small hash table);
                -- the exact comparison is made on these few rows only.
                SELECT copy_key FROM keyed GROUP BY copy_key HAVING count(*) > 1
            ), later_copies AS (
                SELECT line_number, position FROM (
                    SELECT k.line_number, k.position, row_number() OVER (
                        PARTITION BY k.reference_id, e.content_hash
                        ORDER BY k.line_number, k.position) AS copy
                    FROM keyed k
                    JOIN t_enh e USING (line_number, position)
                    WHERE k.copy_key IN (SELECT copy_key FROM repeated)
                ) WHERE copy > 1
            )
            SELECT uuid(), reference_id, enhancement_type, source, visibility, robot_version,
                processor_version, content, content_hash
            FROM (
                SELECT t.reference_id, e.*
                FROM t_enh e JOIN t_target t USING (cluster)
                ANTI JOIN later_copies c USING (line_number, position)
            ) e
            WHERE NOT EXISTS (
                    SELECT 1 FROM t_stored_enh re
                    WHERE re.reference_id = e.reference_id AND re.content_hash = e.content_hash)
                AND NOT ({"TRUE" if defensive else "FALSE"} AND EXISTS (
                    SELECT 1 FROM t_stored_enh re
                    WHERE re.reference_id = e.reference_id
                        AND re.enhancement_type = e.enhancement_type
                        AND re.source = e.source))
            """
        )
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE t_associated AS
                SELECT DISTINCT line_number FROM {source["associations"]}
            """
        )
        conn.execute("DELETE FROM import_results WHERE import_batch_id = ?", [batch_id])
        for first in range(1, max(physical_lines, 1) + 1, RESULTS_SLICE_LINES):
            _store_results(conn, batch_id, strategy, first, first + RESULTS_SLICE_LINES)
        conn.execute(
            """
            UPDATE import_batches SET checksum = ?, failure_details = NULL,
                physical_lines = ?, blank_lines = ?, updated_at = now()
            WHERE id = ?
            """,
            [checksum, physical_lines, blank_lines, batch_id],
        )
        # References this batch created or merged into: those of clusters with a line that
        # was written (a cluster whose lines all failed wrote nothing).
        written = dict(
            conn.execute(
                """
                SELECT t.is_new, count(*) FROM t_target t
                WHERE t.cluster IN (
                    SELECT l.cluster FROM t_lines l JOIN import_results r
                        ON r.import_batch_id = ? AND r.line_number = l.line_number
                    WHERE r.status <> 'failed')
                GROUP BY t.is_new
                """,
                [batch_id],
            ).fetchall()
        )
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE t_associations AS
                SELECT a.*, r.reference_id FROM {source["associations"]} a
                JOIN import_results r ON r.import_batch_id = ? AND r.line_number = a.line_number
                WHERE r.status = 'retrying'
            """,
            [batch_id],
        )
        record_associations(conn, batch_id, now, source="t_associations")
        linked = refresh_associations(conn, now=now, ttl=ttl)
        update_batch_statuses(conn, [batch_id])
        counts = {s.value: 0 for s in ImportResultStatus}
        counts.update(
            dict(
                conn.execute(
                    "SELECT status, count(*) FROM import_results WHERE import_batch_id = ? "
                    "GROUP BY 1",
                    [batch_id],
                ).fetchall()
            )
        )
        status = derive_batch_status(counts).value
        for table in _BATCH_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return BatchOutcome(
        counts=counts,
        references_created=written.get(True, 0),
        references_merged=written.get(False, 0),
        status=status,
        associations_linked=linked.linked,
        associations_waiting=linked.waiting,
    )


_BATCH_TABLES = (
    "t_errors", "t_all_lines", "t_lines", "t_ids", "t_enh", "t_match", "t_cluster", "t_target",
    "t_stored_ids", "t_stored_enh", "t_associated", "t_associations",
)  # fmt: skip


def _store_results(
    conn: duckdb.DuckDBPyConnection,
    batch_id: str,
    strategy: CollisionStrategy,
    first: int,
    end: int,
) -> None:
    """Computes and inserts the results of lines `first` ≤ n < `end`."""
    window = [first, end]
    lines = conn.sql(
        "SELECT line_number FROM t_all_lines WHERE line_number >= ? AND line_number < ?",
        params=window,
    ).pl()
    if lines.is_empty():
        return
    fates = conn.sql(
        """
        SELECT l.line_number, l.cluster, l.has_errors, c.matched, c.refs::VARCHAR[] AS refs,
            t.reference_id::VARCHAR AS reference_id
        FROM t_lines l JOIN t_cluster c USING (cluster) LEFT JOIN t_target t USING (cluster)
        WHERE l.line_number >= ? AND l.line_number < ?
        """,
        params=window,
    ).pl()
    errors = conn.sql(
        "SELECT * FROM t_errors WHERE line_number >= ? AND line_number < ?", params=window
    ).pl()
    associated = conn.sql(
        "SELECT line_number FROM t_associated WHERE line_number >= ? AND line_number < ?",
        params=window,
    ).pl()["line_number"]
    results = _results(lines, fates, errors, strategy, associated)
    conn.register("f_results", results)
    try:
        conn.execute(
            """
            INSERT INTO import_results (id, import_batch_id, line_number, status,
                reference_id, errors, failure_details, unresolved_references)
            SELECT uuid(), $batch, line_number, status, reference_id::UUID, errors,
                failure_details, '[]' FROM f_results
            """,
            {"batch": batch_id},
        )
    finally:
        conn.unregister("f_results")


def _results(
    lines: pl.DataFrame,
    fates: pl.DataFrame,
    errors: pl.DataFrame,
    strategy: CollisionStrategy,
    associated_lines: pl.Series,
) -> pl.DataFrame:
    """One result per line: status, reference, errors (JSON) and their rendering.

    `fates`: per usable line, its cluster's match (`matched`, `refs`) and written reference.
    """
    collided = fates.filter(pl.col("matched") >= 2).select(
        "line_number",
        code=pl.lit(ErrorCode.IDENTIFIER_COLLISION.value),
        field=pl.lit("identifiers"),
        message=pl.format(
            "the line's identifiers match {} different stored references: {}",
            pl.col("matched"),
            pl.col("refs").list.join(", "),
        ),
        fatal=pl.lit(True),
    )
    duplicate = fates.filter(
        (pl.col("matched") == 1) & pl.lit(strategy == CollisionStrategy.FAIL)
    ).select(
        "line_number",
        code=pl.lit(ErrorCode.DUPLICATE_REFERENCE.value),
        field=pl.lit("identifiers"),
        message=pl.format(
            "a stored reference has these identifiers ({}) and the record's "
            "collision_strategy is 'fail'",
            pl.col("refs").list.first(),
        ),
        fatal=pl.lit(True),
    )
    all_errors = pl.concat([errors, collided.cast(errors.schema), duplicate.cast(errors.schema)])  # type: ignore[arg-type]
    failed = all_errors.filter("fatal").select("line_number").unique()
    discard_ref = pl.when(
        (pl.col("matched") == 1) & pl.lit(strategy == CollisionStrategy.DISCARD)
    ).then(pl.col("refs").list.first())
    per_line = (
        all_errors.sort("line_number")
        .group_by("line_number", maintain_order=True)
        .agg(errors=pl.struct("code", "message", "field"))
    )
    results = (
        lines.select("line_number")
        .join(
            fates.select("line_number", "reference_id", "refs", "matched"),
            on="line_number",
            how="left",
        )
        .join(per_line, on="line_number", how="left")
        .with_columns(is_failed=pl.col("line_number").is_in(failed["line_number"].implode()))
        .with_columns(
            reference_id=pl.when(pl.col("is_failed"))
            .then(None)
            .otherwise(pl.coalesce("reference_id", discard_ref)),
            errors=pl.col("errors")
            .fill_null(pl.lit([], dtype=pl.List(ERROR)))
            .cast(pl.List(ERROR)),
        )
        .with_columns(
            # A written line with associations waits for them (see associations.py).
            status=pl.when(pl.col("is_failed"))
            .then(pl.lit(ImportResultStatus.FAILED.value))
            .when(
                pl.col("line_number").is_in(associated_lines.implode())
                & pl.col("reference_id").is_not_null()
                & pl.lit(strategy != CollisionStrategy.DISCARD)
            )
            .then(pl.lit(ImportResultStatus.RETRYING.value))
            .when(pl.col("errors").list.len() > 0)
            .then(pl.lit(ImportResultStatus.PARTIALLY_FAILED.value))
            .otherwise(pl.lit(ImportResultStatus.COMPLETED.value)),
        )
        .select(
            "line_number",
            "status",
            "reference_id",
            errors=errors_json(pl.col("errors")),
            failure_details=failure_details(pl.col("line_number"), pl.col("errors")),
        )
        .sort("line_number")
    )
    return results
