"""Tagged text whose entries are blocks of tag lines: PubMed/MEDLINE (``PMID- …``) and EndNote
(``%0 …``). An entry begins at a tag line after a blank line, or, where a writer left the blank
line out, at a record line (``PMID-``, ``%0``) when the entry it would join has one already (an
EndNote entry may put ``%T`` before its ``%0``, so a record line alone does not start one). A
line that is not a tag line continues the field before it; lines before a file's first tag
line are an entry of their own that fails.

`BlockSplitter` cuts a stream at those starts in bounded memory and `block_entries` cuts a
piece with the same function (`entry_starts`), so that where a piece ends never changes an
entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from import_pipeline.formats.base import Entry, Header, Piece, too_long

#: What a blank line may hold (a "\r" of a CRLF the caller left).
_BLANK = " \t\r"
#: Of a line still being read, the characters kept: enough to tell a tag line.
_KEPT_OF_PARTIAL_LINE = 16


@dataclass(frozen=True)
class TaggedSyntax:
    """How a tagged format writes its lines."""

    name: str  # as a problem names the format: "MEDLINE"
    tag: str  # regex of a tag as a field names it: "[A-Z][A-Z0-9]{1,4}", "%[^ \t\n]"
    separator: str  # regex of what follows the tag, before a space or the line end: " {0,3}-"
    record_tag: str  # a record line's start: "PMID- ", "%0 "
    joiner: str  # between a field's lines: " " where lines wrap, "\n" where they break
    # Compiled from the above: a field's tag line, a tag line after a blank line, a record line.
    field_start: re.Pattern[str] = field(init=False, repr=False)
    block_start: re.Pattern[str] = field(init=False, repr=False)
    record_start: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        compiled = {
            # Each starts with a line end: a regex with a literal start is searched for fast.
            "field_start": rf"\n({self.tag}){self.separator}(?:[ \r]|(?=\n)|$)",
            "block_start": rf"\n[ \t\r]*\n(?={self.tag}{self.separator}(?:[ \r\n]|$))",
            "record_start": rf"\n{re.escape(self.record_tag)}",
        }
        for name, pattern in compiled.items():
            object.__setattr__(self, name, re.compile(pattern))


def entry_starts(
    syntax: TaggedSyntax, text: str, first: int, told: int, has_record: bool
) -> tuple[list[int], bool]:
    """Where entries start in `text` between `first` (a line start after a line end) and
    `told`: every tag line after a blank line, and every record line but the first after one
    (`has_record`: the entry open at `first` has its record line). Also whether the last
    entry has its record line."""
    blocks = [
        match.end() for match in syntax.block_start.finditer(text) if first <= match.end() <= told
    ]
    records = [
        match.start() + 1
        for match in syntax.record_start.finditer(text, first - 1)
        if match.start() < told
    ]
    found = []
    block = 0
    for record in records:
        while block < len(blocks) and blocks[block] <= record:
            found.append(blocks[block])
            has_record = False
            block += 1
        if has_record:
            found.append(record)
        has_record = True
    if block < len(blocks):
        found.extend(blocks[block:])
        has_record = False
    return found, has_record


def _shortened(line: str) -> str:
    """A line being read, cut to what tells whether it is a tag line or blank."""
    if len(line) <= _KEPT_OF_PARTIAL_LINE:
        return line
    rest_blank = not line[_KEPT_OF_PARTIAL_LINE:].strip(_BLANK)
    return line[:_KEPT_OF_PARTIAL_LINE] + ("" if rest_blank else "x")


class BlockSplitter:
    """Cuts a stream of tagged text into pieces of whole entries.

    Each text fed is scanned once, with only the line it leaves unfinished carried (shortened)
    into the next scan; the text held is joined only when a piece is cut. An entry longer
    than `max_entry_chars` stands as a `Piece` with a problem and its text is dropped as it
    comes, so what is held stays bounded whatever the input."""

    def __init__(self, syntax: TaggedSyntax, max_entry_chars: int, piece_chars: int) -> None:
        self.syntax = syntax
        self.max_entry_chars = max_entry_chars
        self.piece_chars = piece_chars
        # The text held: from `origin`, where an entry (or the file) starts.
        self.parts: list[str] = []
        self.held = 0
        self.origin = 0
        self.origin_line = 1
        self.starts: list[tuple[int, int]] = []  # entry starts after origin: (offset, line)
        self.dropping = False  # inside an entry known to be too long
        self.lost = False  # while dropping: the line at `origin` was too long to hold
        # The scan: where the next text starts, and what the lines before it said.
        self.offset = 0
        self.line = 1
        self.before = "\n"  # "\n\n" when the last whole line was blank
        self.partial = ""  # the line not yet ended (shortened)
        self.partial_offset = 0
        self.partial_told = False  # its start was told (it is long enough)
        self.has_record = False  # the entry being scanned has its record line

    def _scan(self, text: str) -> list[tuple[int, int]]:
        """The entry starts on the lines of `text` told so far, as (offset, line): a line is
        told once it ends or holds enough characters to tell a tag line."""
        head = self.before + self.partial
        window = head + text
        last_newline = window.rfind("\n", len(head))
        told = max(last_newline, len(window) - _KEPT_OF_PARTIAL_LINE)
        first = len(self.before) + (1 if self.partial_told else 0)
        numbered = []
        position, line = len(head), self.line
        found, self.has_record = entry_starts(self.syntax, window, first, told, self.has_record)
        for start in found:
            if start < len(head):  # the line carried from the text before
                numbered.append((self.partial_offset, self.line))
                continue
            line += window.count("\n", position, start)
            position = start
            numbered.append((self.offset + start - len(head), line))
        if last_newline < 0:  # the line carried goes on
            self.partial_told = self.partial_told or told >= len(self.before)
            self.partial = _shortened(self.partial + text)
        else:
            previous = window.rfind("\n", 0, last_newline)
            self.before = "\n" if window[previous + 1 : last_newline].strip(_BLANK) else "\n\n"
            self.partial = _shortened(window[last_newline + 1 :])
            self.partial_offset = self.offset + last_newline + 1 - len(head)
            self.partial_told = told > last_newline
        self.line += text.count("\n")
        self.offset += len(text)
        return numbered

    def _pieces(self, text: str, starts: list[tuple[int, int]]) -> Iterator[Piece]:
        """`text` (from `starts[0]`) as pieces of whole entries; an entry longer than the
        maximum as a piece of its own with the problem."""
        origin = starts[0][0]
        ends = [offset - origin for offset, _ in starts[1:]] + [len(text)]
        group_start: int | None = None
        group_line = 0
        for (offset, line), end in zip(starts, ends, strict=True):
            begin = offset - origin
            if end - begin <= self.max_entry_chars:
                if group_start is None:
                    group_start, group_line = begin, line
                continue
            if group_start is not None:
                yield Piece(group_line, text[group_start:begin])
                group_start = None
            yield Piece(line, "", too_long(self.max_entry_chars))
        if group_start is not None and text[group_start:].strip():
            yield Piece(group_line, text[group_start:])

    def _cut(self) -> Iterator[Piece]:
        """The text held up to the last start found, as pieces."""
        text = "".join(self.parts)
        cut, cut_line = self.starts[-1]
        yield from self._pieces(
            text[: cut - self.origin], [(self.origin, self.origin_line), *self.starts[:-1]]
        )
        self.parts = [text[cut - self.origin :]]
        self.held = len(self.parts[0])
        self.origin, self.origin_line = cut, cut_line
        self.starts = []

    def _drop(self) -> None:
        """Drops the text held (one entry too long), all but a line being read that may
        start the next entry."""
        text = "" if self.partial_told else "".join(self.parts)[self.partial_offset - self.origin :]
        self.lost = self.partial_told or len(text) > self.max_entry_chars
        self.parts = [] if self.lost else [text]
        self.held = 0 if self.lost else len(text)
        self.origin, self.origin_line = self.partial_offset, self.line
        self.dropping = True

    def _resume(
        self, text: str, text_offset: int, starts: list[tuple[int, int]]
    ) -> Iterator[Piece]:
        """While dropping: the text held from the first start found, or what it must keep."""
        for index, (offset, line) in enumerate(starts):
            if offset == self.origin and self.lost:
                # The entry starting on the lost line is longer than the maximum too.
                yield Piece(line, "", too_long(self.max_entry_chars))
                continue
            self.parts = (
                [text[offset - text_offset :]] if offset >= text_offset else [*self.parts, text]
            )
            self.held = sum(len(part) for part in self.parts)
            self.origin, self.origin_line = offset, line
            self.starts = starts[index + 1 :]
            self.dropping = self.lost = False
            return
        if self.partial_offset >= text_offset:  # a new line began in this text
            self.parts = [text[self.partial_offset - text_offset :]]
            self.held = len(self.parts[0])
            self.lost = False
        elif not self.lost:  # the line held goes on
            self.parts.append(text)
            self.held += len(text)
        if self.partial_told or self.held > self.max_entry_chars:
            self.parts, self.held, self.lost = [], 0, True
        self.origin, self.origin_line = self.partial_offset, self.line

    def feed(self, text: str) -> Iterator[Piece]:
        text_offset = self.offset
        starts = self._scan(text)
        if self.dropping:
            yield from self._resume(text, text_offset, starts)
            if self.dropping:
                return
        else:
            self.parts.append(text)
            self.held += len(text)
            self.starts.extend(starts)
        if self.held < self.piece_chars:
            return
        if self.starts:
            yield from self._cut()
        undecided = 0 if self.partial_told else len(self.partial)  # may start an entry
        if self.offset - undecided - self.origin > self.max_entry_chars:
            yield Piece(self.origin_line, "", too_long(self.max_entry_chars))
            self._drop()

    def finish(self) -> Iterator[Piece]:
        text_offset = self.offset
        # The last line may end without a line end: scanned as if it had one.
        starts = self._scan("\n")
        if self.dropping:
            yield from self._resume("", text_offset, starts)
            if self.dropping:
                return
        else:
            self.starts.extend(starts)
        yield from self._pieces(
            "".join(self.parts), [(self.origin, self.origin_line), *self.starts]
        )
        self.parts, self.starts = [], []


def block_entries(syntax: TaggedSyntax, piece: Piece) -> Iterator[Entry]:
    """The entries of a piece of tagged text, cut where the splitter cuts, each with its
    fields in file order."""
    text = piece.text
    if piece.first_line == 1 and text.startswith("\ufeff"):
        text = text[1:]
    # After a line end, as the patterns want every line.
    text = "\n" + text
    starts, _ = entry_starts(syntax, text, 1, len(text), False)
    line, previous = piece.first_line, 1
    for end in [*starts, len(text)]:
        chunk = text[previous - 1 : end - 1]  # from the line end before it
        yield from _chunk_entries(syntax, chunk, line)
        line += chunk.count("\n")
        previous = end


def _chunk_entries(syntax: TaggedSyntax, chunk: str, line: int) -> Iterator[Entry]:
    """The entry of a piece's text between two starts (`chunk`, from the line end before it);
    lines before its first tag line (at a file's start) an entry of their own that fails."""
    parts = syntax.field_start.split(chunk)
    before = parts[0]  # "" or the line end before the text before its first tag line
    if before.strip(_BLANK + "\n"):
        skipped = len(before) - len(before.lstrip(_BLANK + "\n"))
        junk = before.strip(_BLANK + "\n")
        problem = (
            f"the entry does not start with a {syntax.name} tag line "
            f"(its first line: {junk.partition(chr(10))[0][:60]!r})"
        )
        yield Entry(line + before.count("\n", 0, skipped) - 1, junk, (), problem)
    if len(parts) == 1:
        return
    tags = parts[1::2]
    text = chunk[len(before) + 1 :].rstrip(_BLANK + "\n")
    values = [raw.strip() for raw in parts[2::2]]
    if text.count("\n") + 1 != len(tags):  # a value of more than one line
        values = [_joined(syntax, value) if "\n" in value else value for value in values]
    yield Entry(line + before.count("\n"), text, tuple(zip(tags, values, strict=True)))


def _joined(syntax: TaggedSyntax, value: str) -> str:
    """A value of several lines as the format means it."""
    lines = [line.strip() for line in value.split("\n")]
    if syntax.joiner == " ":  # lines wrap: one line of words, blank lines dropped
        return " ".join(filter(None, lines))
    return syntax.joiner.join(lines)  # lines break: kept, blank ones too


class BlockReader:
    """What a reader of blocks of tag lines is but its `work`: its files name nothing once for
    all their entries, and `syntax` cuts and reads them."""

    name: str
    syntax: TaggedSyntax

    def header(self, head: str) -> Header:
        return Header()

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> BlockSplitter:
        return BlockSplitter(self.syntax, max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        return block_entries(self.syntax, piece)
