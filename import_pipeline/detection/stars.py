"""Detection after a batch is stored (contract section 8): the batch's new or merged references
(the subjects) are compared with the store and each gets a decision; the stars they join keep
one canonical. A person's decision is never changed, and the same store gives the same
decisions (re-importing a batch changes none)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import duckdb

from import_pipeline.detection.forming import form_stars, ordered, pairs_to_check
from import_pipeline.detection.pairs import Pair, pairs_among, separated_pairs
from import_pipeline.detection.stored_keys import RULES_VERSION, refresh_keys, rules_version
from import_pipeline.domain.duplicates import DecidedBy, Decision, Trigger
from import_pipeline.store.connection import TempTables, values_table
from import_pipeline.store.duplicates import (
    Provenance,
    StoredDecision,
    decisions_of,
    insert_decisions,
    record_proposals,
    write_decisions,
)
from import_pipeline.store.migrations import meta_value, set_meta_value


@dataclass(frozen=True)
class DetectionOutcome:
    subjects: int
    pairs: int
    changed: int
    counts: dict[str, int]  # decisions of the subjects


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


def _stored_stars(stored: dict[str, StoredDecision], fresh: set[str]) -> dict[str, list[str]]:
    """The stored stars (canonical → members), less the members being decided again; a
    person's canonical is a star even with no member yet."""
    stars: dict[str, list[str]] = {}
    for ref, d in sorted(stored.items()):
        target = stored.get(d.duplicate_of) if d.duplicate_of else None
        if target is not None and target.decision is Decision.DUPLICATE:
            continue  # a chain (no release writes one; the asset check reports it): left out
        if d.decision is Decision.DUPLICATE and d.duplicate_of and ref not in fresh:
            stars.setdefault(d.duplicate_of, []).append(ref)
        elif d.decision is Decision.CANONICAL and d.decided_by is DecidedBy.PERSON:
            stars.setdefault(ref, [])
    return stars


def assign(
    pairs: list[Pair],
    subjects: list[str],
    stored: dict[str, StoredDecision],
    order: dict[str, tuple],
    apart: set[tuple[str, str]] | None = None,
) -> list[StoredDecision]:
    """The system's decisions: stars from the duplicate pairs and the stars already stored
    (but a subject's own stored decision, which is being made again), each member matched
    to its canonical and apart from none (`apart`: pairs the rules keep apart, `a < b`); a
    `maybe` or `distinct` for the other subjects and for stored members left without a
    star; nothing for a reference a person decided."""
    person = {ref for ref, d in stored.items() if d.decided_by is DecidedBy.PERSON}
    fresh = set(subjects) - person
    stored_stars = _stored_stars(stored, fresh)
    fixed = person | {m for members in stored_stars.values() for m in members}
    kept_apart = {ref for ref in person if stored[ref].decision is Decision.DISTINCT}
    stars = form_stars(pairs, order, stored_stars, apart or set(), fixed, kept_apart)
    best = _best_pairs(pairs, kept_apart)
    by_refs = {(p.a, p.b): p for p in pairs}
    decisions: list[StoredDecision] = []
    for canonical, members in stars.members.items():
        if len(members) > 1 or canonical in person:
            decisions += _star(canonical, members, stored, by_refs, person)
    starred = {ref for ref, c in stars.canonical_of.items() if len(stars.members[c]) > 1}
    unstarred = fresh | {
        ref for ref, d in stored.items()
        if d.decided_by is DecidedBy.SYSTEM and d.decision in (Decision.CANONICAL, Decision.DUPLICATE)
    }  # fmt: skip
    for ref in sorted(unstarred - starred - person):
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
    canonical: str,
    members: list[str],
    stored: dict[str, StoredDecision],
    by_refs: dict[tuple[str, str], Pair],
    person: set[str],
) -> list[StoredDecision]:
    """One star's decisions: its canonical, and every other member its duplicate, with the
    score and evidence of its own pair with the canonical (as stored, where this detection
    did not compare the two again)."""
    decisions = []
    for ref in members:
        if ref in person:
            continue
        if ref == canonical:
            decisions.append(
                StoredDecision(ref, Decision.CANONICAL, None, None, DecidedBy.SYSTEM, ())
            )
            continue
        pair = by_refs.get(ordered(ref, canonical))
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
                  paired: list[str], provenance: Provenance) -> tuple[str, int, int]:  # fmt: skip
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
        provenance,
    )
    return alone, total, new


