"""Finding duplicates without a shared identifier (contract section 8), in the store's engine:
candidate pairs from several blocking keys, features from string similarity, decisions by
the rules and vetoes of `domain.duplicates`; `detection` turns the pairs into stars.

The SQL steps work on a table of keys (`bibliographic.keys_sql`), a table of the blocks each
reference is in (`blocks_sql`) and a table of the references to look at (`subjects`): a
batch's new or merged references are compared with each other and with every reference that
shares a block with them, never the whole store with itself. The titles' edit distance is
rapidfuzz's, over the title columns of the pairs worth it; everything else is DuckDB SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl
from rapidfuzz.distance import Levenshtein

from import_pipeline.domain.duplicates import (
    BLOCKING_KEYS,
    MATCH_RULES,
    MAX_BLOCK_SIZE,
    MAYBE_RULE,
    TITLE_JARO_WINKLER_FLOOR,
    VETOES,
    Decision,
)
from import_pipeline.pipeline import bibliographic
from import_pipeline.store.connection import TempTables

#: What a pair's rules read, in two stages. First the comparisons that cost nothing (equal
#: fields, the year gap, the titles' lengths), over every candidate pair of key rows: the
#: vetoes read only these, so a vetoed pair never reaches the string similarities.
EXACT_FEATURES = """
    a.title AS title_a, b.title AS title_b,
    a.authors AS authors_a, b.authors AS authors_b,
    a.venue AS venue_a, b.venue AS venue_b,
    coalesce(a.first_author = b.first_author, false) AS first_author_same,
    abs(a.year - b.year) AS year_gap,
    coalesce(a.year = b.year, false) AS year_same,
    coalesce(a.volume = b.volume, false) AS volume_same,
    coalesce(a.volume <> b.volume, false) AS volume_conflict,
    coalesce(a.issue = b.issue, false) AS issue_same,
    coalesce(a.first_page = b.first_page, false) AS first_page_same,
    coalesce(a.first_page <> b.first_page, false) AS pages_conflict,
    coalesce(a.last_page = b.last_page AND a.last_page <> a.first_page, false) AS page_range_same
"""

#: The pairs whose titles' edit distance is worth computing: Jaro-Winkler and the lengths
#: leave them a chance of the rules' lowest threshold (0.85; an edit distance is at least the
#: difference in length). The others' title similarity is 0.
EDIT_DISTANCE_GATE = """
    title_jaro_winkler >= 0.8
    AND abs(length(title_a) - length(title_b)) <= 0.15 * greatest(length(title_a), length(title_b))
"""

#: Then the other string similarities, once each, over the pairs no veto ruled out.
SIMILARITY_FEATURES = """
    least(length(title_a), length(title_b)) >= 30
        AND (starts_with(title_a, title_b) OR starts_with(title_b, title_a)) AS title_prefix,
    CASE WHEN authors_a IS NOT NULL AND authors_b IS NOT NULL
        THEN jaro_winkler_similarity(authors_a, authors_b) END AS author_similarity,
    CASE WHEN venue_a IS NOT NULL AND venue_b IS NOT NULL
        THEN jaro_winkler_similarity(venue_a, venue_b) END AS venue_similarity
