"""Load: a batch file's bytes → Polars frames of physical lines, in bounded chunks.

Lines end at ``\\n`` only (U+2028/U+2029/U+0085 are content), are numbered from 1 as they stand
in the file, and blank lines are counted but not kept. A BOM at the start and a ``\\r`` before
``\\n`` are dropped. A line that is not UTF-8 or is too long is kept with a `problem` so that it
fails alone; the rest of the file still imports.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import polars as pl

from import_pipeline.errors import BatchUnreadable

#: Schema of a loaded chunk: one row per non-blank physical line.
LINES_SCHEMA = {"line_number": pl.Int64, "text": pl.String, "problem": pl.String}
NOT_UTF8 = "not_utf8"
TOO_LONG = "too_long"

_READ_BLOCK = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass
class LoadStats:
    """What a whole file held, known once its last chunk has been read."""

    physical_lines: int = 0
    blank_lines: int = 0
    bytes_read: int = 0
    checksum: str = ""


def _blocks(
    handle: IO[bytes], *, gzipped: bool, stored_size: int, max_decompressed: int, max_ratio: int
) -> Iterator[bytes]:
    """Yields the file's content in blocks, decompressing gzip with a bound on its size."""
    if not gzipped:
        while block := handle.read(_READ_BLOCK):
            yield block
        return
    limit = min(max_decompressed, max(stored_size, 1) * max_ratio)
    inflater = zlib.decompressobj(wbits=31)
    produced = 0
    while True:
        compressed = handle.read(_READ_BLOCK)
        if not compressed:
            break
        while compressed:
            try:
                block = inflater.decompress(compressed, _READ_BLOCK)
            except zlib.error as exc:
                raise BatchUnreadable(f"corrupt gzip: {exc}") from exc
            compressed = inflater.unconsumed_tail
            produced += len(block)
            if produced > limit:
                raise BatchUnreadable(
                    f"decompressed size passed the limit of {limit} bytes "
                    f"(at most {max_ratio}x the {stored_size}-byte file, and at most "
                    f"{max_decompressed} bytes): refused as a possible gzip bomb"
                )
            yield block
            if inflater.eof:
                if inflater.unused_data.strip(b"\0"):
                    # Concatenated gzip members are legal: continue with the next member.
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    compressed = rest + compressed
                else:
                    compressed = b""
    if not inflater.eof:
        raise BatchUnreadable(
            "truncated gzip: the file ends in the middle of the compressed stream"
        )


def _frame(
    first_line: int, raw_lines: list[bytes], too_long_lines: list[int], max_line_bytes: int
) -> tuple[pl.DataFrame, int]:
    """One chunk's frame, and how many of its lines were blank.

    `too_long_lines` are line numbers whose bytes were dropped while reading (an empty
    placeholder stands in `raw_lines`).
    """
    try:
        texts: list[str | None] = b"\n".join(raw_lines).decode("utf-8").split("\n")
        problems: list[str | None] | None = None
    except UnicodeDecodeError:
        # Only a chunk with bad bytes pays a per-line decode, to find the lines they are in.
        texts, problems = [], []
        for raw in raw_lines:
            try:
                texts.append(raw.decode("utf-8"))
                problems.append(None)
            except UnicodeDecodeError:
                texts.append(None)
                problems.append(NOT_UTF8)
    frame = pl.DataFrame(
        {
            "line_number": pl.int_range(first_line, first_line + len(raw_lines), eager=True),
            "text": pl.Series(texts, dtype=pl.String),
            "problem": pl.Series(problems, dtype=pl.String) if problems else None,
        }
    ).with_columns(
        text=pl.col("text").str.strip_suffix("\r"),
        problem=pl.col("problem").cast(pl.String) if problems else pl.lit(None, pl.String),
    )
    too_long = (pl.col("text").str.len_bytes() > max_line_bytes) | pl.col("line_number").is_in(
        too_long_lines
    )
    blank = (pl.col("text").str.strip_chars(" \t\r").str.len_bytes() == 0) & ~too_long
    frame = frame.filter(~blank.fill_null(False))
    blanks = len(raw_lines) - frame.height
    frame = frame.with_columns(
        problem=pl.when(too_long.fill_null(False)).then(pl.lit(TOO_LONG)).otherwise("problem"),
        text=pl.when(too_long.fill_null(False)).then(None).otherwise("text"),
    )
    return frame.select(LINES_SCHEMA.keys()).cast(LINES_SCHEMA), blanks  # type: ignore[arg-type]


def iter_line_chunks(
    handle: IO[bytes],
    *,
    gzipped: bool,
    stored_size: int,
    stats: LoadStats,
    max_line_bytes: int,
    max_decompressed_bytes: int,
    max_decompression_ratio: int,
    chunk_lines: int = 200_000,
) -> Iterator[pl.DataFrame]:
    """Yields frames of at most `chunk_lines` lines; fills `stats` as it goes.

    Raises `BatchUnreadable` for a file that cannot be read as a whole (corrupt or truncated
    gzip, past the decompression limit, empty or only blank lines).
    """
    digest = hashlib.sha256()
    pending: list[bytes] = []
    too_long_lines: list[int] = []
    carry = b""
    oversized = False  # inside a line already known to be too long: drop its bytes
    next_line = 1
    at_start = True

    def flush() -> Iterator[pl.DataFrame]:
        nonlocal pending, too_long_lines, next_line
        if pending:
            frame, blanks = _frame(next_line, pending, too_long_lines, max_line_bytes)
            stats.blank_lines += blanks
            next_line += len(pending)
            pending, too_long_lines = [], []
            if frame.height:
                yield frame

    counting = _CountingReader(handle, digest)
    for block in _blocks(
        counting,
        gzipped=gzipped,
        stored_size=stored_size,
        max_decompressed=max_decompressed_bytes,
        max_ratio=max_decompression_ratio,
    ):
        if at_start:
            at_start = False
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
        data = carry + block
        parts = data.split(b"\n")
        carry = parts.pop()
        if oversized and parts:
            too_long_lines.append(next_line + len(pending))
            parts[0] = b""  # stands for the dropped long line
            oversized = False
        pending.extend(parts)
        if len(carry) > max_line_bytes:
            # A line longer than the limit: remember it, keep no more of its bytes.
            oversized = True
            carry = b""
        if len(pending) >= chunk_lines:
            yield from flush()
    if oversized:
        too_long_lines.append(next_line + len(pending))
        pending.append(b"")
    elif carry:
        pending.append(carry)
    yield from flush()
    stats.physical_lines = next_line - 1
    stats.bytes_read = counting.count
    stats.checksum = digest.hexdigest()
    if stats.physical_lines == stats.blank_lines:
        raise BatchUnreadable(
            "the batch is empty" if stats.physical_lines == 0 else "the batch has only blank lines"
        )


class _CountingReader:
    """Wraps a binary handle: counts and hashes the stored bytes as they are read."""

    def __init__(self, handle: IO[bytes], digest: hashlib._Hash) -> None:
        self._handle = handle
        self._digest = digest
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.count += len(data)
        self._digest.update(data)
        return data
