"""EPPI-Reviewer JSON reports (contract section 10): ``{"CodeSets": […], "References": […]}``,
read as the DESTINY SDK's `EPPIParser` reads it, each reference one entry.

As the SDK: identifiers from ``DOI`` and a ``URL`` link (doi.org, ERIC, ProQuest, OpenAlex);
``Title``, ``Authors`` (split at ``;``), ``Year`` (all digits), ``Publisher``, ``Abstract``.
``ItemId`` is no identifier and ``Codes`` make no annotation (the SDK's defaults): they stay in
the raw enhancement, as every field does. Beyond the SDK, as every export here: the venue
(``ParentTitle``; journal or conference by ``TypeName``), volume, issue, pages, the ISSNs and Web
of Science or PubMed accession numbers of ``StandardNumber``, the Scopus EID of a Scopus link;
a reference without an identifier is imported under its entry key (the SDK drops it).

The document is streamed: the splitter finds ``"References": [`` and decodes the references one
by one (`json.JSONDecoder.raw_decode`, C speed) into pieces. One that is not valid JSON (or too
deep) fails alone; reading resumes at the next when the export is indented (EPPI-Reviewer's
older exports, the SDK's example), else the rest of a single-line export fails with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from import_pipeline.formats import base, identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Piece, Splitter, Work

#: Strict, as the SDK's `json.load`: a raw control character in a string is an error (so a line
#: end is never inside a string, which resuming after a broken reference relies on).
_DECODER = json.JSONDecoder()
_ENCODER = json.JSONEncoder(ensure_ascii=False)
_LEADING = re.compile(r"[\ufeff \t\n\r]*")
#: Between two references: blanks and a comma (a missing or doubled one forgiven).
_BETWEEN = re.compile(r"[ \t\n\r,]*")
#: The list's key, outside any string (inside one its quotes would be escaped).
_REFERENCES_KEY = re.compile(r'(?<!\\)"References"[ \t\n\r]*:[ \t\n\r]*\[')
#: Text kept after an unsuccessful search, so that a match split between two feeds is found.
_SEARCH_TAIL = 4096
#: A decoding error this close to the end of the text held may only mean the reference goes on.
_CUT_MARGIN = 8

_NOT_AN_OBJECT = (
    'the file is not an EPPI-Reviewer JSON report ({{"References": […]}}): it starts {!r}'
)
_NO_REFERENCES = 'the file holds no "References" list (an EPPI-Reviewer JSON report has one)'
_UNCLOSED = 'the file ends inside the "References" list (no closing "]"): it may be cut off'
_TOO_DEEP = "the reference is nested too deeply to be read"

#: A step of the splitter: the pieces it yields, then whether reading goes on in this feed.
Reading = Generator[Piece, None, bool]


class ReferencesSplitter:
    """Pieces of whole references of a report, streamed: it holds the current piece, the
    reference being read (at most `max_entry_chars`, else it fails as too long) and the last
    feed. States (each a method): ``start`` (before the ``{``), ``search`` (for the list's key),
    ``references`` (in the list), ``skip`` (past a broken reference), ``done``."""

    def __init__(self, max_entry_chars: int, piece_chars: int) -> None:
        self.max_entry_chars = max_entry_chars
        self.piece_chars = piece_chars
        self.buffer = ""
        self.pos = 0  # where reading stands in `buffer`
        self.line = 1  # the line `pos` is on
        self.state = "start"
        self.resume: re.Pattern[str] | None = None  # where a reference after a broken one starts
        self.piece_from = -1  # the current piece's first reference in `buffer`
        self.piece_line = 0
        self.piece_to = 0  # the end of its last reference
        self.held: list[str] = []  # text fed, not yet joined to `buffer`
        self.held_chars = 0
        self.wait_until = 0  # how much text from `pos` on must be here before reading on
        self.skip_from = -1  # the broken reference's text in `buffer` (-1: not kept)
        self.skip_line = 0
        self.skip_problem: str | None = None  # None: already reported (a too long reference)
        self.search_from = 0

    def feed(self, text: str) -> Iterator[Piece]:
        self.held.append(text)
        self.held_chars += len(text)
        if len(self.buffer) - self.pos + self.held_chars < self.wait_until:
            return  # joined when there is enough to read on: a long reference costs linear time
        self._join()
        yield from self._read(final=False)
        self._trim()

    def finish(self) -> Iterator[Piece]:
        self._join()
        yield from self._read(final=True)
        self.buffer = ""

    def _join(self) -> None:
        self.buffer = "".join([self.buffer, *self.held])
        self.held, self.held_chars = [], 0

    def _read(self, final: bool) -> Iterator[Piece]:
        while self.state != "done":
            step: Callable[[bool], Reading] = getattr(self, "_" + self.state)
            going_on = yield from step(final)
            if not going_on:
                return
        self.pos = len(self.buffer)  # what follows the list is not read

    def _advance(self, to: int) -> None:
        self.line += self.buffer.count("\n", self.pos, to)
        self.pos = to

    def _trim(self) -> None:
        """Drops the text read that no piece or failed reference still needs."""
        keep = min([self.pos] + [at for at in (self.piece_from, self.skip_from) if at >= 0])
        self.buffer = self.buffer[keep:]
        self.pos, self.piece_to = self.pos - keep, self.piece_to - keep
        self.search_from = max(0, self.search_from - keep)
        self.piece_from, self.skip_from = (
            at - keep if at >= 0 else -1 for at in (self.piece_from, self.skip_from)
        )

    def _start(self, final: bool) -> Reading:
        self._advance(_past(_LEADING, self.buffer, self.pos))
        if self.pos >= len(self.buffer):
            return False  # an empty file has no entry
        if self.buffer[self.pos] != "{":
            yield Piece(self.line, "", _NOT_AN_OBJECT.format(self.buffer[self.pos : self.pos + 20]))
            self.state = "done"
            return True
        self._advance(self.pos + 1)
        self.state = "search"
        return True

    def _search(self, final: bool) -> Reading:
        found = _REFERENCES_KEY.search(self.buffer, self.pos)
        if found is None:
            if final:
                yield Piece(1, "", _NO_REFERENCES)
                self.state = "done"
                return True
            self._advance(max(self.pos, len(self.buffer) - _SEARCH_TAIL))
            return False
        self._advance(found.end())
        self.state = "references"
        return True

    def _references(self, final: bool) -> Reading:
        """The list's references, decoded one after the other into the current piece."""
        buffer = self.buffer
        while True:
            since = self.pos  # the end of the reference before (lines counted up to it)
            start = _past(_BETWEEN, buffer, since)
            if start >= len(buffer) or buffer[start] == "]":
                self._advance(start)
                return (yield from self._list_end(final))
            if self.resume is None:
                self.resume = self._resume_pattern(since, start)
            end, problem = self._decoded_end(start, final)
            self.wait_until = 0
            if end < 0 or end - start > self.max_entry_chars:
                self._advance(start)
                return (yield from self._unread(start, end, problem))
            if self.piece_from < 0:
                self._advance(start)
                self.piece_from, self.piece_line = start, self.line
            self._advance(end)
            self.piece_to = end
            if end - self.piece_from >= self.piece_chars:
                yield from self._flush()

    def _list_end(self, final: bool) -> Reading:
        """At the list's ``]``, or at the end of the text held."""
        closed = self.pos < len(self.buffer)
        if not closed and not final:
            return False
        yield from self._flush()
        if not closed:
            yield Piece(self.line, "", _UNCLOSED)
        self.state = "done"
        return True

    def _unread(self, start: int, end: int, problem: str | None) -> Reading:
        """The reference at `start` cannot be read (`problem`), is longer than the maximum, or
        is not all here yet: then wait for twice its text (so it is decoded a bounded number
        of times)."""
        held = len(self.buffer) - start
        if problem is None and end < 0 and held <= self.max_entry_chars:
            self.wait_until = min(2 * held, self.max_entry_chars + 1)
            return False
        yield from self._flush()
        if problem is None:
            yield Piece(self.line, "", base.too_long(self.max_entry_chars))
        if problem is not None or end < 0:
            self._begin_skip(problem, keep_text=problem is not None)
        else:
            self._advance(end)
        return True

    def _decoded_end(self, start: int, final: bool) -> tuple[int, str | None]:
        """Where the reference at `start` ends, or why it cannot be read, or (-1, None) when
        the text held may only end too soon."""
        buffer = self.buffer
        try:
            _, end = _DECODER.raw_decode(buffer, start)
        except RecursionError:
            return -1, _TOO_DEEP
        except json.JSONDecodeError as error:
            at_end = error.pos + _CUT_MARGIN >= len(buffer)
            if at_end or error.msg.startswith("Unterminated string"):
                return -1, "the reference is cut off by the end of the file" if final else None
            line = self.line + buffer.count("\n", self.pos, error.pos)
            where = f"line {line}, character {error.pos - start + 1} of the reference"
            return -1, f"the reference is not valid JSON: {error.msg} ({where})"
        if end >= len(buffer) and not final:
            return -1, None  # a number or word may go on
        return end, None

    def _flush(self) -> Iterator[Piece]:
        """The current piece, if it holds a reference."""
        if self.piece_from >= 0:
            yield Piece(self.piece_line, self.buffer[self.piece_from : self.piece_to])
            self.piece_from = -1

    def _resume_pattern(self, since: int, start: int) -> re.Pattern[str] | None:
        """Where a reference starts, or the list ends, in an indented export: a ``{`` at the
        first reference's indentation on the line after a comma, or a ``]`` no further right
        (what a reference holds is indented further)."""
        indent = _indentation(self.buffer, start, since)
        if indent is None:
            return None
        next_reference = r",[ \t]*\n" + re.escape(indent) + r"(?=\{)"
        return re.compile(next_reference + r"|\n[ \t]{0," + str(len(indent)) + r"}(?=\])")

    def _begin_skip(self, problem: str | None, keep_text: bool) -> None:
        self.state = "skip"
        self.skip_from = self.pos if keep_text else -1
        self.skip_line = self.line
        self.skip_problem = problem
        self.search_from = self.pos + 1

    def _skip(self, final: bool) -> Reading:
        """Past a reference that cannot be read, to where the next one starts."""
        buffer = self.buffer
        found = self.resume.search(buffer, self.search_from) if self.resume else None
        if found is None and not final:
            self.search_from = max(self.search_from, len(buffer) - _SEARCH_TAIL)
            if self.skip_from >= 0 and len(buffer) - self.skip_from > self.max_entry_chars:
                self.skip_from = -1  # no longer held: the entry fails without its text
            if self.skip_from < 0:
                self._advance(max(self.pos, self.search_from))
            else:  # search again once twice the text is here
                self.wait_until = min(2 * (len(buffer) - self.pos), self.max_entry_chars + 1)
            return False
        self.wait_until = 0
        end = found.start() if found is not None else len(buffer)
        if self.skip_problem is not None:
            held = self.skip_from >= 0 and end - self.skip_from <= self.max_entry_chars
            text = buffer[self.skip_from : end].rstrip() if held else ""
            yield Piece(self.skip_line, text, self.skip_problem)
        self._advance(found.end() if found is not None else end)
        self.state = "references" if found is not None else "done"
        self.skip_from = -1
        return True


def _past(pattern: re.Pattern[str], text: str, pos: int) -> int:
    found = pattern.match(text, pos)
    return found.end() if found is not None else pos


def _indentation(text: str, at: int, since: int) -> str | None:
    """The blanks before `at` on its line, if only blanks are (looked for back to `since`)."""
    line_start = text.rfind("\n", max(since, 0), at)
    if line_start < 0:
        return None
    before = text[line_start + 1 : at]
    return before if not before.strip(" \t") else None


# -- the references ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceEntry(Entry):
    """An entry with the object it was decoded from (`work` reads it, not the text again)."""

    reference: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


#: CESU-8: a character beyond U+FFFF as two UTF-8-encoded surrogates, as EPPI exports may hold
#: (the SDK's importer notes it); UTF-8 refuses the six bytes (here `surrogateescape` points).
_CESU8_PAIR = re.compile("\udced[\udca0-\udcaf][\udc80-\udcbf]\udced[\udcb0-\udcbf][\udc80-\udcbf]")
#: A surrogate written as a JSON escape (the text itself holds none once CESU-8 is read).
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _cesu8_character(pair: re.Match[str]) -> str:
    surrogates = bytes(ord(char) - 0xDC00 for char in pair.group()).decode("utf-8", "surrogatepass")
    return surrogates.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def references(piece: Piece) -> Iterator[Entry]:
    """The references of a piece (whole references, blanks and commas between them)."""
    text = piece.text
    if "\udced" in text:
        text = _CESU8_PAIR.sub(_cesu8_character, text)
    escapes = _ESCAPED_SURROGATE.search(text) is not None
    line, pos = piece.first_line, 0
    while True:
        start = _past(_BETWEEN, text, pos)
        if start >= len(text) or text[start] == "]":
            return
        line += text.count("\n", pos, start)
        try:
            value, pos = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError) as error:  # the splitter let no such piece through
            yield Entry(line, text[start:], problem=f"the reference cannot be read: {error}")
            return
        yield _entry(line, text[start:pos], value, escapes)
        line += text.count("\n", start, pos)


def _entry(line: int, text: str, value: object, escapes: bool) -> Entry:
    """A reference as an entry: its fields in the file's order, a value not a string as JSON
    (`escapes`: the piece escapes a surrogate, which may be unpaired)."""
    if not isinstance(value, dict):
        return Entry(line, text, problem=f"the reference is not a JSON object: {text[:40]!r}")
    try:
        fields = tuple(
            [
                (name, item if isinstance(item, str) else _ENCODER.encode(item))
                for name, item in value.items()
            ]
        )
    except (RecursionError, ValueError) as error:
        return Entry(line, text, problem=f"the reference cannot be read: {error}")
    if escapes and any(_SURROGATE.search(n + v) for n, v in fields):
        problem = "the reference holds an unpaired surrogate (\\uD800-\\uDFFF), not a character"
        return Entry(line, text, problem=problem)
    return ReferenceEntry(line, text, fields, raw=value, reference=value)


# -- what a reference says -------------------------------------------------------------------------

#: EPPI-Reviewer's item types whose ``ParentTitle`` is a journal or a conference.
_VENUE_TYPES = {"Journal, Article": "journal", "Conference Proceedings": "conference"}
_ISSN = re.compile(r"(?<![0-9A-Za-z-])([0-9]{4})-?([0-9]{3}[0-9Xx])(?![0-9A-Za-z-])")
#: Web of Science accession numbers (its own and its other collections'), as EPPI-Reviewer
#: keeps them in ``StandardNumber`` from an import ("WOS:000511663100014 ER").
_WOS_ACCESSION = re.compile(
    r"\b(?:WOS|DRCI|BCI|BIOSIS|CCC|CSCD|DIIDW|INSPEC|KJD|RSCI|SCIELO|ZOOREC):[0-9A-Za-z]+"
)
_MEDLINE_ACCESSION = re.compile(r"\bMEDLINE:([0-9]+)")
_SCOPUS_LINK = re.compile(r"(?i)scopus\.com/.*?[?&](?:eid=2-s2\.0-|scp=)([0-9]+)")
_PAGE_RANGE = re.compile(r"^\s*(\S+?)\s*[-\u2010-\u2015]+\s*(\S+)\s*$")


def _text(reference: dict[str, Any], name: str) -> str | None:
    value = reference.get(name)  # as the SDK, the value as it is (when it is not blank)
    return value if isinstance(value, str) and value.strip() else None


def _year(value: object) -> int | None:
    # As the SDK, digits only ("2019"; a number too), but no more than a year's four.
    text = str(value).strip() if isinstance(value, (str, int)) and value is not True else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def _authors(value: str | None) -> list[str]:
    # As the SDK: "Abbas Kaja; Yoo Katelyn" (older exports end the list with "; ").
    return [name.strip() for name in (value or "").split(";") if name.strip()]


def _pages(value: str | None) -> tuple[str | None, str | None]:
    """The first and last page of "213-232" (of "1352-62": 1352, 1362); "e1234" is a first."""
    if value is None:
        return None, None
    # A bounded value: the pattern backtracks on a long run of dashes ("a-a-a-…").
    found = _PAGE_RANGE.match(value) if len(value) < 100 else None
    if found is None:
        return value.strip(), None
    first, last = found.group(1), found.group(2)
    if first.isdigit() and last.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first, last


def _standard_number(value: str | None) -> tuple[list[str], list[IdentifierValue]]:
    """The ISSNs and accession numbers of ``StandardNumber`` ("1353-3452 (Linking)", "01389130
    (ISSN)", "0959-8138, 1756-1833", "WOS:…", "MEDLINE:31886771"); an ISBN is neither."""
    issns: list[str] = []
    found: list[IdentifierValue] = []
    for part in re.split(r"[;,\n]", value or ""):
        accessions = _WOS_ACCESSION.findall(part)
        pubmed = _MEDLINE_ACCESSION.findall(part)
        for accession in accessions:
            found.extend(identify.other("Web of Science", accession))
        for pm_id in pubmed:
            found.extend(identify.pubmed(pm_id))
        if not accessions and not pubmed and "isbn" not in part.lower():
            issns.extend(f"{digits}-{rest.upper()}" for digits, rest in _ISSN.findall(part))
    return issns, found


def _identifiers(reference: dict[str, Any]) -> list[IdentifierValue]:
    """As the SDK, the DOI field then the link; then what ``StandardNumber`` holds."""
    found: list[IdentifierValue] = []
    doi = _text(reference, "DOI")
    if doi is not None:
        found.extend(identify.doi(doi))
    url = _text(reference, "URL")
    if url is not None:
        found.extend(identify.in_url(url))
        for scopus_id in _SCOPUS_LINK.findall(url):
            found.extend(identify.other("Scopus EID", f"2-s2.0-{scopus_id}"))
    return found


class EppiReader:
    name = "eppi_json"

    def header(self, head: str) -> Header:
        return Header()  # the report names no database

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> Splitter:
        return ReferencesSplitter(max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        return references(piece)

    def work(self, entry: Entry, header: Header) -> Work:
        reference = getattr(entry, "reference", None) or dict(json.loads(entry.text))
        issns, accessions = _standard_number(_text(reference, "StandardNumber"))
        first_page, last_page = _pages(_text(reference, "Pages"))
        return Work(
            title=_text(reference, "Title"),
            authors=_authors(_text(reference, "Authors")),
            year=_year(reference.get("Year")),
            venue=_text(reference, "ParentTitle"),
            venue_type=_VENUE_TYPES.get(_text(reference, "TypeName") or ""),
            volume=_text(reference, "Volume"),
            issue=_text(reference, "Issue"),
            first_page=first_page,
            last_page=last_page,
            publisher=_text(reference, "Publisher"),
            issns=issns,
            abstract=_text(reference, "Abstract"),
            identifiers=_identifiers(reference) + accessions,
        )


READER = EppiReader()
