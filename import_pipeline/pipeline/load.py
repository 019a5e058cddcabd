"""Load: a batch file's bytes → Polars frames of physical lines, in bounded chunks.

Lines end at ``\\n`` only (U+2028/U+2029/U+0085 are content), are numbered from 1 as they stand
in the file, and blank lines are counted but not kept. A BOM at the start and a ``\\r`` before
``\\n`` are dropped. A line that is not UTF-8 or is too long is kept with a `problem` so that it
fails alone; the rest of the file still imports.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import polars as pl

from import_pipeline.errors import BatchUnreadable
from import_pipeline.landing import BatchFile, LandingZone
from import_pipeline.pipeline import progress
from import_pipeline.pipeline.frames import NOT_UTF8, TOO_LONG
from import_pipeline.pipeline.workers import WORKER_PROCESSES, worker_pool
from import_pipeline.settings import Settings

_READ_BLOCK = 8 * 1024 * 1024
#: Text of a chunk of lines, about.
CHUNK_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


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
    #: Why the bytes read are not the version the run was asked to import (the file changed
    #: after it was planned, or while it was read): the batch is left to its next run.
    changed: str | None = None
    run_id: str = ""
    seconds: float = 0.0

    @property
    def checksum(self) -> str:
        return str(self.stats.get("checksum", ""))

    @property
    def skipped(self) -> bool:
        """Nothing of it is validated or stored as lines: it cannot be read, or changed."""
        return self.unreadable is not None or self.changed is not None


@dataclass
class LoadStats:
    """What a whole file held, known once its last chunk has been read."""

    physical_lines: int = 0
    blank_lines: int = 0
    bytes_read: int = 0
    checksum: str = ""
    format: str = "jsonl"  # an export's: told by its name, record.json or its content


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _blocks(
    handle: _Readable, *, gzipped: bool, stored_size: int, max_decompressed: int, max_ratio: int
) -> Iterator[bytes]:
    """Yields the file's content in blocks, decompressing gzip with a bound on its size."""
    if not gzipped:
        while block := handle.read(_READ_BLOCK):
            yield block
        return
    limit = min(max_decompressed, max(stored_size, 1) * max_ratio)
    produced = 0
    for block in _gunzipped(handle):
        produced += len(block)
        if produced > limit:
            raise BatchUnreadable(
                f"decompressed size passed the limit of {limit} bytes "
                f"(at most {max_ratio}x the {stored_size}-byte file, and at most "
                f"{max_decompressed} bytes): refused as a possible gzip bomb"
            )
        yield block


def _gunzipped(handle: _Readable) -> Iterator[bytes]:
    """The decompressed blocks of a gzip stream (concatenated members too), at most
    `_READ_BLOCK` bytes each, so that what is read is bounded by the caller's checks."""
    inflater = zlib.decompressobj(wbits=31)
    while compressed := handle.read(_READ_BLOCK):
        while compressed:
            try:
                block = inflater.decompress(compressed, _READ_BLOCK)
            except zlib.error as exc:
                raise BatchUnreadable(f"corrupt gzip: {exc}") from exc
            compressed = inflater.unconsumed_tail
            yield block
            if inflater.eof:
                rest = inflater.unused_data
                if not rest.strip(b"\0"):
                    compressed = b""
                    continue
                # Concatenated gzip members are legal: continue with the next member.
                inflater = zlib.decompressobj(wbits=31)
                compressed = rest + compressed
    if not inflater.eof:
        raise BatchUnreadable(
            "truncated gzip: the file ends in the middle of the compressed stream"
        )


