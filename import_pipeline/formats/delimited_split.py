"""The splitter of delimited text (`delimited.py`): pieces of whole rows, cut only at a line end
outside quotes.

Whether a line end is inside a quoted field is the parity of the quotes before it, counted with
str.count (C speed, no loop over characters); a doubled quote inside a field counts twice and
changes nothing. The csv module, which reads the pieces, is the judge where the count misleads
(a stray quote in an unquoted field): it is asked only when a row seems longer than the limit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from import_pipeline.formats.base import Piece, too_long


def _first_row_end(text: str, quoted: bool, odd: bool) -> tuple[int, bool]:
    """The first line end of `text` outside quotes (-1 if none), given whether the text starts
    inside quotes; and whether its end is inside quotes. Steps a line or a quote at a time."""
    if not quoted:
        return text.find("\n"), False
    position = 0
    while True:
        if odd:  # inside quotes: nothing ends before the next quote
            quote = text.find('"', position)
            if quote < 0:
                return -1, True
            position, odd = quote + 1, False
            continue
        newline = text.find("\n", position)
        if newline < 0:
            return -1, text.count('"', position) % 2 == 1
        odd = text.count('"', position, newline) % 2 == 1
        if not odd:
            return newline, False
        position = newline + 1


def _last_row_end(text: str, quoted: bool, odd: bool) -> tuple[int, bool]:
    """The offset after the last line end of `text` outside quotes (-1 if none), given whether
    the text starts inside quotes; and whether its end is inside quotes."""
    if not quoted:
        end = text.rfind("\n")
        return (end + 1 if end >= 0 else -1), False
    odd_at_end = odd ^ (text.count('"') % 2 == 1)
    odd, position = odd_at_end, len(text)
    newline = text.rfind("\n")
    while newline >= 0:  # back a line at a time: usually the last line end is a row's end
        odd ^= text.count('"', newline, position) % 2 == 1
        if not odd:
            return newline + 1, odd_at_end
        position, newline = newline, text.rfind("\n", 0, newline)
    return -1, odd_at_end


def _csv_rows_end(text: str, dialect: dict[str, Any]) -> int:
    """Where the last row the csv module finds complete in `text` ends (0 if none): the judge
    when the quotes' parity says a row never ends (a stray quote in an unquoted field)."""
    stream = io.StringIO(text, newline="\n")
    rows = csv.reader(stream, **dialect)
    end = 0
    while True:
        try:
            next(rows)
        except StopIteration:
            return end
        except csv.Error:
            pass
        position = stream.tell()
        if position >= len(text):
            return end
        end = position


class RowSplitter:
    """Cuts a delimited text into pieces of whole rows, after its header row (which the
    reader's `header` reads). Holds the text since the last cut as a list of parts (no copying
    per feed); a row longer than `max_entry_chars` is reported and skipped as it comes, so what
    is held stays bounded. `dialect` is the csv module's (delimiter, quoting); `quoted` says
    whether quotes are quotes at all (Web of Science's tab-delimited rows are raw text)."""

    def __init__(
        self, dialect: dict[str, Any], quoted: bool, max_entry_chars: int, piece_chars: int
    ) -> None:
        self.dialect = dialect
        self.quoted = quoted
        self.max_entry_chars = max_entry_chars
        self.piece_chars = piece_chars
        self.parts: list[str] = []
        self.held = 0  # characters in `parts`
        self.row_end = 0  # the held text up to here is whole rows
        self.odd = False  # whether the end of the text so far is inside quotes
        self.next_line = 1  # the line the held text starts on
        self.skipping = True  # inside the header row, or a row too long to hold
        self.in_header = True
        self.started = False  # past the blank lines before the header

    def _skip(self, text: str) -> str:
        """The text after the end of the row being skipped ("" while it goes on)."""
        if not self.started:
            stripped = text.lstrip("\ufeff\r\n")  # a byte order mark the caller left
            self.next_line += text.count("\n", 0, len(text) - len(stripped))
            text, self.started = stripped, bool(stripped)
        end, odd = _first_row_end(text, self.quoted, self.odd)
        if end < 0:
            self.next_line += text.count("\n")
            self.odd = odd
            return ""
        self.next_line += text.count("\n", 0, end + 1)
        self.odd = self.skipping = self.in_header = False
        return text[end + 1 :]

    def _take(self) -> Piece:
        held = "".join(self.parts)
        piece = Piece(self.next_line, held[: self.row_end])
        rest = held[self.row_end :]
        self.parts, self.held, self.row_end = ([rest] if rest else []), len(rest), 0
        self.next_line += piece.text.count("\n")
        return piece

    def _overflow(self) -> Iterator[Piece]:
        """The row after the last row end is over the limit, by the quotes' count. The csv
        module may find rows there (the quotes were stray): cut after them. Else it fails."""
        held = "".join(self.parts)
        rows_end = _csv_rows_end(held[self.row_end :], self.dialect)
        if rows_end:
            self.row_end += rows_end
            yield self._take()
            self.odd = "".join(self.parts).count('"') % 2 == 1
            if self.held <= self.max_entry_chars:
                return
        if self.row_end:
            yield self._take()
        yield Piece(self.next_line, "", too_long(self.max_entry_chars))
        self.next_line += sum(part.count("\n") for part in self.parts)
        self.parts, self.held, self.skipping = [], 0, True

    def feed(self, text: str) -> Iterator[Piece]:
        if self.skipping:
            text = self._skip(text)
            if not text:
                return
        start = self.held
        self.parts.append(text)
        self.held += len(text)
        end, self.odd = _last_row_end(text, self.quoted, self.odd)
        if end >= 0:
            self.row_end = start + end
        if self.held >= self.piece_chars and self.row_end:
            yield self._take()
        if self.held - self.row_end > self.max_entry_chars:
            yield from self._overflow()

    def finish(self) -> Iterator[Piece]:
        if self.in_header and self.odd:
            problem = "the header row has a quoted field that is never closed: no row can be read"
            yield Piece(1, "", problem)
        elif not self.skipping and self.held:
            held = "".join(self.parts)
            if held.strip():
                yield Piece(self.next_line, held)
