"""The keys and blocks kept in the store for detection (`reference_bibliographic_keys`,
`reference_blocks`), and the versions of the definitions and rules they were made with."""

from __future__ import annotations

import hashlib

import duckdb

from import_pipeline.detection import pairs, similarity
from import_pipeline.detection.keys import definitions, install_macros, keys_sql
from import_pipeline.detection.pairs import blocks_sql
from import_pipeline.domain import duplicates as duplicate_rules
from import_pipeline.domain.duplicates import BLOCKING_KEYS
from import_pipeline.store.connection import TempTables

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
    blocking keys, the rules and their thresholds (`domain.duplicates`), the features' SQL and
    the similarities' gates (`pairs`, `similarity`), and how stars are formed
    (`domain.duplicates.STARS`, by hand). When it changes, the system's decisions are made
    again."""
    constants = [
        (f"{module.__name__}.{name}", getattr(module, name))
        for module in (duplicate_rules, pairs, similarity)
        for name in dir(module)
        if name.isupper() and not name.startswith("_")
    ]
    # The SQL that turns keys into features and decisions, as it runs.
    queries = (
        pairs._involved_sql("keys", "candidates", "identifiers"),
        pairs._unvetoed_sql("involved", "candidates"),
        pairs._decided_sql("featured"),
    )
    fingerprinted = keys_version() + repr(sorted(constants)) + "".join(queries)
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
