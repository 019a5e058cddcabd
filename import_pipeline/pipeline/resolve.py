"""Resolve: match clustered batches to the store and write them, with one result per line.

`resolve_batches` stores a group's batches in waves; a wave is a short sequence of named SQL
steps in one transaction (matching against the store and writing must see the same store,
contract section 5) over all of its batches at once, every row named by its batch's place in
the wave. Each step is a function that returns the SQL of one temp table, in the manner of
splink's connected components; the tables are created in the `resolve` namespace of a
`TempTables`, which drops them when the wave ends. A wave stores the batches before the first
whose inputs an earlier one's writes would change, so the outcome is always that of one batch
after another: files of different works are one wave, a file that merges into what an earlier
one created starts the next. Batches are read from their Parquet files by DuckDB (capped
memory, spilling), never held whole in Python; results are computed in Polars a slice of
lines at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb
import polars as pl

from import_pipeline.domain.identifiers import TRUSTED_TYPES, matched_sql
from import_pipeline.domain.strategies import STRATEGIES, CollisionStrategy, OnMatch, StrategyRule
from import_pipeline.pipeline import associations, outcomes, results
from import_pipeline.store import batch_writes
from import_pipeline.store.connection import (
    TempTables,
    files_of_batches_params,
    files_of_batches_sql,
    transaction,
)
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


@dataclass(frozen=True)
class BatchTables(results.ResultTables):
    """A wave of batches as temp tables, every row named by its `batch` (its place in the
    wave): every line read, the usable ones with their cluster, their errors, the lines with
    associations, each cluster's match and target (what a result is decided from), and the
    usable lines' valid parts."""

    identifiers: str
    enhancements: str


# -- the steps --------------------------------------------------------------------------------


def _all_lines_sql(batches: int) -> str:
    """Every line that was read, with its cluster."""
    return f"""
        SELECT l.batch, l.line_number, l.visibility, c.cluster
        FROM {files_of_batches_sql("lines", batches)} l
        JOIN {files_of_batches_sql("clusters", batches)} c USING (batch, line_number)
    """


def _usable_lines_sql(all_lines: str, errors: str) -> str:
    """The lines that are written: those without a fatal error; `has_errors` if a part of
    the line failed."""
    return f"""
        SELECT l.*, partly.line_number IS NOT NULL AS has_errors
        FROM {all_lines} l
        ANTI JOIN (SELECT batch, line_number FROM {errors} WHERE fatal) failed
            ON failed.batch = l.batch AND failed.line_number = l.line_number
        LEFT JOIN (SELECT DISTINCT batch, line_number FROM {errors} WHERE NOT fatal) partly
            ON partly.batch = l.batch AND partly.line_number = l.line_number
    """


def _parts_sql(part: str, lines: str, batches: int) -> str:
    """The valid identifiers or enhancements of the usable lines, with their cluster."""
    return f"""
        SELECT p.*, l.cluster FROM {files_of_batches_sql(part, batches)} p
        JOIN {lines} l USING (batch, line_number)
    """


def _cluster_matches_sql(lines: str, identifiers: str) -> str:
    """Per cluster: its visibility (its first line's), the distinct stored references its
    trusted identifiers match, and how many."""
    return f"""
        WITH matches AS (
            SELECT i.batch, i.cluster,
                list(DISTINCT ri.reference_id ORDER BY ri.reference_id) AS refs
            FROM {identifiers} i JOIN reference_identifier ri
                ON ri.identifier_type = i.identifier_type AND ri.identifier = i.identifier
            WHERE {matched_sql("i")} AND {matched_sql("ri")}
            GROUP BY i.batch, i.cluster
        )
        SELECT c.batch, c.cluster, c.visibility, m.refs, COALESCE(len(m.refs), 0) AS matched
        FROM (SELECT batch, cluster, arg_min(visibility, line_number) AS visibility
              FROM {lines} GROUP BY batch, cluster) c
        LEFT JOIN matches m USING (batch, cluster)
    """


def _targets_sql(clusters: str) -> str:
    """The reference each cluster writes into: a new one when it matches none, the matched
    one when it matches one and the strategy merges; a collision writes nothing."""
    return f"""
        SELECT batch, cluster, visibility, matched = 0 AS is_new,
            CASE WHEN matched = 0 THEN uuid() ELSE refs[1] END AS reference_id
        FROM {clusters}
        WHERE matched = 0 OR (matched = 1 AND $merges)
    """


def _associated_lines_sql(batches: int) -> str:
    return (
        f"SELECT DISTINCT batch, line_number FROM {files_of_batches_sql('associations', batches)}"
    )


