"""The string side of pair scoring, over whole columns: a bound on the titles' shared
characters (numpy) that drops the pairs no rule could pass before any similarity is computed,
and the similarities themselves (rapidfuzz)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from import_pipeline.domain.duplicates import (
    SAME_PLACE,
    TITLE_CHARACTERS_FLOOR,
    TITLE_JARO_WINKLER_FLOOR,
)

#: The pairs whose titles' edit distance is worth computing: a Jaro-Winkler similarity of at
#: least this, and lengths at most this share of the longer apart, leave them a chance of
#: the rules' lowest threshold (0.85; an edit distance is at least the difference in length).
#: The others' title similarity is 0.
EDIT_DISTANCE_GATE_JARO_WINKLER = 0.8
EDIT_DISTANCE_GATE_LENGTH_GAP = 1 - TITLE_CHARACTERS_FLOOR

#: A title's characters, counted in these classes (keys hold only these after normalisation;
#: anything else is counted in one more).
_CHARACTER_CLASS = np.full(256, 37, dtype=np.uint8)
for _index, _character in enumerate("abcdefghijklmnopqrstuvwxyz0123456789 "):
    _CHARACTER_CLASS[ord(_character)] = _index
_CLASSES = 38
_CHUNK = 50_000


def count_characters(titles: pa.Array) -> np.ndarray:
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
        counts = list(pool.map(count_characters, chunks))
    rowids = table.column(0).to_numpy()
    order = np.argsort(rowids)
    empty = np.empty((0, _CLASSES), dtype=np.uint16)
    return rowids[order], np.concatenate([empty, *counts])[order]


@contextmanager
def plausible(conn: duckdb.DuckDBPyConnection, involved: str, unvetoed: str) -> Iterator[str]:
    """A frame of the unvetoed pairs (their `rowid`) that may pass a rule: titles that share
    `TITLE_CHARACTERS_FLOOR` of the longer one's characters, that start alike, or the pair
    in `SAME_PLACE`. The others cannot, whatever their similarities would be."""
    rowids, counts = _character_counts(conn, involved)
    pairs = conn.execute(
        f"SELECT rowid, key_row_a, key_row_b, "
        f"title_start_same OR title_end_same OR doi_same OR ({SAME_PLACE}) AS exempt "
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


def similarities(pairs: pl.DataFrame, floor: float = TITLE_JARO_WINKLER_FLOOR) -> pl.DataFrame:
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
    ).filter(pl.col("title_jaro_winkler").fill_nan(0) >= floor)
    authors = _jaro_winkler(kept["authors_a"].to_list(), kept["authors_b"].to_list())
    venues = _jaro_winkler(kept["venue_a"].to_list(), kept["venue_b"].to_list())
    return kept.drop(
        "title_a", "title_b", "authors_a", "authors_b", "venue_a", "venue_b"
    ).with_columns(
        author_similarity=pl.Series(authors, nan_to_null=True),
        venue_similarity=pl.Series(venues, nan_to_null=True),
    )
