"""Finding duplicates without a shared identifier (contract section 8), in the store's engine:
candidate pairs from several blocking keys, features from string similarity, decisions by
the rules and vetoes of `domain.duplicates`; `detection` turns the pairs into stars.

The SQL steps work on a table of keys (`keys_sql`), a table of the blocks each
reference is in (`blocks_sql`) and a table of the references to look at (`subjects`): a
batch's new or merged references are compared with each other and with every reference that
shares a block with them, never the whole store with itself. The vetoes run over a narrow
join first; a bound on the titles' shared characters (numpy) then drops the pairs no rule
could pass, and only the rest get string similarities (rapidfuzz, over whole columns). The
rest is DuckDB SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl

from import_pipeline.detection.keys import install_macros, keys_sql
from import_pipeline.detection.similarity import plausible, similarities
from import_pipeline.domain.duplicates import (
    BLOCKING_KEYS,
    GENERIC_TITLE_STARTS,
    GENERIC_TITLES,
    ISSUE_NUMBER_MAX,
    JOURNAL_VENUE,
    MATCH_RULES,
    MAX_BLOCK_SIZE,
    MAYBE_RULE,
    MEETING_VENUE,
    RECURRING_TITLE_OCCURRENCES,
    SEPARATORS,
    TITLE_JARO_WINKLER_FLOOR,
    VETOES,
    Decision,
)
from import_pipeline.store.connection import TempTables

#: What the vetoes and separators read, over every candidate pair of key rows: the years,
#: the titles' lengths, the comparisons of equal fields and the DOIs (this join, which most
#: candidate pairs of a big store end in, carries no long strings).
EXACT_FEATURES = f"""
    abs(a.year - b.year) AS year_gap,
    least(a.title_length, b.title_length) AS shorter_title_length,
    coalesce(a.first_author = b.first_author, false) AS first_author_same,
    coalesce(a.year = b.year, false) AS year_same,
    coalesce(a.volume = b.volume, false) AS volume_same,
    coalesce(a.volume <> b.volume, false) AS volume_conflict,
    a.volume IS NULL AND b.volume IS NULL AS volume_unknown,
    coalesce((a.venue_kind = 'meeting' AND b.venue_kind = 'journal')
             OR (a.venue_kind = 'journal' AND b.venue_kind = 'meeting'), false)
        AS venue_kinds_differ,
    coalesce(a.venue_kind = 'meeting' AND b.venue_kind = 'meeting', false) AS both_meetings,
    coalesce(a.issue = b.issue, false) AS issue_same,
    coalesce(a.issue <> b.issue AND TRY_CAST(a.issue AS BIGINT) <= {ISSUE_NUMBER_MAX}
             AND TRY_CAST(b.issue AS BIGINT) <= {ISSUE_NUMBER_MAX}, false) AS issue_conflict,
    coalesce(a.first_page = b.first_page, false) AS first_page_same,
    coalesce(a.first_page <> b.first_page
             AND regexp_matches(a.first_page, '^[a-z]+[0-9]')
                 = regexp_matches(b.first_page, '^[a-z]+[0-9]'), false) AS pages_conflict,
    coalesce(a.first_page = b.first_page AND a.last_page <> b.last_page, false)
        AS last_page_conflict,
    coalesce(a.last_page = b.last_page AND a.last_page <> a.first_page, false) AS page_range_same,
    coalesce(a.title = b.title, false) AS title_same,
    coalesce(a.title_start = b.title_start, false) AS title_start_same,
    coalesce(a.title_end = b.title_end, false) AS title_end_same,
    list_has_any(a.dois, b.dois) AS doi_same,
    len(a.dois) > 0 AND len(b.dois) > 0 AND NOT list_has_any(a.dois, b.dois) AS doi_conflict,
    a.title_generic OR b.title_generic AS title_generic,
    a.title_recurring OR b.title_recurring AS title_recurring
