"""Validation passes: the loaded chunks of a group's batches cut or packed into passes of about
`VALIDATION_PASS_BYTES` of text, validated on every core, each batch's parts staged as Parquet
in its own folder (`frames.VALIDATED_PARTS`, a file per pass)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from import_pipeline.pipeline import progress
from import_pipeline.pipeline.frames import ERRORS, VALIDATED_PARTS
from import_pipeline.pipeline.load import LoadedBatch
from import_pipeline.pipeline.validate import validate_chunk
from import_pipeline.pipeline.workers import (
    WORKER_NICENESS,
    WORKER_PROCESSES,
    pack_consecutive,
    worker_pool,
)
from import_pipeline.store.connection import BATCH_STRIDE


@dataclass
class ValidatedBatch:
    loaded: LoadedBatch
    paths: dict[str, list[str]] = field(default_factory=dict)  # part → its Parquet files
    lines_read: int = 0
    lines_with_errors: int = 0
    slow_path_lines: int = 0
    seconds: float = 0.0


#: A validation pass holds about this many bytes of text: a big chunk is validated in slices
#: (so that both cores have work until the end), small batches are packed together (so that
#: a thousand small files do not each cost a task of their own).
VALIDATION_PASS_BYTES = 16 * 1024 * 1024


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
    pieces = [
        (piece, size)
        for batch_index, loaded in enumerate(batches)
        if not loaded.skipped
        for piece, size in _slices(batch_index, loaded)
    ]
    groups = pack_consecutive([size for _, size in pieces], VALIDATION_PASS_BYTES)
    return [[pieces[index][0] for index in group] for group in groups]


def _read_pass(pieces: list[_Slice]) -> pl.DataFrame:
    return pl.concat(
        pl.scan_parquet(piece.path)
        .slice(piece.offset, piece.length)
        .with_columns(pl.col("line_number") + piece.batch_index * BATCH_STRIDE)
        .collect()
        for piece in pieces
    )


def _by_batch(frame: pl.DataFrame, batch_indexes: set[int]) -> dict[int, pl.DataFrame]:
    """A pass's frame split back into its batches, with their own line numbers."""
    if len(batch_indexes) == 1:  # a big batch's chunk: no split, no copy
        (batch_index,) = batch_indexes
        return {batch_index: frame.with_columns(pl.col("line_number") - batch_index * BATCH_STRIDE)}
    parts = frame.with_columns(_batch=pl.col("line_number") // BATCH_STRIDE).partition_by(
        "_batch", as_dict=True, include_key=False
    )
    return {
        int(key[0]): part.with_columns(pl.col("line_number") % BATCH_STRIDE)
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
        errors = frames["errors"].get(batch_index, pl.DataFrame(schema=ERRORS))
        written[batch_index] = {
            "paths": paths,
            "lines_read": frames["lines"].get(batch_index, pl.DataFrame()).height,
            # A line's errors all come from the pass that read it: counts add up.
            "lines_with_errors": errors["line_number"].n_unique(),
            "slow_path_lines": slow.get(batch_index, pl.DataFrame()).height,
        }
    return written


def validate_batches(
    batches: list[LoadedBatch], niceness: int = WORKER_NICENESS
) -> list[ValidatedBatch]:
    """Validates the staged chunks of the batches; writes each batch's lines, valid parts and
    errors as Parquet in its own staging folder (`VALIDATED_PARTS`, a file per pass). Small
    batches share validation passes; passes run on every core, `niceness` below this
    process's CPU priority."""
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
            if not b.skipped
        ),
    )
    # Pydantic holds the GIL: passes run in worker processes, unless there is only one.
    with worker_pool(min(len(work), WORKER_PROCESSES), niceness) as pool:
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
