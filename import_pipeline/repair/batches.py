"""A batch file's entries read out by their line numbers, and a new version of it written with
some entries replaced and every other byte as it was.

The entries are where the results say (`entries.py`; an EPPI report's by `eppi.py`); the
bytes are decoded and encoded by `text.py`, so what comes out goes back unchanged.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from typing import IO, cast

from import_pipeline.domain.formats import format_of_name, sniff
from import_pipeline.repair import eppi
from import_pipeline.repair.entries import Span, entries, walk
from import_pipeline.repair.text import HEAD_BYTES, Encoding, encoding_of, lines, opened

JSONL = "jsonl"


@dataclass(frozen=True)
class BatchForm:
    """What a batch file is: its format (as the import read it) and the encoding
    `record.json` names (exports only)."""

    name: str
    format: str
    declared_encoding: str | None = None

    @property
    def one_line_entries(self) -> bool:
        return self.format == JSONL

    def encoding(self, head: bytes) -> Encoding:
        if self.format == JSONL:  # UTF-8, a BOM part of the first line as the import reads it
            return Encoding(b"", "utf-8")
        return encoding_of(head, self.declared_encoding)


class _Prepended(io.RawIOBase):
    """`head` then the rest of `handle`: a file's start read once to tell its encoding."""

    def __init__(self, head: bytes, handle: IO[bytes]) -> None:
        self.head, self.handle = head, handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _decoded(handle: IO[bytes], form: BatchForm) -> Iterator[tuple[Encoding, IO[bytes]]]:
    with opened(handle, form.name) as raw:
        head = raw.read(HEAD_BYTES)
        yield form.encoding(head), io.BufferedReader(_Prepended(head, raw))


def texts(handle: IO[bytes], form: BatchForm, spans: list[Span]) -> Iterator[tuple[int, str]]:
    """(line number, text) of the entries starting at `spans`' starts, in order."""
    with _decoded(handle, form) as (encoding, raw):
        if form.format == eppi.FORMAT:
            located = eppi.locate(_document(raw, encoding))
            for span in spans:
                if (found := located.get(span.start)) is not None:
                    yield span.start, found.text
            return
        with closing(lines(raw, encoding)) as read:
            for entry in entries(read, spans):
                yield entry.span.start, entry.text


def _document(raw: IO[bytes], encoding: Encoding) -> str:
    return encoding.decode(raw.read()[len(encoding.bom) :])


class EntryNotReplaceable(ValueError):
    """An entry that cannot be written back where it was."""


def write_patched(
    handle: IO[bytes], form: BatchForm, replacements: dict[Span, str], out: IO[bytes]
) -> None:
    """Writes the batch into `out` with the text of each span of `replacements` replaced
    (gzipped again when the batch is). Raises `EntryNotReplaceable`."""
    with ExitStack() as stack:
        if form.name.lower().endswith(".gz"):
            zipped = stack.enter_context(gzip.GzipFile(fileobj=out, mode="wb", mtime=0))
            out = cast(IO[bytes], zipped)
        encoding, raw = stack.enter_context(_decoded(handle, form))
        out.write(encoding.bom)
        if form.format == eppi.FORMAT:
            _write_document(_document(raw, encoding), encoding, replacements, out)
            return
        spans = sorted(replacements, key=lambda span: span.start)
        written = 0
        for line, entry in walk(lines(raw, encoding), spans):
            if entry is None:
                out.write(encoding.encode(cast(str, line)))
                continue
            new_text = replacements[entry.span]
            out.write(encoding.encode(new_text + entry.end + entry.tail))
            written += 1
        if written != len(spans):
            raise EntryNotReplaceable("the batch ends before a line to replace")


def _write_document(
    document: str, encoding: Encoding, replacements: dict[Span, str], out: IO[bytes]
) -> None:
    located = eppi.locate(document)
    cursor = 0
    for span in sorted(replacements, key=lambda span: span.start):
        found = located.get(span.start)
        if found is None or found.start < 0:
            raise EntryNotReplaceable(
                f"reference {span.start} cannot be found in the report's text as it was read"
            )
        out.write(encoding.encode(document[cursor : found.start] + replacements[span]))
        cursor = found.end
    out.write(encoding.encode(document[cursor:]))


def form_of(
    name: str, record_format: str | None, declared_encoding: str | None, head: bytes
) -> BatchForm:
    """The batch's form as the import tells it: `record.json`'s format, else the name's, else
    (a `.txt`) the content's."""
    told = record_format or format_of_name(name)
    if told is None:
        encoding = BatchForm(name, "txt", declared_encoding).encoding(head)
        told = sniff(encoding.decode(head[len(encoding.bom) :])) or "txt"
    return BatchForm(name, told, declared_encoding)


@contextmanager
def head_of(handle: IO[bytes], name: str) -> Iterator[bytes]:
    with opened(handle, name) as raw:
        yield raw.read(HEAD_BYTES)
