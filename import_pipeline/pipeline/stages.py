"""The stages of a record run, as the Dagster ops, the CLI, the tests and the benchmark all
call them: start the record → per batch load → validate → cluster → resolve.

Each stage reads the Parquet files the previous one staged and writes its own, so the ops
that call them pass only small handles, a run can be inspected stage by stage, and memory
stays bounded by a chunk. No Dagster here.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from import_pipeline import store
from import_pipeline.domain.formats import format_of_name
from import_pipeline.domain.records import ImportRecordInput
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.errors import BatchUnreadable
from import_pipeline.landing import BatchFile, LandingZone, RecordFolder
from import_pipeline.landing.records import BatchVersion, pending_batches, read_record
from import_pipeline.pipeline.cluster import ClusterFiles, cluster_to_parquet
from import_pipeline.pipeline.exports import ExportReading, read_export_into_chunks
from import_pipeline.pipeline.load import (
    LoadedBatch,
    LoadStats,
    changed_reason,
    check_not_empty,
    read_into_chunks,
)
from import_pipeline.pipeline.outcomes import BatchOutcome
from import_pipeline.pipeline.passes import ValidatedBatch, validate_batches
from import_pipeline.pipeline.resolve import StagedBatch, resolve_batches
from import_pipeline.pipeline.workers import pack_consecutive

__all__ = [  # the stages, in the order a batch goes through them
    "start_record",
    "load_batch",
    "validate_batches",
    "cluster_batches",
    "resolve_group",
    "resolve_once",
    "LoadedBatch",
    "ValidatedBatch",
    "ClusteredBatch",
    "ResolvedBatch",
]
from import_pipeline.settings import Settings


@dataclass(frozen=True)
class BatchToImport:
    """A batch file a run imports, with its id in the store and its record's strategy."""

    batch: BatchFile
    batch_id: str
    strategy: CollisionStrategy
    #: The content the run imports; a file read at other content is not imported by it.
    checksum: str = ""
    #: How an export is read; None for a DESTINY JSONL batch.
    reading: ExportReading | None = None


@dataclass(frozen=True)
class StartedRecord:
    """A record as its run found it: the folder, why it is refused (if it is), and the
    batches the run imports with the checksum of the content each will be read at."""

    folder: RecordFolder
    problem: str | None
    batches: list[BatchToImport]
    checksums: dict[str, str]


#: A short-lived connection to the store for writing, opened by the caller's means.
OpenStore = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def start_record(
    open_store: OpenStore,
    landing: LandingZone,
    record_key: str,
    requested: list[BatchVersion],
    run_id: str,
    *,
    again: bool = False,
) -> StartedRecord:
    """Writes what `record.json` says to the store and marks the batches to import `started`:
    the `requested` ones (every batch when none is named) whose current content is not
    imported yet. Files are hashed between two short store connections, never while the
    store is held."""
    folder = landing.record_folder(record_key)
    reading = read_record(landing, folder)
    with open_store() as conn:
        store.upsert_record(
            conn, record_key, reading.record, problem=reading.problem, finalised=folder.finalised
        )
        imported = store.imported_checksums(conn, record_key)
        first_seen = store.record_first_seen(conn, record_key)
    if reading.record is None:
        return StartedRecord(folder, reading.problem or "invalid record.json", [], {})
    known = {version.name: version.checksum for version in requested if version.checksum}
    only = {version.name for version in requested} or None
    # Again: as if nothing were imported, so every requested batch is read anew.
    pending = pending_batches(landing, folder, {} if again else imported, only=only, known=known)
    strategy = reading.record.collision_strategy
    with open_store() as conn:
        ids = store.start_batches(
            conn, record_key, [(batch.name, batch.url) for batch, _ in pending], run_id
        )
    batches = [
        BatchToImport(
            batch=batch,
            batch_id=ids[batch.name],
            strategy=strategy,
            checksum=checksum,
            reading=export_reading(reading.record, batch.name, first_seen),
        )
        for batch, checksum in pending
    ]
    return StartedRecord(folder, None, batches, {batch.name: c for batch, c in pending})


@dataclass
class ClusteredBatch:
    validated: ValidatedBatch
    clusters_path: str = ""
    clusters: int = 0
    seconds: float = 0.0


@dataclass
class ResolvedBatch:
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


#: Batches of one run are imported in groups: one Dagster step of each stage per group, not
#: per file, so that thousands of small files do not each pay Dagster's per-step events.
#: A file of this size or more is a group of its own.
GROUP_BYTES = 64 * 1024 * 1024
#: ... and a group holds at most this many files (an unexpected error fails its group).
GROUP_FILES = 100


