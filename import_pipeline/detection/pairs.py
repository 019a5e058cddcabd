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

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from import_pipeline.detection.keys import definitions, install_macros, keys_sql
from import_pipeline.domain.duplicates import (
    BLOCKING_KEYS,
    MATCH_RULES,
    MAX_BLOCK_SIZE,
    MAYBE_RULE,
    SAME_PLACE,
    STARS,
    TITLE_CHARACTERS_FLOOR,
    TITLE_JARO_WINKLER_FLOOR,
    VETOES,
    Decision,
)
from import_pipeline.store.connection import TempTables

#: What the vetoes read, over every candidate pair of key rows: the two years and the titles'
#: lengths only (this join, which most candidate pairs of a big store end in, carries no
#: long strings).
VETO_FEATURES = """
    abs(a.year - b.year) AS year_gap,
    least(a.title_length, b.title_length) AS shorter_title_length
"""

#: Then, over the same join, the comparisons of equal fields.
EXACT_FEATURES = """
    coalesce(a.first_author = b.first_author, false) AS first_author_same,
    coalesce(a.year = b.year, false) AS year_same,
    coalesce(a.volume = b.volume, false) AS volume_same,
    coalesce(a.volume <> b.volume, false) AS volume_conflict,
    coalesce(a.issue = b.issue, false) AS issue_same,
    coalesce(a.first_page = b.first_page, false) AS first_page_same,
    coalesce(a.first_page <> b.first_page, false) AS pages_conflict,
    coalesce(a.last_page = b.last_page AND a.last_page <> a.first_page, false) AS page_range_same,
    coalesce(a.title_start = b.title_start, false) AS title_start_same
"""

#: And, for the pairs that may pass a rule, the strings the similarities are computed from.
STRING_FEATURES = """
    a.title AS title_a, b.title AS title_b,
    a.title_length AS title_length_a, b.title_length AS title_length_b,
    a.authors AS authors_a, b.authors AS authors_b,
    a.venue AS venue_a, b.venue AS venue_b,
    least(a.title_length, b.title_length) >= 30
        AND (starts_with(a.title, b.title) OR starts_with(b.title, a.title)) AS title_prefix
"""

#: The pairs whose titles' edit distance is worth computing: a Jaro-Winkler similarity of at
#: least this, and lengths at most this share of the longer apart, leave them a chance of
#: the rules' lowest threshold (0.85; an edit distance is at least the difference in length).
#: The others' title similarity is 0.
EDIT_DISTANCE_GATE_JARO_WINKLER = 0.8
EDIT_DISTANCE_GATE_LENGTH_GAP = 1 - TITLE_CHARACTERS_FLOOR


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


def _involved_sql(keys: str, candidates: str) -> str:
    """The key rows of the references in a candidate pair, with their titles' lengths and a
    hash of their first 30 characters (a title starts with another of 30 or more only if
    those are equal). A temp table: the pairs of key rows refer to its rows by `rowid`, which
    costs nothing where `row_number()` is one thread over the whole table."""
    return f"""
        SELECT length(k.title) AS title_length,
            CASE WHEN length(k.title) >= 30 THEN hash(left(k.title, 30)) END AS title_start, k.*
        FROM {keys} k
        WHERE k.reference_id IN (SELECT a FROM {candidates} UNION SELECT b FROM {candidates})
    """


def _unvetoed_sql(involved: str, candidates: str) -> str:
    """Each candidate pair's pairs of key rows (every row of one with every row of the
    other) that no veto rules out, with their exact features."""
    return f"""
        SELECT * FROM (
            SELECT c.a, c.b, a.rowid AS key_row_a, b.rowid AS key_row_b,
                {VETO_FEATURES}, {EXACT_FEATURES}
            FROM {candidates} c JOIN {involved} a ON a.reference_id = c.a
                JOIN {involved} b ON b.reference_id = c.b)
        WHERE NOT ({_condition(VETOES)})
    """


#: A decision by its stored string (`Decision(...)` walks Python's enum machinery per pair).
_DECISIONS = {decision.value: decision for decision in Decision}