def _frame(
    first_line: int, head: bytes, too_long_lines: list[int], max_line_bytes: int
) -> tuple[pl.DataFrame, int, int]:
    """One chunk's frame from `head` (whole lines joined by ``\\n``); with the number of
    physical lines and of blank ones.

    `too_long_lines` are line numbers whose bytes were dropped while reading (an empty line
    stands in their place).
    """
    try:
        # The common case: one decode and one split, both in C (str.split is 3-4x faster than
        # Polars' split + explode of one huge string); no Python code runs per line.
        texts = pl.Series("text", head.decode("utf-8").split("\n"), dtype=pl.String)
        problems = pl.repeat(None, texts.len(), dtype=pl.String, eager=True).alias("problem")
    except UnicodeDecodeError:
        # Only a chunk with bad bytes pays a per-line decode, to find the lines they are in.
        decoded: list[str | None] = []
        flags: list[str | None] = []
        for raw in head.split(b"\n"):
            try:
                decoded.append(raw.decode("utf-8"))
                flags.append(None)
            except UnicodeDecodeError:
                decoded.append(None)
                flags.append(NOT_UTF8)
        texts = pl.Series("text", decoded, dtype=pl.String)
        problems = pl.Series("problem", flags, dtype=pl.String)
    count = texts.len()
    # Each step below copies the text only when some line needs it: most chunks have no
    # "\r", no blank and no over-long line, and pass through untouched.
    if b"\r" in head:
        texts = texts.str.strip_suffix("\r")
    line_numbers = pl.int_range(first_line, first_line + count, eager=True)
    too_long = texts.str.len_bytes() > max_line_bytes
    if too_long_lines:
        too_long = too_long | line_numbers.is_in(too_long_lines)
    too_long = too_long.fill_null(False)
    frame = pl.DataFrame(
        {
            "line_number": line_numbers,
            "text": texts,
            "problem": problems,
        }
    )
    if too_long.any():
        frame = frame.with_columns(
            problem=pl.when(too_long).then(pl.lit(TOO_LONG)).otherwise("problem"),
            text=pl.when(too_long).then(None).otherwise("text"),
        )
    blank = texts.str.contains(r"^[ \t\r]*$").fill_null(False) & ~too_long
    if blank.any():
        frame = frame.filter(~blank)
    return frame, count, count - frame.height


@dataclass(frozen=True)
class LineHead:
    """Whole lines of a chunk, not split yet: the bytes between two line ends."""

    first_line: int
    text: bytes  # lines joined by "\n", without the last line end
    too_long_lines: tuple[int, ...]  # lines whose bytes were dropped while reading

    @property
    def lines(self) -> int:
        return self.text.count(b"\n") + 1


def line_frame(head: LineHead, max_line_bytes: int) -> tuple[pl.DataFrame, int]:
    """A chunk's frame of lines (see `LOADED_LINES`) and how many of its lines were blank."""
    frame, _, blanks = _frame(head.first_line, head.text, list(head.too_long_lines), max_line_bytes)
    return frame, blanks


def changed_reason(expected: str, read: str) -> str:
    """Why a batch read at other content than its run was asked for is not imported by it."""
    return (
        f"the file changed after this run was asked to import it (content {expected[:12]}…, "
        f"read {read[:12]}…): not imported by this run; its new version is imported once "
        f"it is stable"
    )


def check_not_empty(stats: LoadStats) -> None:
    """Raises `BatchUnreadable` for a file of no lines, or of blank lines only."""
    if stats.physical_lines == stats.blank_lines:
        raise BatchUnreadable(
            "the batch is empty" if stats.physical_lines == 0 else "the batch has only blank lines"
        )


