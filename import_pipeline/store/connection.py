"""Connections to the reference store (a DuckDB file, or PostgreSQL) and to scratch engines,
and transactions.

DuckDB lets one process hold the file at a time (even read-only opens fail while a writer holds
it), so every connection is short-lived and opened through `connect`, which waits a bounded
time for the lock instead of failing at once. Writers are also serialised by a Dagster pool.
On PostgreSQL (`store.postgres`) the same SQL runs through DuckDB over the attached database;
readers never wait, and writers wait for the writer lock as they would for the file.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.settings import DEFAULT_STORE_MEMORY
from import_pipeline.store import migrations, postgres
from import_pipeline.store.schema import ensure_schema


class _PandasIsNotInstalled(importlib.abc.MetaPathFinder):
    """Answers `import pandas` with the error Python would give, without searching the
    import path. DuckDB's Python client tries that import on every statement that takes
    parameters; where pandas is not installed each attempt searched the whole path again
    (0.25-0.3 ms; a record run executes thousands of such statements, most of them in the
    serialised writer). (A `None` in `sys.modules` would also stop the search, but DuckDB reads
    a name there as a loaded module and crashes.)"""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
        return None


def _answer_pandas_at_once() -> None:
    """Puts `_PandasIsNotInstalled` first on the import path, once, if pandas is missing."""
    # By name: a reloaded module's class is another class, and its finder is already there.
    if any(type(finder).__name__ == _PandasIsNotInstalled.__name__ for finder in sys.meta_path):
        return
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.meta_path.insert(0, _PandasIsNotInstalled())


# Every DuckDB connection of the project is opened by this module.
_answer_pandas_at_once()

#: Where a store lives: a DuckDB file, or a `postgresql://` URL.
StoreLocation = Path | str

_LOCK_MARKERS = ("lock", "Conflicting", "being used by another process")


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _LOCK_MARKERS)


#: Memory of a scratch engine: chunks are processed a slice at a time, and what does not fit
#: spills to disk, so a batch of any size fits.
SCRATCH_MEMORY = "640MB"


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal, for the one statement DuckDB takes no parameter in
    (`COPY … TO`)."""
    return "'" + value.replace("'", "''") + "'"


