"""Load of an export (contract section 10): a RIS, MEDLINE, BibTeX, EndNote, CSV or EPPI JSON
file → the same staged chunks of lines (`frames.LOADED_LINES`) a JSONL batch becomes, one row
per entry at the line it starts on, its `text` the DESTINY line the entry becomes. Everything
after loading is the JSONL path unchanged.

The file is read as a JSONL file is (gzip bounded, checksummed while read), decoded (a BOM
says UTF-8 or UTF-16, else `record.json`'s "encoding", else UTF-8), cut by the format's
splitter into pieces of whole entries in this process (C-speed searches), and each piece is
converted by a worker process while the next is read.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from import_pipeline.domain.formats import FORMATS, format_of_name, sniff
from import_pipeline.errors import BatchUnreadable
from import_pipeline.formats.base import Header, Piece
from import_pipeline.formats.convert import ConvertedEntry, convert_piece, numbered, pieces
from import_pipeline.formats.lines import FileContext
from import_pipeline.landing import BatchFile, LandingZone
from import_pipeline.pipeline import progress
from import_pipeline.pipeline.frames import ENTRY_PROBLEM, ENTRY_TOO_LONG, LOADED_LINES
from import_pipeline.pipeline.load import LoadedBatch, LoadStats, _blocks, _CountingReader
from import_pipeline.pipeline.workers import WORKER_PROCESSES, worker_pool
from import_pipeline.settings import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_MAX_DECOMPRESSION_RATIO,
    Settings,
)

#: Text of a piece one worker converts, about.
PIECE_CHARS = 8 * 1024 * 1024
#: How much of the start of a `.txt` file its format is told from.
_SNIFF_CHARS = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: A byte the encoding refuses stands as a lone surrogate (`_undecodable_bytes`): the entry
#: holding it fails alone. Unlike `surrogateescape` (bytes 0x80 and up only), this takes any
#: byte, so an odd last byte of UTF-16 is one bad entry, not a failed step.
_UNDECODED = re.compile("[\udc00-\udcff]")
_UNDECODABLE = "import_pipeline.undecodable"


def _undecodable_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    refused = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in refused), error.end


codecs.register_error(_UNDECODABLE, _undecodable_bytes)


@dataclass(frozen=True)
class ExportReading:
    """How a batch that is an export is read: its format (None: told from the content),
    the encoding `record.json` names, and what its lines' enhancements say of their source."""

    format: str | None
    encoding: str | None
    source_name: str
    export_date: str


def encoding_of(head: bytes, declared: str | None) -> tuple[str, int]:
    """The encoding of a file from its first bytes, and how many bytes of BOM to skip."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom) if name == "utf-8" else 0  # the utf-16 codec reads its BOM
    if declared:
        return declared, 0
    # UTF-16 without a BOM: every other byte of plain text is NUL (UTF-8 text holds none).
    sample = head[:4096]
    if len(sample) >= 8 and sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le", 0
    if len(sample) >= 8 and sample[0::2].count(0) > len(sample) // 4:
        return "utf-16-be", 0
    return "utf-8", 0


def decoded(blocks: Iterable[bytes], declared: str | None, lines: list[int]) -> Iterator[str]:
    """The text of a stream of blocks, line ends ``\\n`` (a ``\\r`` before one dropped).
    Bytes the encoding refuses stand as lone surrogates: the entries holding them fail alone.
    Adds the text's line ends to `lines[0]`."""
    decoder = None
    held = ""  # a "\r" that may be half of a "\r\n" split between blocks
    for block in blocks:
        if decoder is None:
            name, skip = encoding_of(block, declared)
            decoder = codecs.getincrementaldecoder(name)(errors=_UNDECODABLE)
            block = block[skip:]
        text = held + decoder.decode(block)
        held = "\r" if text.endswith("\r") else ""
        text = text[: len(text) - len(held)].replace("\r\n", "\n")
        lines[0] += text.count("\n")
        yield text
    if decoder is not None:
        text = held + decoder.decode(b"", final=True)
        lines[0] += text.count("\n")
        yield text