def import_groups(sizes: list[int]) -> list[list[int]]:
    """The indexes of `sizes` (files in import order) grouped: consecutive files, each group
    under `GROUP_BYTES` unless it is one file, and at most `GROUP_FILES` files."""
    return pack_consecutive(sizes, GROUP_BYTES, GROUP_FILES)


def staging_dir(settings: Settings, run_id: str, record_key: str, name: str) -> Path:
    return settings.staging / run_id / record_key / name


def export_reading(
    record: ImportRecordInput, batch_name: str, first_seen: datetime | None = None
) -> ExportReading | None:
    """How a batch of `record` is read when it is an export (its extension or the record's
    "format" says so; a `.txt` is told by its content), None for DESTINY JSONL. The raw
    enhancements' export date is the search's, else when the store first saw the record: the
    same for every version of a batch, so an unchanged entry's raw is an exact duplicate."""
    format_name = record.format or format_of_name(batch_name)
    if format_name == "jsonl":
        return None
    exported = record.searched_at or first_seen or datetime.now(UTC)
    exported = exported.astimezone(UTC).replace(microsecond=0)
    return ExportReading(
        format=format_name,
        encoding=record.encoding,
        source_name=record.source_name,
        export_date=exported.isoformat(),
    )


def load_batch(
    landing: LandingZone,
    batch: BatchFile,
    *,
    batch_id: str,
    staging: Path,
    settings: Settings,
    expected_checksum: str = "",
    run_id: str = "",
    reading: ExportReading | None = None,
) -> LoadedBatch:
    """Reads a batch file into Parquet chunks of lines (see `load.LINES_SCHEMA`). With
    `expected_checksum`, bytes that hash otherwise (the file changed after the run was planned,
    or while it was read) are not imported: the batch is `changed`, left to its next run."""
    started = time.perf_counter()
    staging.mkdir(parents=True, exist_ok=True)
    loaded = LoadedBatch(
        record_key=batch.record_key,
        name=batch.name,
        batch_id=batch_id,
        storage_url=batch.url,
        staging=str(staging),
        run_id=run_id,
    )
    stats = LoadStats()
    try:
        if reading is None:
            read_into_chunks(landing, batch, staging, settings, loaded, stats)
        else:
            read_export_into_chunks(landing, batch, staging, settings, loaded, stats, reading)
        if expected_checksum and stats.checksum != expected_checksum:
            loaded.changed = changed_reason(expected_checksum, stats.checksum)
        else:
            check_not_empty(stats)
    except BatchUnreadable as exc:
        loaded.unreadable = exc.reason
    except FileNotFoundError:
        loaded.unreadable = "the batch file disappeared before it could be read"
    loaded.stats = asdict(stats)
    loaded.seconds = time.perf_counter() - started
    return loaded


def cluster_batches(
    validated: list[ValidatedBatch], engine: duckdb.DuckDBPyConnection | None = None
) -> list[ClusteredBatch]:
    """Groups each batch's lines that share trusted identifiers (contract section 5), the
    batches of a group in one pass. `engine` (a `store.scratch_engine`) may be the caller's:
    opening one costs ~25 ms."""
    started = time.perf_counter()
    clustered = [ClusteredBatch(validated=batch) for batch in validated]
    readable = [c for c in clustered if not c.validated.loaded.skipped]
    if not readable:
        return clustered
    for batch in readable:
        batch.clusters_path = str(Path(batch.validated.loaded.staging) / "clusters.parquet")
    own_engine = engine is None
    engine = engine or store.scratch_engine()
    try:
        counts = cluster_to_parquet(
            engine,
            [
                ClusterFiles(
                    lines=c.validated.paths["lines"],
                    identifiers=c.validated.paths["identifiers"],
                    path=c.clusters_path,
                )
                for c in readable
            ],
        )
    finally:
        if own_engine:
            engine.close()
    seconds = time.perf_counter() - started
    lines = sum(c.validated.lines_read for c in readable) or 1
    for batch, count in zip(readable, counts, strict=True):
        batch.clusters = count
        batch.seconds = seconds * batch.validated.lines_read / lines  # the shared time, by lines
    return clustered


def cluster_batch(
    validated: ValidatedBatch, engine: duckdb.DuckDBPyConnection | None = None
) -> ClusteredBatch:
    """`cluster_batches` of one batch."""
    return cluster_batches([validated], engine)[0]