def scratch_engine(memory_limit: str = SCRATCH_MEMORY) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for a stage's own work (clustering, or the SQL over a PostgreSQL
    store): capped memory, spilling to the system's temp folder (not `./.tmp`, DuckDB's
    default)."""
    spill = Path(tempfile.gettempdir()) / "import_pipeline-duckdb"
    engine = duckdb.connect(
        ":memory:", config={"memory_limit": memory_limit, "temp_directory": str(spill)}
    )
    engine.execute("SET enable_progress_bar = false")
    return engine


#: DuckDB shares a query's work out by row groups (122,880 rows): work of fewer lines than
#: this per thread has too little to share, and the threads' hand-overs cost more CPU than
#: they save. Measured (2 cores): a group of 33 files of 1,000 lines resolved into a store
#: with 1 thread took 35–45% less CPU than with 2, and less time.
LINES_PER_THREAD = 250_000


@contextmanager
def threads_for(conn: duckdb.DuckDBPyConnection, lines: int) -> Iterator[None]:
    """The engine works on `lines` lines in the body with one thread per `LINES_PER_THREAD`,
    at most as many as it has (its default: one a core); its own count afterwards."""
    row = conn.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    own = int(row[0])
    conn.execute(f"SET threads = {max(1, min(own, -(-lines // LINES_PER_THREAD)))}")
    try:
        yield
    finally:
        conn.execute(f"SET threads = {own}")


def _open(
    path: Path, *, read_only: bool, wait_seconds: float, memory_limit: str
) -> duckdb.DuckDBPyConnection:
    """Opens the file, waiting (with backoff) while another process holds it."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit}
            )
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"the reference store {path} is held by another process (an import is "
                    f"writing); gave up after waiting {wait_seconds:.0f}s — try again shortly"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(
    location: StoreLocation,
    *,
    read_only: bool = False,
    wait_seconds: float = 120.0,
    memory_limit: str = DEFAULT_STORE_MEMORY,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Opens the store, waiting up to `wait_seconds` while another process writes to it (a
    reader of a PostgreSQL store never waits); a writer finds the schema in place, an older
    store upgraded (`store.migrations`). Closed however the body ends.

    Raises:
        NotFound: a reader asked for a store that does not exist yet.
        StoreTooNew: the store was written by a later release.
        StoreBusy: the store stayed held by a writer for longer than `wait_seconds`.
    """
    if postgres.is_postgres(location):
        assert isinstance(location, str)
        with _postgres_store(location, read_only, wait_seconds, memory_limit) as conn:
            yield conn
        return
    path = Path(location)
    if read_only and not path.exists():
        raise NotFound(f"no reference store at {path}: nothing has been imported yet")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = _open(path, read_only=read_only, wait_seconds=wait_seconds, memory_limit=memory_limit)
    try:
        conn.execute("SET enable_progress_bar = false")
        if read_only:
            migrations.check_readable(conn)
        else:
            with transaction(conn):  # the store upgraded whole, or left as it was
                ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@contextmanager
def _postgres_store(
    url: str, read_only: bool, wait_seconds: float, memory_limit: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB engine over the PostgreSQL store. A writer holds the writer lock while
    connected; a reader reads one snapshot (a transaction it never commits), so a command
    that asks several questions never sees half of a batch committed between them."""
    conn = scratch_engine(memory_limit)
    try:
        if read_only:
            postgres.attach(conn, url, read_only=True)
            if not postgres.has_schema(conn):
                raise NotFound(f"no reference store in {postgres.without_password(url)}: "
                               "nothing has been imported yet")  # fmt: skip
            conn.execute("BEGIN TRANSACTION")
            migrations.check_readable(conn)
            yield conn
            return
        with postgres.writer_lease(url, wait_seconds=wait_seconds):
            postgres.attach(conn, url, read_only=False)
            with transaction(conn):
                ensure_schema(conn)
            postgres.ensure_indexes(conn)
            yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commits when the body returns, rolls back when it raises."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class TempTables:
    """The temp tables of one sequence of SQL steps, named in its namespace and dropped when
    the sequence ends, however it ends. A step creates a table with `create` and hands its
    name to the next: the names are the interface, and no one else keeps a list of them."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, namespace: str) -> None:
        self.conn = conn
        self.namespace = namespace
        self._created: list[str] = []

    def create(self, name: str, select: str, params: dict[str, object] | None = None) -> str:
        """`CREATE TEMP TABLE <namespace>_<name> AS <select>`; returns the table's name.
        `params` may name more than `select` uses: it gets those it names (`$name`)."""
        table = f"{self.namespace}_{name}"
        used = {key: value for key, value in (params or {}).items() if f"${key}" in select}
        self.conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {select}", used or None)
        if table not in self._created:
            self._created.append(table)
        return table

    def drop(self, table: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        if table in self._created:
            self._created.remove(table)

    def __enter__(self) -> TempTables:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        tables, self._created = self._created, []
        for table in reversed(tables):
            try:
                self.conn.execute(f"DROP TABLE IF EXISTS {table}")
            except duckdb.Error:
                if exc_type is None:  # else the error that stopped the steps is the one to see
                    raise


#: A line's key among several batches' lines (`batch * BATCH_STRIDE + line_number`): a batch
#: has fewer lines than this.
BATCH_STRIDE = 1 << 32


def uuid_literal(value: str) -> str:
    """`value`, checked to be a UUID, as an SQL UUID literal (for filters of constants)."""
    return f"'{uuid.UUID(value)}'::UUID"


def files_of_batches_sql(param: str, batches: int) -> str:
    """The Parquet files of several batches (the parameters of `files_of_batches_params`) as
    one source with a `batch` column, each row's batch's place: one batch's are read as they
    are, several batches' told apart by their file's name."""
    if batches == 1:
        return f"(SELECT 0::BIGINT AS batch, * FROM read_parquet(${param}))"
    return f"""(SELECT f.batch, p.* EXCLUDE (filename)
        FROM read_parquet(${param}, filename = true) p
        JOIN (SELECT unnest(${param}) AS path, unnest(${param}_batch)::BIGINT AS batch) f
            ON f.path = p.filename)"""


def files_of_batches_params(param: str, files: list[list[str]]) -> dict[str, object]:
    """`files[i]`, the Parquet files of batch i, as the parameters `files_of_batches_sql`
    reads."""
    tagged = [(path, batch) for batch, paths in enumerate(files) for path in paths]
    return {param: [path for path, _ in tagged], f"{param}_batch": [b for _, b in tagged]}


@contextmanager
def values_table(conn: duckdb.DuckDBPyConnection, name: str, values: list[str]) -> Iterator[str]:
    """`values` as a one-column (`value`) table named `name` for the body: a big list bound
    as a parameter costs DuckDB per element, a registered frame does not."""
    conn.register(name, pl.DataFrame({"value": values}, schema={"value": pl.String}))
    try:
        yield name
    finally:
        conn.unregister(name)