def _with_their_stars(
    conn: duckdb.DuckDBPyConnection, involved: list[str]
) -> dict[str, StoredDecision]:
    """The stored decisions of the involved references and of the stars they belong to,
    whole."""
    stored = decisions_of(conn, involved)
    canonicals = {d.duplicate_of for d in stored.values() if d.duplicate_of}
    with values_table(conn, "frame_canonicals", sorted(canonicals)) as table:
        members = conn.execute(
            f"SELECT reference_id::VARCHAR FROM duplicate_decisions "
            f"WHERE duplicate_of IN (SELECT value::UUID FROM {table})"
        ).fetchall()
    more = sorted((canonicals | {r for (r,) in members}) - set(involved))
    return stored | decisions_of(conn, more)


def _pairs_to_check(
    pairs: list[Pair], subject_ids: list[str], stored: dict[str, StoredDecision]
) -> list[tuple[str, str]]:
    """The pairs of references `assign` may put in one star, as it will see them: a person's
    references keep their stars, the others' are made again."""
    person = {ref for ref, d in stored.items() if d.decided_by is DecidedBy.PERSON}
    stored_stars = _stored_stars(stored, set(subject_ids) - person)
    fixed = person | {m for members in stored_stars.values() for m in members}
    return pairs_to_check(pairs, stored_stars, fixed)


def _propose(
    conn: duckdb.DuckDBPyConnection,
    pairs: list[Pair],
    subject_ids: list[str],
    stored: dict[str, StoredDecision],
    order: dict[str, tuple],
    apart: set[tuple[str, str]],
    provenance: Provenance,
) -> None:
    """What the system would decide for the subjects and paired references a person decided,
    had no person decided them, kept beside the person's as inactive history (never
    applied; `record_proposals` keeps only those that differ and are new)."""
    looked_at = set(subject_ids) | {ref for pair in pairs for ref in (pair.a, pair.b)}
    decided = sorted(
        ref for ref, d in stored.items() if d.decided_by is DecidedBy.PERSON and ref in looked_at
    )
    if not decided:
        return
    unbound = {ref: d for ref, d in stored.items() if d.decided_by is not DecidedBy.PERSON}
    proposals = assign(pairs, sorted(set(subject_ids) | set(decided)), unbound, order, apart)
    record_proposals(conn, [d for d in proposals if d.reference_id in decided], provenance)


def detect(
    conn: duckdb.DuckDBPyConnection, subjects: str, *, run_id: str | None = None
) -> DetectionOutcome:
    """Decides the subjects (a table or query of `reference_id`) against the store, as an
    import (`run_id`, the run's) with the current rules. When the store's system decisions
    were made by other rules (`RULES_VERSION`), every reference with one is decided again too.
    Call inside a transaction."""
    version = rules_version()
    provenance = Provenance(Trigger.IMPORT, run_id, version)
    other_rules = meta_value(conn, RULES_VERSION) != version
    with TempTables(conn, "detect") as tables:
        # Once: every step reads the subjects, and a query of them would run again each time.
        subjects = tables.create("subjects", f"SELECT DISTINCT reference_id FROM {subjects}")
        refresh_keys(conn, subjects)  # only the batch's: the others' records are unchanged
        if other_rules:  # the system's decisions are made again; a person's never
            subjects = tables.create(
                "redecided",
                f"SELECT reference_id FROM {subjects} UNION SELECT reference_id "
                f"FROM duplicate_decisions WHERE decided_by = 'system'",
            )
        pairs = pairs_among(conn, "reference_bibliographic_keys", "reference_blocks", subjects)
        paired = sorted({ref for pair in pairs for ref in (pair.a, pair.b)})
        alone, alone_count, alone_written = _decide_alone(
            conn, tables, subjects, paired, provenance
        )
        subject_ids = [
            ref for (ref,) in conn.execute(
                f"SELECT reference_id::VARCHAR FROM {subjects} "
                f"WHERE reference_id NOT IN (SELECT reference_id FROM {alone}) ORDER BY 1"
            ).fetchall()
        ]  # fmt: skip
    stored = _with_their_stars(conn, sorted(set(subject_ids) | set(paired)))
    order = _creation_order(conn, sorted(stored.keys() | set(subject_ids) | set(paired)))
    apart = separated_pairs(conn, _pairs_to_check(pairs, subject_ids, stored))
    decisions = assign(pairs, subject_ids, stored, order, apart)
    changed = write_decisions(conn, decisions, stored, provenance)
    _propose(conn, pairs, subject_ids, stored, order, apart, provenance)
    if other_rules:
        set_meta_value(conn, RULES_VERSION, version)
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