def _whole_batch(conn: duckdb.DuckDBPyConnection, loaded: LoadedBatch) -> ResolvedBatch:
    """A batch none of whose lines is imported. One that cannot be read ends `failed`, with
    the reason on the batch. One whose file changed is given back as it was before this run
    (its earlier version's results stand), with the reason."""
    if loaded.changed:
        reason = loaded.changed
        status = store.release_batch(conn, loaded.batch_id, loaded.run_id, reason)
    else:
        reason, status = loaded.unreadable or "unreadable", "failed"
        store.fail_batch(
            conn,
            loaded.batch_id,
            reason,
            checksum=loaded.checksum or None,
            physical_lines=loaded.stats.get("physical_lines"),
            blank_lines=loaded.stats.get("blank_lines"),
        )
    return ResolvedBatch(
        record_key=loaded.record_key,
        name=loaded.name,
        batch_id=loaded.batch_id,
        checksum=loaded.checksum,
        status=status,
        counts={},
        lines_read=0,
        failure_details=reason,
        stage_seconds={"load": loaded.seconds},
    )


def _staged(clustered: ClusteredBatch) -> StagedBatch:
    validated = clustered.validated
    loaded = validated.loaded
    return StagedBatch(
        batch_id=loaded.batch_id,
        checksum=loaded.checksum,
        parts={**validated.paths, "clusters": [clustered.clusters_path]},
        physical_lines=int(loaded.stats["physical_lines"]),
        blank_lines=int(loaded.stats["blank_lines"]),
    )


def _resolved(clustered: ClusteredBatch, outcome: BatchOutcome) -> ResolvedBatch:
    validated = clustered.validated
    loaded = validated.loaded
    return ResolvedBatch(
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
            "resolve": outcome.seconds,
        },
    )


#: Left in a batch's staging folder once its results are in the store, so that a retried
#: step does not write the batch again.
_RESOLVED_MARKER = "resolved.json"


def resolve_group(
    conn: duckdb.DuckDBPyConnection,
    clustered: list[ClusteredBatch],
    strategy: CollisionStrategy,
    *,
    ttl: timedelta,
    now: datetime | None = None,
) -> Iterator[tuple[int, ResolvedBatch | Exception]]:
    """Resolves the batches against the store and writes them with their results, as one
    after another in this order would (`resolve.resolve_batches`: in waves, each batch in
    one transaction with others or alone); `ttl` is how long an unresolved association waits.
    Yields (index in `clustered`, the batch resolved or the error that stopped it). A batch
    an earlier attempt already stored is not written again (a retried step redoes only the
    batches it had not stored); one that could not be read ends `failed` with its reason."""
    pending: list[int] = []
    for index, batch in enumerate(clustered):
        marker = _marker(batch)
        if marker.exists():
            yield index, ResolvedBatch(**json.loads(marker.read_text()))
        elif batch.validated.loaded.skipped:
            try:
                whole: ResolvedBatch | Exception = _stored(
                    batch, _whole_batch(conn, batch.validated.loaded)
                )
            except Exception as exc:  # it fails alone, as any batch does
                whole = exc
            yield index, whole
        else:
            pending.append(index)
    lines = sum(clustered[i].validated.lines_read for i in pending)
    with store.threads_for(conn, lines):
        outcomes = resolve_batches(
            conn,
            [_staged(clustered[i]) for i in pending],
            strategy,
            now=now or datetime.now(UTC),
            ttl=ttl,
        )
        for position, outcome in outcomes:
            index = pending[position]
            if isinstance(outcome, Exception):
                yield index, outcome
            else:
                yield index, _stored(clustered[index], _resolved(clustered[index], outcome))


def _marker(clustered: ClusteredBatch) -> Path:
    return Path(clustered.validated.loaded.staging) / _RESOLVED_MARKER


def _stored(clustered: ClusteredBatch, resolved: ResolvedBatch) -> ResolvedBatch:
    """Leaves the marker that the batch is stored."""
    marker = _marker(clustered)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(resolved.as_dict()))
    return resolved


def resolve_once(
    conn: duckdb.DuckDBPyConnection,
    clustered: ClusteredBatch,
    strategy: CollisionStrategy,
    *,
    ttl: timedelta,
    now: datetime | None = None,
) -> ResolvedBatch:
    """`resolve_group` of one batch; raises what stopped it."""
    ((_, resolved),) = resolve_group(conn, [clustered], strategy, ttl=ttl, now=now)
    if isinstance(resolved, Exception):
        raise resolved
    return resolved


def discard_staging(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
