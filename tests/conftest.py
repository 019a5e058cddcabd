"""Shared fixtures: real files in tmp_path, a real DuckDB store, the real reference data."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import polars as pl
import pytest

from import_pipeline import store
from import_pipeline.defs.schedules import build_association_schedule, build_ingestion_schedule
from import_pipeline.defs.sensors import build_landing_zone_sensor
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.landing.demo import DESTINY, SYNERGY
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import stages
from import_pipeline.pipeline.cluster import cluster_lines_in
from import_pipeline.pipeline.frames import LOADED_LINES
from import_pipeline.pipeline.load import LoadStats, check_not_empty, iter_line_heads, line_frame
from import_pipeline.pipeline.validate import validate_chunk
from import_pipeline.settings import Settings
from import_pipeline.store.connection import TempTables

#: The definitions as the code location builds them with default settings.
landing_zone_sensor = build_landing_zone_sensor(Settings.sensor_interval_seconds)
scheduled_ingestion = build_ingestion_schedule(Settings.ingest_cron)
hourly_association_resolution = build_association_schedule(Settings.resolve_cron)

EPPI_FILES = [
    "eppi_import.jsonl",
    "eppi_import_with_annotations.jsonl",
    "eppi_import_with_raw.jsonl",
]
OPENALEX_FILE = "openalex_references.jsonl"
RECORD = {
    "source_name": "test",
    "processor_name": "pytest",
    "processor_version": "1",
    "expected_reference_count": -1,
}


#: The modules whose tests run twice, on the DuckDB file and with the reference store on
#: PostgreSQL (contract section 9): everything that writes or reads the store through the
#: resolver, the commands, the sensor and the schedules.
ON_BOTH_STORES = {
    "test_resolve",
    "test_strategies",
    "test_associations",
    "test_statuses",
    "test_cli",
    "test_schedules",
    "test_sensor",
    "test_duplicate_decisions",
    "test_recovery",
    "test_review_csv",
    "test_duplicate_metadata",
}
#: `IMPORT_PIPELINE_TEST_STORE=postgres` runs every test that uses the `settings` fixture with
#: the store on PostgreSQL (the whole suite's check; 321 tests).
ON_POSTGRES = os.environ.get("IMPORT_PIPELINE_TEST_STORE") == "postgres"


#: The files that took longest in a run of the whole suite (2026-12-05), longest first. They
#: are collected before the others, each file's tests in their own order: xdist's workers take
#: whole files in collection order (`--dist loadfile --no-loadscope-reorder`), so the files
#: still running at the end are short ones, not one worker alone on a long file.
SLOW_FILES = [
    "test_e2e_recovery", "test_postgres_store", "test_faults", "test_recovery",
    "test_duplicate_decisions", "test_waves", "test_e2e_shared", "test_review_csv",
    "test_hostile_input", "test_associations", "test_pipeline", "test_e2e", "test_validate",
    "test_ui", "test_operating", "test_e2e_exports", "test_destiny_compat", "test_migrations",
]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: files keep order


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "settings" in metafunc.fixturenames and module in ON_BOTH_STORES and not ON_POSTGRES:
        metafunc.parametrize("store_kind", ["duckdb", "postgres"], indirect=True)


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Where this test's reference store lives: "duckdb" (the file) or "postgres"."""
    return getattr(request, "param", "postgres" if ON_POSTGRES else "duckdb")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """One PostgreSQL server for the session (started on first use); yields its admin URL."""
    from .postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def store_database(postgres_cluster: str) -> str:
    """A new, empty database for this test's reference store; its URL."""
    from .postgres import new_database

    return new_database(postgres_cluster, f"store_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def settings(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    store_kind: str,
) -> Settings:
    """Settings whose home, landing zone and store all live in this test's tmp_path (the store
    in a database of its own on PostgreSQL; then the variable is set too, for the commands a
    test runs)."""
    environ = {"IMPORT_PIPELINE_HOME": str(tmp_path / "home")}
    if store_kind == "postgres":
        environ["IMPORT_PIPELINE_STORE"] = request.getfixturevalue("store_database")
        monkeypatch.setenv("IMPORT_PIPELINE_STORE", environ["IMPORT_PIPELINE_STORE"])
    return Settings.from_env(environ)


@pytest.fixture
def landing(settings: Settings) -> LandingZone:
    """The (initially empty) landing zone of `settings`."""
    Path(settings.landing).mkdir(parents=True, exist_ok=True)
    return LandingZone(settings.landing)


def write_record(landing: LandingZone, key: str, **fields: object) -> Path:
    """Writes a valid record.json (overridden by `fields`) into the record folder."""
    folder = Path(landing.root) / key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "record.json"
    path.write_text(json.dumps({**RECORD, **fields}), encoding="utf-8")
    return path


