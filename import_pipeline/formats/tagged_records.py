"""What the tagged formats of records with a first and a last line (RIS, Web of Science) share:
the records of a piece as entries (`tagged_entries`), a splitter that finds record starts fast
(`RecordSplitter`), and the reading of values every such format writes alike (years, pages,
ISSNs)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, IdentifierValue, Piece, StartSplitter

Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class TaggedSyntax:
    """How a tagged format marks its records, read by `tagged_entries` and `RecordSplitter`.

    Patterns are found after the line end before them (``\\n`` then the tag): a pattern that
    starts with a literal character is scanned for at the speed of a string search, one that
    starts with ``^`` in multi-line mode is tried at every position, ten times slower."""

    name: str  # as messages name the format
    start_tag: str
    end_tag: str
    start: str  # a record's first line: the pattern at the line's start
    start_literal: str  # the line end and the start as most files write it ("\nTY  -")
    end: str  # its last line; group 1 what that line holds beside the tag
    read_fields: Callable[[str], Fields]  # a record's text without its end line → its fields
    furniture: re.Pattern[str]  # a stripped line outside records that says nothing
    after_end: Callable[[str], tuple[str, str] | None]  # a line after the end still its record's

    @cached_property
    def start_at(self) -> re.Pattern[str]:
        return re.compile(self.start)

    @cached_property
    def line_start(self) -> re.Pattern[str]:
        return re.compile(r"\n" + self.start)

    @cached_property
    def line_end(self) -> re.Pattern[str]:
        return re.compile(r"\n" + self.end)


class RecordSplitter(StartSplitter):
    """`StartSplitter` finding record starts after their line end (see `TaggedSyntax`), the
    last one of the text held by searching back from its end."""

    def __init__(self, syntax: TaggedSyntax, max_entry_chars: int, piece_chars: int) -> None:
        super().__init__(syntax.start_at, max_entry_chars, piece_chars)
        self.syntax = syntax

    def _starts_after(self, text: str, offset: int) -> int:
        if offset == 0 and self.syntax.start_at.match(text):
            return 0
        found = self.syntax.line_start.search(text, max(offset - 1, 0))
        return -1 if found is None else found.start() + 1

    def _last_start(self, text: str) -> int:
        literal = text.rfind(self.syntax.start_literal)
        last = -1
        for match in self.syntax.line_start.finditer(text, max(literal, 0)):
            last = match.start() + 1
        if last < 0 < literal:  # the literal began no record: a start may come before it
            for match in self.syntax.line_start.finditer(text, 0, literal):
                last = match.start() + 1
        return 0 if last < 0 and self.syntax.start_at.match(text) else last


def tagged_entries(piece: Piece, syntax: TaggedSyntax) -> Iterator[Entry]:
    """Every record of a piece, and every run of text outside records that is not furniture,
    as entries; a record without its end line fails alone."""
    text = piece.text
    if piece.first_line == 1 and text.startswith("\ufeff"):
        text = text[1:]
    starts = [0] if syntax.start_at.match(text) else []
    starts.extend(match.start() + 1 for match in syntax.line_start.finditer(text))
    first_start = starts[0] if starts else len(text)
    yield from _outside(text, 0, first_start, piece.first_line, syntax)
    line = piece.first_line + text.count("\n", 0, first_start)
    for begin, finish in zip(starts, [*starts[1:], len(text)], strict=False):
        at_file_end = piece.final and finish == len(text)
        yield from _record(text, begin, finish, line, syntax, at_file_end)
        line += text.count("\n", begin, finish)


_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _record(
    text: str, begin: int, finish: int, line: int, syntax: TaggedSyntax, at_file_end: bool
) -> Iterator[Entry]:
    end = syntax.line_end.search(text, begin, finish)
    if end is None:
        yield from _record_without_end(text, begin, finish, line, syntax, at_file_end)
        return
    fields = syntax.read_fields(text[begin : end.start()])
    if end.group(1).strip():
        fields.append((syntax.end_tag, end.group(1).strip()))
    stop, foreign = end.end(), None
    offset = end.end() + 1
    while offset < finish:  # the lines after the end, up to the next record
        newline = text.find("\n", offset, finish)
        newline = finish if newline < 0 else newline
        after = text[offset:newline]
        stripped = after.strip()
        if stripped and not syntax.furniture.match(stripped):
            field = syntax.after_end(after)
            if field is None:
                foreign = offset
                break
            fields.append(field)
            stop = newline
        offset = newline + 1
    yield Entry(line, text[begin:stop], tuple(fields))
    if foreign is not None:
        yield from _outside(text, foreign, finish, line + text.count("\n", begin, foreign), syntax)


def _record_without_end(
    text: str, begin: int, finish: int, line: int, syntax: TaggedSyntax, at_file_end: bool
) -> Iterator[Entry]:
    """A record with no end line is whole when a blank line ends it (IEEE and CoLRev's files
    leave ER out) or the file does; it is cut off when the next record starts right after
    its last field line (a truncated export glued to another)."""
    gap = _BLANK_LINE.search(text, begin, finish)
    if gap is None and not at_file_end:
        problem = (
            f"the {syntax.name} record is cut off before its {syntax.end_tag} line: the next "
            "record starts right after its last field"
        )
        yield Entry(line, text[begin:finish].rstrip("\n"), problem=problem)
        return
    stop = finish if gap is None else gap.start()
    body = text[begin:stop].rstrip("\n")
    yield Entry(line, body, tuple(syntax.read_fields(body)))
    if gap is not None:
        yield from _outside(
            text, gap.end(), finish, line + text.count("\n", begin, gap.end()), syntax
        )


def _outside(
    text: str, begin: int, finish: int, line: int, syntax: TaggedSyntax
) -> Iterator[Entry]:
    """Text outside records: nothing unless a line in it is more than furniture, then the text
    from that line on fails as one entry."""
    offset = begin
    while offset < finish:
        newline = text.find("\n", offset, finish)
        newline = finish if newline < 0 else newline
        stripped = text[offset:newline].strip()
        if stripped and not syntax.furniture.match(stripped):
            problem = (
                f"this text is not part of any {syntax.name} record (a record starts with a "
                f"{syntax.start_tag} line and ends with an {syntax.end_tag} line)"
            )
            yield Entry(line, text[offset:finish].rstrip("\n"), problem=problem)
            return
        line += 1
        offset = newline + 1


# -- values ----------------------------------------------------------------------------------------

_YEAR = re.compile(r"(?<![0-9])([12][0-9]{3})(?![0-9])")
_ISSN = re.compile(r"(?<![0-9A-Za-z-])([0-9]{4})-?([0-9]{3}[0-9Xx])(?![0-9A-Za-z-])")
_PAGE_RANGE = re.compile(
    r"^\s*([^\s\-\u2010-\u2015]+)\s*[-\u2010-\u2015]+\s*([^\s\-\u2010-\u2015]+)\s*$"
)


#: A longer value is no identifier, and is not searched for one (`identify.dois_in` takes time
#: growing with the square of a run of punctuation ending a value): hostile input costs no more
#: than its size.
LONGEST_IDENTIFIER = 4096


def doi_field(value: str) -> list[IdentifierValue]:
    """`identify.doi` of a field meant to hold a DOI; a value too long to be one is passed whole,
    for the line model to refuse."""
    if len(value) > LONGEST_IDENTIFIER:
        return [("doi", value, None)]
    return identify.doi(value)


def values_by_tag(
    fields: tuple[tuple[str, str], ...],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The non-empty values of each tag (upper-cased) in file order, and each tag's first."""
    values: defaultdict[str, list[str]] = defaultdict(list)
    for tag, value in fields:
        if value:
            values[tag.upper()].append(value)
    return values, {tag: found[0] for tag, found in values.items()}


