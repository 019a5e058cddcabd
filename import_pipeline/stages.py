"""The data path of one batch, stage by stage: load → validate → cluster → resolve and store.

Each stage reads the Parquet files the previous one staged and writes its own, so the Dagster
ops that call them pass only small handles, a run can be inspected stage by stage, and memory
stays bounded by a chunk. No Dagster here: the CLI, the tests and the benchmark call the same
functions the ops call.
"""

from __future__ import annotations

import queue
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from import_pipeline.errors import BatchUnreadable
from import_pipeline.landing import BatchFile, LandingZone
from import_pipeline.load import LoadStats, iter_line_chunks
from import_pipeline.models import CollisionStrategy
from import_pipeline.resolve import BatchOutcome, cluster_lines, resolve_and_store
from import_pipeline.settings import Settings
from import_pipeline.store import fail_batch
from import_pipeline.validate import (
    ASSOCIATIONS_SCHEMA,
    ERRORS_SCHEMA,
    IDENTIFIERS_SCHEMA,
    LINES_SCHEMA,
    ValidatedChunk,
    new_json_engine,
    validate_chunk,
)


@dataclass
class LoadedBatch:
    """A batch file read into staged line chunks, or the reason it could not be read."""

    record_key: str
    name: str
    batch_id: str
    storage_url: str
    staging: str
    chunk_paths: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    unreadable: str | None = None
    seconds: float = 0.0

    @property
    def checksum(self) -> str:
        return str(self.stats.get("checksum", ""))


@dataclass
class ValidatedBatch:
    loaded: LoadedBatch
    lines_path: str = ""
    identifiers_path: str = ""
    enhancements_paths: list[str] = field(default_factory=list)
    associations_path: str = ""
    errors_path: str = ""
    lines_read: int = 0
    lines_with_errors: int = 0
    slow_path_lines: int = 0
    seconds: float = 0.0


@dataclass
class ClusteredBatch:
    validated: ValidatedBatch
    clusters_path: str = ""
    clusters: int = 0
    seconds: float = 0.0


@dataclass
class StoredBatch:
    record_key: str
    name: str
    batch_id: str
    checksum: str
    status: str
    counts: dict[str, int]
    lines_read: int
    references_created: int = 0
    references_merged: int = 0
    associations_waiting: int = 0
    failure_details: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def staging_dir(settings: Settings, run_id: str, record_key: str, name: str) -> Path:
    return settings.staging / run_id / record_key / name


def load_batch(
    landing: LandingZone,
    batch: BatchFile,
    *,
    batch_id: str,
    staging: Path,
    settings: Settings,
) -> LoadedBatch:
    """Reads a batch file into Parquet chunks of lines (see `load.LINES_SCHEMA`)."""
    started = time.perf_counter()
    staging.mkdir(parents=True, exist_ok=True)
    loaded = LoadedBatch(
        record_key=batch.record_key,
        name=batch.name,
        batch_id=batch_id,
        storage_url=batch.url,
        staging=str(staging),
    )
    stats = LoadStats()
    try:
        with landing.open_binary(batch.path) as handle:
            for index, chunk in enumerate(
                iter_line_chunks(
                    handle,
                    gzipped=batch.name.endswith(".gz"),
                    stored_size=batch.size,
                    stats=stats,
                    max_line_bytes=settings.max_line_bytes,
                    max_decompressed_bytes=settings.max_decompressed_bytes,
                    max_decompression_ratio=settings.max_decompression_ratio,
                )
            ):
                path = staging / f"lines-{index:05d}.parquet"
                chunk.write_parquet(path)
                loaded.chunk_paths.append(str(path))
    except BatchUnreadable as exc:
        loaded.unreadable = exc.reason
    except FileNotFoundError:
        loaded.unreadable = "the batch file disappeared before it could be read"
    loaded.stats = asdict(stats)
    loaded.seconds = time.perf_counter() - started
    return loaded


#: Chunks validated at once: DuckDB and Polars leave a core idle part of the time; two
#: chunks in flight share one JSON engine (and its memory limit).
VALIDATION_THREADS = 2