class _Chunker:
    """Cuts a stream of blocks into chunks of whole lines of about `chunk_bytes`; the bytes of
    a line longer than `max_line_bytes` are dropped as they come, never held whole."""

    def __init__(self, chunk_bytes: int, max_line_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.buffer = bytearray()
        self.too_long_lines: list[int] = []
        self.oversized = False  # inside a line already known to be too long
        self.next_line = 1

    def _emit(self, text: bytes) -> LineHead:
        head = LineHead(self.next_line, text, tuple(self.too_long_lines))
        self.next_line += head.lines
        self.too_long_lines = []
        return head

    def feed(self, block: bytes) -> LineHead | None:
        """Takes the next block; returns a chunk when one is complete."""
        if self.oversized:
            end = block.find(b"\n")
            if end < 0:
                return None  # still inside the long line
            block = block[end:]  # the long line now ends: an empty line stands in for it
            self.oversized = False
        self.buffer += block
        cut = self.buffer.rfind(b"\n")
        head = None
        if cut >= 0 and len(self.buffer) >= self.chunk_bytes:
            head = self._emit(bytes(memoryview(self.buffer)[:cut]))  # one copy, not two
            del self.buffer[: cut + 1]
            cut = -1  # what is left holds no line end
        if cut < 0 and len(self.buffer) > self.max_line_bytes:
            self.too_long_lines.append(self.next_line)
            self.buffer.clear()
            self.oversized = True
        return head

    def finish(self) -> LineHead | None:
        """The last chunk, once the stream has ended."""
        if self.oversized:
            return self._emit(b"")  # the file ended inside the long line
        if self.buffer or self.too_long_lines:
            text = bytes(self.buffer)
            return self._emit(text[:-1] if text.endswith(b"\n") else text)
        return None


def iter_line_heads(
    handle: IO[bytes],
    *,
    gzipped: bool,
    stored_size: int,
    stats: LoadStats,
    max_line_bytes: int,
    max_decompressed_bytes: int,
    max_decompression_ratio: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[LineHead]:
    """Yields the file's lines in chunks of about `chunk_bytes`, not split yet (splitting is
    the work that holds the GIL: the caller may do it elsewhere); fills `stats` but for the
    blank lines, which only splitting tells (`line_frame`)."""
    counting = _CountingReader(handle)
    chunker = _Chunker(chunk_bytes, max_line_bytes)
    blocks = _blocks(
        counting,
        gzipped=gzipped,
        stored_size=stored_size,
        max_decompressed=max_decompressed_bytes,
        max_ratio=max_decompression_ratio,
    )
    for index, block in enumerate(blocks):
        if index == 0 and block.startswith(_BOM):
            block = block[len(_BOM) :]
        head = chunker.feed(block)
        if head is not None:
            stats.bytes_read = counting.count  # so far: what a progress report reads
            yield head
    last = chunker.finish()
    if last is not None:
        yield last
    stats.physical_lines = chunker.next_line - 1
    stats.bytes_read = counting.count
    stats.checksum = counting.hexdigest()


class InOrderThread:
    """Runs calls on a thread of its own, one at a time and in order, while the caller goes
    on; at most one call waits, so what the calls hold stays bounded. The thread ends with
    `close`, or when this object is dropped."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future[Any] | None = None

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(call, *args)

    def wait(self) -> None:
        """Waits for the last call; raises its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class _CountingReader:
    """Wraps a binary handle: counts and hashes (SHA-256) the stored bytes as they are read.

    The hash runs beside the splitting (hashlib lets go of the GIL for large blocks)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()
        self._hashing = InOrderThread("batch-sha256")
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.count += len(data)
        self._hashing.submit(self._digest.update, data)
        return data

    def hexdigest(self) -> str:
        self._hashing.wait()
        self._hashing.close()
        return self._digest.hexdigest()


def read_into_chunks(
    landing: LandingZone,
    batch: BatchFile,
    staging: Path,
    settings: Settings,
    loaded: LoadedBatch,
    stats: LoadStats,
) -> None:
    """Streams the file into Parquet chunks of lines in `staging`, filling `loaded`, `stats`."""
    gzipped = batch.name.lower().endswith(".gz")
    # Stored bytes read (compressed ones for gzip), of the file's size.
    read = progress.Stage("load", batch.size, unit="bytes")
    # Splitting a chunk into lines holds the GIL: a file of several chunks is split by worker
    # processes while this one reads on. At most one chunk per worker waits.
    workers = WORKER_PROCESSES if batch.size > CHUNK_BYTES else 0
    with landing.open_binary(batch.path) as handle, worker_pool(workers) as pool:
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