"""


@dataclass(frozen=True)
class Pair:
    """Two references the rules call the same work (`decision` duplicate) or close enough
    for a person to look (`maybe`); `a` sorts before `b`."""

    a: str
    b: str
    decision: Decision
    score: float
    evidence: tuple[str, ...]


def blocks_sql(keys: str) -> str:
    """The blocks of every reference of `keys` (a table or query of key rows): one row per
    reference and blocking key value, the key's name and value hashed into one number (a
    collision only adds a candidate pair; the rules still decide it)."""
    blocks = " UNION ALL ".join(
        f"SELECT reference_id, '{key.name}' AS block, {key.sql} AS value FROM {keys}"
        for key in BLOCKING_KEYS
    )
    return f"""
        SELECT DISTINCT reference_id, (hash(block, value) >> 1)::BIGINT AS block_hash
        FROM ({blocks}) WHERE value IS NOT NULL
    """


def _candidates_sql(blocks: str, subjects: str) -> str:
    """Pairs of references that share a block, at least one of them a subject: only the
    blocks the subjects are in are looked up (never the store with itself), and a block of
    more than `MAX_BLOCK_SIZE` references is dropped as too common to tell works apart."""
    return f"""
        WITH members AS MATERIALIZED (
            SELECT b.reference_id, b.block_hash FROM {blocks} b
            WHERE b.block_hash IN (
                SELECT m.block_hash FROM {blocks} m
                WHERE m.reference_id IN (SELECT s.reference_id FROM {subjects} s))
        ),
        small AS (
            SELECT block_hash FROM members GROUP BY ALL HAVING count(*) <= {MAX_BLOCK_SIZE}
        ),
        kept AS MATERIALIZED (SELECT m.* FROM members m SEMI JOIN small USING (block_hash))
        SELECT DISTINCT least(x.reference_id, y.reference_id) AS a,
            greatest(x.reference_id, y.reference_id) AS b
        FROM kept x JOIN kept y USING (block_hash)
        WHERE x.reference_id <> y.reference_id
            AND x.reference_id IN (SELECT s.reference_id FROM {subjects} s)
    """


def _condition(rules: tuple) -> str:
    return " OR ".join(f"({rule.sql})" for rule in rules)


def _unvetoed_sql(keys: str, candidates: str) -> str:
    """Each candidate pair's exact features (every key row of one with every row of the
    other), without the pairs a veto rules out, and its titles' Jaro-Winkler similarity."""
    return f"""
        SELECT row_number() OVER () AS pair_row, *,
            jaro_winkler_similarity(title_a, title_b) AS title_jaro_winkler FROM (
            SELECT c.a, c.b, {EXACT_FEATURES}
            FROM {candidates} c JOIN {keys} a ON a.reference_id = c.a
                JOIN {keys} b ON b.reference_id = c.b)
        WHERE NOT ({_condition(VETOES)})
    """


@contextmanager
def _title_similarities(conn: duckdb.DuckDBPyConnection, unvetoed: str) -> Iterator[str]:
    """A frame of the titles' normalised Levenshtein similarity (1 - distance / the longer
    length) for the pairs past `EDIT_DISTANCE_GATE`, by rapidfuzz over the two title columns
    (one C call a pair: its bit-parallel distance takes ~3 µs for two 100-character titles
    where DuckDB's `levenshtein` takes ~60 µs, which was the largest part of detection at
    scale; a DuckDB Python function would need numpy)."""
    gated = conn.execute(
        f"SELECT pair_row, title_a, title_b FROM {unvetoed} WHERE {EDIT_DISTANCE_GATE}"
    ).pl()
    similarity = Levenshtein.normalized_similarity
    titles = zip(gated["title_a"].to_list(), gated["title_b"].to_list(), strict=True)
    frame = pl.DataFrame(
        {"pair_row": gated["pair_row"], "title_similarity": [similarity(a, b) for a, b in titles]},
        schema={"pair_row": pl.Int64, "title_similarity": pl.Float64},
    )
    name = f"frame_{unvetoed}_similarity"
    conn.register(name, frame)
    try:
        yield name
    finally:
        conn.unregister(name)


def _featured_sql(unvetoed: str, similarities: str) -> str:
    """The string similarities, once each (a table of its own: in one query DuckDB would
    compute them again for every rule that reads them), for the pairs whose titles no rule
    rules out; the strings themselves dropped."""
    return f"""
        SELECT u.* EXCLUDE (pair_row, title_a, title_b, authors_a, authors_b, venue_a, venue_b),
            coalesce(t.title_similarity, 0) AS title_similarity, {SIMILARITY_FEATURES}
        FROM {unvetoed} u LEFT JOIN {similarities} t USING (pair_row)
        WHERE u.title_jaro_winkler >= {TITLE_JARO_WINKLER_FLOOR}
    """


