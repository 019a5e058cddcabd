"""BibTeX and BibLaTeX (contract section 10), as ACM, IEEE, DBLP, Wiley, Taylor & Francis,
Scopus, Web of Science, Zotero and JabRef write them.

An entry starts at a line beginning with ``@type{`` (or ``@type(``), or after another's close
on its line; @comment and @preamble are no works and @string defines macros that later values
use (``month = jan # "~1"``). Other text outside entries is a comment, as BibTeX reads it,
unless it reads as RIS or as fields: then it fails alone, so that nothing is dropped silently.
Entry.fields hold the entry type and key (``ENTRYTYPE``, ``ID``) and every field in file order,
names as written, values with their outer braces or quotes removed, macros and ``#`` resolved
and whitespace runs made one space (as BibTeX reads them); LaTeX is left as written there and
turned into text only for the work (`bibtex_latex.py`).

Its own parser, not bibtexparser 2.1.0. On a 100,000-entry file built from the shared exports
(596 characters an entry; one run on a loaded machine where validating a line took 46 µs),
bibtexparser's splitter alone took 186 µs an entry and its LaTeX decoding (pylatexenc) 4.9 ms,
against 52 µs for `entries` and 61 µs for `work` here. It is also lenient where an entry must
fail: a missing comma between fields makes one value ("{A}\\n year = {2020}"), the fields after
an early close are dropped as a comment, an empty value is taken, ``j # " X"`` stays
unresolved, its LaTeX decoding exceeds the recursion limit at 10,000 braces deep, and a
library over a piece fails a repeated key. Every scan here is a regex or a loop over brace
positions from an offset: linear in the entry, whatever its nesting (no recursion).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from import_pipeline.formats.base import Entry, Header, Piece, Splitter, StartSplitter, Work
from import_pipeline.formats.bibtex_fields import work_of

#: Where an entry starts: ``@type{`` or ``@type(`` at the start of a line (a byte order mark
#: the decoding left before the first is no text).
ENTRY_START = re.compile(r"^[ \t\ufeff]*@[ \t]*[A-Za-z][\w-]*[ \t]*[{(]", re.MULTILINE)
_HEAD = re.compile(r"[ \t\ufeff]*@[ \t]*([A-Za-z][\w-]*)[ \t]*([{(])")
_INLINE_START = re.compile(r"@[ \t]*[A-Za-z][\w-]*[ \t]*[{(]")
_STRING_START = re.compile(r"^[ \t]*@[ \t]*string[ \t]*[{(]", re.MULTILINE | re.IGNORECASE)
_KEY = {"}": re.compile(r"[^,={}]*"), ")": re.compile(r"[^,=(){}]*")}
# A field whose value is in braces (one level of braces inside: {{Title}}, {The {DNA} test}),
# in quotes, or a number, followed by its comma or the close.
_SIMPLE_FIELD = (
    r'[\s,]*([^\s=,{}"#()][^=,{}"#()]*)=\s*'
    r'(?:\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}|"([^"{}\\]*)"|([0-9]+))\s*(?=[,CLOSE])'
)
# Every field of an entry in one findall when all are simple: then the last match is its close
# and the rest of the text; anything else ends the scan at once as the rest (no rescans).
_SIMPLE_ENTRY = {
    close: re.compile(
        _SIMPLE_FIELD.replace("CLOSE", re.escape(close))
        + r"|[\s,]*("
        + re.escape(close)
        + r".*)|(.+)",
        re.DOTALL,
    )
    for close in "})"
}
_FIELD_NAME = re.compile(r'\s*([^\s=,{}"#()][^=,{}"#()]*)=\s*')
_SPACE = re.compile(r"\s*")
_BARE_WORD = re.compile(r'[^\s,#{}"=()]+')
_BRACE = re.compile(r"[{}]")
_QUOTE_OR_BRACE = re.compile(r'[{}"]')
# Text outside entries is a comment to BibTeX, unless it reads as fields (an entry that
# closed too early, or whose @type{key, line is broken) or as RIS (a file that changes format).
_FIELD_LIKE = re.compile(
    r'^[ \t]*(?:[,}]|[A-Za-z][\w -]*=[ \t]*[{"0-9]|[A-Za-z]+[ \t]*\{[^\s,={}]*,)', re.MULTILINE
)
_RIS_LINE = re.compile(r"^[A-Z][A-Z0-9]  - ", re.MULTILINE)
_NOT_WORKS = ("comment", "preamble")


class Unreadable(Exception):
    """Why an entry cannot be read, at an offset of its text."""

    def __init__(self, problem: str, offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.offset = offset


@dataclass(frozen=True)
class MacroPiece(Piece):
    """A piece with the @string macros the file defined before it (lower-cased names)."""

    macros: tuple[tuple[str, str], ...] = ()


def _after_space(text: str, offset: int) -> int:
    found = _SPACE.match(text, offset)
    return found.end() if found else offset


def _brace_end(text: str, start: int) -> int:
    """The offset of the brace closing the one at `start`, or -1."""
    closing = text.find("}", start + 1)
    if closing < 0:
        return -1
    if text.find("{", start + 1, closing) < 0:
        return closing
    depth = 0
    for found in _BRACE.finditer(text, start):
        if text[found.start()] == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return found.start()
    return -1


def _quote_end(text: str, start: int) -> int:
    """The offset of the quote closing the one at `start` (a quote inside braces, or after a
    backslash, is text), or -1."""
    depth = 0
    for found in _QUOTE_OR_BRACE.finditer(text, start + 1):
        char = text[found.start()]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return -1
        elif depth == 0 and text[found.start() - 1] != "\\":
            return found.start()
    return -1


def _value_part(text: str, offset: int, name: str, macros: dict[str, str]) -> tuple[str, int]:
    """One part of a value (``{…}``, ``"…"``, a number or a macro) and the offset after it."""
    char = text[offset : offset + 1]
    if char == "{":
        end = _brace_end(text, offset)
        if end < 0:
            raise Unreadable(
                f"the entry's braces do not balance: the value of '{name}' opens a brace "
                "that is never closed",
                offset,
            )
        return text[offset + 1 : end], end + 1
    if char == '"':
        end = _quote_end(text, offset)
        if end < 0:
            raise Unreadable(
                f"the entry's braces do not balance: the quoted value of '{name}' is never "
                "closed, or its braces do not pair",
                offset,
            )
        return text[offset + 1 : end], end + 1
    word = _BARE_WORD.match(text, offset)
    if word is None:
        raise Unreadable(f"the field '{name}' has no value", offset)
    return macros.get(word.group().lower(), word.group()), word.end()


def _value(text: str, offset: int, name: str, macros: dict[str, str]) -> tuple[str, int]:
    """A field's value, its parts joined (``#``), whitespace runs one space, and the offset
    after it."""
    parts = []
    while True:
        part, offset = _value_part(text, offset, name, macros)
        parts.append(part)
        offset = _after_space(text, offset)
        if text[offset : offset + 1] != "#":
            break
        offset = _after_space(text, offset + 1)
    value = parts[0] if len(parts) == 1 else "".join(parts)
    return " ".join(value.split()), offset


def _simple_fields(text: str, offset: int, close: str) -> tuple[list[tuple[str, str]], int] | None:
    """The fields from `offset` and the offset of the entry's close when every field is
    simple (most entries: one regex call), else None."""
    # The scan stops where another entry may start: what it keeps of the text after the
    # close is that entry's own (entries on one line cost their size, not the line's).
    following = _INLINE_START.search(text, offset)
    end = following.start() if following else len(text)
    found = _SIMPLE_ENTRY[close].findall(text, offset, end)
    if not found or not found[-1][4]:  # the scan ended on something else than the close
        return None
    fields = [
        (name.rstrip(), " ".join((braced or quoted or number).split()))
        for name, braced, quoted, number, _, _ in found[:-1]
    ]
    return fields, end - len(found[-1][4])


def _fields(
    text: str, offset: int, close: str, macros: dict[str, str]
) -> tuple[list[tuple[str, str]], int]:
    """The ``name = value`` fields from `offset` to the entry's closing delimiter, and the
    offset of that delimiter."""
    simple = _simple_fields(text, offset, close)
    if simple is not None:
        return simple
    fields: list[tuple[str, str]] = []
    size = len(text)
    while True:
        offset = _after_space(text, offset)
        if offset >= size:
            raise Unreadable(
                f"the entry's braces do not balance: no '{close}' closes the entry", offset
            )
        if text[offset] == close:
            return fields, offset
        if text[offset] == ",":  # an empty field (",,") or the comma before the close
            offset += 1
            continue
        named = _FIELD_NAME.match(text, offset)
        if named is None:
            shown = text[offset : offset + 30].split("\n")[0]
            raise Unreadable(f"a field name followed by '=' was expected, not '{shown}'", offset)
        name = named.group(1).rstrip()
        value, offset = _value(text, named.end(), name, macros)
        fields.append((name, value))
        if offset < size and text[offset] not in (",", close):
            raise Unreadable(f"a comma is missing after the field '{name}'", offset)


def parse_entry(
    text: str, start: int, macros: dict[str, str]
) -> tuple[tuple[tuple[str, str], ...] | None, int]:
    """The fields of the entry at `start` (None for @comment, @preamble and @string, whose
    macros join `macros`) and the offset after its closing delimiter; `Unreadable` if broken."""
    head = _HEAD.match(text, start)
    if head is None:  # never: the text starts where ENTRY_START matched
        raise Unreadable("a BibTeX entry starts with @type{", start)
    kind, close = head.group(1), "}" if head.group(2) == "{" else ")"
    lowered = kind.lower()
    if lowered in _NOT_WORKS:  # free text up to its close, or else up to the next entry
        closing = _brace_end(text, head.end() - 1) if close == "}" else text.find(")", head.end())
        return None, closing + 1 if closing >= 0 else len(text)
    if lowered == "string":
        definitions, end = _fields(text, head.end(), close, macros)
        macros.update((name.lower(), value) for name, value in definitions)
        return None, end + 1
    key = _KEY[close].match(text, head.end())
    assert key is not None  # the pattern matches the empty string
    after_key = text[key.end() : key.end() + 1]
    if after_key not in (",", close):
        raise Unreadable(_key_problem(key.group(), after_key, close), key.end())
    fields, end = (
        ([], key.end()) if after_key == close else _fields(text, key.end() + 1, close, macros)
    )
    return (("ENTRYTYPE", kind), ("ID", key.group().strip()), *fields), end + 1


def _key_problem(key: str, found: str, close: str) -> str:
    shown = key.strip().split("\n")[0].strip()
    if not found:
        return f"the entry's braces do not balance: no '{close}' closes the entry"
    if found == "=":
        return f"the entry key is missing, or the comma after it ('{shown}' is followed by '=')"
    return f"the entry key '{shown}' is followed by '{found}' instead of a comma"


def _outside(text: str, first_line: int) -> Iterator[Entry]:
    """Text outside any entry: a comment, unless it holds RIS records or fields."""
    if not text.strip():
        return
    ris = _RIS_LINE.search(text)
    fields = _FIELD_LIKE.search(text)
    found = ris or fields
    if found is None:
        return
    line = first_line + text.count("\n", 0, found.start())
    if ris is not None:
        problem = "this is RIS, not BibTeX: a RIS record cannot be read in a BibTeX file"
    else:
        problem = "text outside any entry reads as fields: its @type{key, line is missing or broken"
    yield Entry(line, text[found.start() :].rstrip(), problem=f"{problem} (line {line})")


def _entry_and_after(
    text: str, span: tuple[int, int, int], line: int, fields: tuple[tuple[str, str], ...] | None
) -> Iterator[Entry]:
    """An entry read (`span`: its start, the end of its close, the start of what follows) and
    the text after its close: a comment, or the fields of an entry that closed too early."""
    start, end, stop = span
    after = text[end:stop]
    if not after.strip():
        if fields is not None:
            yield Entry(line, text[start:end], fields)
        return
    end_line = line + text.count("\n", start, end)
    if fields is not None and _FIELD_LIKE.match(after.lstrip(" \t\n")):
        problem = (
            f"the entry's braces do not balance: it closes on line {end_line}, before text "
            f"that reads as more of its fields ('{after.strip()[:40]}')"
        )
        yield Entry(line, text[start:stop].rstrip(), problem=problem)
        return
    if fields is not None:
        yield Entry(line, text[start:end], fields)
    yield from _outside(after, end_line)


def _chunk_entries(text: str, first_line: int, macros: dict[str, str]) -> Iterator[Entry]:
    """The entries of a text that starts with one, up to the next line that starts one:
    usually that one, more when others start on the line where one closes (BibTeX reads an
    @ outside entries anywhere)."""
    start, line = 0, first_line
    while True:
        try:
            fields, end = parse_entry(text, start, macros)
        except Unreadable as problem:
            where = line + text.count("\n", start, problem.offset)
            yield Entry(line, text[start:].rstrip(), problem=f"{problem.problem} (line {where})")
            return
        following = _INLINE_START.search(text, end)
        stop = following.start() if following else len(text)
        yield from _entry_and_after(text, (start, end, stop), line, fields)
        if following is None:
            return
        line += text.count("\n", start, stop)
        start = stop


class MacroSplitter:
    """StartSplitter's pieces, each with the @string macros defined before it in the file, so
    that a piece read in another process resolves them as the whole file would."""

    def __init__(self, pieces: Splitter) -> None:
        self.pieces = pieces
        self.macros: dict[str, str] = {}

    def _carrying(self, piece: Piece) -> Piece:
        if piece.problem is not None:
            return piece
        carried = MacroPiece(piece.first_line, piece.text, macros=tuple(self.macros.items()))
        for start in _STRING_START.finditer(piece.text):
            following = ENTRY_START.search(piece.text, start.end())
            end = following.start() if following else len(piece.text)
            with contextlib.suppress(Unreadable):  # the entry itself says what is wrong
                parse_entry(piece.text[start.start() : end], 0, self.macros)
        return carried if carried.macros else piece

    def feed(self, text: str) -> Iterator[Piece]:
        return (self._carrying(piece) for piece in self.pieces.feed(text))

    def finish(self) -> Iterator[Piece]:
        return (self._carrying(piece) for piece in self.pieces.finish())


class BibTeXReader:
    """BibTeX / BibLaTeX files (``.bib``)."""

    name = "bibtex"

    def header(self, head: str) -> Header:
        return Header()  # a .bib file names no database for all its entries

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> Splitter:
        return MacroSplitter(StartSplitter(ENTRY_START, max_entry_chars, piece_chars))

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        macros = dict(piece.macros) if isinstance(piece, MacroPiece) else {}
        text = piece.text
        line = piece.first_line
        starts = [found.start() for found in ENTRY_START.finditer(text)]
        yield from _outside(text[: starts[0] if starts else len(text)], line)
        if starts:
            line += text.count("\n", 0, starts[0])
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else len(text)
            chunk = text[start:end]
            yield from _chunk_entries(chunk, line, macros)
            line += chunk.count("\n")

    def work(self, entry: Entry, header: Header) -> Work:
        return work_of(entry.fields)


READER = BibTeXReader()
