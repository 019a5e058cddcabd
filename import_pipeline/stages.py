"""The data path of one batch, stage by stage: load → validate → cluster → resolve and store.

Each stage reads the Parquet files the previous one staged and writes its own, so the Dagster
ops that call them pass only small handles, a run can be inspected stage by stage, and memory
stays bounded by a chunk. No Dagster here: the CLI, the tests and the benchmark call the same
functions the ops call.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from import_pipeline import progress
from import_pipeline.errors import BatchUnreadable
from import_pipeline.landing import BatchFile, LandingZone
from import_pipeline.load import (
    CHUNK_BYTES,
    LineHead,
    LoadStats,
    check_not_empty,
    iter_line_heads,
    line_frame,
)
from import_pipeline.models import CollisionStrategy
from import_pipeline.resolve import (
    BatchOutcome,
    cluster_lines_in,
    parquet_source,
    resolve_and_store,
)
from import_pipeline.settings import Settings
from import_pipeline.store import fail_batch, scratch_engine, sql_literal
from import_pipeline.validate import (
    ASSOCIATIONS_SCHEMA,
    ENHANCEMENTS_SCHEMA,
    ERRORS_SCHEMA,
    IDENTIFIERS_SCHEMA,
    LINES_SCHEMA,
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
    chunk_text_bytes: list[int] = field(default_factory=list)  # parallel to chunk_paths
    chunk_lines: list[int] = field(default_factory=list)  # parallel to chunk_paths
    stats: dict[str, Any] = field(default_factory=dict)
    unreadable: str | None = None
    seconds: float = 0.0

    @property
    def checksum(self) -> str:
        return str(self.stats.get("checksum", ""))


#: What validation writes per batch, one Parquet file per validation pass each (schemas in
#: `validate`): nothing of a batch is held in memory whatever its size.
VALIDATED_PARTS = {
    "lines": LINES_SCHEMA,
    "identifiers": IDENTIFIERS_SCHEMA,
    "enhancements": ENHANCEMENTS_SCHEMA,
    "associations": ASSOCIATIONS_SCHEMA,
    "errors": ERRORS_SCHEMA,
}


@dataclass
class ValidatedBatch:
    loaded: LoadedBatch
    paths: dict[str, list[str]] = field(default_factory=dict)  # part → its Parquet files
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


#: Batches of one run are imported in groups: one Dagster step of each stage per group, not
#: per file, so that thousands of small files do not each pay Dagster's per-step events.
#: A file of this size or more is a group of its own.
GROUP_BYTES = 64 * 1024 * 1024
#: ... and a group holds at most this many files (an unexpected error fails its group).
GROUP_FILES = 100


def import_groups(sizes: list[int]) -> list[list[int]]:
    """The indexes of `sizes` (files in import order) grouped: consecutive files, each group
    under `GROUP_BYTES` unless it is one file, and at most `GROUP_FILES` files."""
    groups: list[list[int]] = []
    group: list[int] = []
    group_bytes = 0
    for index, size in enumerate(sizes):
        if group and (group_bytes + size > GROUP_BYTES or len(group) == GROUP_FILES):
            groups.append(group)
            group, group_bytes = [], 0
        group.append(index)
        group_bytes += size
    if group:
        groups.append(group)
    return groups


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
    gzipped = batch.name.endswith(".gz")
    # Stored bytes read (compressed ones for gzip), of the file's size.
    read = progress.Stage("load", batch.size, unit="bytes")
    # Splitting a chunk into lines holds the GIL: a file of several chunks is split by worker
    # processes while this one reads on. At most one chunk per worker waits.
    workers = WORKER_PROCESSES if batch.size > CHUNK_BYTES else 0
    try:
        with landing.open_binary(batch.path) as handle, _worker_pool(workers) as pool:
            pending: deque[Future[_WrittenChunk]] = deque()
            heads = iter_line_heads(
                handle,
                gzipped=gzipped,
                stored_size=batch.size,
                stats=stats,
                max_line_bytes=settings.max_line_bytes,
                max_decompressed_bytes=settings.max_decompressed_bytes,
                max_decompression_ratio=settings.max_decompression_ratio,
                chunk_bytes=CHUNK_BYTES,
            )
            for index, head in enumerate(heads):
                # Not "lines-…": validation writes its parts (`VALIDATED_PARTS`) beside them.
                path = str(staging / f"chunk-{index:05d}.parquet")
                pending.append(pool.submit(_write_chunk, head, path, settings.max_line_bytes))
                while len(pending) > max(workers, 1) or (pending and pending[0].done()):
                    _add_chunk(loaded, stats, pending.popleft().result())
                    read.advance(stats.bytes_read - read.done)
            while pending:
                _add_chunk(loaded, stats, pending.popleft().result())
            read.advance(stats.bytes_read - read.done)
        check_not_empty(stats)
    except BatchUnreadable as exc:
        loaded.unreadable = exc.reason
    except FileNotFoundError:
        loaded.unreadable = "the batch file disappeared before it could be read"
    loaded.stats = asdict(stats)
    loaded.seconds = time.perf_counter() - started
    return loaded


@dataclass(frozen=True)
class _WrittenChunk:
    path: str | None  # None: every line of the chunk was blank
    text_bytes: int
    lines: int  # rows written: the chunk's lines but the blank ones
    blanks: int


def _write_chunk(head: LineHead, path: str, max_line_bytes: int) -> _WrittenChunk:
    """Splits a chunk into its frame of lines and writes it (in a worker process, for big files)."""
    frame, blanks = line_frame(head, max_line_bytes)
    if not frame.height:
        return _WrittenChunk(None, 0, 0, blanks)
    frame.write_parquet(path)
    return _WrittenChunk(path, int(frame["text"].str.len_bytes().sum() or 0), frame.height, blanks)


def _add_chunk(loaded: LoadedBatch, stats: LoadStats, chunk: _WrittenChunk) -> None:
    stats.blank_lines += chunk.blanks
    if chunk.path is not None:
        loaded.chunk_paths.append(chunk.path)
        loaded.chunk_text_bytes.append(chunk.text_bytes)
        loaded.chunk_lines.append(chunk.lines)


#: Worker processes for the work that holds the GIL (splitting lines, validating them): one
#: per core of the machine the benchmarks and CI run on.
WORKER_PROCESSES = 2


class _InThisProcess(Executor):
    """The executor of work too small to be worth a worker process: runs each call at once."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by `result()`, as a pool does
            future.set_exception(exc)
        return future