def _part_params(batches: list[StagedBatch]) -> dict[str, object]:
    """Each part's files of every batch, and (for several batches) which batch each is."""
    params: dict[str, object] = {}
    for part in batches[0].parts:
        params.update(files_of_batches_params(part, [b.parts[part] for b in batches]))
    return params


def stage_batches(
    tables: TempTables, batches: list[StagedBatch], rule: StrategyRule
) -> BatchTables:
    """The batches' Parquet files as the temp tables every later step reads."""
    params: dict[str, object] = {
        **_part_params(batches),
        "trusted": sorted(TRUSTED_TYPES),
        "merges": rule.on_match is OnMatch.MERGE,
    }
    count = len(batches)
    errors = tables.create(
        "errors", f"SELECT * FROM {files_of_batches_sql('errors', count)}", params
    )
    all_lines = tables.create("all_lines", _all_lines_sql(count), params)
    lines = tables.create("lines", _usable_lines_sql(all_lines, errors))
    identifiers = tables.create("identifiers", _parts_sql("identifiers", lines, count), params)
    clusters = tables.create("clusters", _cluster_matches_sql(lines, identifiers), params)
    return BatchTables(
        errors=errors,
        all_lines=all_lines,
        lines=lines,
        identifiers=identifiers,
        enhancements=tables.create(
            "enhancements", _parts_sql("enhancements", lines, count), params
        ),
        associated=tables.create("associated", _associated_lines_sql(count), params),
        clusters=clusters,
        targets=tables.create("targets", _targets_sql(clusters), params),
    )


def _first_dependent_sql(
    staged: BatchTables, plan: batch_writes.WritePlan, rule: StrategyRule
) -> str:
    """The first batch of the wave whose inputs an earlier batch of the wave would change:
    one of its identifiers (of any type) added or removed by an earlier one, or one of the
    stored references it matches written by an earlier one. Every batch before it is stored
    exactly as it would be one after another."""
    return f"""
        WITH changed AS ({batch_writes.changed_identifiers_sql(plan)}),
        written AS ({batch_writes.written_references_sql(plan, staged.targets, rule)}),
        matched AS (
            SELECT batch, unnest(refs) AS reference_id FROM {staged.clusters} WHERE matched > 0
        )
        SELECT min(batch) FROM (
            SELECT i.batch FROM {staged.identifiers} i JOIN changed c
                ON c.identifier_type = i.identifier_type AND c.identifier = i.identifier
                AND c.batch < i.batch
            UNION ALL
            SELECT m.batch FROM matched m JOIN written w
                ON w.reference_id = m.reference_id AND w.batch < m.batch
        )
    """


def _applied_count(
    conn: duckdb.DuckDBPyConnection,
    staged: BatchTables,
    plan: batch_writes.WritePlan,
    rule: StrategyRule,
    batches: int,
) -> int:
    """How many of the wave's first batches are stored now: those before the first that
    depends on an earlier one, and before the first with associations (whose links and
    results another batch's writes could change), which is stored alone."""
    if batches == 1:
        return 1
    associated = conn.execute(f"SELECT min(batch) FROM {staged.associated}").fetchone()
    first_associated = associated[0] if associated and associated[0] is not None else batches
    if first_associated == 0:
        return 1
    dependent = conn.execute(_first_dependent_sql(staged, plan, rule)).fetchone()
    first_dependent = dependent[0] if dependent and dependent[0] is not None else batches
    return max(1, min(first_dependent, first_associated))


def _windows(batches: list[StagedBatch]) -> list[results.Window]:
    """Result windows of at most `RESULTS_SLICE_LINES` lines: consecutive small batches
    together, a large one in slices."""
    windows: list[results.Window] = []
    first, lines = 0, 0
    for index, batch in enumerate(batches):
        size = max(batch.physical_lines, 1)
        if size > RESULTS_SLICE_LINES:
            if index > first:
                windows.append(results.Window(first, index - 1))
            windows += [
                results.Window(index, index, start, start + RESULTS_SLICE_LINES)
                for start in range(1, size + 1, RESULTS_SLICE_LINES)
            ]
            first, lines = index + 1, 0
        elif lines + size > RESULTS_SLICE_LINES and index > first:
            windows.append(results.Window(first, index - 1))
            first, lines = index, size
        else:
            lines += size
    if first < len(batches):
        windows.append(results.Window(first, len(batches) - 1))
    return windows