"""

#: A title cut to its main clause, or with a short name or acronym put before it, still
#: names the work when what is left has at least this many characters and words.
VARIANT_MIN_CHARACTERS = 20
VARIANT_MIN_WORDS = 4

#: And, for the pairs that may pass a rule, the strings the similarities are computed from,
#: whether one title is the other cut after a word (`title_variant`) or with one word put
#: before it, and whether each title holds a number the other lacks (part 1 and part 2, the
#: 2011 and the 2012 update; not "alpha v beta 3" and "alphavbeta3").
STRING_FEATURES = f"""
    a.title AS title_a, b.title AS title_b,
    a.title_length AS title_length_a, b.title_length AS title_length_b,
    a.authors AS authors_a, b.authors AS authors_b,
    a.venue AS venue_a, b.venue AS venue_b,
    CASE WHEN a.title_length >= b.title_length THEN
            b.title_length >= {VARIANT_MIN_CHARACTERS} AND b.title_words >= {VARIANT_MIN_WORDS}
            AND (starts_with(a.title, b.title || ' ')
                 OR (ends_with(a.title, ' ' || b.title)
                     AND strpos(a.title, ' ') = a.title_length - b.title_length))
         ELSE
            a.title_length >= {VARIANT_MIN_CHARACTERS} AND a.title_words >= {VARIANT_MIN_WORDS}
            AND (starts_with(b.title, a.title || ' ')
                 OR (ends_with(b.title, ' ' || a.title)
                     AND strpos(b.title, ' ') = b.title_length - a.title_length))
    END OR a.title = b.title AS title_variant,
    NOT list_has_all(title_numbers(a.title), title_numbers(b.title))
        AND NOT list_has_all(title_numbers(b.title), title_numbers(a.title))
        AS title_numbers_differ
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
    agreement: int = 0  # how many of year, volume, issue, first page, first author, DOI agree
    support: float = 0.0  # the authors' and the venues' similarities, summed


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


def _involved_sql(keys: str, candidates: str, identifiers: str) -> str:
    """The key rows of the references in a candidate pair, with their titles' lengths and
    word counts, a hash of their first and last `VARIANT_MIN_CHARACTERS` characters (a title
    that is another cut after a word, or with a word put before it, shares one of them), the
    reference's DOIs, and whether the title is generic (`GENERIC_TITLES`, or one its venue
    repeats over `RECURRING_TITLE_OCCURRENCES` years or volumes). A temp table: the pairs of
    key rows refer to its rows by `rowid`, which costs nothing where `row_number()` is one
    thread over the whole table."""
    edge = VARIANT_MIN_CHARACTERS
    generic = ", ".join(f"'{title}'" for title in GENERIC_TITLES)
    starts = "|".join(start.rstrip() + " " for start in GENERIC_TITLE_STARTS)
    return f"""
        WITH refs AS (SELECT a AS reference_id FROM {candidates}
                      UNION SELECT b FROM {candidates}),
        k AS MATERIALIZED (SELECT * FROM {keys} SEMI JOIN refs USING (reference_id)),
        dois AS (
            SELECT reference_id, list(DISTINCT identifier ORDER BY identifier) AS dois
            FROM {identifiers} SEMI JOIN refs USING (reference_id)
            WHERE identifier_type = 'doi' GROUP BY reference_id
        ),
        recurring AS (
            SELECT s.title, s.venue FROM {keys} s
            SEMI JOIN (SELECT DISTINCT title, venue FROM k) t
                ON t.title = s.title AND t.venue IS NOT DISTINCT FROM s.venue
            GROUP BY s.title, s.venue
            HAVING count(DISTINCT s.year) >= {RECURRING_TITLE_OCCURRENCES}
                OR count(DISTINCT s.volume) >= {RECURRING_TITLE_OCCURRENCES}
        )
        SELECT length(k.title) AS title_length,
            length(k.title) - length(replace(k.title, ' ', '')) + 1 AS title_words,
            CASE WHEN length(k.title) >= {edge} THEN hash(left(k.title, {edge})) END
                AS title_start,
            CASE WHEN length(k.title) >= {edge} THEN hash(right(k.title, {edge})) END
                AS title_end,
            coalesce(d.dois, []::VARCHAR[]) AS dois,
            k.title IN ({generic}) OR regexp_matches(k.title || ' ', '^({starts})')
                AS title_generic,
            r.title IS NOT NULL AS title_recurring,
            CASE WHEN NOT regexp_matches(k.venue, '{MEETING_VENUE}') THEN
                     CASE WHEN regexp_matches(k.venue, '{JOURNAL_VENUE}') THEN 'journal' END
                 WHEN NOT regexp_matches(k.venue, '{JOURNAL_VENUE}') THEN 'meeting' END
                AS venue_kind,
            k.*
        FROM k LEFT JOIN dois d USING (reference_id)
            LEFT JOIN recurring r ON r.title = k.title AND r.venue IS NOT DISTINCT FROM k.venue
    """


