"""The reference store on PostgreSQL (contract section 9), against a real server started by the
suite: importers in separate processes write one at a time, readers are never blocked and
never see half a batch, a killed writer leaves nothing, and a re-run converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import psycopg2
import pytest

from import_pipeline import store
from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.landing import LandingZone
from import_pipeline.settings import Settings
from import_pipeline.store import connection, postgres

from .conftest import RECORD, import_directly, write_batch, write_record
from .postgres import new_database
from .test_faults import _WRITER as WRITER
from .test_faults import canonical_store, synthetic_lines

IMPORTERS = 4


@pytest.fixture
def store_url(postgres_cluster: str) -> str:
    return new_database(postgres_cluster, f"store_{uuid.uuid4().hex[:12]}")


def _settings(home: Path, url: str) -> Settings:
    return Settings.from_env({"IMPORT_PIPELINE_HOME": str(home), "IMPORT_PIPELINE_STORE": url})


def _writer_holds_the_lock(url: str) -> bool:
    admin = psycopg2.connect(url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = %s",
                (postgres.WRITER_LOCK_KEY,),
            )
            row = cursor.fetchone()
            return row is not None and row[0] > 0
    finally:
        admin.close()


def test_an_empty_database_is_no_store_yet_for_a_reader(store_url: str) -> None:
    with (
        pytest.raises(NotFound, match="nothing has been imported yet"),
        store.connect(store_url, read_only=True),
    ):
        pass


def test_a_reader_sees_every_table_or_none_while_the_first_writer_creates_them(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that looked while the tables were half made used to fail on a missing table
    (seen in CI): the schema is now made in one transaction, so it is all or nothing."""
    seen_midway: list[str] = []
    create_tables = connection.ensure_schema

    def create_then_look(conn: duckdb.DuckDBPyConnection) -> None:
        create_tables(conn)
        try:
            with store.connect(store_url, read_only=True, wait_seconds=0) as reader:
                _count_every_table(reader)
                seen_midway.append("a store")
        except NotFound as exc:
            seen_midway.append(str(exc))

    monkeypatch.setattr(connection, "ensure_schema", create_then_look)
    with store.connect(store_url):
        pass
    assert len(seen_midway) == 1 and "nothing has been imported yet" in seen_midway[0]
    with store.connect(store_url, read_only=True, wait_seconds=0) as reader:
        assert _count_every_table(reader) == 0


def _count_every_table(conn: duckdb.DuckDBPyConnection) -> int:
    tables = (
        *store.ALL_TABLES,
        "duplicate_decisions",
        "reference_bibliographic_keys",
        "reference_blocks",
    )
    counts = [conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] for table in tables]
    return sum(counts)


def test_a_reader_reads_while_a_writer_holds_the_store_and_a_second_writer_waits(
    store_url: str, tmp_path: Path, destiny: Path
) -> None:
    settings = _settings(tmp_path / "home", store_url)
    landing = LandingZone(settings.landing)
    write_record(landing, "eppi")
    write_batch(landing, "eppi", "a.jsonl", (destiny / "eppi_import.jsonl").read_text())
    import_directly(settings, landing, "eppi")

    with store.connect(store_url) as writer:
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM import_results")  # uncommitted: no reader may see it
        with store.connect(store_url, read_only=True, wait_seconds=0) as reader:
            summary = store.record_summary(reader, "eppi")
        assert summary["total"] > 0
        with (
            pytest.raises(StoreBusy, match="another writer"),
            store.connect(store_url, wait_seconds=0.5),
        ):
            pass
        writer.execute("ROLLBACK")
    with store.connect(store_url, wait_seconds=0.5):  # released with the connection
        pass


def test_a_password_never_reaches_a_message() -> None:
    shown = postgres.without_password("postgresql://importer:s3cret@db.example:5432/refs")
    assert shown == "postgresql://importer:***@db.example:5432/refs"
    assert postgres.libpq_url("postgresql+psycopg2://u@h/d") == "postgresql://u@h/d"


def _record_folder(root: Path, key: str, lines: str) -> Path:
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / "works.jsonl").write_text(lines)
    return folder


def _overlapping_lines(importer: int, count: int) -> str:
    """Importers 2k and 2k+1 bring the same works (a shared DOI per line; a PMID from one, an
    OpenAlex id from the other): whichever writes first creates the reference, the other merges
    into it, and either order ends with the same three identifiers."""
    lines = []
    for i in range(count):
        pair = importer // 2
        work = 10_000_000 * (pair + 1) + i
        own = (
            {"identifier_type": "pm_id", "identifier": work}
            if importer % 2 == 0
            else {"identifier_type": "open_alex", "identifier": f"W{work}"}
        )
        identifiers = [{"identifier_type": "doi", "identifier": f"10.5555/w{work}"}, own]
        lines.append(json.dumps({"identifiers": identifiers}))
    return "\n".join(lines) + "\n"