def _decided_sql(featured: str) -> str:
    """Each pair's decision: the first rule that holds, else `maybe` if its rule does."""
    evidence = " ".join(
        f"WHEN {rule.sql} THEN {list(rule.evidence)!r}" for rule in (*MATCH_RULES, MAYBE_RULE)
    )
    return f"""
        SELECT a, b,
            CASE WHEN {_condition(MATCH_RULES)} THEN 'duplicate' ELSE 'maybe' END AS decision,
            round(greatest(title_similarity, title_jaro_winkler), 4) AS score,
            CASE {evidence} END AS evidence
        FROM {featured}
        WHERE {_condition(MATCH_RULES)} OR ({MAYBE_RULE.sql})
    """


def find_pairs(conn: duckdb.DuckDBPyConnection, enhancements: str, subjects: str) -> list[Pair]:
    """The pairs among the references of `enhancements` (bibliographic ones are read) that
    involve a reference of `subjects` (a table or query of `reference_id`), one per pair of
    references: a duplicate if any pair of their records is one, else the best `maybe`."""
    bibliographic.install_macros(conn)
    with TempTables(conn, "dedup_source") as tables:
        keys = tables.create("keys", bibliographic.keys_sql(enhancements))
        blocks = tables.create("blocks", blocks_sql(keys))
        return pairs_among(conn, keys, blocks, subjects)


def pairs_among(
    conn: duckdb.DuckDBPyConnection, keys: str, blocks: str, subjects: str
) -> list[Pair]:
    """`find_pairs` over key rows and blocks already computed: `keys` and `blocks` are tables
    (e.g. the store's `reference_bibliographic_keys` and `reference_blocks`)."""
    with TempTables(conn, "dedup") as tables:
        candidates = tables.create("candidates", _candidates_sql(blocks, subjects))
        unvetoed = tables.create("unvetoed", _unvetoed_sql(keys, candidates))
        with _title_similarities(conn, unvetoed) as similarities:
            featured = tables.create("featured", _featured_sql(unvetoed, similarities))
        rows = conn.execute(
            f"""
            SELECT a::VARCHAR, b::VARCHAR, arg_max(decision, (decision = 'duplicate', score)),
                max(score), arg_max(evidence, (decision = 'duplicate', score))
            FROM ({_decided_sql(featured)}) GROUP BY a, b ORDER BY a, b
            """
        ).fetchall()
    return [Pair(a, b, Decision(d), float(s), tuple(e)) for a, b, d, s, e in rows]


#: The bibliographic enhancements of references that have no stored keys yet.
_WITHOUT_KEYS = """
    (SELECT e.reference_id, e.enhancement_type, e.content FROM reference_enhancement e
     WHERE e.enhancement_type = 'bibliographic'
        AND e.reference_id NOT IN (SELECT k.reference_id FROM reference_bibliographic_keys k))
"""


#: Set in `store_meta` once every keyed reference has its blocks (a store keyed before the
#: blocks were kept gets them all at its next detection, once).
BLOCKS_BACKFILLED = "reference_blocks_backfilled"


def refresh_keys(conn: duckdb.DuckDBPyConnection, subjects: str) -> None:
    """The stored keys and blocks of the subjects recomputed from their enhancements, and
    those of any reference with bibliographic enhancements but no keys yet (a store from
    before detection). Call inside a transaction."""
    bibliographic.install_macros(conn)
    for table in ("reference_bibliographic_keys", "reference_blocks"):
        conn.execute(
            f"DELETE FROM {table} WHERE reference_id IN (SELECT s.reference_id FROM {subjects} s)"
        )
    with TempTables(conn, "dedup_refresh") as tables:
        fresh = tables.create("keys", bibliographic.keys_sql(_WITHOUT_KEYS))
        conn.execute(f"INSERT INTO reference_bibliographic_keys SELECT * FROM {fresh}")
        backfilled = conn.execute(
            "SELECT count(*) FROM store_meta WHERE key = ?", [BLOCKS_BACKFILLED]
        ).fetchall()[0][0]
        keyed = fresh if backfilled else "reference_bibliographic_keys"
        conn.execute(f"INSERT INTO reference_blocks SELECT * FROM ({blocks_sql(keyed)})")
        if not backfilled:
            conn.execute("INSERT INTO store_meta VALUES (?, '1')", [BLOCKS_BACKFILLED])