#: A title's characters, counted in these classes (keys hold only these after normalisation;
#: anything else is counted in one more).
_CHARACTER_CLASS = np.full(256, 37, dtype=np.uint8)
for _index, _character in enumerate("abcdefghijklmnopqrstuvwxyz0123456789 "):
    _CHARACTER_CLASS[ord(_character)] = _index
_CLASSES = 38
_CHUNK = 50_000


def _count_characters(titles: pa.Array) -> np.ndarray:
    """A row of character-class counts per title: each byte's class added to its title's
    bins, in one `bincount` over the titles' bytes."""
    ends = np.frombuffer(titles.buffers()[1], dtype=np.int64)
    ends = ends[titles.offset : titles.offset + len(titles) + 1]
    data = np.frombuffer(titles.buffers()[2], dtype=np.uint8)[ends[0] : ends[-1]]
    bins = np.repeat(np.arange(len(titles), dtype=np.int32) * _CLASSES, np.diff(ends))
    counted = np.bincount(bins + _CHARACTER_CLASS[data], minlength=len(titles) * _CLASSES)
    return counted.reshape(len(titles), _CLASSES).astype(np.uint16)


def _character_counts(
    conn: duckdb.DuckDBPyConnection, involved: str
) -> tuple[np.ndarray, np.ndarray]:
    """How many of each character class each title of `involved` holds, counted with numpy
    a chunk of titles at a time on both cores (numpy lets go of the GIL): the key rows'
    `rowid`s in order (a temp table's are not 0, 1, 2 … inside a transaction) and a row of
    counts for each."""
    table = conn.execute(f"SELECT rowid, coalesce(title, '') AS title FROM {involved}").arrow()
    table = table.read_all()
    titles = table.column(1).combine_chunks().cast(pa.large_string())
    chunks = [titles.slice(first, _CHUNK) for first in range(0, len(titles), _CHUNK)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(_count_characters, chunks))
    rowids = table.column(0).to_numpy()
    order = np.argsort(rowids)
    empty = np.empty((0, _CLASSES), dtype=np.uint16)
    return rowids[order], np.concatenate([empty, *counts])[order]


@contextmanager
def _plausible(conn: duckdb.DuckDBPyConnection, involved: str, unvetoed: str) -> Iterator[str]:
    """A frame of the unvetoed pairs (their `rowid`) that may pass a rule: titles that share
    `TITLE_CHARACTERS_FLOOR` of the longer one's characters, that start alike, or the pair
    in `SAME_PLACE`. The others cannot, whatever their similarities would be."""
    rowids, counts = _character_counts(conn, involved)
    pairs = conn.execute(
        f"SELECT rowid, key_row_a, key_row_b, title_start_same OR ({SAME_PLACE}) AS exempt "
        f"FROM {unvetoed}"
    ).fetchnumpy()
    kept = [np.empty(0, dtype=np.int64)]
    for first in range(0, len(pairs["rowid"]), _CHUNK):
        part = slice(first, first + _CHUNK)
        a = counts[np.searchsorted(rowids, pairs["key_row_a"][part])]
        b = counts[np.searchsorted(rowids, pairs["key_row_b"][part])]
        shared = np.minimum(a, b).sum(axis=1, dtype=np.int64)
        longer = np.maximum(a.sum(axis=1, dtype=np.int64), b.sum(axis=1, dtype=np.int64))
        plausible = (shared >= TITLE_CHARACTERS_FLOOR * longer) | pairs["exempt"][part]
        kept.append(pairs["rowid"][part][plausible])
    name = f"frame_{unvetoed}_plausible"
    conn.register(name, pl.DataFrame({"pair_row": np.concatenate(kept)}))
    try:
        yield name
    finally:
        conn.unregister(name)


