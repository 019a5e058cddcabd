"""What every format reader is: a splitter of the file's text into pieces of whole entries, the
entries of a piece, and the work an entry describes (`Work`), from which `lines.py` builds the
one DESTINY batch line the rest of the import path reads.

A reader is stateless and picklable (worker processes convert pieces in parallel); the text it
gets is already decoded, its line ends ``\\n`` (a ``\\r`` before one is dropped by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Identifier types of the DESTINY line (contract section 3); `other` carries a name.
IdentifierValue = tuple[str, str, str | None]  # (identifier_type, identifier, other name)


@dataclass(frozen=True)
class Entry:
    """One entry of an export as the file holds it."""

    line_number: int  # the physical line it starts on, from 1
    text: str  # exactly as the file holds it (without the final line end)
    #: Its fields in file order, names as the file spells them; a repeated name repeats.
    fields: tuple[tuple[str, str], ...] = ()
    #: Why it cannot be read (a RIS record cut off before ER, unbalanced braces…): the entry
    #: fails alone with `InvalidInput` and this message.
    problem: str | None = None
    #: The entry as structured data when the format is structured (an EPPI reference's JSON
    #: object): the raw enhancement keeps it as it is instead of `fields` as text.
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass
class Work:
    """What one entry says, in the terms of a DESTINY line. Empty values are left out."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)  # display names, in order
    year: int | None = None
    venue: str | None = None
    venue_type: str | None = None  # a `PublicationVenueType` value when the entry says
    volume: str | None = None
    issue: str | None = None
    first_page: str | None = None
    last_page: str | None = None
    publisher: str | None = None
    issns: list[str] = field(default_factory=list)
    abstract: str | None = None
    #: Every identifier the entry carries (see `identify.py`), in the order found; not yet
    #: checked (the line model is the judge), duplicates allowed.
    identifiers: list[IdentifierValue] = field(default_factory=list)
    #: The database the entry names itself (`DB`, `DP`…), if it does.
    database: str | None = None


@dataclass(frozen=True)
class Header:
    """What the start of a file says for all its entries."""

    database: str | None = None  # the database the file names (a header line)
    columns: tuple[str, ...] = ()  # a delimited file's header row
    delimiter: str = ","


@dataclass(frozen=True)
class Piece:
    """Whole entries of the file, or one entry too long to hold (`problem` set, `text` empty)."""

    first_line: int
    text: str
    problem: str | None = None
    #: The piece ends where the file ends (not before the next entry's start).
    final: bool = False


class Splitter(Protocol):
    """Cuts a stream of text into pieces of whole entries, holding at most about one piece
    plus `max_entry_chars` of text."""

    def feed(self, text: str) -> Iterator[Piece]: ...

    def finish(self) -> Iterator[Piece]: ...


class Reader(Protocol):
    """One export format. Adding a format is one module with one of these, registered in
    `formats/__init__.py`, and its tests."""

    name: str  # as `record.json`'s "format" and `convert --format` name it

    def header(self, head: str) -> Header:
        """What the file's first piece of text says for all entries."""
        ...

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> Splitter: ...

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        """The entries of a piece, each with its first line and problem."""
        ...

    def work(self, entry: Entry, header: Header) -> Work: ...


class StartSplitter:
    """The splitter of formats whose entries begin at a line `start` matches (RIS's ``TY  -``,
    BibTeX's ``@``, EndNote's ``%0``): a piece ends before the last start in the text held.

    Text before the first start (a file header) goes into the first piece; an entry longer
    than `max_entry_chars` is dropped as it comes and stands as a `Piece` with a problem, so
    what is held stays bounded whatever the input."""

    #: While dropping, the most of an unfinished line held: enough for `start` to match once
    #: the rest of the line comes, never the line itself (it may be the whole file).
    _TAIL_CHARS = 64

    def __init__(self, start: re.Pattern[str], max_entry_chars: int, piece_chars: int) -> None:
        self.start = start
        self.max_entry_chars = max_entry_chars
        self.piece_chars = piece_chars
        self.buffer = ""
        self.next_line = 1  # the line the buffer starts on
        self.dropping = False  # inside an entry known to be too long
        self.at_line_start = True  # while dropping: the buffer begins at a line's start

    def _starts_after(self, text: str, offset: int) -> int:
        """The offset of the first start at or after `offset` in `text` (at a line start), or -1."""
        match = self.start.search(text, offset)
        while match is not None and match.start() > 0 and text[match.start() - 1] != "\n":
            match = self.start.search(text, match.start() + 1)
        return -1 if match is None else match.start()

    def _last_start(self, text: str) -> int:
        last = -1
        for match in self.start.finditer(text):
            if match.start() == 0 or text[match.start() - 1] == "\n":
                last = match.start()
        return last

    def _take(self, cut: int) -> Piece:
        piece = Piece(self.next_line, self.buffer[:cut])
        self.next_line += piece.text.count("\n")
        self.buffer = self.buffer[cut:]
        return piece

    def _drop(self, text: str, at_line_start: bool) -> None:
        """Drops `text`, inside a too-long entry and holding no start after its first
        character, keeping at most the start of its unfinished last line."""
        self.next_line += text.count("\n")
        cut = text.rfind("\n")
        tail = text[cut + 1 :]
        if cut >= 0:
            at_line_start = True
        if at_line_start and self.start.match(tail):
            self.buffer, self.dropping = tail, False  # the next entry starts on this line
        elif at_line_start and len(tail) < self._TAIL_CHARS:
            self.buffer, self.at_line_start = tail, True  # may yet start one
        else:
            self.buffer, self.at_line_start = "", False

    def feed(self, text: str) -> Iterator[Piece]:
        self.buffer += text
        if self.dropping:
            resume = self._starts_after(self.buffer, 0 if self.at_line_start else 1)
            if resume < 0:
                self._drop(self.buffer, self.at_line_start)
                return
            self.next_line += self.buffer.count("\n", 0, resume)
            self.buffer = self.buffer[resume:]
            self.dropping = False
        if len(self.buffer) < self.piece_chars:
            return
        cut = self._last_start(self.buffer)
        if cut > 0:
            yield self._take(cut)
        if len(self.buffer) > self.max_entry_chars and self._starts_after(self.buffer, 1) < 0:
            yield Piece(self.next_line, "", too_long(self.max_entry_chars))
            self.dropping = True
            self._drop(self.buffer, at_line_start=False)  # its first line is the long entry's

    def finish(self) -> Iterator[Piece]:
        if self.buffer.strip() and not self.dropping:
            yield Piece(self.next_line, self.buffer, final=True)


def too_long(max_entry_chars: int) -> str:
    return (
        f"the entry is longer than the maximum entry size ({max_entry_chars} characters): "
        "the rest of it was skipped up to the next entry"
    )
