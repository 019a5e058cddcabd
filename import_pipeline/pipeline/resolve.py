"""Resolve: match a clustered batch to the store and write it, with one result per line.

`resolve_batch` is a short sequence of named SQL steps in one transaction (matching against
the store and writing must see the same store, contract section 5). Each step is a function
that returns the SQL of one temp table, in the manner of splink's connected components; the
tables are created in the `resolve` namespace of a `TempTables`, which drops them when the
batch ends. The batch is read from its Parquet files by DuckDB (capped memory, spilling),
never held whole in Python; results are computed in Polars a slice of lines at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from import_pipeline.domain.identifiers import TRUSTED_TYPES
from import_pipeline.domain.statuses import ImportResultStatus, derive_batch_status
from import_pipeline.domain.strategies import STRATEGIES, CollisionStrategy, OnMatch, StrategyRule
from import_pipeline.pipeline import associations, results
from import_pipeline.store import batch_writes
from import_pipeline.store.connection import TempTables, transaction
from import_pipeline.store.records import update_batch_statuses

#: Results are computed and written this many lines at a time: memory stays bounded.
RESULTS_SLICE_LINES = 250_000


@dataclass(frozen=True)
class StagedBatch:
    """A validated, clustered batch: its Parquet files per part (`frames.VALIDATED_PARTS` and
    `clusters`) and what the loader counted."""

    batch_id: str
    checksum: str
    parts: dict[str, list[str]]
    physical_lines: int
    blank_lines: int


@dataclass
class BatchOutcome:
    """What one batch's import did."""

    counts: dict[str, int]
    references_created: int
    references_merged: int
    status: str
    associations_linked: int = 0
    associations_waiting: int = 0


@dataclass(frozen=True)
class BatchTables(results.ResultTables):
    """The batch as temp tables: every line read, the usable ones with their cluster, their
    errors, the lines with associations, each cluster's match and target (what a result is
    decided from), and the usable lines' valid parts."""

    identifiers: str
    enhancements: str


# -- the steps --------------------------------------------------------------------------------


def _all_lines_sql() -> str:
    """Every line that was read, with its cluster."""
    return """
        SELECT l.line_number, l.visibility, c.cluster FROM read_parquet($lines) l
        JOIN read_parquet($clusters) c USING (line_number)
    """


def _usable_lines_sql(all_lines: str, errors: str) -> str:
    """The lines that are written: those without a fatal error; `has_errors` if a part of
    the line failed."""
    return f"""
        SELECT l.*, l.line_number IN (SELECT line_number FROM {errors} WHERE NOT fatal)
            AS has_errors
        FROM {all_lines} l
        WHERE l.line_number NOT IN (SELECT line_number FROM {errors} WHERE fatal)
    """


def _parts_sql(part: str, lines: str) -> str:
    """The valid identifiers or enhancements of the usable lines, with their cluster."""
    return f"""
        SELECT p.*, l.cluster FROM read_parquet(${part}) p JOIN {lines} l USING (line_number)
    """


def _cluster_matches_sql(lines: str, identifiers: str) -> str:
    """Per cluster: its visibility (its first line's), the distinct stored references its
    trusted identifiers match, and how many."""
    return f"""
        WITH matches AS (
            SELECT i.cluster, list(DISTINCT ri.reference_id ORDER BY ri.reference_id) AS refs
            FROM {identifiers} i JOIN reference_identifier ri
                ON ri.identifier_type = i.identifier_type AND ri.identifier = i.identifier
            WHERE list_contains($trusted, i.identifier_type)
            GROUP BY i.cluster
        )
        SELECT c.cluster, c.visibility, m.refs, COALESCE(len(m.refs), 0) AS matched
        FROM (SELECT cluster, arg_min(visibility, line_number) AS visibility
              FROM {lines} GROUP BY cluster) c
        LEFT JOIN matches m USING (cluster)
    """


def _targets_sql(clusters: str) -> str:
    """The reference each cluster writes into: a new one when it matches none, the matched
    one when it matches one and the strategy merges; a collision writes nothing."""
    return f"""
        SELECT cluster, visibility, matched = 0 AS is_new,
            CASE WHEN matched = 0 THEN uuid() ELSE refs[1] END AS reference_id
        FROM {clusters}
        WHERE matched = 0 OR (matched = 1 AND $merges)
    """