def format_of(reading: ExportReading, texts: Iterator[str]) -> tuple[str, Iterator[str]]:
    """The batch's format (told from its first text for a `.txt`), and the texts to read."""
    if reading.format is not None:
        return reading.format, texts
    head = ""
    for text in texts:
        head += text
        if len(head) >= _SNIFF_CHARS:
            break
    told = sniff(head[:_SNIFF_CHARS])
    if told is None:
        raise BatchUnreadable(
            "the format of this .txt batch cannot be told from its content: it starts as none "
            "of RIS (TY  - ), MEDLINE (PMID- ), EndNote tagged (%0 ) or Web of Science tagged "
            '(FN ) text; name the format in record.json ("format")'
        )
    return told, _chained(head, texts)


def _chained(head: str, texts: Iterator[str]) -> Iterator[str]:
    yield head
    yield from texts


def _frame(entries: list[ConvertedEntry]) -> pl.DataFrame:
    problems: list[str | None] = []
    for entry in entries:
        if entry.problem is None:
            problems.append(None)
        elif entry.problem.startswith("the entry is longer than"):
            problems.append(ENTRY_TOO_LONG + entry.problem)
        else:
            problems.append(ENTRY_PROBLEM + entry.problem)
    return pl.DataFrame(
        {
            "line_number": [entry.line_number for entry in entries],
            "text": [entry.line for entry in entries],
            "problem": problems,
        },
        schema=LOADED_LINES,
    )


def _undecodable(entries: list[ConvertedEntry], piece_text: str) -> list[ConvertedEntry]:
    """Entries holding bytes the encoding refused fail alone, naming it."""
    if not _UNDECODED.search(piece_text):
        return entries
    return [
        ConvertedEntry(
            e.line_number,
            None,
            "the entry holds bytes that are not valid in the file's encoding (UTF-8 unless a "
            'byte order mark or record.json\'s "encoding" says otherwise)',
            e.text,
        )
        if _UNDECODED.search(e.text)
        else e
        for e in entries
    ]


@dataclass(frozen=True)
class _WrittenPiece:
    path: str | None
    text_bytes: int
    entries: int
    first_line: int = 0
    last_line: int = 0


def _convert_and_write(
    format_name: str,
    header: Header,
    piece: Piece,
    context: FileContext,
    path: str,
    max_entry_chars: int,
) -> _WrittenPiece:
    """A worker's part: one piece's entries converted and written as a chunk of lines."""
    entries = convert_piece(format_name, piece, header, context, max_entry_chars)
    entries = _undecodable(entries, piece.text)
    if not entries:
        return _WrittenPiece(None, 0, 0)
    frame = _frame(entries)
    frame.write_parquet(path)
    text_bytes = int(frame["text"].str.len_bytes().sum() or 0)
    return _WrittenPiece(
        path, text_bytes, frame.height, entries[0].line_number, entries[-1].line_number
    )


def _number_across_pieces(written: list[_WrittenPiece]) -> int:
    """Shifts the line numbers of a piece whose first entry starts on the line the piece
    before ends on (a one-line report cut into pieces), so that every entry keeps a number of
    its own (`convert.numbered` does it within a piece); returns the last number."""
    last = 0
    for piece in written:
        if piece.path is None:
            continue
        shift = max(0, last + 1 - piece.first_line)
        if shift:
            frame = pl.read_parquet(piece.path)
            frame.with_columns(pl.col("line_number") + shift).write_parquet(piece.path)
        last = piece.last_line + shift
    return last


