"""Detection after a batch is stored (contract section 8): the batch's new or merged references
(the subjects) are compared with the store and each gets a decision; the stars they join keep
one canonical. A person's decision is never changed, and the same store gives the same
decisions (re-importing a batch changes none)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import duckdb

from import_pipeline.detection.pairs import Pair, pairs_among, refresh_keys
from import_pipeline.domain.duplicates import DecidedBy, Decision
from import_pipeline.store.connection import TempTables, values_table
from import_pipeline.store.duplicates import (
    StoredDecision,
    decisions_of,
    insert_decisions,
    write_decisions,
)


@dataclass(frozen=True)
class DetectionOutcome:
    subjects: int
    pairs: int
    changed: int
    counts: dict[str, int]  # decisions of the subjects


class _Groups:
    """Union-find over references; a group's root is its member first in `order`."""

    def __init__(self, order: dict[str, tuple]) -> None:
        self.order = order
        self.parent: dict[str, str] = {}

    def root(self, ref: str) -> str:
        while self.parent.get(ref, ref) != ref:
            ref = self.parent[ref]
        return ref

    def join(self, a: str, b: str) -> None:
        first, second = sorted((self.root(a), self.root(b)), key=lambda r: (self.order[r], r))
        if first != second:
            self.parent[second] = first

    def members(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        # Each joined reference once (a dict keeps the order; a list lookup was quadratic in
        # a big star).
        for ref in dict.fromkeys([*self.parent, *self.parent.values()]):
            groups.setdefault(self.root(ref), []).append(ref)
        return groups


def _creation_order(conn: duckdb.DuckDBPyConnection, refs: list[str]) -> dict[str, tuple]:
    with values_table(conn, "frame_order", refs) as table:
        rows = conn.execute(  # microseconds, not datetimes: 100,000 of those take a second
            f"SELECT id::VARCHAR, epoch_us(created_at) FROM reference "
            f"WHERE id IN (SELECT value::UUID FROM {table})"
        ).fetchall()
    return {ref: (created, ref) for ref, created in rows}


def _strength(pair: Pair) -> tuple[bool, float, str, str]:
    return (pair.decision is Decision.DUPLICATE, pair.score, pair.a, pair.b)


def _best_pairs(pairs: list[Pair], kept_apart: set[str]) -> dict[str, Pair]:
    """Each reference's strongest pair (a duplicate before a maybe, then the higher score),
    leaving out the references a person said are distinct."""
    best: dict[str, Pair] = {}
    for pair in pairs:
        if {pair.a, pair.b} & kept_apart:
            continue
        for ref in (pair.a, pair.b):
            if ref not in best or _strength(pair) > _strength(best[ref]):
                best[ref] = pair
    return best


def assign(
    pairs: list[Pair],
    subjects: list[str],
    stored: dict[str, StoredDecision],
    order: dict[str, tuple],
) -> list[StoredDecision]:
    """The system's decisions: stars from the duplicate pairs and the stars already stored
    (but a subject's own stored decision, which is being made again), a `maybe` or
    `distinct` for the other subjects; nothing for a reference a person decided."""
    person = {ref for ref, d in stored.items() if d.decided_by is DecidedBy.PERSON}
    fresh = set(subjects) - person
    groups = _Groups(order)
    for ref, d in stored.items():
        if d.decision is Decision.DUPLICATE and d.duplicate_of and ref not in fresh:
            groups.join(ref, d.duplicate_of)
    kept_apart = {ref for ref in person if stored[ref].decision is Decision.DISTINCT}
    best = _best_pairs(pairs, kept_apart)
    for pair in pairs:
        if pair.decision is Decision.DUPLICATE and not {pair.a, pair.b} & kept_apart:
            groups.join(pair.a, pair.b)
    decisions: list[StoredDecision] = []
    grouped: set[str] = set()
    for members in groups.members().values():
        decisions += _star(members, stored, order, best, person)
        grouped |= set(members)
    for ref in sorted(fresh - grouped):
        strongest = best.get(ref)
        if strongest is None:
            decisions.append(
                StoredDecision(ref, Decision.DISTINCT, None, None, DecidedBy.SYSTEM, ())
            )
        else:
            other = strongest.b if strongest.a == ref else strongest.a
            decisions.append(StoredDecision(ref, Decision.MAYBE, other, strongest.score,
                                            DecidedBy.SYSTEM, strongest.evidence))  # fmt: skip
    return decisions


def _star(
    members: list[str],
    stored: dict[str, StoredDecision],
    order: dict[str, tuple],
    best: dict[str, Pair],
    person: set[str],
) -> list[StoredDecision]:
    """One group's decisions: its canonical (a stored canonical first, a person's before the
    system's, else the member first in order) and every other member its duplicate."""
    ranked = sorted(members, key=lambda r: (order[r], r))
    stored_canonicals = [
        r for r in ranked if stored.get(r) and stored[r].decision is Decision.CANONICAL
    ]
    canonical = next((r for r in stored_canonicals if r in person), None)
    canonical = canonical or (stored_canonicals[0] if stored_canonicals else ranked[0])
    decisions = []
    for ref in ranked:
        if ref in person:
            continue
        if ref == canonical:
            decisions.append(
                StoredDecision(ref, Decision.CANONICAL, None, None, DecidedBy.SYSTEM, ())
            )
            continue
        pair = best.get(ref)
        evidence = pair.evidence if pair else stored[ref].evidence if ref in stored else ()
        score = pair.score if pair else stored[ref].score if ref in stored else None
        decisions.append(StoredDecision(ref, Decision.DUPLICATE, canonical, score,
                                        DecidedBy.SYSTEM, evidence))  # fmt: skip
    return decisions


#: The subjects that are distinct whatever the others' decisions: in no pair, in no stored
#: star (no decision points at them), and either undecided or already the system's plain
#: `distinct` (what `assign` would give them again), with whether they have that decision
#: stored. Most of a big batch's new references.
_ALONE = """
    SELECT s.reference_id,
        s.reference_id IN (SELECT d.reference_id FROM duplicate_decisions d) AS stored
    FROM {subjects} s
    WHERE s.reference_id NOT IN (SELECT value::UUID FROM {paired})
        AND s.reference_id NOT IN (
            SELECT d.duplicate_of FROM duplicate_decisions d WHERE d.duplicate_of IS NOT NULL)
        AND s.reference_id NOT IN (
            SELECT d.reference_id FROM duplicate_decisions d
            WHERE NOT (d.decision = 'distinct' AND d.decided_by = 'system'
                AND d.duplicate_of IS NULL AND d.score IS NULL
                AND json_array_length(d.evidence) = 0))
"""


def _decide_alone(conn: duckdb.DuckDBPyConnection, tables: TempTables, subjects: str,
                  paired: list[str]) -> tuple[str, int, int]:  # fmt: skip
    """Decides the subjects alone (`_ALONE`) in SQL, without a Python object each (a batch
    of a million new references would hold a million): the table of them, how many, and how
    many decisions that wrote (those not stored yet)."""
    with values_table(conn, "frame_paired", paired) as table:
        alone = tables.create("alone", _ALONE.format(subjects=subjects, paired=table))
    counted = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT stored) FROM {alone}"
    ).fetchone()
    total, new = counted if counted else (0, 0)
    insert_decisions(
        conn,
        f"SELECT reference_id, 'distinct', NULL, NULL, 'system', '[]'::JSON "
        f"FROM {alone} WHERE NOT stored",
    )
    return alone, total, new


