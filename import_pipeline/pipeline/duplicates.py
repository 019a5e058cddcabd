"""Finding duplicates without a shared identifier (contract section 8), in the store's engine:
candidate pairs from several blocking keys, features from string similarity, decisions by
the rules and vetoes of `domain.duplicates`; `detection` turns the pairs into stars.

The SQL steps work on a table of keys (`bibliographic.keys_sql`) and a table of the
references to look at (`subjects`): a batch's new or merged references are compared with each
other and with every reference in the keys table, never the whole store with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from import_pipeline.domain.duplicates import (
    BLOCKING_KEYS,
    MATCH_RULES,
    MAX_BLOCK_SIZE,
    MAYBE_RULE,
    VETOES,
    Decision,
)
from import_pipeline.pipeline import bibliographic
from import_pipeline.store.connection import TempTables

#: What a pair's rules read: computed once per candidate pair of key rows.
FEATURES = """
    jaro_winkler_similarity(a.title, b.title) AS title_jaro_winkler,
    -- Levenshtein costs length² (0.1 ms for two long titles): computed only where Jaro-Winkler
    -- leaves it a chance of reaching the rules' thresholds.
    CASE WHEN jaro_winkler_similarity(a.title, b.title) >= 0.8
        THEN 1 - levenshtein(a.title, b.title) / greatest(length(a.title), length(b.title), 1)
        ELSE 0 END AS title_similarity,
    least(length(a.title), length(b.title)) >= 30
        AND (starts_with(a.title, b.title) OR starts_with(b.title, a.title)) AS title_prefix,
    a.title AS title_a, b.title AS title_b,
    CASE WHEN a.authors IS NOT NULL AND b.authors IS NOT NULL
        THEN jaro_winkler_similarity(a.authors, b.authors) END AS author_similarity,
    coalesce(a.first_author = b.first_author, false) AS first_author_same,
    CASE WHEN a.venue IS NOT NULL AND b.venue IS NOT NULL
        THEN jaro_winkler_similarity(a.venue, b.venue) END AS venue_similarity,
    abs(a.year - b.year) AS year_gap,
    coalesce(a.year = b.year, false) AS year_same,
    coalesce(a.volume = b.volume, false) AS volume_same,
    coalesce(a.volume <> b.volume, false) AS volume_conflict,
    coalesce(a.issue = b.issue, false) AS issue_same,
    coalesce(a.first_page = b.first_page, false) AS first_page_same,
    coalesce(a.first_page <> b.first_page, false) AS pages_conflict,
    coalesce(a.last_page = b.last_page AND a.last_page <> a.first_page, false) AS page_range_same
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


def _candidates_sql(keys: str, subjects: str) -> str:
    """Pairs of key rows that share a blocking key, at least one of them a subject's: each
    subject's rows are joined with every row of its blocks (never the store with itself)."""
    blocks = " UNION ALL ".join(
        f"SELECT '{key.name}' AS block, {key.sql} AS value, reference_id, row FROM {keys}"
        for key in BLOCKING_KEYS
    )
    return f"""
        WITH keyed AS (SELECT * FROM ({blocks}) WHERE value IS NOT NULL),
        small AS (
            SELECT block, value FROM keyed GROUP BY ALL HAVING count(*) <= {MAX_BLOCK_SIZE}
        ),
        members AS (SELECT k.* FROM keyed k SEMI JOIN small USING (block, value)),
        mine AS (
            SELECT m.* FROM members m
            WHERE m.reference_id IN (SELECT s.reference_id FROM {subjects} s)
        )
        SELECT DISTINCT
            CASE WHEN x.reference_id < y.reference_id THEN x.row ELSE y.row END AS row_a,
            CASE WHEN x.reference_id < y.reference_id THEN y.row ELSE x.row END AS row_b
        FROM mine x JOIN members y USING (block, value)
        WHERE x.reference_id <> y.reference_id
    """


def _condition(rules: tuple) -> str:
    return " OR ".join(f"({rule.sql})" for rule in rules)


def _decided_sql(keys: str, candidates: str) -> str:
    """Each candidate pair's features, then its decision: the first rule that holds, unless
    a veto does."""
    evidence = " ".join(
        f"WHEN {rule.sql} THEN {list(rule.evidence)!r}" for rule in (*MATCH_RULES, MAYBE_RULE)
    )
    return f"""
        WITH featured AS MATERIALIZED (  -- each similarity computed once, not once per rule
            SELECT a.reference_id AS a, b.reference_id AS b, {FEATURES}
            FROM {candidates} c JOIN {keys} a ON a.row = c.row_a JOIN {keys} b ON b.row = c.row_b
        )
        SELECT a, b,
            CASE WHEN {_condition(MATCH_RULES)} THEN 'duplicate' ELSE 'maybe' END AS decision,
            round(greatest(title_similarity, title_jaro_winkler), 4) AS score,
            CASE {evidence} END AS evidence
        FROM featured
        WHERE NOT ({_condition(VETOES)})
            AND ({_condition(MATCH_RULES)} OR ({MAYBE_RULE.sql}))
    """


def find_pairs(conn: duckdb.DuckDBPyConnection, enhancements: str, subjects: str) -> list[Pair]:
    """The pairs among the references of `enhancements` (bibliographic ones are read) that
    involve a reference of `subjects` (a table or query of `reference_id`), one per pair of
    references: a duplicate if any pair of their records is one, else the best `maybe`."""
    bibliographic.install_macros(conn)
    return pairs_among(conn, f"({bibliographic.keys_sql(enhancements)})", subjects)


def pairs_among(conn: duckdb.DuckDBPyConnection, keys_source: str, subjects: str) -> list[Pair]:
    """`find_pairs` over key rows already computed (`keys_source`, e.g. the store's
    `reference_bibliographic_keys`)."""
    with TempTables(conn, "dedup") as tables:
        keys = tables.create("keys", f"SELECT row_number() OVER () AS row, * FROM {keys_source}")
        candidates = tables.create("candidates", _candidates_sql(keys, subjects))
        rows = conn.execute(
            f"""
            SELECT a::VARCHAR, b::VARCHAR, arg_max(decision, (decision = 'duplicate', score)),
                max(score), arg_max(evidence, (decision = 'duplicate', score))
            FROM ({_decided_sql(keys, candidates)}) GROUP BY a, b ORDER BY a, b
            """
        ).fetchall()
    return [Pair(a, b, Decision(d), float(s), tuple(e)) for a, b, d, s, e in rows]


#: The bibliographic enhancements of references that have no stored keys yet.
_WITHOUT_KEYS = """
    (SELECT e.reference_id, e.enhancement_type, e.content FROM reference_enhancement e
     WHERE e.enhancement_type = 'bibliographic'
        AND e.reference_id NOT IN (SELECT k.reference_id FROM reference_bibliographic_keys k))
"""


def refresh_keys(conn: duckdb.DuckDBPyConnection, subjects: str) -> None:
    """The stored keys of the subjects recomputed from their enhancements, and those of any
    reference with bibliographic enhancements but no keys yet (a store from before
    detection). Call inside a transaction."""
    bibliographic.install_macros(conn)
    conn.execute(
        "DELETE FROM reference_bibliographic_keys "
        f"WHERE reference_id IN (SELECT s.reference_id FROM {subjects} s)"
    )
    conn.execute(
        "INSERT INTO reference_bibliographic_keys "
        f"SELECT * FROM ({bibliographic.keys_sql(_WITHOUT_KEYS)})"
    )
