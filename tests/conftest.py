"""Shared fixtures: real files in tmp_path, a real DuckDB store, the real reference data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from import_pipeline import stages, store
from import_pipeline.demo import DESTINY, SYNERGY
from import_pipeline.landing import LandingZone
from import_pipeline.models import CollisionStrategy
from import_pipeline.settings import Settings

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose home, landing zone and store all live in this test's tmp_path."""
    return Settings.from_env({"IMPORT_PIPELINE_HOME": str(tmp_path / "home")})


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
    strategy: CollisionStrategy = CollisionStrategy.MERGE_DEFENSIVE,
    now: datetime | None = None,
) -> list[stages.StoredBatch]:
    """Runs the data path (no Dagster) over the record's batches, in name order."""
    folder = landing.record_folder(key)
    out = []
    for batch in folder.batches:
        if names is not None and batch.name not in names:
            continue
        with store.connect(settings.duckdb_path) as conn:
            store.upsert_record(conn, key, None)
            batch_id = store.start_batch(conn, key, batch.name, batch.url, "test-run")
        loaded = stages.load_batch(
            landing,
            batch,
            batch_id=batch_id,
            staging=settings.staging / key / batch.name,
            settings=settings,
        )
        clustered = stages.cluster_batch(stages.validate_batch(loaded))
        with store.connect(settings.duckdb_path) as conn:
            out.append(
                stages.store_batch(conn, clustered, strategy, ttl=settings.unresolved_ttl, now=now)
            )
    return out


def results_of(settings: Settings, key: str) -> list[dict]:
    with store.connect(settings.duckdb_path, read_only=True) as conn:
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
    with store.connect(settings.duckdb_path) as conn:
        yield conn