def write_batch(landing: LandingZone, key: str, name: str, content: str | bytes) -> Path:
    folder = Path(landing.root) / key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def import_directly(
    settings: Settings,
    landing: LandingZone,
    key: str,
    names: list[str] | None = None,
    strategy: CollisionStrategy | None = None,
    now: datetime | None = None,
    together: bool = False,
) -> list[stages.ResolvedBatch]:
    """Runs the data path (no Dagster) over the record's batches, in name order: the stages
    the ops call, one batch at a time — or, `together`, resolved as one group, as a step of
    the ops does. `strategy` overrides record.json's."""
    run_id = f"test-{uuid.uuid4().hex[:12]}"  # a run of its own: its own staging folders
    started = stages.start_record(
        lambda: store.connect(settings.store),
        landing,
        key,
        [BatchVersion(name) for name in names or []],
        run_id,
    )
    assert started.problem is None, started.problem
    out: list[stages.ResolvedBatch] = []
    items = sorted(started.batches, key=lambda b: b.batch.name)
    if not items:
        return out
    loaded = [
        stages.load_batch(
            landing,
            item.batch,
            batch_id=item.batch_id,
            staging=stages.staging_dir(settings, run_id, key, item.batch.name),
            settings=settings,
            reading=item.reading,
        )
        for item in items
    ]
    if together:  # as the ops do: one validation, clustering and resolve of the group
        clustered = stages.cluster_batches(stages.validate_batches(loaded))
    else:
        clustered = [stages.cluster_batch(validate_batch(batch)) for batch in loaded]
    groups = [clustered] if together else [[batch] for batch in clustered]
    for group in groups:
        with store.connect(settings.store) as conn:
            for _, resolved in stages.resolve_group(
                conn,
                group,
                strategy or items[0].strategy,
                ttl=settings.unresolved_ttl,
                now=now,
            ):
                if isinstance(resolved, Exception):
                    raise resolved
                out.append(resolved)
    return out


def validate_batch(loaded: stages.LoadedBatch) -> stages.ValidatedBatch:
    """Validates one loaded batch, as a group of one."""
    return stages.validate_batches([loaded])[0]


def explain_line(line: int, text: str) -> list[dict]:
    """The verdict on one line, as an import gives it: its errors (empty if it is clean)."""
    chunk = pl.DataFrame(
        {"line_number": [line], "text": [text], "problem": [None]}, schema=LOADED_LINES
    )
    return validate_chunk(chunk).errors.to_dicts()


def cluster_lines(identifiers: pl.DataFrame, lines: pl.Series) -> pl.DataFrame:
    """The clusters of lines given as frames: `line_number` → `cluster`, sorted by line."""
    if "other_identifier_name" not in identifiers.columns:  # a column of `frames.IDENTIFIERS`
        identifiers = identifiers.with_columns(other_identifier_name=pl.lit(None, pl.String))
    engine = duckdb.connect(":memory:")
    try:
        engine.register("frame_identifiers", identifiers)
        engine.register("frame_lines", pl.DataFrame({"line_number": lines}))
        with TempTables(engine, "cluster") as tables:
            labels = cluster_lines_in(tables, "frame_lines", "frame_identifiers")
            return engine.sql(f"SELECT * FROM {labels} ORDER BY line_number").pl()
    finally:
        engine.close()


def results_of(settings: Settings, key: str) -> list[dict]:
    with store.connect(settings.store, read_only=True) as conn:
        return store.list_results(conn, key, limit=500)["results"]


@pytest.fixture
def destiny() -> Path:
    """The DESTINY-format batch files shipped with the package."""
    return DESTINY


@pytest.fixture
def synergy() -> Path:
    """The SYNERGY identifier crosswalks shipped with the package."""
    return SYNERGY


@pytest.fixture
def store_conn(settings: Settings) -> Iterator:
    with store.connect(settings.store) as conn:
        yield conn


def iter_line_chunks(
    handle: IO[bytes], *, stats: LoadStats, max_line_bytes: int, **reading: Any
) -> Iterator[pl.DataFrame]:
    """Yields frames of the file's lines, about `chunk_bytes` of text each; fills `stats`.
    Takes the arguments of `iter_line_heads`, and splits each chunk here.

    Raises `BatchUnreadable` for a file that cannot be read as a whole (corrupt or truncated
    gzip, past the decompression limit, empty or only blank lines).
    """
    for head in iter_line_heads(handle, stats=stats, max_line_bytes=max_line_bytes, **reading):
        frame, blanks = line_frame(head, max_line_bytes)
        stats.blank_lines += blanks
        if frame.height:
            yield frame
    check_not_empty(stats)


def bibliographic_line(ident: str, title: str, year: int = 2012) -> str:
    """A line of a work with a bibliographic enhancement, named by an `other` identifier."""
    content = {
        "enhancement_type": "bibliographic", "title": title, "publication_year": year,
        "authorship": [{"display_name": "Zekry, D.", "position": "first"}],
        "pagination": {"volume": "38", "issue": "2", "first_page": "149", "last_page": "155"},
        "publication_venue": {"display_name": "Diabetes & Metabolism"},
    }  # fmt: skip
    return json.dumps({
        "identifiers": [{"identifier_type": "other", "identifier": ident, "other_identifier_name": "export"}],
        "enhancements": [{"source": "export", "visibility": "public", "content": content}],
    })  # fmt: skip
