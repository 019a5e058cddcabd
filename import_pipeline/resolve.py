"""Resolve: cluster a batch's lines, match the clusters to the store, write them and the results.

`cluster_lines` is pure Polars. `resolve_and_store` is one DuckDB transaction: matching against
the store and writing must see the same store, so they are not split (contract section 5).
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
from import_pipeline.store import transaction

_TRUSTED = sorted(TRUSTED_TYPES)


def cluster_lines(identifiers: pl.DataFrame, lines: pl.Series) -> pl.DataFrame:
    """Each line's cluster: the smallest line number it is linked to through shared trusted
    identifiers, directly or through a chain. Lines with none are clusters of their own.

    Label propagation with pointer jumping: O(log(chain length)) rounds of joins.
    """
    edges = (
        identifiers.lazy()
        .filter(pl.col("identifier_type").is_in(_TRUSTED))
        .select("line_number", key=pl.concat_str("identifier_type", "identifier", separator="\x1f"))
        .unique()
        .collect()
    )
    labels = pl.DataFrame({"line_number": lines}).with_columns(cluster=pl.col("line_number"))
    while True:
        by_key = edges.join(labels, on="line_number").group_by("key").agg(pl.col("cluster").min())
        proposed = (
            edges.join(by_key, on="key")
            .group_by("line_number")
            .agg(proposed=pl.col("cluster").min())
        )
        step = (
            labels.join(proposed, on="line_number", how="left")
            .with_columns(cluster=pl.min_horizontal("cluster", "proposed"))
            .drop("proposed")
        )
        # Pointer jumping: a line takes its label's label, so long chains collapse fast.
        step = (
            step.join(
                step.rename({"line_number": "cluster", "cluster": "jumped"}),
                on="cluster",
                how="left",
            )
            .with_columns(cluster=pl.min_horizontal("cluster", "jumped"))
            .drop("jumped")
        )
        if step.sort("line_number").equals(labels.sort("line_number")):
            return step.sort("line_number")
        labels = step


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


def resolve_and_store(
    conn: duckdb.DuckDBPyConnection,
    *,
    batch_id: str,
    checksum: str,
    strategy: CollisionStrategy,
    lines: pl.DataFrame,
    identifiers: pl.DataFrame,
    enhancements: pl.DataFrame | str | list[str],
    errors: pl.DataFrame,
    clusters: pl.DataFrame,
    associations: pl.DataFrame,
    physical_lines: int,
    blank_lines: int,
    now: datetime,
    ttl: timedelta,
) -> BatchOutcome:
    """Matches each cluster to the store, writes references and one result per line, all in
    one transaction.

    Args:
        lines: every non-blank line (`line_number`, `visibility`).
        identifiers: the valid identifiers (`validate.IDENTIFIERS_SCHEMA`).
        enhancements: the valid enhancements, as a frame or Parquet file(s) of that schema.
        errors: `validate.ERRORS_SCHEMA`; a `fatal` error fails its line.
        clusters: `line_number` → `cluster` (see `cluster_lines`).
        associations: targets of the valid reference_association enhancements
            (`validate.ASSOCIATIONS_SCHEMA`); their lines wait until the targets exist.
        now, ttl: the clock and how long an unresolved association waits.
    """
    fatal = errors.filter("fatal").select("line_number").unique()
    partial = errors.filter(~pl.col("fatal")).select("line_number").unique()
    usable = (
        lines.join(fatal, on="line_number", how="anti")
        .join(clusters, on="line_number")
        .with_columns(has_errors=pl.col("line_number").is_in(partial["line_number"].implode()))
    )
    conn.register("f_lines", usable)
    conn.register("f_ids", identifiers.join(clusters, on="line_number"))
    if isinstance(enhancements, pl.DataFrame):
        conn.register("f_enh_raw", enhancements)
        enh_source = "f_enh_raw"
    else:
        paths = [enhancements] if isinstance(enhancements, str) else enhancements
        enh_source = (
            "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"
        )
    conn.register("f_clusters", clusters)
    try:
        with transaction(conn):
            conn.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE t_ids AS SELECT * FROM f_ids
                    WHERE line_number IN (SELECT line_number FROM f_lines);
                CREATE OR REPLACE TEMP TABLE t_enh AS
                    SELECT e.*, c.cluster FROM {enh_source} e JOIN f_clusters c USING (line_number)
                    WHERE e.line_number IN (SELECT line_number FROM f_lines);
                CREATE OR REPLACE TEMP TABLE t_match AS
                    SELECT i.cluster, list(DISTINCT ri.reference_id ORDER BY ri.reference_id) AS refs
                    FROM t_ids i JOIN reference_identifier ri
                        ON ri.identifier_type = i.identifier_type AND ri.identifier = i.identifier
                    WHERE i.identifier_type IN ({", ".join(f"'{t}'" for t in _TRUSTED)})
                    GROUP BY i.cluster;
                CREATE OR REPLACE TEMP TABLE t_cluster AS
                    SELECT c.cluster, c.visibility, m.refs,
                        COALESCE(len(m.refs), 0) AS matched
                    FROM (SELECT cluster, arg_min(visibility, line_number) AS visibility
                          FROM f_lines GROUP BY cluster) c
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
                WITH firsts AS (
                    -- The first copy of each enhancement per reference, found on narrow rows;
                    -- the wide ones (content) are only joined back for the copies kept.
                    SELECT t.reference_id, e.content_hash,
                        min({{'line': e.line_number, 'position': e.position}}) AS first
                    FROM t_enh e JOIN t_target t USING (cluster)
                    GROUP BY t.reference_id, e.content_hash
                )
                SELECT uuid(), reference_id, enhancement_type, source, visibility, robot_version,
                    processor_version, content, content_hash
                FROM (
                    SELECT f.reference_id, e.*
                    FROM firsts f JOIN t_enh e
                        ON e.line_number = f.first.line AND e.position = f.first.position
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
            cluster_fates = conn.sql(
                """
                SELECT c.cluster, c.matched, c.refs::VARCHAR[] AS refs,
                    t.reference_id::VARCHAR AS reference_id, COALESCE(t.is_new, FALSE) AS is_new
                FROM t_cluster c LEFT JOIN t_target t USING (cluster)
                """
            ).pl()
            results = _results(
                lines, usable, errors, cluster_fates, strategy, associations["line_number"]
            )
            conn.register("f_results", results)
            conn.execute("DELETE FROM import_results WHERE import_batch_id = ?", [batch_id])
            conn.execute(
                """
                INSERT INTO import_results (id, import_batch_id, line_number, status,
                    reference_id, errors, failure_details, unresolved_references)
                SELECT uuid(), $batch, line_number, status, reference_id::UUID, errors,
                    failure_details, '[]' FROM f_results
                """,
                {"batch": batch_id},
            )
            conn.execute(
                """
                UPDATE import_batches SET checksum = ?, failure_details = NULL,
                    physical_lines = ?, blank_lines = ?, updated_at = now()
                WHERE id = ?
                """,
                [checksum, physical_lines, blank_lines, batch_id],
            )
            conn.register(
                "f_associations",
                associations.join(
                    results.filter(pl.col("status") == ImportResultStatus.RETRYING).select(
                        "line_number", "reference_id"
                    ),
                    on="line_number",
                ),
            )
            record_associations(conn, batch_id, now)
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
    finally:
        for name in ("f_lines", "f_ids", "f_clusters", "f_enh_raw", "f_results", "f_associations"):
            try:
                conn.unregister(name)
            except Exception:  # noqa: BLE001 - a view that was never registered
                pass
    written = cluster_fates.filter(pl.col("reference_id").is_not_null())
    alive = results.filter(pl.col("status") != ImportResultStatus.FAILED)
    live_clusters = usable.join(alive, on="line_number", how="semi").select("cluster").unique()
    written = written.join(live_clusters, on="cluster", how="semi")
    return BatchOutcome(
        counts=counts,
        references_created=written.filter("is_new").height,
        references_merged=written.filter(~pl.col("is_new")).height,
        status=status,
        associations_linked=linked.linked,
        associations_waiting=linked.waiting,
    )


def _results(
    lines: pl.DataFrame,
    usable: pl.DataFrame,
    errors: pl.DataFrame,
    cluster_fates: pl.DataFrame,
    strategy: CollisionStrategy,
    associated_lines: pl.Series,
) -> pl.DataFrame:
    """One result per line: status, reference, errors (JSON) and their rendering."""
    fates = usable.select("line_number", "cluster", "has_errors").join(
        cluster_fates, on="cluster", how="left"
    )
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
