"""The reference store's tables, created on first write at version 1 (`_SCHEMA`), then
brought to the newest layout, `SCHEMA_VERSION`, by `store.migrations`: a new store and an old
one take the same path. `_SCHEMA` stays as version 1 made it; a change is a migration.

The same DDL makes the tables of a PostgreSQL store (through DuckDB's `postgres` extension).
That engine writes every column of a row, so a column's DEFAULT never applies there: every
INSERT names its timestamps (`now()`) itself.
"""

from __future__ import annotations

import duckdb

from import_pipeline.store import migrations

SCHEMA_VERSION = migrations.LATEST_VERSION

_SCHEMA = """
CREATE TABLE IF NOT EXISTS import_records (
    id UUID PRIMARY KEY,
    record_key VARCHAR NOT NULL UNIQUE,
    source_name VARCHAR,
    processor_name VARCHAR,
    processor_version VARCHAR,
    expected_reference_count BIGINT,
    search_string VARCHAR,
    searched_at TIMESTAMPTZ,
    notes VARCHAR,
    collision_strategy VARCHAR,
    problem VARCHAR,            -- why record.json blocks the record, or NULL
    finalised BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS import_batches (
    id UUID PRIMARY KEY,
    record_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    storage_url VARCHAR NOT NULL,
    checksum VARCHAR,           -- of the version whose results are stored
    status VARCHAR NOT NULL,
    failure_details VARCHAR,    -- the batch-level reason, when the batch cannot be read
    physical_lines BIGINT,
    blank_lines BIGINT,
    run_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (record_key, name)
);

CREATE TABLE IF NOT EXISTS import_results (
    id UUID NOT NULL,
    import_batch_id UUID NOT NULL,
    line_number BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    reference_id UUID,
    errors JSON NOT NULL,
    failure_details VARCHAR,
    unresolved_references JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference (
    id UUID PRIMARY KEY,
    visibility VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference_identifier (
    reference_id UUID NOT NULL,
    identifier_type VARCHAR NOT NULL,
    identifier VARCHAR NOT NULL,            -- normalised (contract section 3)
    other_identifier_name VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference_enhancement (
    id UUID NOT NULL,
    reference_id UUID NOT NULL,
    enhancement_type VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    visibility VARCHAR NOT NULL,
    robot_version VARCHAR,
    processor_version VARCHAR,
    content JSON NOT NULL,
    content_hash VARCHAR NOT NULL,          -- an exact duplicate has the same hash
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per target of a reference_association enhancement of a written line: waiting
-- (no target_reference_id yet), linked, or expired after IMPORT_PIPELINE_UNRESOLVED_TTL.
CREATE TABLE IF NOT EXISTS reference_association (
    reference_id UUID NOT NULL,             -- the reference that has the association
    import_batch_id UUID NOT NULL,          -- the result (batch, line) that brought it
    line_number BIGINT NOT NULL,
    association_type VARCHAR NOT NULL,
    target_type VARCHAR NOT NULL,           -- identifier type, or 'reference_id'
    target VARCHAR NOT NULL,                -- normalised identifier or reference UUID
    target_other_name VARCHAR,
    target_reference_id UUID,               -- set once linked
    created_at TIMESTAMPTZ NOT NULL,
    linked_at TIMESTAMPTZ,
    expired_at TIMESTAMPTZ
);

-- The normalised bibliographic keys of each bibliographic enhancement (detection.keys),
-- kept for duplicate detection: a batch's references are compared with these, not recomputed.
CREATE TABLE IF NOT EXISTS reference_bibliographic_keys (
    reference_id UUID NOT NULL,
    title VARCHAR,
    year INTEGER,
    authors VARCHAR,
    first_author VARCHAR,
    venue VARCHAR,
    volume VARCHAR,
    issue VARCHAR,
    first_page VARCHAR,
    last_page VARCHAR
);

-- The blocks each reference is in (domain.duplicates.BLOCKING_KEYS over its key rows), as a
-- hash of the key's name and value: a batch finds its candidates by one join on these.
CREATE TABLE IF NOT EXISTS reference_blocks (
    reference_id UUID NOT NULL,
    block_hash BIGINT NOT NULL
);

-- One decision per reference (contract section 8); a person's is final. Version 2 adds what
-- made it (trigger, run_id, rules_version) and keeps every one in duplicate_decision_history.
CREATE TABLE IF NOT EXISTS duplicate_decisions (
    reference_id UUID PRIMARY KEY,
    decision VARCHAR NOT NULL,              -- canonical, duplicate, maybe, distinct
    duplicate_of UUID,                      -- the canonical (a maybe: the reference to compare)
    score DOUBLE,
    decided_by VARCHAR NOT NULL,            -- system or person
    evidence JSON NOT NULL,                 -- the fields that agreed
    decided_at TIMESTAMPTZ NOT NULL
);

-- Last: a reader takes this table as the sign that a store is there.
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
"""

#: The tables that hold references, for counts and checks.
REFERENCE_TABLES = (
    "reference",
    "reference_identifier",
    "reference_enhancement",
    "reference_association",
)
ALL_TABLES = ("import_records", "import_batches", "import_results", *REFERENCE_TABLES)


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Creates what is missing of version 1 (a new store, or one of version 1, which grew
    tables without a new version), then applies the migrations the store lacks. Call it inside
    a transaction: a reader of a PostgreSQL store that is being created or upgraded then sees
    every table or none, and a migration that fails leaves the store at its old version.

    Raises:
        StoreTooNew: the store was written by a later release.
    """
    version = migrations.stored_version(conn)
    migrations.refuse_newer(version)
    if version is None or version <= migrations.BASE_VERSION:
        conn.execute(_SCHEMA)
        conn.execute(
            "INSERT INTO store_meta VALUES (?, ?) ON CONFLICT DO NOTHING",
            [migrations.VERSION_KEY, str(migrations.BASE_VERSION)],
        )
    migrations.migrate(conn)