def detect(conn: duckdb.DuckDBPyConnection, subjects: str) -> DetectionOutcome:
    """Decides the subjects (a table or query of `reference_id`) against the store. Call
    inside a transaction."""
    with TempTables(conn, "detect") as tables:
        # Once: every step reads the subjects, and a query of them would run again each time.
        subjects = tables.create("subjects", f"SELECT DISTINCT reference_id FROM {subjects}")
        refresh_keys(conn, subjects)
        pairs = pairs_among(conn, "reference_bibliographic_keys", "reference_blocks", subjects)
        paired = sorted({ref for pair in pairs for ref in (pair.a, pair.b)})
        alone, alone_count, alone_written = _decide_alone(conn, tables, subjects, paired)
        subject_ids = [
            ref for (ref,) in conn.execute(
                f"SELECT reference_id::VARCHAR FROM {subjects} "
                f"WHERE reference_id NOT IN (SELECT reference_id FROM {alone}) ORDER BY 1"
            ).fetchall()
        ]  # fmt: skip
    involved = sorted(set(subject_ids) | set(paired))
    stored = decisions_of(conn, involved)
    # The stars the involved references already belong to, whole.
    canonicals = {d.duplicate_of for d in stored.values() if d.duplicate_of}
    with values_table(conn, "frame_canonicals", sorted(canonicals)) as table:
        members = conn.execute(
            f"SELECT reference_id::VARCHAR FROM duplicate_decisions "
            f"WHERE duplicate_of IN (SELECT value::UUID FROM {table})"
        ).fetchall()
    more = sorted((canonicals | {r for (r,) in members}) - set(involved))
    stored |= decisions_of(conn, more)
    involved = sorted(set(involved) | set(more))
    order = _creation_order(conn, involved)
    decisions = assign(pairs, subject_ids, stored, order)
    changed = write_decisions(conn, decisions, stored)
    # What the subjects now hold: the system's new decision, or the person's (never touched).
    final = stored | {d.reference_id: d for d in decisions}
    counts = Counter(str(final[ref].decision) for ref in subject_ids if ref in final)
    if alone_count:
        counts[str(Decision.DISTINCT)] += alone_count
    return DetectionOutcome(
        subjects=len(subject_ids) + alone_count,
        pairs=len(pairs),
        changed=changed + alone_written,
        counts=dict(counts),
    )
