"""Cluster: the lines of a batch that share trusted identifiers, directly or through a chain,
are one cluster and end as one reference (contract section 5).

In DuckDB over the batch's staged Parquet files, so a batch of any size spills rather than
filling memory: label propagation with pointer jumping, O(log(chain length)) rounds of joins.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from import_pipeline.domain.identifiers import TRUSTED_TYPES, matched_sql
from import_pipeline.store.connection import (
    BATCH_STRIDE,
    TempTables,
    files_of_batches_params,
    files_of_batches_sql,
    sql_literal,
)


def _edges_sql(identifiers: str) -> str:
    """Each line's trusted identifiers: the edges that link lines."""
    return f"""
        SELECT DISTINCT line_number, identifier_type, identifier FROM {identifiers}
        WHERE {matched_sql()}
    """


def _initial_labels_sql(lines: str) -> str:
    """Every line starts as its own cluster."""
    return f"SELECT line_number, line_number AS cluster FROM {lines}"


def _next_labels_sql(edges: str, labels: str) -> str:
    """One round: a line takes the smallest label among the lines it shares an identifier
    with, then its label's label (pointer jumping), so long chains collapse fast."""
    return f"""
        WITH by_key AS (
            SELECT e.identifier_type, e.identifier, min(l.cluster) AS cluster
            FROM {edges} e JOIN {labels} l USING (line_number)
            GROUP BY e.identifier_type, e.identifier
        ), proposed AS (
            SELECT e.line_number, min(k.cluster) AS proposed
            FROM {edges} e JOIN by_key k USING (identifier_type, identifier)
            GROUP BY e.line_number
        ), step AS (
            SELECT l.line_number, least(l.cluster, COALESCE(p.proposed, l.cluster)) AS cluster
            FROM {labels} l LEFT JOIN proposed p USING (line_number)
        )
        SELECT s.line_number, least(s.cluster, COALESCE(j.cluster, s.cluster)) AS cluster
        FROM step s LEFT JOIN step j ON j.line_number = s.cluster
    """


def _changed_sql(before: str, after: str) -> str:
    return f"""
        SELECT count(*) FROM {after} n JOIN {before} l USING (line_number)
        WHERE n.cluster <> l.cluster
    """


def cluster_lines_in(
    tables: TempTables, lines: str, identifiers: str, params: dict[str, object] | None = None
) -> str:
    """Creates the table of each line's cluster (`frames.CLUSTERS`) and returns its name: the
    smallest line number the line is linked to; a line with no trusted identifier is a
    cluster of its own. `lines` and `identifiers` are SQL sources (a table, or
    `read_parquet($name)` with the paths in `params`) with the columns of `frames.LINES` and
    `frames.IDENTIFIERS`."""
    sources = {"trusted": sorted(TRUSTED_TYPES), **(params or {})}
    edges = tables.create("edges", _edges_sql(identifiers), sources)
    labels = tables.create("labels_0", _initial_labels_sql(lines), sources)
    rounds = 0
    while True:
        rounds += 1
        proposed = tables.create(f"labels_{rounds % 2}", _next_labels_sql(edges, labels))
        (changed,) = tables.conn.execute(_changed_sql(labels, proposed)).fetchall()[0]
        tables.drop(labels)
        labels = proposed
        if not changed:
            tables.drop(edges)
            return labels


@dataclass(frozen=True)
class ClusterFiles:
    """One batch's staged lines and identifiers, and where its clusters go."""

    lines: list[str]
    identifiers: list[str]
    path: str


def cluster_to_parquet(engine: duckdb.DuckDBPyConnection, batches: list[ClusterFiles]) -> list[int]:
    """Clusters each batch's staged lines and identifiers (Parquet files) and writes its
    clusters to its `path`, sorted by line; returns how many clusters each batch has. The
    batches of a group are clustered in one pass (lines keyed by batch and number, identifiers
    by batch too, so no cluster spans two batches): a pass costs ~50 ms however small."""
    count = len(batches)
    params = {
        **files_of_batches_params("lines", [b.lines for b in batches]),
        **files_of_batches_params("identifiers", [b.identifiers for b in batches]),
    }
    with TempTables(engine, "cluster") as tables:
        labels = cluster_lines_in(
            tables,
            lines=f"""(SELECT batch * {BATCH_STRIDE} + line_number AS line_number
                FROM {files_of_batches_sql("lines", count)})""",
            identifiers=f"""(SELECT batch * {BATCH_STRIDE} + line_number AS line_number,
                identifier_type, other_identifier_name, batch || ':' || identifier AS identifier
                FROM {files_of_batches_sql("identifiers", count)})""",
            params=params,
        )
        for index, batch in enumerate(batches):
            engine.execute(
                f"""COPY (SELECT line_number - $base AS line_number, cluster - $base AS cluster
                    FROM {labels} WHERE line_number // {BATCH_STRIDE} = $batch
                    ORDER BY line_number)
                TO {sql_literal(batch.path)} (FORMAT parquet)""",
                {"base": index * BATCH_STRIDE, "batch": index},
            )
        counts = dict(
            engine.execute(
                f"SELECT line_number // {BATCH_STRIDE}, count(DISTINCT cluster) "
                f"FROM {labels} GROUP BY 1"
            ).fetchall()
        )
    return [int(counts.get(index, 0)) for index in range(count)]