def _unvetoed_sql(involved: str, candidates: str) -> str:
    """Each candidate pair's pairs of key rows (every row of one with every row of the
    other) that no veto rules out, with their exact features."""
    return f"""
        SELECT * FROM (
            SELECT c.a, c.b, a.rowid AS key_row_a, b.rowid AS key_row_b, {EXACT_FEATURES}
            FROM {candidates} c JOIN {involved} a ON a.reference_id = c.a
                JOIN {involved} b ON b.reference_id = c.b)
        WHERE NOT ({_condition(VETOES)})
    """


#: A decision by its stored string (`Decision(...)` walks Python's enum machinery per pair).
_DECISIONS = {decision.value: decision for decision in Decision}


@contextmanager
def _featured(
    conn: duckdb.DuckDBPyConnection, involved: str, unvetoed: str, plausible: str | None
) -> Iterator[str]:
    """A frame of every feature the rules read, for the plausible pairs of key rows whose
    titles are not below the floor (every unvetoed pair when `plausible` is None),
    registered for the body."""
    only_plausible = f"SEMI JOIN {plausible} p ON p.pair_row = u.rowid" if plausible else ""
    pairs = conn.execute(
        f"""
        SELECT u.* EXCLUDE (key_row_a, key_row_b, title_start_same, title_end_same),
            {STRING_FEATURES}
        FROM {unvetoed} u {only_plausible}
            JOIN {involved} a ON a.rowid = u.key_row_a
            JOIN {involved} b ON b.rowid = u.key_row_b
        """
    ).pl()
    name = f"frame_{unvetoed}_featured"
    conn.register(name, similarities(pairs, TITLE_JARO_WINKLER_FLOOR if plausible else -1.0))
    try:
        yield name
    finally:
        conn.unregister(name)


def _decided_sql(featured: str) -> str:
    """Each pair's decision: the first rule that holds, else `maybe` if its rule does."""
    evidence = " ".join(
        f"WHEN {rule.sql} THEN {list(rule.evidence)!r}" for rule in (*MATCH_RULES, MAYBE_RULE)
    )
    return f"""
        SELECT a, b,
            CASE WHEN ({_condition(MATCH_RULES)}) AND NOT ({_condition(SEPARATORS)})
                 THEN 'duplicate' ELSE 'maybe' END AS decision,
            round(greatest(title_similarity, title_jaro_winkler), 4) AS score,
            year_same::INT + volume_same::INT + issue_same::INT + first_page_same::INT
                + first_author_same::INT + doi_same::INT AS agreement,
            round(coalesce(author_similarity, 0) + coalesce(venue_similarity, 0), 4) AS support,
            CASE {evidence} END AS evidence
        FROM {featured}
        WHERE {_condition(MATCH_RULES)} OR ({MAYBE_RULE.sql})
    """


#: What a table of identifiers needs, when a caller has none (no DOIs).
_NO_IDENTIFIERS = (
    "(SELECT NULL::VARCHAR AS reference_id, NULL::VARCHAR AS identifier_type, "
    "NULL::VARCHAR AS identifier WHERE false)"
)