def _associated_lines_sql() -> str:
    return "SELECT DISTINCT line_number FROM read_parquet($associations)"


def stage_batch(tables: TempTables, batch: StagedBatch, rule: StrategyRule) -> BatchTables:
    """The batch's Parquet files as the temp tables every later step reads."""
    params: dict[str, object] = {
        **batch.parts,
        "trusted": sorted(TRUSTED_TYPES),
        "merges": rule.on_match is OnMatch.MERGE,
    }
    errors = tables.create("errors", "SELECT * FROM read_parquet($errors)", params)
    all_lines = tables.create("all_lines", _all_lines_sql(), params)
    lines = tables.create("lines", _usable_lines_sql(all_lines, errors))
    identifiers = tables.create("identifiers", _parts_sql("identifiers", lines), params)
    clusters = tables.create("clusters", _cluster_matches_sql(lines, identifiers), params)
    return BatchTables(
        errors=errors,
        all_lines=all_lines,
        lines=lines,
        identifiers=identifiers,
        enhancements=tables.create("enhancements", _parts_sql("enhancements", lines), params),
        associated=tables.create("associated", _associated_lines_sql(), params),
        clusters=clusters,
        targets=tables.create("targets", _targets_sql(clusters), params),
    )


def _write_results(
    conn: duckdb.DuckDBPyConnection, staged: BatchTables, batch: StagedBatch, rule: StrategyRule
) -> None:
    """One result per line read, replacing those of an older version of the batch."""
    batch_writes.delete_results(conn, batch.batch_id)
    for first in range(1, max(batch.physical_lines, 1) + 1, RESULTS_SLICE_LINES):
        inputs = results.read_window(conn, staged, first, first + RESULTS_SLICE_LINES)
        batch_writes.insert_results(conn, batch.batch_id, results.line_results(inputs, rule))


def _references_written(
    conn: duckdb.DuckDBPyConnection, staged: BatchTables, batch_id: str
) -> dict[bool, int]:
    """References this batch created (True) or merged into (False): those of clusters with
    a line that was written (a cluster whose lines all failed wrote nothing)."""
    rows = conn.execute(
        f"""
        SELECT t.is_new, count(*) FROM {staged.targets} t
        WHERE t.cluster IN (
            SELECT l.cluster FROM {staged.lines} l JOIN import_results r
                ON r.import_batch_id = $batch AND r.line_number = l.line_number
            WHERE r.status <> $failed)
        GROUP BY t.is_new
        """,
        {"batch": batch_id, "failed": ImportResultStatus.FAILED.value},
    ).fetchall()
    return dict(rows)


def _result_counts(conn: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, int]:
    counts = {status.value: 0 for status in ImportResultStatus}
    rows = conn.execute(
        "SELECT status, count(*) FROM import_results WHERE import_batch_id = ? GROUP BY 1",
        [batch_id],
    ).fetchall()
    counts.update(dict(rows))
    return counts


# -- the sequence -----------------------------------------------------------------------------


def resolve_batch(
    conn: duckdb.DuckDBPyConnection,
    batch: StagedBatch,
    strategy: CollisionStrategy,
    *,
    now: datetime,
    ttl: timedelta,
) -> BatchOutcome:
    """Matches each cluster to the store, writes references and one result per line, links
    the batch's associations, all in one transaction."""
    rule = STRATEGIES[strategy]
    with TempTables(conn, "resolve") as tables, transaction(conn):
        staged = stage_batch(tables, batch, rule)
        batch_writes.write_references(tables, staged.targets, staged.identifiers,
                                      staged.enhancements, rule)  # fmt: skip
        _write_results(conn, staged, batch, rule)
        batch_writes.finish_batch(
            conn, batch.batch_id, batch.checksum, batch.physical_lines, batch.blank_lines
        )
        written = _references_written(conn, staged, batch.batch_id)
        linked = associations.link_batch(
            conn,
            batch_id=batch.batch_id,
            parts=batch.parts,
            references=staged.targets,
            now=now,
            ttl=ttl,
        )
        update_batch_statuses(conn, [batch.batch_id])
        counts = _result_counts(conn, batch.batch_id)
    return BatchOutcome(
        counts=counts,
        references_created=written.get(True, 0),
        references_merged=written.get(False, 0),
        status=derive_batch_status(counts).value,
        associations_linked=linked.linked,
        associations_waiting=linked.waiting,
    )
