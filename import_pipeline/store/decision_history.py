"""The history of duplicate decisions (contract section 8): every decision ever made for a
reference, with what made it (`Provenance`), in `duplicate_decision_history` (store schema
version 2). Written only through `store.duplicates`, each write in the caller's transaction:
the new decisions active, the previous active ones of their references inactive, so exactly one
is active per reference (`references_without_one_active_decision` says where not)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from import_pipeline.domain.duplicates import Trigger
from import_pipeline.store.connection import TempTables
from import_pipeline.store.migrations import HISTORY_ID_KEY, HISTORY_VERSION, require_version


@dataclass(frozen=True)
class Provenance:
    """What made a write of decisions: an import (its run's id, when there is one) or a person
    (`manual`), and the version of the system's rules that decided (None for a person's)."""

    trigger: Trigger
    run_id: str | None = None
    rules_version: str | None = None


#: A person's decisions (`decide`): made by no run, and by no version of the rules.
MANUAL = Provenance(Trigger.MANUAL)

#: The decisions of one write, typed as the tables', with their place in the write.
_WRITTEN = """
    SELECT reference_id::UUID AS reference_id, decision::VARCHAR AS decision,
        duplicate_of::UUID AS duplicate_of, score::DOUBLE AS score,
        decided_by::VARCHAR AS decided_by, evidence::JSON AS evidence, position::BIGINT AS position
    FROM ({select})
"""


def write_with_history(
    conn: duckdb.DuckDBPyConnection,
    select: str,
    provenance: Provenance,
    *,
    active: bool,
    replacing: bool,
) -> None:
    """The decisions `select` gives (with `position`, their order in the write) appended to
    the history, and, `active`, made the references' decisions: the previous ones replaced
    (`replacing`; delete, then insert: the PostgreSQL store's engine cannot UPDATE a JSON
    column from a frame) and set inactive in the history."""
    made = {"trigger": str(provenance.trigger), "run_id": provenance.run_id,
            "rules_version": provenance.rules_version, "active": active}  # fmt: skip
    with TempTables(conn, "decisions") as tables:
        written = tables.create("written", _WRITTEN.format(select=select))
        counted = conn.execute(f"SELECT count(*) FROM {written}").fetchone()
        count = int(counted[0]) if counted else 0
        if not count:
            return
        if active and replacing:
            mine = f"reference_id IN (SELECT reference_id FROM {written})"
            conn.execute(
                f"UPDATE duplicate_decision_history SET active = FALSE WHERE active AND {mine}"
            )
            conn.execute(f"DELETE FROM duplicate_decisions WHERE {mine}")
        if active:
            conn.execute(
                f"""
                INSERT INTO duplicate_decisions (reference_id, decision, duplicate_of, score,
                    decided_by, evidence, decided_at, trigger, run_id, rules_version)
                SELECT reference_id, decision, duplicate_of, score, decided_by, evidence, now(),
                    $trigger, $run_id::VARCHAR, $rules_version::VARCHAR
                FROM {written}
                """,
                {k: v for k, v in made.items() if k != "active"},
            )
        conn.execute(
            f"""
            INSERT INTO duplicate_decision_history (id, reference_id, decision, duplicate_of,
                score, evidence, decided_by, trigger, run_id, decided_at, rules_version, active)
            SELECT $first + position, reference_id, decision, duplicate_of, score, evidence,
                decided_by, $trigger, $run_id::VARCHAR, now(), $rules_version::VARCHAR, $active
            FROM {written}
            """,
            {**made, "first": _take_history_ids(conn, count)},
        )


def _take_history_ids(conn: duckdb.DuckDBPyConnection, count: int) -> int:
    """The first of `count` new history ids (the writer holds the store: no one else takes)."""
    row = conn.execute("SELECT value FROM store_meta WHERE key = ?", [HISTORY_ID_KEY]).fetchone()
    last = int(row[0]) if row else 0
    conn.execute("DELETE FROM store_meta WHERE key = ?", [HISTORY_ID_KEY])
    conn.execute("INSERT INTO store_meta VALUES (?, ?)", [HISTORY_ID_KEY, str(last + count)])
    return last + 1


#: The fields of each decision in `decision_history`'s document, in its order.
HISTORY_FIELDS = ["decision", "duplicate_of", "score", "evidence", "decided_by", "trigger",
                  "run_id", "decided_at", "rules_version", "active"]  # fmt: skip


def decision_history(conn: duckdb.DuckDBPyConnection, reference_id: str) -> dict[str, Any]:
    """The `import-pipeline duplicates --history` document of a reference: every decision,
    newest first.

    Raises:
        StoreNeedsUpgrade: the store is older than the history (a writer has not opened it).
    """
    require_version(conn, HISTORY_VERSION, "the history of duplicate decisions")
    rows = conn.execute(
        """
        SELECT decision, duplicate_of::VARCHAR, score, evidence::VARCHAR, decided_by, trigger,
            run_id, decided_at, rules_version, active
        FROM duplicate_decision_history WHERE reference_id = ?::UUID ORDER BY id DESC
        """,
        [reference_id],
    ).fetchall()
    history = [
        dict(zip(HISTORY_FIELDS, [*r[:3], json.loads(r[3]), *r[4:7], r[7].isoformat(), *r[8:]],
                 strict=True))
        for r in rows
    ]  # fmt: skip
    return {"reference_id": reference_id, "history": history}


def references_without_one_active_decision(
    conn: duckdb.DuckDBPyConnection, record_key: str | None = None
) -> list[tuple]:
    """The references (of the record's results, if given: a store's whole history is not read
    after every run) whose history has no or several active decisions, or whose active one is
    not the decision `duplicate_decisions` holds (the asset check's rule): (reference_id,
    active rows, what is wrong)."""
    scope = "TRUE"
    params: list[object] = []
    if record_key is not None:
        scope = """reference_id IN (SELECT r.reference_id FROM import_results r
            JOIN import_batches b ON b.id = r.import_batch_id WHERE b.record_key = ?)"""
        params = [record_key, record_key]
    return conn.execute(
        f"""
        WITH active AS (
            SELECT reference_id, count(*) AS n, any_value(decision) AS decision,
                any_value(duplicate_of) AS duplicate_of
            FROM duplicate_decision_history WHERE active AND {scope} GROUP BY reference_id
        ), stored AS (SELECT * FROM duplicate_decisions WHERE {scope})
        SELECT coalesce(a.reference_id, d.reference_id)::VARCHAR, coalesce(a.n, 0),
            CASE WHEN a.n IS NULL THEN 'no active decision'
                 WHEN a.n > 1 THEN 'several active decisions'
                 WHEN d.reference_id IS NULL THEN 'an active decision that is not stored'
                 ELSE 'the active decision differs from the stored one' END
        FROM active a FULL JOIN stored d ON d.reference_id = a.reference_id
        WHERE a.n IS NULL OR a.n > 1 OR d.reference_id IS NULL OR a.decision <> d.decision
            OR a.duplicate_of IS DISTINCT FROM d.duplicate_of
        ORDER BY 1 LIMIT 100
        """,
        params,
    ).fetchall()