def read_export_into_chunks(
    landing: LandingZone,
    batch: BatchFile,
    staging: Path,
    settings: Settings,
    loaded: LoadedBatch,
    stats: LoadStats,
    reading: ExportReading,
) -> None:
    """Streams an export into Parquet chunks of lines in `staging`, filling `loaded`, `stats`
    (`blank_lines`: the lines on which no entry starts)."""
    read = progress.Stage("load", batch.size, unit="bytes")
    gzipped = batch.name.lower().endswith(".gz")
    # Workers when there is more than a piece to convert (a gzip holds ~20x its size).
    workers = WORKER_PROCESSES if batch.size * (20 if gzipped else 1) > PIECE_CHARS else 0
    newlines = [0]
    last_text = [""]
    with (
        _undecodable_is_unreadable(),
        landing.open_binary(batch.path) as handle,
        worker_pool(workers) as pool,
    ):
        counting = _CountingReader(handle)
        blocks = _blocks(
            counting,
            gzipped=gzipped,
            stored_size=batch.size,
            max_decompressed=settings.max_decompressed_bytes,
            max_ratio=settings.max_decompression_ratio,
        )
        format_name, texts = format_of(
            reading, _remembering_last(decoded(blocks, reading.encoding, newlines), last_text)
        )
        context = FileContext(format_name, reading.source_name, reading.export_date)
        pending: deque[Future[_WrittenPiece]] = deque()
        written: list[_WrittenPiece] = []
        split = pieces(
            format_name, texts, max_entry_chars=settings.max_entry_bytes, piece_chars=PIECE_CHARS
        )
        for index, (header, piece) in enumerate(split):
            path = str(staging / f"chunk-{index:05d}.parquet")
            convert = (format_name, header, piece, context, path, settings.max_entry_bytes)
            pending.append(pool.submit(_convert_and_write, *convert))
            while len(pending) > max(workers, 1) or (pending and pending[0].done()):
                written.append(_add_piece(loaded, pending.popleft().result()))
                read.advance(counting.count - read.done)
        while pending:
            written.append(_add_piece(loaded, pending.popleft().result()))
        read.advance(counting.count - read.done)
    stats.bytes_read = counting.count
    stats.checksum = counting.hexdigest()
    stats.format = format_name
    physical = newlines[0] + (1 if last_text[0] and not last_text[0].endswith("\n") else 0)
    _count_lines(stats, physical, written)


def _count_lines(stats: LoadStats, physical: int, written: list[_WrittenPiece]) -> None:
    """The file's lines, and those on which no entry starts (`blank_lines`); a file of lines
    but no entry is refused, saying so."""
    # Entries numbered past the file's lines (several on one line) count as lines of it.
    stats.physical_lines = max(physical, _number_across_pieces(written))
    entries = sum(piece.entries for piece in written)
    stats.blank_lines = stats.physical_lines - entries
    if physical and not entries:
        raise BatchUnreadable(f"the file holds no {FORMATS[stats.format].title} entry")


@contextmanager
def _undecodable_is_unreadable() -> Iterator[None]:
    """What the decoding's error handler does not take fails the batch, with the reason."""
    try:
        yield
    except UnicodeError as exc:
        raise BatchUnreadable(f"the file cannot be decoded as text: {exc}") from exc


def _remembering_last(texts: Iterator[str], last: list[str]) -> Iterator[str]:
    """The texts, the last non-empty one kept in `last[0]` (does the file end with a line end?)."""
    for text in texts:
        if text:
            last[0] = text
        yield text


def _add_piece(loaded: LoadedBatch, written: _WrittenPiece) -> _WrittenPiece:
    if written.path is not None:
        loaded.chunk_paths.append(written.path)
        loaded.chunk_text_bytes.append(written.text_bytes)
        loaded.chunk_lines.append(written.entries)
    return written


def convert_file(
    path: Path, format_name: str | None, encoding: str | None, source_name: str
) -> Iterator[ConvertedEntry]:
    """The entries of an export file on disk as batch lines, in order, read as an import
    reads them (`convert` command). Raises `BatchUnreadable` when its format cannot be told."""
    told = format_name or format_of_name(path.name)
    if told == "jsonl":
        raise BatchUnreadable(f"{path.name} is DESTINY JSONL already: it imports as it is")
    reading = ExportReading(told, encoding, source_name, _file_date(path))
    with path.open("rb") as handle:
        blocks = _blocks(
            handle,
            gzipped=path.name.lower().endswith(".gz"),
            stored_size=path.stat().st_size,
            max_decompressed=DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_ratio=DEFAULT_MAX_DECOMPRESSION_RATIO,
        )
        found, texts = format_of(reading, decoded(blocks, encoding, [0]))
        context = FileContext(found, source_name, reading.export_date)
        last = 0
        for header, piece in pieces(found, texts, piece_chars=PIECE_CHARS):
            entries = numbered(
                _undecodable(convert_piece(found, piece, header, context), piece.text), last
            )
            if entries:
                last = entries[-1].line_number
            yield from entries


def _file_date(path: Path) -> str:
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return modified.replace(microsecond=0).isoformat()