def _ingest(home: Path, url: str, folder: Path, key: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "IMPORT_PIPELINE_HOME": str(home),
        "IMPORT_PIPELINE_STORE": url,
        "DAGSTER_HOME": str(home / "dagster"),
    }
    env.pop("DAGSTER_POSTGRES_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "import_pipeline.cli", "ingest", str(folder), "--record", key],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


class _Reader(threading.Thread):
    """Reads the store in a loop while the importers write, checking what each read shows."""

    def __init__(self, url: str, keys: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.keys = url, keys
        self.stop = threading.Event()
        self.reads = self.reads_during_a_write = 0
        self.broken: list[object] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                held_before = _writer_holds_the_lock(self.url)
                self._read_once()
                if held_before and _writer_holds_the_lock(self.url):
                    self.reads_during_a_write += 1
                self.reads += 1
        except BaseException as exc:  # seen by the test, not lost in the thread
            self.error = exc

    def _read_once(self) -> None:
        try:
            conn_context = store.connect(self.url, read_only=True, wait_seconds=0)
            with conn_context as conn:
                self.broken += store.identifiers_on_two_references(conn)
                for key in self.keys:
                    self.broken += store.lines_without_one_result(conn, key)
                    self.broken += store.results_with_missing_reference(conn, key)
                results = conn.execute(
                    "SELECT count(*) FROM (SELECT import_batch_id, line_number FROM "
                    "import_results GROUP BY ALL HAVING count(*) > 1)"
                ).fetchone()
                assert results is not None
                if results[0]:
                    self.broken.append(("results twice", results[0]))
        except NotFound:
            pass  # before the first writer has made the tables


def test_four_importers_and_a_reader_at_once_write_everything_once(
    store_url: str, postgres_cluster: str, tmp_path: Path
) -> None:
    lines = 20_000
    keys = [f"importer{i}" for i in range(IMPORTERS)]
    folders = [
        _record_folder(tmp_path / "exports", key, _overlapping_lines(i, lines))
        for i, key in enumerate(keys)
    ]
    reader = _Reader(store_url, keys)
    reader.start()
    importers = [
        _ingest(tmp_path / f"machine{i}", store_url, folder, key)
        for i, (folder, key) in enumerate(zip(folders, keys, strict=True))
    ]
    outcomes = [importer.communicate(timeout=600) for importer in importers]
    reader.stop.set()
    reader.join(timeout=120)
    for importer, (_, err) in zip(importers, outcomes, strict=True):
        assert importer.returncode == 0, err[-3000:]
    assert reader.error is None, reader.error
    assert reader.broken == []
    assert reader.reads_during_a_write > 0, "the reader was meant to read while a writer wrote"

    with store.connect(store_url, read_only=True) as conn:
        counts = store.table_counts(conn)
        assert store.identifiers_on_two_references(conn) == []
    assert counts["import_results"] == IMPORTERS * lines
    assert counts["reference"] == IMPORTERS // 2 * lines  # each pair's works once
    assert counts["reference_identifier"] == IMPORTERS // 2 * lines * 3

    # The same records imported one at a time into a store of their own: the same content.
    sequential = new_database(postgres_cluster, f"store_{uuid.uuid4().hex[:12]}")
    for i, (folder, key) in enumerate(zip(folders, keys, strict=True)):
        one = _ingest(tmp_path / f"one{i}", sequential, folder, key)
        _, err = one.communicate(timeout=600)
        assert one.returncode == 0, err[-3000:]
    shared = _settings(tmp_path / "x", store_url)
    alone = _settings(tmp_path / "y", sequential)
    assert canonical_store(shared) == canonical_store(alone)


def _wait_for_rows_in_flight(url: str, timeout: float = 60) -> None:
    """Until the writer's transaction has sent rows to PostgreSQL (a COPY or INSERT running
    in an open transaction): the kill must land mid-write, not before it."""
    admin = psycopg2.connect(url)
    admin.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        with admin.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state IN ('active', 'idle in transaction') AND xact_start IS NOT NULL "
                    "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
                )
                row = cursor.fetchone()
                if row is not None and row[0] > 0:
                    return
                time.sleep(0.01)
    finally:
        admin.close()
    raise AssertionError("the writer never started writing")


def test_a_writer_killed_mid_transaction_leaves_nothing_and_a_rerun_converges(
    postgres_cluster: str, tmp_path: Path
) -> None:
    lines = 100_000
    content = synthetic_lines(lines)
    killed = _settings(tmp_path / "killed", new_database(postgres_cluster, "killed"))
    clean = _settings(tmp_path / "clean", new_database(postgres_cluster, "clean"))
    for settings in (killed, clean):
        landing = LandingZone(settings.landing)
        write_record(landing, "rec")
        write_batch(landing, "rec", "big.jsonl", content)

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(killed.home), str(killed.store)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    _wait_for_rows_in_flight(str(killed.store))
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.stdout.read() == ""  # it never got to "written"

    with store.connect(killed.store, read_only=True) as conn:
        counts = store.table_counts(conn)
    assert counts["import_results"] == 0 and counts["reference"] == 0
    with store.connect(killed.store, wait_seconds=10):  # the dead writer's lock went with it
        pass

    for settings in (killed, clean):
        import_directly(settings, LandingZone(settings.landing), "rec")
    assert canonical_store(killed) == canonical_store(clean)
    assert canonical_store(clean)[0]["reference"] == lines // 2
