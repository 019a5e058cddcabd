"""Maybe pairs reviewed in bulk (contract section 8): every `maybe` pair written as CSV for a
person to fill in (`export_maybe_pairs`), the file read back (`read_review`) and its decisions
applied as a person's in one transaction, all rows or none (`apply_review`); and the pairs a
record run decided, for the asset's metadata (`decided_pairs`).

The file is opened in spreadsheets, so a cell a spreadsheet would run as a formula is written
with a leading `'`, and one leading `'` is taken off every cell read (`protect`, `unprotect`)."""

from __future__ import annotations

import csv
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import duckdb

from import_pipeline.domain.duplicates import DecidedBy, Decision
from import_pipeline.errors import DecisionRefused, ImportPipelineError, NotFound
from import_pipeline.store.connection import transaction, values_table
from import_pipeline.store.decision_history import MANUAL
from import_pipeline.store.duplicates import (
    StoredDecision,
    decisions_of,
    write_person_decisions,
)

#: The fields of each side, in the file's order (`reference_title`, …, `candidate_title`, …).
FIELDS = ("title", "authors", "year", "venue", "volume", "issue", "pages", "doi")
COLUMNS = (
    "reference_id", "candidate_id", "score",
    *(f"reference_{f}" for f in FIELDS), *(f"candidate_{f}" for f in FIELDS),
    "decision",
)  # fmt: skip
#: The words of the decision column; an empty cell leaves the pair as it is.
WORDS = {"duplicate": Decision.DUPLICATE, "distinct": Decision.DISTINCT}

#: A spreadsheet runs a cell starting with these as a formula (`=`, `+`, `-`, `@`; tab and
#: carriage return are read as the same by some). `'` is the escape itself: protected too,
#: so that taking one `'` off every cell read gives back exactly what was written.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def protect(text: str) -> str:
    """`text` as a cell no spreadsheet runs: a leading `'` where it starts like a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def unprotect(text: str) -> str:
    """The cell's text as written before `protect`."""
    return text[1:] if text.startswith("'") else text


#: One side's fields from its first bibliographic record (`{x}.c`) and its DOIs (`{x}d.doi`).
_SIDE = """
    {x}.c ->> 'title',
    array_to_string(json_extract_string({x}.c, '$.authorship[*].display_name'), '; '),
    {x}.c ->> 'publication_year',
    {x}.c -> 'publication_venue' ->> 'display_name',
    {x}.c -> 'pagination' ->> 'volume',
    {x}.c -> 'pagination' ->> 'issue',
    nullif(concat_ws('-', {x}.c -> 'pagination' ->> 'first_page',
                     {x}.c -> 'pagination' ->> 'last_page'), ''),
    {x}d.doi
"""

#: Every maybe pair in one query. Only the pairs' references' records and DOIs are read: the
#: first record of every reference of a store of millions would not fit in its memory.
_EXPORT = f"""
    WITH pairs AS (
        SELECT d.reference_id, d.duplicate_of AS candidate_id, d.score
        FROM duplicate_decisions d
        WHERE d.decision = 'maybe' AND d.duplicate_of IS NOT NULL AND {{record}}
        -- Two references each the other's maybe are one pair: one row.
        QUALIFY row_number() OVER (
            PARTITION BY least(d.reference_id, d.duplicate_of),
                greatest(d.reference_id, d.duplicate_of)
            ORDER BY d.score DESC NULLS LAST, d.reference_id DESC) = 1
    ), involved AS (
        SELECT reference_id FROM pairs UNION SELECT candidate_id FROM pairs
    ), first_records AS (
        SELECT reference_id, arg_min(content, created_at) AS c FROM reference_enhancement
        WHERE enhancement_type = 'bibliographic'
            AND reference_id IN (SELECT reference_id FROM involved)
        GROUP BY reference_id
    ), dois AS (
        SELECT reference_id, string_agg(identifier, ' ' ORDER BY identifier) AS doi
        FROM reference_identifier
        WHERE identifier_type = 'doi' AND reference_id IN (SELECT reference_id FROM involved)
        GROUP BY reference_id
    )
    SELECT p.reference_id::VARCHAR, p.candidate_id::VARCHAR, p.score,
        {_SIDE.format(x="a")}, {_SIDE.format(x="b")}
    FROM pairs p
    LEFT JOIN first_records a ON a.reference_id = p.reference_id
    LEFT JOIN dois ad ON ad.reference_id = p.reference_id
    LEFT JOIN first_records b ON b.reference_id = p.candidate_id
    LEFT JOIN dois bd ON bd.reference_id = p.candidate_id
    ORDER BY p.score DESC NULLS LAST, p.reference_id
"""