def _jaro_winkler(first: list[str | None], second: list[str | None]) -> np.ndarray:
    """Jaro-Winkler similarity of each pair of strings, NaN where either is missing."""
    present = [a is not None and b is not None for a, b in zip(first, second, strict=True)]
    rows = np.flatnonzero(present)
    scores = np.full(len(first), np.nan)
    scores[rows] = process.cpdist(
        [first[i] for i in rows], [second[i] for i in rows],
        scorer=JaroWinkler.similarity, dtype=np.float64, workers=-1,
    )  # fmt: skip
    return scores


def _similarities(pairs: pl.DataFrame) -> pl.DataFrame:
    """The pairs' string similarities, by rapidfuzz over whole columns (one C++ call a column,
    both cores; the same Jaro-Winkler figures as DuckDB's `jaro_winkler_similarity` on the
    normalised, ASCII keys, at half its time, and an edit distance at ~3 µs a pair where
    DuckDB's `levenshtein` takes ~60 µs). Pairs whose titles are less alike than the floor
    are dropped before the authors' and venues' similarities."""
    titles_a, titles_b = pairs["title_a"].to_list(), pairs["title_b"].to_list()
    jaro_winkler = _jaro_winkler(titles_a, titles_b)
    lengths_a = pairs["title_length_a"].to_numpy()
    lengths_b = pairs["title_length_b"].to_numpy()
    gated = np.flatnonzero(
        (jaro_winkler >= EDIT_DISTANCE_GATE_JARO_WINKLER)
        & (np.abs(lengths_a - lengths_b)
           <= EDIT_DISTANCE_GATE_LENGTH_GAP * np.maximum(lengths_a, lengths_b))
    )  # fmt: skip
    edit = np.zeros(len(titles_a))
    edit[gated] = process.cpdist(
        [titles_a[i] for i in gated], [titles_b[i] for i in gated],
        scorer=Levenshtein.normalized_similarity, dtype=np.float64, workers=-1,
    )  # fmt: skip
    kept = pairs.with_columns(
        title_jaro_winkler=pl.Series(jaro_winkler), title_similarity=pl.Series(edit)
    ).filter(pl.col("title_jaro_winkler") >= TITLE_JARO_WINKLER_FLOOR)
    authors = _jaro_winkler(kept["authors_a"].to_list(), kept["authors_b"].to_list())
    venues = _jaro_winkler(kept["venue_a"].to_list(), kept["venue_b"].to_list())
    return kept.drop(
        "title_a", "title_b", "authors_a", "authors_b", "venue_a", "venue_b"
    ).with_columns(
        author_similarity=pl.Series(authors, nan_to_null=True),
        venue_similarity=pl.Series(venues, nan_to_null=True),
    )


@contextmanager
def _featured(
    conn: duckdb.DuckDBPyConnection, involved: str, unvetoed: str, plausible: str
) -> Iterator[str]:
    """A frame of every feature the rules read, for the plausible pairs of key rows whose
    titles are not below the floor, registered for the body."""
    pairs = conn.execute(
        f"""
        SELECT u.* EXCLUDE (key_row_a, key_row_b, title_start_same), {STRING_FEATURES}
        FROM {unvetoed} u SEMI JOIN {plausible} p ON p.pair_row = u.rowid
            JOIN {involved} a ON a.rowid = u.key_row_a
            JOIN {involved} b ON b.rowid = u.key_row_b
        """
    ).pl()
    name = f"frame_{unvetoed}_featured"
    conn.register(name, _similarities(pairs))
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
    install_macros(conn)
    with TempTables(conn, "dedup_source") as tables:
        keys = tables.create("keys", keys_sql(enhancements))
        blocks = tables.create("blocks", blocks_sql(keys))
        return pairs_among(conn, keys, blocks, subjects)


