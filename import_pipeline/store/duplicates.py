"""The store's duplicate decisions (contract section 8): read, written by detection (never over
a person's), and a person's own through `decide`, which refuses chains and cycles.

Every write says what made it (`Provenance`) and appends to `duplicate_decision_history` in
the caller's transaction: the new decision active, the reference's previous one inactive.
`duplicate_decisions` holds the active ones, so readers need not look at the history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from import_pipeline.domain.duplicates import DecidedBy, Decision
from import_pipeline.errors import DecisionRefused, NotFound
from import_pipeline.store.connection import transaction, values_table
from import_pipeline.store.decision_history import MANUAL, Provenance, write_with_history
from import_pipeline.store.readers import page, titles


@dataclass(frozen=True)
class StoredDecision:
    reference_id: str
    decision: Decision
    duplicate_of: str | None
    score: float | None
    decided_by: DecidedBy
    evidence: tuple[str, ...]


#: A decision's columns, as `StoredDecision` takes them.
_DECISION_COLUMNS = """reference_id::VARCHAR, decision, duplicate_of::VARCHAR, score, decided_by,
    from_json(evidence::VARCHAR, '["VARCHAR"]')"""


def _decisions_where(
    conn: duckdb.DuckDBPyConnection, references: list[str], source: str
) -> dict[str, StoredDecision]:
    """The decisions `source` (a query with `_DECISION_COLUMNS`' columns, reading the
    references from `{refs}`) gives for these references."""
    if not references:
        return {}
    with values_table(conn, "frame_refs", references) as refs:
        rows = conn.execute(source.format(columns=_DECISION_COLUMNS, refs=refs)).fetchall()
    return {
        r[0]: StoredDecision(r[0], Decision(r[1]), r[2], r[3], DecidedBy(r[4]), tuple(r[5]))
        for r in rows
    }


def decisions_of(
    conn: duckdb.DuckDBPyConnection, references: list[str]
) -> dict[str, StoredDecision]:
    """The stored decisions of these references (those that have one)."""
    return _decisions_where(
        conn,
        references,
        "SELECT {columns} FROM duplicate_decisions "
        "WHERE reference_id IN (SELECT value::UUID FROM {refs})",
    )


def write_decisions(
    conn: duckdb.DuckDBPyConnection,
    decisions: list[StoredDecision],
    stored: dict[str, StoredDecision],
    provenance: Provenance,
) -> int:
    """Writes the system's decisions that differ from what is stored (`stored`, as the
    caller read it in this transaction), leaving a person's untouched; how many changed.
    Call inside a transaction."""
    if not decisions:
        return 0
    changed = [
        d
        for d in decisions
        if d.reference_id not in stored
        or (stored[d.reference_id].decided_by is DecidedBy.SYSTEM and stored[d.reference_id] != d)
    ]
    _upsert_all(conn, changed, provenance)
    return len(changed)


def _upsert_all(
    conn: duckdb.DuckDBPyConnection,
    decisions: list[StoredDecision],
    provenance: Provenance,
    *,
    active: bool = True,
) -> None:
    """The decisions written by statements over a frame of them (none per decision), each
    appended to the history; `active=False` appends them to the history alone (proposals)."""
    if not decisions:
        return
    # The evidence as JSON text, one string per distinct evidence: a list column built from
    # Python lists costs polars a Series per row (1.8 s for 100,000 decisions).
    distinct = {d.evidence for d in decisions}
    evidence = {e: json.dumps(list(e), separators=(",", ":")) for e in distinct}
    frame = pl.DataFrame(
        {
            "reference_id": [d.reference_id for d in decisions],
            "decision": [str(d.decision) for d in decisions],
            "duplicate_of": [d.duplicate_of for d in decisions],
            "score": [d.score for d in decisions],
            "decided_by": [str(d.decided_by) for d in decisions],
            "evidence": [evidence[d.evidence] for d in decisions],
        },
        schema={"reference_id": pl.String, "decision": pl.String, "duplicate_of": pl.String,
                "score": pl.Float64, "decided_by": pl.String, "evidence": pl.String},
    )  # fmt: skip
    conn.register("frame_decisions", frame.with_row_index("position"))
    try:
        write_with_history(
            conn,
            "SELECT reference_id, decision, duplicate_of, score, decided_by, evidence, position "
            "FROM frame_decisions",
            provenance,
            active=active,
            replacing=True,
        )
    finally:
        conn.unregister("frame_decisions")


def insert_decisions(conn: duckdb.DuckDBPyConnection, select: str, provenance: Provenance) -> None:
    """Inserts the decisions `select` gives (reference_id, decision, duplicate_of, score,
    decided_by, evidence), decided now, and their history; none of them may be stored yet.
    Call inside a transaction."""
    write_with_history(
        conn,
        f"SELECT *, row_number() OVER (ORDER BY reference_id) - 1 AS position FROM ({select}) "
        f"AS s(reference_id, decision, duplicate_of, score, decided_by, evidence)",
        provenance,
        active=True,
        replacing=False,
    )


def record_proposals(
    conn: duckdb.DuckDBPyConnection, decisions: list[StoredDecision], provenance: Provenance
) -> int:
    """Keeps the system's proposals (`decisions`) for references a person decided, as
    inactive history beside the person's decision, never applied: those that differ from the
    person's, unless the reference's newest inactive system decision is the same already. The
    others are ignored. How many were kept. Call inside a transaction."""
    stored = decisions_of(conn, [d.reference_id for d in decisions])
    person = {r: d for r, d in stored.items() if d.decided_by is DecidedBy.PERSON}
    newest = _newest_proposals(conn, sorted(person))
    kept = [
        d
        for d in decisions
        if d.reference_id in person
        and (d.decision, d.duplicate_of) != (person[d.reference_id].decision,
                                             person[d.reference_id].duplicate_of)
        and newest.get(d.reference_id) != d
    ]  # fmt: skip
    _upsert_all(conn, kept, provenance, active=False)
    return len(kept)


def _newest_proposals(
    conn: duckdb.DuckDBPyConnection, references: list[str]
) -> dict[str, StoredDecision]:
    """The newest inactive system decision in the history of each of these references."""
    return _decisions_where(
        conn,
        references,
        """
        SELECT {columns} FROM duplicate_decision_history
        WHERE NOT active AND decided_by = 'system'
            AND reference_id IN (SELECT value::UUID FROM {refs})
        QUALIFY row_number() OVER (PARTITION BY reference_id ORDER BY id DESC) = 1
        """,
    )


def _upsert(
    conn: duckdb.DuckDBPyConnection, decision: StoredDecision, provenance: Provenance
) -> None:
    write_person_decisions(conn, [decision], provenance)


def write_person_decisions(
    conn: duckdb.DuckDBPyConnection,
    decisions: list[StoredDecision],
    provenance: Provenance = MANUAL,
) -> int:
    """A person's decisions written, but those already stored as they are (deciding again
    what is decided adds no history); how many were written. Call inside a transaction."""
    stored = decisions_of(conn, [d.reference_id for d in decisions])
    changed = [d for d in decisions if stored.get(d.reference_id) != d]
    _upsert_all(conn, changed, provenance)
    return len(changed)


def _exists(conn: duckdb.DuckDBPyConnection, reference_id: str) -> bool:
    try:
        found = conn.execute(
            "SELECT 1 FROM reference WHERE id = ?::UUID", [reference_id]
        ).fetchone()
    except duckdb.ConversionException:
        return False
    return found is not None


def decide(
    conn: duckdb.DuckDBPyConnection,
    reference_id: str,
    *,
    duplicate_of: str | None,
    provenance: Provenance = MANUAL,
) -> StoredDecision:
    """A person's decision: `reference_id` is a duplicate of `duplicate_of`, or distinct
    (None). Final: detection never changes it.

    Raises:
        NotFound: either reference does not exist.
        UsageProblem: the decision would make a chain or a cycle.
    """
    for ref in (reference_id, duplicate_of):
        if ref is not None and not _exists(conn, ref):
            raise NotFound(f"no reference {ref}")
    with transaction(conn):
        stored = decisions_of(conn, [r for r in (reference_id, duplicate_of) if r])
        pointing = conn.execute(
            "SELECT count(*) FROM duplicate_decisions WHERE duplicate_of = ?::UUID "
            "AND decision = 'duplicate'",
            [reference_id],
        ).fetchone()
        has_duplicates = pointing is not None and pointing[0] > 0
        if duplicate_of is not None:
            _refuse_chain(reference_id, duplicate_of, stored.get(duplicate_of), has_duplicates)
            target = stored.get(duplicate_of)
            if target is None or target.decision is not Decision.CANONICAL:
                _upsert(conn, StoredDecision(duplicate_of, Decision.CANONICAL, None, None,
                                             DecidedBy.PERSON, ("person",)), provenance)  # fmt: skip
            decision = StoredDecision(reference_id, Decision.DUPLICATE, duplicate_of, None,
                                      DecidedBy.PERSON, ("person",))  # fmt: skip
        else:
            if has_duplicates:
                raise DecisionRefused(
                    f"reference {reference_id} is the canonical of duplicates: decide those "
                    "first (point them elsewhere or mark them distinct)"
                )
            decision = StoredDecision(reference_id, Decision.DISTINCT, None, None,
                                      DecidedBy.PERSON, ("person",))  # fmt: skip
        _upsert(conn, decision, provenance)
    return decision


def _refuse_chain(
    reference_id: str, duplicate_of: str, target: StoredDecision | None, has_duplicates: bool
) -> None:
    if reference_id == duplicate_of:
        raise DecisionRefused("a reference cannot be a duplicate of itself (a cycle)")
    if target is not None and target.decision is Decision.DUPLICATE:
        raise DecisionRefused(
            f"reference {duplicate_of} is itself a duplicate of {target.duplicate_of}: point "
            f"to that canonical instead (no chains)"
        )
    if has_duplicates:
        raise DecisionRefused(
            f"reference {reference_id} is the canonical of duplicates: it cannot become a "
            "duplicate itself (that would make a chain)"
        )


def list_decisions(
    conn: duckdb.DuckDBPyConnection,
    *,
    record_key: str | None = None,
    decision: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """The `import-pipeline duplicates` document: one page of decisions, each reference named
    by its title too (`title`, `duplicate_of_title`)."""
    where: list[str] = ["TRUE"]
    params: dict[str, object] = {"limit": limit, "offset": offset}
    if record_key is not None:
        where.append(
            """d.reference_id IN (SELECT r.reference_id FROM import_results r
               JOIN import_batches b ON b.id = r.import_batch_id WHERE b.record_key = $record)"""
        )
        params["record"] = record_key
    if decision is not None:
        where.append("d.decision = $decision")
        params["decision"] = decision
    condition = " AND ".join(where)
    count_params = {k: v for k, v in params.items() if k not in ("limit", "offset")}
    total_row = conn.execute(
        f"SELECT count(*) FROM duplicate_decisions d WHERE {condition}", count_params or None
    ).fetchone()
    rows = conn.execute(
        f"""
        SELECT d.reference_id::VARCHAR, d.decision, d.duplicate_of::VARCHAR, d.score,
            d.decided_by, d.evidence::VARCHAR
        FROM duplicate_decisions d WHERE {condition}
        ORDER BY d.decision, d.reference_id LIMIT $limit OFFSET $offset
        """,
        params,
    ).fetchall()
    named = titles(conn, sorted({ref for r in rows for ref in (r[0], r[2]) if ref}))
    results = [
        {"reference_id": r[0], "title": named.get(r[0]), "decision": r[1],
         "duplicate_of": r[2], "duplicate_of_title": named.get(r[2]) if r[2] else None,
         "score": r[3], "decided_by": r[4], "evidence": json.loads(r[5])}
        for r in rows
    ]  # fmt: skip
    return page(results, limit=limit, offset=offset, total=total_row[0] if total_row else 0)


def duplicates_without_canonical(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Duplicates whose `duplicate_of` is not a canonical (the asset check's rule)."""
    return conn.execute(
        """
        SELECT d.reference_id::VARCHAR, d.duplicate_of::VARCHAR, c.decision
        FROM duplicate_decisions d LEFT JOIN duplicate_decisions c ON c.reference_id = d.duplicate_of
        WHERE d.decision = 'duplicate' AND (c.decision IS NULL OR c.decision <> 'canonical')
        LIMIT 100
        """
    ).fetchall()