_OF_RECORD = """d.reference_id IN (SELECT r.reference_id FROM import_results r
    JOIN import_batches b ON b.id = r.import_batch_id WHERE b.record_key = ?)"""


def export_maybe_pairs(
    conn: duckdb.DuckDBPyConnection, out: TextIO, *, record_key: str | None = None
) -> int:
    """Writes every `maybe` pair (of the record's references, if given) to `out` as CSV
    (`COLUMNS`, RFC 4180 quoting, cells `protect`ed), best score first; how many pairs.
    Streamed: one query, fetched a slice at a time.

    Raises:
        NotFound: there is no record `record_key`.
    """
    params: list[object] = []
    if record_key is not None:
        if not conn.execute(
            "SELECT 1 FROM import_records WHERE record_key = ?", [record_key]
        ).fetchall():
            raise NotFound(f"no import record {record_key!r}")
        params.append(record_key)
    cursor = conn.execute(
        _EXPORT.format(record=_OF_RECORD if record_key is not None else "TRUE"), params
    )
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    pairs = 0
    while rows := cursor.fetchmany(10_000):
        writer.writerows([*(_cell(value) for value in row), ""] for row in rows)
        pairs += len(rows)
    return pairs


def _cell(value: object) -> str:
    return "" if value is None else protect(str(value))


@dataclass(frozen=True)
class ReviewRow:
    """One row of a review file: its line in the file (where it starts), the two ids and the
    decision word as written (unprotected, trimmed, lower case)."""

    line: int
    reference_id: str
    candidate_id: str
    decision: str


def read_review(stream: TextIO) -> Iterator[dict[str, Any]]:
    """The rows of a review file, each as `{"line": N, column: text}` with every cell
    unprotected: as `export_maybe_pairs` wrote it or as a spreadsheet saved it (columns in any
    order, more columns, `,` `;` or tab between cells, a BOM, CRLF). Blank rows are left out.

    Raises:
        DecisionRefused: the file has no header, or lacks a column `decide` needs.
    """
    first = stream.readline()
    # A spreadsheet saves with the separator of its locale: the header's most frequent one.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
    header = [unprotect(name.lstrip("\ufeff").strip()).strip().lower() for name in next(reader, [])]
    missing = [c for c in ("reference_id", "candidate_id", "decision") if c not in header]
    if missing:
        raise DecisionRefused(
            "not a review file: no column " + ", ".join(missing) + " in its first line"
        )
    start = reader.line_num + 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            row: dict[str, Any] = dict(itertools.zip_longest(header, map(unprotect, cells),
                                                             fillvalue=""))  # fmt: skip
            row["line"] = start
            yield row
        start = reader.line_num + 1


def review_rows(rows: Iterable[dict[str, Any]]) -> list[ReviewRow]:
    """The rows `decide --from` reads: their ids and decision words."""
    return [
        ReviewRow(row["line"], row["reference_id"].strip(), row["candidate_id"].strip(),
                  row["decision"].strip().lower())
        for row in rows
    ]  # fmt: skip