def validate_batch(loaded: LoadedBatch) -> ValidatedBatch:
    """Validates every staged chunk; writes the valid parts and the errors as Parquet."""
    started = time.perf_counter()
    validated = ValidatedBatch(loaded=loaded)
    if loaded.unreadable:
        return validated
    staging = Path(loaded.staging)
    engine = new_json_engine()
    cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for _ in range(VALIDATION_THREADS):
        cursor = engine.cursor()  # one connection each: own temp tables, shared memory
        cursor.execute("SET enable_progress_bar = false")
        cursors.put(cursor)

    def validate(index_path: tuple[int, str]) -> tuple[ValidatedChunk, str]:
        index, path = index_path
        cursor = cursors.get()
        try:
            result = validate_chunk(cursor, pl.read_parquet(path))
        finally:
            cursors.put(cursor)
        enhancements_path = staging / f"enhancements-{index:05d}.parquet"
        result.enhancements.write_parquet(enhancements_path)
        result.enhancements = result.enhancements.clear()  # on disk now
        return result, str(enhancements_path)

    lines, identifiers, associations, errors = [], [], [], []
    try:
        with ThreadPoolExecutor(VALIDATION_THREADS) as pool:
            for result, enhancements_path in pool.map(validate, enumerate(loaded.chunk_paths)):
                validated.enhancements_paths.append(enhancements_path)
                lines.append(result.lines)
                identifiers.append(result.identifiers)
                associations.append(result.associations)
                errors.append(result.errors)
                validated.slow_path_lines += result.slow_path_lines
    finally:
        while not cursors.empty():
            cursors.get().close()
        engine.close()
    all_lines = pl.concat(lines) if lines else pl.DataFrame(schema=LINES_SCHEMA)
    all_errors = pl.concat(errors) if errors else pl.DataFrame(schema=ERRORS_SCHEMA)
    validated.lines_path = str(staging / "lines.parquet")
    validated.identifiers_path = str(staging / "identifiers.parquet")
    validated.errors_path = str(staging / "errors.parquet")
    validated.associations_path = str(staging / "associations.parquet")
    (
        pl.concat(associations) if associations else pl.DataFrame(schema=ASSOCIATIONS_SCHEMA)
    ).write_parquet(validated.associations_path)
    all_lines.write_parquet(validated.lines_path)
    (
        pl.concat(identifiers) if identifiers else pl.DataFrame(schema=IDENTIFIERS_SCHEMA)
    ).write_parquet(validated.identifiers_path)
    all_errors.write_parquet(validated.errors_path)
    validated.lines_read = all_lines.height
    validated.lines_with_errors = all_errors.select("line_number").n_unique()
    validated.seconds = time.perf_counter() - started
    return validated


def cluster_batch(validated: ValidatedBatch) -> ClusteredBatch:
    """Groups the batch's lines that share trusted identifiers (contract section 5)."""
    started = time.perf_counter()
    clustered = ClusteredBatch(validated=validated)
    if validated.loaded.unreadable:
        return clustered
    clusters = cluster_lines(
        pl.read_parquet(validated.identifiers_path),
        pl.read_parquet(validated.lines_path)["line_number"],
    )
    clustered.clusters_path = str(Path(validated.loaded.staging) / "clusters.parquet")
    clusters.write_parquet(clustered.clusters_path)
    clustered.clusters = clusters["cluster"].n_unique()
    clustered.seconds = time.perf_counter() - started
    return clustered


def store_batch(
    conn: duckdb.DuckDBPyConnection,
    clustered: ClusteredBatch,
    strategy: CollisionStrategy,
    *,
    ttl: timedelta,
    now: datetime | None = None,
) -> StoredBatch:
    """Resolves the batch against the store and writes it with its results, in one transaction."""
    started = time.perf_counter()
    validated = clustered.validated
    loaded = validated.loaded
    stats = loaded.stats
    if loaded.unreadable:
        fail_batch(
            conn,
            loaded.batch_id,
            loaded.unreadable,
            checksum=loaded.checksum or None,
            physical_lines=stats.get("physical_lines"),
            blank_lines=stats.get("blank_lines"),
        )
        return StoredBatch(
            record_key=loaded.record_key,
            name=loaded.name,
            batch_id=loaded.batch_id,
            checksum=loaded.checksum,
            status="failed",
            counts={},
            lines_read=0,
            failure_details=loaded.unreadable,
            stage_seconds={"load": loaded.seconds},
        )
    outcome: BatchOutcome = resolve_and_store(
        conn,
        batch_id=loaded.batch_id,
        checksum=loaded.checksum,
        strategy=strategy,
        lines=pl.read_parquet(validated.lines_path),
        identifiers=pl.read_parquet(validated.identifiers_path),
        enhancements=validated.enhancements_paths,
        errors=pl.read_parquet(validated.errors_path),
        clusters=pl.read_parquet(clustered.clusters_path),
        associations=pl.read_parquet(validated.associations_path),
        physical_lines=int(stats["physical_lines"]),
        blank_lines=int(stats["blank_lines"]),
        now=now or datetime.now(UTC),
        ttl=ttl,
    )
    return StoredBatch(
        record_key=loaded.record_key,
        name=loaded.name,
        batch_id=loaded.batch_id,
        checksum=loaded.checksum,
        status=outcome.status,
        counts=outcome.counts,
        lines_read=validated.lines_read,
        references_created=outcome.references_created,
        references_merged=outcome.references_merged,
        associations_waiting=outcome.associations_waiting,
        stage_seconds={
            "load": loaded.seconds,
            "validate": validated.seconds,
            "cluster": clustered.seconds,
            "resolve_and_store": time.perf_counter() - started,
        },
    )


def discard_staging(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