def _write_results(
    conn: duckdb.DuckDBPyConnection,
    tables: TempTables,
    staged: BatchTables,
    batches: list[StagedBatch],
    rule: StrategyRule,
) -> None:
    """One result per line read, replacing those of older versions of the batches: the plain
    ones in one statement, the others decided in Polars a window of lines at a time."""
    batch_ids = [batch.batch_id for batch in batches]
    batch_writes.delete_results(conn, batch_ids)
    plain = tables.create("plain", results.plain_lines_sql(staged, rule, len(batches)))
    batch_writes.insert_plain_results(conn, plain, batch_writes.batch_ids_sql(batch_ids))

    def not_plain(table: str) -> str:
        return tables.create(
            f"not_plain_{table}",
            f"SELECT * FROM {table} ANTI JOIN {plain} USING (batch, line_number)",
        )

    # The other lines, set apart once for every window (not once a window).
    others = replace(staged, all_lines=not_plain(staged.all_lines), lines=not_plain(staged.lines))
    for window in _windows(batches):
        written = results.line_results(results.read_window(conn, others, window), rule)
        batch_writes.insert_results(
            conn,
            written.with_columns(
                import_batch_id=pl.col("batch").replace_strict(
                    list(range(len(batches))), batch_ids, return_dtype=pl.String
                )
            ),
        )


# -- the sequence -----------------------------------------------------------------------------


def _store_wave(
    conn: duckdb.DuckDBPyConnection,
    wave: list[StagedBatch],
    rule: StrategyRule,
    *,
    now: datetime,
    ttl: timedelta,
) -> list[outcomes.BatchOutcome]:
    """Stores the first batches of `wave` that can be stored together, in one transaction;
    returns their outcomes (at least the first batch's)."""
    started = time.perf_counter()
    with TempTables(conn, "resolve") as tables, transaction(conn):
        staged = stage_batches(tables, wave, rule)
        plan = batch_writes.plan_writes(tables, staged.targets, staged.identifiers,
                                        staged.enhancements, rule,
                                        materialise=len(wave) > 1)  # fmt: skip
        applied = _applied_count(conn, staged, plan, rule, len(wave))
        stored = wave[:applied]
        batch_writes.apply_writes(conn, plan, staged.targets, staged.enhancements, rule,
                                  applied=applied)  # fmt: skip
        _write_results(conn, tables, staged, stored, rule)
        batch_ids = [b.batch_id for b in stored]
        batch_writes.finish_batches(
            conn,
            [batch_writes.BatchVersionRead(b.batch_id, b.checksum, b.physical_lines,
                                           b.blank_lines) for b in stored],
        )  # fmt: skip
        first_associated = conn.execute(
            f"SELECT count(*) FROM {staged.associated} WHERE batch = 0"
        ).fetchone()
        associated = applied == 1 and bool(first_associated and first_associated[0])
        writes = tables.create(
            "written", f"SELECT reference_id FROM {staged.targets} WHERE batch < {applied}"
        )
        linked = associations.link_batches(
            conn,
            batch_ids=batch_ids,
            parts=stored[0].parts["associations"] if associated else None,
            references=writes,
            now=now,
            ttl=ttl,
        )
        update_batch_statuses(conn, batch_ids)
        done = outcomes.read_outcomes(conn, staged.targets, staged.lines, batch_ids,
                                     linked if associated else None)  # fmt: skip
    seconds = time.perf_counter() - started
    lines = sum(max(b.physical_lines, 1) for b in stored)
    for batch, outcome in zip(stored, done, strict=True):
        outcome.seconds = seconds * max(batch.physical_lines, 1) / lines
    return done


def resolve_batches(
    conn: duckdb.DuckDBPyConnection,
    batches: list[StagedBatch],
    strategy: CollisionStrategy,
    *,
    now: datetime,
    ttl: timedelta,
) -> Iterator[tuple[int, outcomes.BatchOutcome | Exception]]:
    """Matches each batch's clusters to the store and writes its references, one result per
    line and its associations, with the outcome that storing the batches one after another
    in this order gives (contract section 5: each batch sees the store its predecessors
    left). Yields (index in `batches`, outcome or the error that stopped that batch).

    Batches are stored in waves, each one transaction: a wave is every batch up to the first
    whose inputs an earlier batch of the wave changes (`_applied_count`), so a record of
    many small files of different works costs a few statements per wave rather than ~40 per
    file. A batch that raises is retried alone, and fails alone."""
    rule = STRATEGIES[strategy]
    start, window, alone_until = 0, len(batches), 0
    while start < len(batches):
        wave = batches[start : start + (1 if start < alone_until else window)]
        try:
            done = _store_wave(conn, wave, rule, now=now, ttl=ttl)
        except Exception as exc:
            if len(wave) > 1:
                alone_until = start + len(wave)  # which batch was it: these one at a time
                continue
            yield start, exc
            start += 1
            continue
        for offset, outcome in enumerate(done):
            yield start + offset, outcome
        start += len(done)
        # A wave cut short by a dependency is followed by a small one, which grows back to
        # the rest when every batch of it could be stored together.
        window = len(batches) if len(done) == len(wave) else max(2 * len(done), 2)