def export_file(
    conn: duckdb.DuckDBPyConnection, path: Path, *, record_key: str | None = None
) -> int:
    """`export_maybe_pairs` into a file, written whole or not at all (into `FILE.part`, renamed
    when done). UTF-8 with a BOM: Excel reads a file without one in its locale's code page."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8-sig", newline="") as out:
            pairs = export_maybe_pairs(conn, out, record_key=record_key)
        part.replace(path)
    except OSError as exc:
        raise ImportPipelineError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        part.unlink(missing_ok=True)
    return pairs


def read_review_file(path: Path) -> list[ReviewRow]:
    """The rows of a review file. Only ids and decision words are read from it, so a file a
    spreadsheet saved in its own encoding reads too (`errors="replace"`)."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
            return review_rows(read_review(stream))
    except OSError as exc:
        raise ImportPipelineError(f"cannot read {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class _Intent:
    """A decided row, read: `target` is the canonical a duplicate points to (the candidate's
    stored canonical when the candidate is itself a duplicate), None for distinct."""

    line: int
    reference_id: str
    candidate_id: str | None
    decision: Decision
    target: str | None = None


class _Problems:
    """What is wrong with each line of the file, every line checked before any is refused."""

    def __init__(self) -> None:
        self.by_line: dict[int, list[str]] = {}

    def add(self, reason: str, *lines: int) -> None:
        for line in lines:
            if reason not in self.by_line.setdefault(line, []):
                self.by_line[line].append(reason)

    def refuse(self) -> None:
        if self.by_line:
            listed = [f"  line {line}: {reason}" for line in sorted(self.by_line)
                      for reason in self.by_line[line]]  # fmt: skip
            raise DecisionRefused(
                f"{len(self.by_line)} row(s) refused, nothing applied:\n" + "\n".join(listed)
            )


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _read(rows: list[ReviewRow], problems: _Problems) -> list[_Intent]:
    """The decided rows whose words and ids are well formed (the others named)."""
    intents = []
    for row in rows:
        decision = WORDS.get(row.decision)
        if decision is None:
            problems.add(f"unknown decision {row.decision!r} (duplicate, distinct or empty)",
                         row.line)  # fmt: skip
        reference = _uuid(row.reference_id)
        if reference is None:
            problems.add(f"reference_id {row.reference_id!r} is not a reference id", row.line)
        candidate = _uuid(row.candidate_id) if row.candidate_id else None
        if row.candidate_id and candidate is None:
            problems.add(f"candidate_id {row.candidate_id!r} is not a reference id", row.line)
        elif decision is Decision.DUPLICATE and candidate is None:
            problems.add("a duplicate needs the candidate_id it duplicates", row.line)
        if decision is not None and reference is not None and row.line not in problems.by_line:
            intents.append(_Intent(row.line, reference, candidate, decision))
    return intents


def _known(
    conn: duckdb.DuckDBPyConnection, intents: list[_Intent], problems: _Problems
) -> list[_Intent]:
    """The intents whose references exist (the others named)."""
    named = sorted({r for i in intents for r in (i.reference_id, i.candidate_id) if r})
    with values_table(conn, "frame_review_named", named) as table:
        known = {ref for (ref,) in conn.execute(
            f"SELECT id::VARCHAR FROM reference WHERE id IN (SELECT value::UUID FROM {table})"
        ).fetchall()}  # fmt: skip
    kept = []
    for intent in intents:
        unknown = [r for r in (intent.reference_id, intent.candidate_id) if r and r not in known]
        for ref in unknown:
            problems.add(f"no reference {ref}", intent.line)
        if not unknown:
            kept.append(intent)
    return kept


def _by_reference(
    intents: list[_Intent], stored: dict[str, StoredDecision], problems: _Problems
) -> dict[str, _Intent]:
    """Each decided reference's intent, its target resolved to the candidate's canonical; a
    reference decided differently on several lines is named on each of them."""
    by_reference: dict[str, list[_Intent]] = {}
    for intent in intents:
        target = None
        if intent.decision is Decision.DUPLICATE and intent.candidate_id is not None:
            held = stored.get(intent.candidate_id)
            duplicate = held is not None and held.decision is Decision.DUPLICATE
            target = held.duplicate_of if held and duplicate else intent.candidate_id
        resolved = _Intent(intent.line, intent.reference_id, intent.candidate_id,
                           intent.decision, target)  # fmt: skip
        by_reference.setdefault(intent.reference_id, []).append(resolved)
    for ref, same in by_reference.items():
        if len({(i.decision, i.target) for i in same}) > 1:
            lines = ", ".join(str(i.line) for i in same)
            problems.add(f"reference {ref} is decided differently on lines {lines}",
                         *(i.line for i in same))  # fmt: skip
    return {ref: same[0] for ref, same in by_reference.items()}


def _check_stars(
    intents: dict[str, _Intent], pointing: dict[str, list[str]], problems: _Problems
) -> None:
    """Names every line that would leave a chain or a cycle once all lines are applied: a
    duplicate's canonical must stay a canonical, and a canonical keeps its duplicates only
    while it is not made a duplicate or distinct."""
    for ref, it in intents.items():
        target = it.target
        if target == ref:
            problems.add(f"reference {ref} would be a duplicate of itself (a cycle): its "
                         f"candidate {it.candidate_id} is a duplicate of it", it.line)  # fmt: skip
        elif target is not None and (other := intents.get(target)) is not None:
            if other.target == ref:
                reason = (
                    f"lines {it.line} and {other.line} make {ref} and {target} "
                    "duplicates of each other (a cycle)"
                )
            elif other.decision is Decision.DUPLICATE:
                reason = (
                    f"line {it.line} makes {ref} a duplicate of {target}, which line "
                    f"{other.line} makes a duplicate of {other.target} (a chain)"
                )
            else:
                reason = (
                    f"line {it.line} makes {ref} a duplicate of {target}, which line "
                    f"{other.line} marks distinct"
                )
            problems.add(reason, it.line, other.line)
        # Its stored duplicates that no line points elsewhere still point to it.
        staying = sorted(p for p in pointing.get(ref, []) if p not in intents)
        if staying:
            becoming = "a duplicate (a chain)" if it.target else "distinct"
            problems.add(f"reference {ref} is the canonical of {len(staying)} duplicate(s) "
                         f"({staying[0]}{', …' if len(staying) > 1 else ''}): it cannot become "
                         f"{becoming} unless they are decided too", it.line)  # fmt: skip


def _pointing(conn: duckdb.DuckDBPyConnection, references: list[str]) -> dict[str, list[str]]:
    """The stored duplicates of each of these references."""
    pointing: dict[str, list[str]] = {}
    with values_table(conn, "frame_review_canonicals", references) as table:
        for canonical, duplicate in conn.execute(
            f"""SELECT duplicate_of::VARCHAR, reference_id::VARCHAR FROM duplicate_decisions
            WHERE decision = 'duplicate' AND duplicate_of IN (SELECT value::UUID FROM {table})"""
        ).fetchall():
            pointing.setdefault(canonical, []).append(duplicate)
    return pointing


def _person(ref: str, decision: Decision, duplicate_of: str | None = None) -> StoredDecision:
    return StoredDecision(ref, decision, duplicate_of, None, DecidedBy.PERSON, ("person",))


def apply_review(conn: duckdb.DuckDBPyConnection, rows: list[ReviewRow]) -> dict[str, int]:
    """Applies the rows decided `duplicate` (of the candidate's canonical; a candidate that is
    no duplicate becomes canonical) or `distinct` as a person's decisions, all in one
    transaction; rows with no decision are skipped. Every row is checked, alone and with the
    others, before anything is written. Returns the counts applied.

    Raises:
        DecisionRefused: naming every line with an unknown decision word or reference, or
            that would make a chain or a cycle; nothing is written.
    """
    decided = [row for row in rows if row.decision]
    problems = _Problems()
    with transaction(conn):
        intents = _known(conn, _read(decided, problems), problems)
        candidates = sorted({i.candidate_id for i in intents if i.candidate_id})
        stored = decisions_of(conn, sorted({i.reference_id for i in intents} | set(candidates)))
        by_reference = _by_reference(intents, stored, problems)
        targets = sorted({i.target for i in by_reference.values() if i.target})
        stored |= decisions_of(conn, [t for t in targets if t not in stored])
        _check_stars(by_reference, _pointing(conn, sorted(by_reference)), problems)
        problems.refuse()
        writes = [_person(ref, i.decision, i.target) for ref, i in by_reference.items()]
        canonicals = [
            _person(t, Decision.CANONICAL) for t in targets
            if t not in by_reference
            and (t not in stored or stored[t].decision is not Decision.CANONICAL)
        ]  # fmt: skip
        write_person_decisions(conn, writes + canonicals, MANUAL)
    counts = {d: sum(1 for w in writes if w.decision is d) for d in WORDS.values()}
    return {"rows": len(rows), "skipped": len(rows) - len(decided),
            "duplicate": counts[Decision.DUPLICATE], "distinct": counts[Decision.DISTINCT],
            "made_canonical": len(canonicals)}  # fmt: skip


def decided_pairs(
    conn: duckdb.DuckDBPyConnection, references: str, decision: Decision, limit: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` of the `decision`s of `references` (a table or query of
    `reference_id`) that point to another reference (duplicate: its canonical; maybe: the one
    to compare with), best score first, each as `{"reference_id", "title", "other_id",
    "other_title", "score", "evidence"}` (titles from the first bibliographic records); and how
    many there are in all."""
    rows = conn.execute(
        f"""
        WITH shown AS (
            SELECT reference_id, duplicate_of, score, evidence, count(*) OVER () AS total
            FROM duplicate_decisions
            WHERE decision = ? AND duplicate_of IS NOT NULL
                AND reference_id IN (SELECT reference_id FROM {references})
            ORDER BY score DESC NULLS LAST, reference_id LIMIT ?
        ), titles AS (
            SELECT reference_id, arg_min(content ->> 'title', created_at) AS title
            FROM reference_enhancement
            WHERE enhancement_type = 'bibliographic' AND reference_id IN (
                SELECT reference_id FROM shown UNION SELECT duplicate_of FROM shown)
            GROUP BY reference_id
        )
        SELECT s.reference_id::VARCHAR, a.title, s.duplicate_of::VARCHAR, b.title, s.score,
            s.evidence::VARCHAR, s.total
        FROM shown s
        LEFT JOIN titles a ON a.reference_id = s.reference_id
        LEFT JOIN titles b ON b.reference_id = s.duplicate_of
        ORDER BY s.score DESC NULLS LAST, s.reference_id
        """,
        [decision.value, limit],
    ).fetchall()
    names = ("reference_id", "title", "other_id", "other_title", "score")
    pairs = [dict(zip(names, row[:5], strict=True)) | {"evidence": json.loads(row[5])}
             for row in rows]  # fmt: skip
    return pairs, rows[0][6] if rows else 0