def find_pairs(
    conn: duckdb.DuckDBPyConnection,
    enhancements: str,
    subjects: str,
    identifiers: str = _NO_IDENTIFIERS,
) -> list[Pair]:
    """The pairs among the references of `enhancements` (bibliographic ones are read) that
    involve a reference of `subjects` (a table or query of `reference_id`), one per pair of
    references: a duplicate if any pair of their records is one, else the best `maybe`.
    Their DOIs are the `doi` rows of `identifiers` (`reference_id`, `identifier_type`,
    `identifier`)."""
    install_macros(conn)
    with TempTables(conn, "dedup_source") as tables:
        keys = tables.create("keys", keys_sql(enhancements))
        blocks = tables.create("blocks", blocks_sql(keys))
        return pairs_among(conn, keys, blocks, subjects, identifiers)


def pairs_among(
    conn: duckdb.DuckDBPyConnection,
    keys: str,
    blocks: str,
    subjects: str,
    identifiers: str = "reference_identifier",
) -> list[Pair]:
    """`find_pairs` over key rows and blocks already computed: `keys` and `blocks` are tables
    (e.g. the store's `reference_bibliographic_keys` and `reference_blocks`)."""
    with TempTables(conn, "dedup") as tables:
        candidates = tables.create("candidates", _candidates_sql(blocks, subjects))
        involved = tables.create("involved", _involved_sql(keys, candidates, identifiers))
        unvetoed = tables.create("unvetoed", _unvetoed_sql(involved, candidates))
        with (
            plausible(conn, involved, unvetoed) as plausible_pairs,
            _featured(conn, involved, unvetoed, plausible_pairs) as featured,
        ):
            rows = conn.execute(
                f"""
                SELECT a::VARCHAR, b::VARCHAR,
                    arg_max(decision, (decision = 'duplicate', score)), max(score),
                    arg_max(evidence, (decision = 'duplicate', score)),
                    max(agreement) FILTER (WHERE decision = 'duplicate'),
                    max(support) FILTER (WHERE decision = 'duplicate')
                FROM ({_decided_sql(featured)}) GROUP BY a, b ORDER BY a, b
                """
            ).fetchall()
    return [
        Pair(a, b, _DECISIONS[d], float(s), tuple(e), g or 0, u or 0.0)
        for a, b, d, s, e, g, u in rows
    ]


def separated_pairs(
    conn: duckdb.DuckDBPyConnection,
    pairs: list[tuple[str, str]],
    keys: str = "reference_bibliographic_keys",
    identifiers: str = "reference_identifier",
) -> set[tuple[str, str]]:
    """Of these pairs of references (any two, not only candidates), those the rules keep
    apart: every pair of their records is vetoed or separated (`VETOES`, `SEPARATORS`), or
    one of them has no record. The same SQL as for candidates, so that a star is held to
    exactly the rules that decide its pairs."""
    if not pairs:
        return set()
    frame = pl.DataFrame(
        {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]},
        schema={"a": pl.String, "b": pl.String},
    )
    # The store's references are UUIDs; a caller's own keys may hold text.
    ref_type = conn.execute(f"DESCRIBE SELECT reference_id FROM {keys}").fetchall()[0][1]
    conn.register("frame_star_pairs", frame)
    try:
        with TempTables(conn, "separated") as tables:
            candidates = tables.create(
                "candidates",
                f"SELECT DISTINCT a::{ref_type} AS a, b::{ref_type} AS b FROM frame_star_pairs",
            )
            involved = tables.create("involved", _involved_sql(keys, candidates, identifiers))
            unvetoed = tables.create("unvetoed", _unvetoed_sql(involved, candidates))
            with _featured(conn, involved, unvetoed, None) as featured:
                together = conn.execute(
                    f"SELECT DISTINCT a::VARCHAR, b::VARCHAR FROM {featured} "
                    f"WHERE NOT ({_condition(SEPARATORS)})"
                ).fetchall()
    finally:
        conn.unregister("frame_star_pairs")
    return {(a, b) for a, b in frame.iter_rows()} - set(together)