def one_line(value: str) -> str:
    """A value whose lines are one text (a title wrapped by its exporter)."""
    return " ".join(part.strip() for part in value.split("\n")) if "\n" in value else value


def year_in(values: dict[str, list[str]], tags: tuple[str, ...]) -> int | None:
    """The first four-digit year of the first of `tags` that holds one ("2019///",
    "4-8 Aug. 2020"); "10 15" holds none."""
    for tag in tags:
        for value in values.get(tag, ()):
            found = _YEAR.search(value)
            if found is not None:
                return int(found.group(1))
    return None


def article_pages(start: str, end: str | None) -> tuple[str, str | None]:
    """First and last page from a start page that may hold the range ("123-130"); a last page
    written short ("349-69", MEDLINE's way) is completed from the first."""
    if not end:
        found = _PAGE_RANGE.match(start)
        if found is None:
            return start, None
        start, end = found.group(1), found.group(2)
    if start.isdigit() and end.isdigit() and len(end) < len(start):
        end = start[: len(start) - len(end)] + end
    return start, end


def issns(values: list[str]) -> list[str]:
    """The ISSNs among ISSN field values ("03064530 (ISSN)" → "0306-4530"); a part that says it
    is an ISBN is not one, and an ISBN's digits never stand alone as eight."""
    found: list[str] = []
    for value in values:
        for part in re.split(r"[;,\n]", value):
            if "isbn" in part.lower():
                continue
            found.extend(f"{a}-{b.upper()}" for a, b in _ISSN.findall(part))
    return found