def pairs_among(
    conn: duckdb.DuckDBPyConnection, keys: str, blocks: str, subjects: str
) -> list[Pair]:
    """`find_pairs` over key rows and blocks already computed: `keys` and `blocks` are tables
    (e.g. the store's `reference_bibliographic_keys` and `reference_blocks`)."""
    with TempTables(conn, "dedup") as tables:
        candidates = tables.create("candidates", _candidates_sql(blocks, subjects))
        involved = tables.create("involved", _involved_sql(keys, candidates))
        unvetoed = tables.create("unvetoed", _unvetoed_sql(involved, candidates))
        with (
            _plausible(conn, involved, unvetoed) as plausible,
            _featured(conn, involved, unvetoed, plausible) as featured,
        ):
            rows = conn.execute(
                f"""
                SELECT a::VARCHAR, b::VARCHAR,
                    arg_max(decision, (decision = 'duplicate', score)), max(score),
                    arg_max(evidence, (decision = 'duplicate', score))
                FROM ({_decided_sql(featured)}) GROUP BY a, b ORDER BY a, b
                """
            ).fetchall()
    return [Pair(a, b, _DECISIONS[d], float(s), tuple(e)) for a, b, d, s, e in rows]


#: The bibliographic enhancements of references that have no stored keys yet.
_WITHOUT_KEYS = """
    (SELECT e.reference_id, e.enhancement_type, e.content FROM reference_enhancement e
     WHERE e.enhancement_type = 'bibliographic'
        AND e.reference_id NOT IN (SELECT k.reference_id FROM reference_bibliographic_keys k))
"""


#: The key in `store_meta` of the definitions the stored keys and blocks were computed with.
KEYS_VERSION = "bibliographic_keys_version"


def keys_version() -> str:
    """A fingerprint of the normalisation and the blocking keys: when either changes, what is
    stored was computed otherwise and is computed again."""
    fingerprinted = definitions() + repr(BLOCKING_KEYS)
    return hashlib.sha256(fingerprinted.encode()).hexdigest()[:16]


#: The key in `store_meta` of the rules the system's stored decisions were made with.
RULES_VERSION = "duplicate_rules_version"


def rules_version() -> str:
    """A fingerprint of everything a system decision follows from: the normalisation, the
    blocking keys, the match rules, the vetoes, the maybe rule and how stars are formed
    (`domain.duplicates.STARS`). When it changes, the system's decisions are made again."""
    fingerprinted = keys_version() + repr((MATCH_RULES, VETOES, MAYBE_RULE, MAX_BLOCK_SIZE, STARS))
    return hashlib.sha256(fingerprinted.encode()).hexdigest()[:16]


def refresh_keys(conn: duckdb.DuckDBPyConnection, subjects: str) -> None:
    """The stored keys and blocks of the subjects recomputed from their enhancements, and
    those of any reference with bibliographic enhancements but no keys yet (a store from
    before detection). When the store's were computed with other definitions (or before it
    kept blocks), every reference's, once. Call inside a transaction."""
    install_macros(conn)
    version = keys_version()
    stored = conn.execute("SELECT value FROM store_meta WHERE key = ?", [KEYS_VERSION]).fetchall()
    outdated = stored != [(version,)]
    with TempTables(conn, "dedup_refresh") as tables:
        if outdated:
            conn.execute("DELETE FROM reference_bibliographic_keys")
            conn.execute("DELETE FROM reference_blocks")
        else:
            # Only the subjects that have keys (a batch's new references have none, and
            # looking for them among every reference's blocks is most of the cost).
            stale = tables.create(
                "stale",
                f"SELECT DISTINCT k.reference_id FROM reference_bibliographic_keys k "
                f"WHERE k.reference_id IN (SELECT s.reference_id FROM {subjects} s)",
            )
            if conn.execute(f"SELECT count(*) FROM {stale}").fetchall()[0][0]:
                for table in ("reference_bibliographic_keys", "reference_blocks"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE reference_id IN (SELECT reference_id FROM {stale})"
                    )
        fresh = tables.create("keys", keys_sql(_WITHOUT_KEYS))
        conn.execute(f"INSERT INTO reference_bibliographic_keys SELECT * FROM {fresh}")
        conn.execute(f"INSERT INTO reference_blocks SELECT * FROM ({blocks_sql(fresh)})")
    if outdated:
        conn.execute("DELETE FROM store_meta WHERE key = ?", [KEYS_VERSION])
        conn.execute("INSERT INTO store_meta VALUES (?, ?)", [KEYS_VERSION, version])
