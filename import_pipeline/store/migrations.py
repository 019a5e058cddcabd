"""The store's versioned migrations: what changed in its layout since version 1, in order.

A writer's connection applies the ones a store lacks inside the transaction that opens it
(`schema.ensure_schema`), so a store is at its old version or at the newest, never between;
each one done is recorded as `schema_version` in `store_meta`. The same SQL runs on the DuckDB
file and on PostgreSQL (DuckDB's `postgres` extension does ALTER TABLE in a transaction).

A store newer than this code is refused, by writers and readers: its layout is not what this
code knows. A reader of an older store reads what version 1 had; what needs a newer version
(the decisions' history) says the store must first be opened by a writer (`require_version`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from import_pipeline.errors import StoreNeedsUpgrade, StoreTooNew

#: The layout `schema._SCHEMA` creates.
BASE_VERSION = 1

#: The `store_meta` key of the store's version.
VERSION_KEY = "schema_version"

#: The `store_meta` key of the last `duplicate_decision_history.id` given: writers are
#: serialised, so a counter orders the rows exactly (now() is one value per transaction, and a
#: max() over the table would read every row of it through PostgreSQL).
HISTORY_ID_KEY = "duplicate_decision_history_id"

#: The rules version of a system decision made before the history was kept: other rules than
#: any fingerprint, so the next detection decides it again.
BEFORE_HISTORY = "before-history"


#: The version that keeps every duplicate decision's history.
HISTORY_VERSION = 2


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_DECISION_HISTORY = Migration(
    HISTORY_VERSION,
    "every duplicate decision's history, with what made it",
    (
        "ALTER TABLE duplicate_decisions ADD COLUMN trigger VARCHAR",
        "ALTER TABLE duplicate_decisions ADD COLUMN run_id VARCHAR",
        "ALTER TABLE duplicate_decisions ADD COLUMN rules_version VARCHAR",
        f"""UPDATE duplicate_decisions SET
            trigger = CASE WHEN decided_by = 'person' THEN 'manual' ELSE 'import' END,
            rules_version = CASE WHEN decided_by = 'person' THEN NULL ELSE '{BEFORE_HISTORY}' END
        """,
        # Every decision ever made; duplicate_decisions keeps the active one of each reference.
        """CREATE TABLE duplicate_decision_history (
            id BIGINT NOT NULL,                 -- the order they were made in: newest highest
            reference_id UUID NOT NULL,
            decision VARCHAR NOT NULL,
            duplicate_of UUID,
            score DOUBLE,
            evidence JSON NOT NULL,
            decided_by VARCHAR NOT NULL,        -- system or person
            trigger VARCHAR NOT NULL,           -- import or manual
            run_id VARCHAR,                     -- the run of an import
            decided_at TIMESTAMPTZ NOT NULL,
            rules_version VARCHAR,              -- of the system's rules; NULL for a person's
            active BOOLEAN NOT NULL             -- exactly one active per reference
        )""",
        """INSERT INTO duplicate_decision_history
            SELECT row_number() OVER (ORDER BY decided_at, reference_id), reference_id, decision,
                duplicate_of, score, evidence, decided_by, trigger, run_id, decided_at,
                rules_version, TRUE
            FROM duplicate_decisions""",
        f"""INSERT INTO store_meta
            SELECT '{HISTORY_ID_KEY}', count(*)::VARCHAR FROM duplicate_decisions""",
    ),
)

#: The version whose view `duplicate_decisions_with_titles` names the references by title.
TITLES_VERSION = 3

#: A reference's title in the view: its first bibliographic enhancement's with one, in the
#: order `store.readers.titles` takes them (SQL that PostgreSQL runs as well as DuckDB).
_TITLE_OF = """(SELECT e.content->>'title' FROM reference_enhancement e
        WHERE e.reference_id = d.{column} AND e.enhancement_type = 'bibliographic'
            AND (e.content->>'title') IS NOT NULL
        ORDER BY e.source, e.created_at, e.content_hash LIMIT 1)"""

_DECISION_TITLES = Migration(
    TITLES_VERSION,
    "the duplicate decisions with the titles of both references, as a view",
    (
        f"""CREATE VIEW duplicate_decisions_with_titles AS
        SELECT d.reference_id, {_TITLE_OF.format(column="reference_id")} AS title,
            d.decision, d.duplicate_of,
            {_TITLE_OF.format(column="duplicate_of")} AS duplicate_of_title,
            d.score, d.decided_by, d.evidence, d.decided_at, d.trigger, d.run_id,
            d.rules_version
        FROM duplicate_decisions d""",
    ),
)

#: In order of version, each one more than the last.
MIGRATIONS: tuple[Migration, ...] = (_DECISION_HISTORY, _DECISION_TITLES)

LATEST_VERSION = MIGRATIONS[-1].version if MIGRATIONS else BASE_VERSION


def stored_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The store's version; None where there is no store yet. (Looked up in the catalog: a
    failed statement would abort the caller's transaction.)"""
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = current_schema() AND table_name = 'store_meta'"
    ).fetchone()
    if not found or not found[0]:
        return None
    row = conn.execute("SELECT value FROM store_meta WHERE key = ?", [VERSION_KEY]).fetchone()
    return int(row[0]) if row else None


def refuse_newer(version: int | None) -> None:
    """Raises `StoreTooNew` for a store of a later layout than this code knows."""
    if version is not None and version > LATEST_VERSION:
        raise StoreTooNew(
            f"the reference store is at schema version {version}, newer than this release "
            f"knows ({LATEST_VERSION}): it was written by a later release; use that release "
            f"or a newer one"
        )


def check_readable(conn: duckdb.DuckDBPyConnection) -> None:
    """A reader's check: a store newer than this code is refused; an older one is read."""
    refuse_newer(stored_version(conn))


def require_version(conn: duckdb.DuckDBPyConnection, version: int, what: str) -> None:
    """Raises `StoreNeedsUpgrade` when the store is older than `version`, which `what` needs."""
    stored = stored_version(conn) or BASE_VERSION
    if stored < version:
        raise StoreNeedsUpgrade(
            f"{what} needs the reference store at schema version {version}, and it is at "
            f"{stored}: a writer upgrades it when it opens it (any import or `import-pipeline "
            f"decide`); a reader never changes it"
        )


def migrate(conn: duckdb.DuckDBPyConnection) -> list[Migration]:
    """Applies, in order, the migrations the store lacks, each recorded as its version; the
    ones applied. Call inside the writer's transaction, after version 1's tables exist."""
    version = stored_version(conn) or BASE_VERSION
    refuse_newer(version)
    applied = [m for m in MIGRATIONS if m.version > version]
    for migration in applied:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "UPDATE store_meta SET value = ? WHERE key = ?", [str(migration.version), VERSION_KEY]
        )
    return applied


def meta_value(conn: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The `store_meta` value of `key`, None when it has none."""
    row = conn.execute("SELECT value FROM store_meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def set_meta_value(conn: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Sets `key` in `store_meta` (delete, then insert: the same on both engines)."""
    conn.execute("DELETE FROM store_meta WHERE key = ?", [key])
    conn.execute("INSERT INTO store_meta VALUES (?, ?)", [key, value])