@contextmanager
def _worker_pool(processes: int) -> Iterator[Executor]:
    """`processes` worker processes, or this process for 0 or 1 (one worker would only add
    the hand-over). Workers start from a fork server that has imported the data path, so each
    starts in milliseconds and never inherits the threads of a Dagster step."""
    if processes <= 1:
        yield _InThisProcess()
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["import_pipeline.stages"])
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        yield pool


#: A validation pass holds about this many bytes of text: a big chunk is validated in slices
#: (so that both cores have work until the end), small batches are packed together (so that
#: a thousand small files do not each cost a task of their own).
VALIDATION_PASS_BYTES = 16 * 1024 * 1024

#: A pass's line numbers carry the batch above this (a batch has fewer lines).
_BATCH_STRIDE = 1 << 32


@dataclass(frozen=True)
class _Slice:
    batch_index: int
    path: str  # a chunk's Parquet file
    offset: int  # its first row
    length: int


def _slices(batch_index: int, loaded: LoadedBatch) -> Iterator[tuple[_Slice, int]]:
    """The batch's chunks cut into slices of about `VALIDATION_PASS_BYTES`, with their bytes."""
    for path, size, lines in zip(
        loaded.chunk_paths, loaded.chunk_text_bytes, loaded.chunk_lines, strict=True
    ):
        count = max(1, -(-size // VALIDATION_PASS_BYTES))
        step = max(1, -(-lines // count))
        for offset in range(0, max(lines, 1), step):
            yield _Slice(batch_index, path, offset, step), size * min(step, lines) // max(lines, 1)


def _validation_passes(batches: list[LoadedBatch]) -> list[list[_Slice]]:
    """The slices of each pass: slices of a big batch's chunks one by one, the chunks of small
    batches packed together, each pass up to about `VALIDATION_PASS_BYTES` of text."""
    passes: list[list[_Slice]] = []
    packed: list[_Slice] = []
    packed_bytes = 0
    for batch_index, loaded in enumerate(batches):
        if loaded.unreadable:
            continue
        for piece, size in _slices(batch_index, loaded):
            if packed and packed_bytes + size > VALIDATION_PASS_BYTES:
                passes.append(packed)
                packed, packed_bytes = [], 0
            packed.append(piece)
            packed_bytes += size
    if packed:
        passes.append(packed)
    return passes


def _read_pass(pieces: list[_Slice]) -> pl.DataFrame:
    return pl.concat(
        pl.scan_parquet(piece.path)
        .slice(piece.offset, piece.length)
        .with_columns(pl.col("line_number") + piece.batch_index * _BATCH_STRIDE)
        .collect()
        for piece in pieces
    )


def _by_batch(frame: pl.DataFrame, batch_indexes: set[int]) -> dict[int, pl.DataFrame]:
    """A pass's frame split back into its batches, with their own line numbers."""
    if len(batch_indexes) == 1:  # a big batch's chunk: no split, no copy
        (batch_index,) = batch_indexes
        return {
            batch_index: frame.with_columns(pl.col("line_number") - batch_index * _BATCH_STRIDE)
        }
    parts = frame.with_columns(_batch=pl.col("line_number") // _BATCH_STRIDE).partition_by(
        "_batch", as_dict=True, include_key=False
    )
    return {
        int(key[0]): part.with_columns(pl.col("line_number") % _BATCH_STRIDE)  # type: ignore[call-overload]
        for key, part in parts.items()
    }


@dataclass(frozen=True)
class _ValidationPass:
    """One pass's work, as a worker process receives it."""

    index: int
    pieces: list[_Slice]
    stagings: dict[int, str]  # batch index → its staging folder


def _validate_pass(work: _ValidationPass) -> dict[int, dict[str, Any]]:
    """Validates one pass and writes each of its batches' parts; returns their paths and counts."""
    result = validate_chunk(_read_pass(work.pieces))
    in_pass = set(work.stagings)
    frames = {name: _by_batch(getattr(result, name), in_pass) for name in VALIDATED_PARTS}
    slow = _by_batch(result.slow_path, in_pass)
    written: dict[int, dict[str, Any]] = {}
    for batch_index, staging in sorted(work.stagings.items()):
        paths = {}
        for name, schema in VALIDATED_PARTS.items():
            path = Path(staging) / f"{name}-{work.index:05d}.parquet"
            frames[name].get(batch_index, pl.DataFrame(schema=schema)).write_parquet(path)
            paths[name] = str(path)
        errors = frames["errors"].get(batch_index, pl.DataFrame(schema=ERRORS_SCHEMA))
        written[batch_index] = {
            "paths": paths,
            "lines_read": frames["lines"].get(batch_index, pl.DataFrame()).height,
            # A line's errors all come from the pass that read it: counts add up.
            "lines_with_errors": errors["line_number"].n_unique(),
            "slow_path_lines": slow.get(batch_index, pl.DataFrame()).height,
        }
    return written


def validate_batch(loaded: LoadedBatch) -> ValidatedBatch:
    """Validates every staged chunk of one batch (see `validate_batches`)."""
    return validate_batches([loaded])[0]


def validate_batches(batches: list[LoadedBatch]) -> list[ValidatedBatch]:
    """Validates the staged chunks of the batches; writes each batch's lines, valid parts and
    errors as Parquet in its own staging folder (`VALIDATED_PARTS`, a file per pass). Small
    batches share validation passes; passes run on every core."""
    started = time.perf_counter()
    validated = [ValidatedBatch(loaded=loaded) for loaded in batches]
    work = [
        _ValidationPass(
            index=index,
            pieces=pieces,
            stagings={p.batch_index: batches[p.batch_index].staging for p in pieces},
        )
        for index, pieces in enumerate(_validation_passes(batches))
    ]
    lines = progress.Stage(
        "validate",
        sum(
            int(b.stats.get("physical_lines", 0)) - int(b.stats.get("blank_lines", 0))
            for b in batches
            if not b.unreadable
        ),
    )
    # Pydantic holds the GIL: passes run in worker processes, unless there is only one.
    with _worker_pool(min(len(work), WORKER_PROCESSES)) as pool:
        for written in pool.map(_validate_pass, work):
            lines.advance(sum(counts["lines_read"] for counts in written.values()))
            for batch_index, counts in written.items():
                batch = validated[batch_index]
                for name, path in counts.pop("paths").items():
                    batch.paths.setdefault(name, []).append(path)
                batch.lines_read += counts["lines_read"]
                batch.lines_with_errors += counts["lines_with_errors"]
                batch.slow_path_lines += counts["slow_path_lines"]
    seconds = time.perf_counter() - started
    total_lines = sum(b.lines_read for b in validated) or 1
    for batch in validated:  # the shared time, split by lines
        batch.seconds = seconds * batch.lines_read / total_lines
    return validated


def cluster_batch(
    validated: ValidatedBatch, engine: duckdb.DuckDBPyConnection | None = None
) -> ClusteredBatch:
    """Groups the batch's lines that share trusted identifiers (contract section 5). A group's
    batches may share one `engine` (a `scratch_engine`): opening one costs ~25 ms, which
    adds up over a hundred small files; its temp tables are replaced per batch."""
    started = time.perf_counter()
    clustered = ClusteredBatch(validated=validated)
    if validated.loaded.unreadable:
        return clustered
    clustered.clusters_path = str(Path(validated.loaded.staging) / "clusters.parquet")
    own_engine = engine is None
    engine = engine or scratch_engine()
    try:
        cluster_lines_in(
            engine,
            lines=parquet_source(validated.paths["lines"]),
            identifiers=parquet_source(validated.paths["identifiers"]),
        )
        engine.execute(
            f"COPY (SELECT * FROM c_labels ORDER BY line_number) "
            f"TO {sql_literal(clustered.clusters_path)} (FORMAT parquet)"
        )
        (clustered.clusters,) = engine.execute(
            "SELECT count(DISTINCT cluster) FROM c_labels"
        ).fetchall()[0]
    finally:
        if own_engine:
            engine.close()
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
        parts={**validated.paths, "clusters": [clustered.clusters_path]},
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
