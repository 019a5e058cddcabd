"""Cluster: the lines of a batch that share trusted identifiers, directly or through a chain,
are one cluster and end as one reference (contract section 5).

In DuckDB over the batch's staged Parquet files, so a batch of any size spills rather than
filling memory: label propagation with pointer jumping, O(log(chain length)) rounds of joins.
"""

from __future__ import annotations

import duckdb

from import_pipeline.domain.identifiers import TRUSTED_TYPES
from import_pipeline.store.connection import TempTables, sql_literal


def _edges_sql(identifiers: str) -> str:
    """Each line's trusted identifiers: the edges that link lines."""
    return f"""
        SELECT DISTINCT line_number, identifier_type, identifier FROM {identifiers}
        WHERE list_contains($trusted, identifier_type)
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


def cluster_to_parquet(
    engine: duckdb.DuckDBPyConnection, *, lines: list[str], identifiers: list[str], path: str
) -> int:
    """Clusters the staged lines and identifiers (Parquet files) and writes the clusters to
    `path`, sorted by line; returns how many clusters there are."""
    with TempTables(engine, "cluster") as tables:
        labels = cluster_lines_in(
            tables,
            lines="read_parquet($lines)",
            identifiers="read_parquet($identifiers)",
            params={"lines": lines, "identifiers": identifiers},
        )
        engine.execute(
            f"COPY (SELECT * FROM {labels} ORDER BY line_number) "
            f"TO {sql_literal(path)} (FORMAT parquet)"
        )
        (clusters,) = engine.execute(f"SELECT count(DISTINCT cluster) FROM {labels}").fetchall()[0]
    return int(clusters)
