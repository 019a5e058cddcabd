"""The reference store in PostgreSQL (contract section 9): the same tables and the same SQL,
run by DuckDB over the database attached with DuckDB's `postgres` extension.

The resolver's set-based SQL runs in DuckDB as it does on the file; rows reach PostgreSQL in
bulk (the extension writes with binary COPY) inside one PostgreSQL transaction per wave of
batches, so readers see a batch whole or not at all (MVCC) and are never blocked by a writer.

Writers are serialised by a PostgreSQL advisory lock held by a session of their own for as long
as the writer is connected (what the DuckDB file's lock does for the file): the extension's
transactions are REPEATABLE READ, so the lock must be held *before* a transaction's first
statement, or its snapshot would predate the writer it waited for.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb
import psycopg2

from import_pipeline.errors import ConfigurationError, StoreBusy

#: The URL schemes that name a PostgreSQL store.
SCHEMES = ("postgresql://", "postgres://")

#: The catalog name the database is attached as (and made the default with `USE`).
CATALOG = "store"

#: The advisory lock of the store's writer (any fixed key; locks are per database).
WRITER_LOCK_KEY = 0x1D_57_0E_01

#: What PostgreSQL needs beyond DuckDB's tables: the lookups readers and the resolver filter on
#: (DuckDB pushes those filters down), and the uniqueness the file's indexes give.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS import_results_batch_line ON import_results "
    "(import_batch_id, line_number)",
    "CREATE INDEX IF NOT EXISTS import_results_reference ON import_results (reference_id)",
    "CREATE INDEX IF NOT EXISTS reference_identifier_value ON reference_identifier "
    "(identifier_type, identifier)",
    "CREATE INDEX IF NOT EXISTS reference_identifier_reference ON reference_identifier "
    "(reference_id)",
    "CREATE INDEX IF NOT EXISTS reference_enhancement_reference ON reference_enhancement "
    "(reference_id)",
    "CREATE INDEX IF NOT EXISTS reference_association_reference ON reference_association "
    "(reference_id)",
    "CREATE INDEX IF NOT EXISTS reference_association_target ON reference_association "
    "(target_type, target)",
    "CREATE INDEX IF NOT EXISTS import_batches_record ON import_batches (record_key)",
    "CREATE INDEX IF NOT EXISTS reference_blocks_reference ON reference_blocks (reference_id)",
    "CREATE INDEX IF NOT EXISTS duplicate_decision_history_reference "
    "ON duplicate_decision_history (reference_id)",
)


def is_postgres(target: object) -> bool:
    """Whether a store location names a PostgreSQL database (else it is a DuckDB file)."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def libpq_url(url: str) -> str:
    """The URL as libpq reads it: a SQLAlchemy driver (`postgresql+psycopg2://`) dropped."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _extension_file() -> Path:
    """The `postgres` extension of the installed DuckDB, from the `duckdb-extension-postgres`
    wheel (nothing is downloaded). DuckDB finds an extension's entry point by its file name,
    which the wheel spells `postgres`, so it is loaded through a link named `postgres_scanner`."""
    version = f"v{duckdb.__version__}"
    packaged = resources.files("duckdb_extension_postgres") / "extensions" / version
    shipped = Path(str(packaged / "postgres.duckdb_extension"))
    if not shipped.is_file():
        raise ConfigurationError(
            f"no DuckDB postgres extension for DuckDB {duckdb.__version__}: install the "
            f"duckdb-extension-postgres wheel of the same version (pyproject.toml pins both)"
        )
    folder = Path(tempfile.gettempdir()) / "import_pipeline-duckdb-extensions" / version
    link = folder / "postgres_scanner.duckdb_extension"
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".{os.getpid()}.link"
        staged.unlink(missing_ok=True)
        staged.symlink_to(shipped)
        os.replace(staged, link)  # atomic: concurrent processes agree on one link
    return link


def attach(conn: duckdb.DuckDBPyConnection, url: str, *, read_only: bool) -> None:
    """Attaches the database as the connection's default catalog: unqualified table names are
    the store's, `TEMP` tables stay in DuckDB."""
    conn.execute(f"LOAD '{_extension_file()}'")
    options = "TYPE postgres, READ_ONLY" if read_only else "TYPE postgres"
    # ATTACH takes no parameter: the URL goes in as an escaped literal.
    literal = "'" + libpq_url(url).replace("'", "''") + "'"
    conn.execute(f"ATTACH {literal} AS {CATALOG} ({options})")
    conn.execute(f"USE {CATALOG}")


def has_schema(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the attached database holds a store (a writer has created its tables)."""
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = $catalog "
        "AND table_name = 'store_meta'",
        {"catalog": CATALOG},
    ).fetchone()
    return found is not None and found[0] > 0


def ensure_indexes(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in INDEXES:
        conn.execute(
            "CALL postgres_execute($catalog, $sql)", {"catalog": CATALOG, "sql": statement}
        )


@contextmanager
def writer_lease(url: str, *, wait_seconds: float) -> Iterator[None]:
    """Holds the store's writer lock for the body, waiting (with backoff) up to `wait_seconds`
    for another writer. The lock belongs to a session of its own: a writer that dies (even by
    SIGKILL) loses its connection, so PostgreSQL rolls its transaction back and frees the lock.

    Raises:
        StoreBusy: another writer held the store for longer than `wait_seconds`.
    """
    session = psycopg2.connect(libpq_url(url), application_name="import_pipeline writer")
    session.autocommit = True
    try:
        _take_lock(session, url, wait_seconds)
        yield
    finally:
        session.close()  # ends the session, and so its lock


def _take_lock(session: psycopg2.extensions.connection, url: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    with session.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK_KEY,))
            row = cursor.fetchone()
            if row is not None and row[0]:
                return
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"the reference store {without_password(url)} has another writer (an "
                    f"import is writing); gave up after waiting {wait_seconds:.0f}s — try "
                    f"again shortly"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def without_password(url: str) -> str:
    """The URL fit for a message: a password in it replaced by `***`."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
