"""Web of Science tagged text (contract section 10): the "Plain text file" of a Web of Science
export (``savedrecs.txt``, told from its ``FN``/``VR``/``PT`` first line).

``FN Clarivate Analytics Web of Science`` and ``VR 1.0`` head the file; a record starts at its
``PT`` line and ends at ``ER``; ``EF`` ends the file. A field is a two-character tag, one space
and its value; a continuation line is indented three spaces. For the tags that list one value
per line (authors, addresses, cited references) each continuation line is a value of its own,
a field repeated; for the others it goes on with the value (a wrapped title), joined with a
space. Every record is Web of Science's own: the file's header names the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Piece, StartSplitter, Work
from import_pipeline.formats.tagged_records import (
    LONGEST_IDENTIFIER,
    Fields,
    RecordSplitter,
    TaggedSyntax,
    article_pages,
    doi_field,
    issns,
    one_line,
    tagged_entries,
    values_by_tag,
    year_in,
)

DATABASE = "Web of Science"
# A field's first line: a two-character tag, then a space and the value or the line's end.
_FIELD_START = re.compile(r"\n([A-Z][A-Z0-9])(?:[ \t]|(?=[\r\n])|\Z)")
#: Tags whose continuation lines are values of their own: authors (AU, AF), book authors (BA,
#: BF), book editors (BE), group authors (CA, GP), addresses (C1, C3), cited references (CR).
LIST_TAGS = frozenset({"AU", "AF", "BA", "BF", "BE", "CA", "GP", "C1", "C3", "CR"})
_FURNITURE = re.compile(r"^(?:FN|VR)(?: .*)?$|^EF$")
#: Venue types by publication type (PT): journal, book in series, conference.
_VENUE_TYPES = {"J": "journal", "S": "book_series", "C": "conference"}


def read_fields(record: str) -> Fields:
    """A record's fields in file order (the ER line excluded): list tags one field per line."""
    parts = _FIELD_START.split("\n" + record)
    fields: Fields = []
    if parts[0].strip():  # a first line that is no tag: kept under no name rather than lost
        fields.append(("", parts[0].strip()))
    for tag, value in zip(parts[1::2], parts[2::2], strict=True):
        if "\n" not in value:
            fields.append((tag, value.strip()))
        elif tag in LIST_TAGS:
            fields.extend((tag, line.strip()) for line in value.split("\n") if line.strip())
        else:
            fields.append((tag, " ".join(line.strip() for line in value.split("\n")).strip()))
    return fields


def _nothing_after_end(line: str) -> tuple[str, str] | None:
    return None


SYNTAX = TaggedSyntax(
    name="Web of Science",
    start_tag="PT",
    end_tag="ER",
    start=r"PT [A-Z]",
    start_literal="\nPT ",
    end=r"ER[ \t\r]*()(?=\n|\Z)",
    read_fields=read_fields,
    furniture=_FURNITURE,
    after_end=_nothing_after_end,
)


def _accession(value: str) -> list[IdentifierValue]:
    """The accession number (UT): Web of Science's own ("WOS:…"), or MEDLINE's a PubMed id;
    another collection's ("BCI:…", "SCIELO:…") stays whole, under Web of Science."""
    if value.upper().startswith("MEDLINE:"):
        return identify.pubmed(value.split(":", 1)[1])
    return identify.other(DATABASE, value)


def _identifiers(values: dict[str, list[str]]) -> list[IdentifierValue]:
    found: list[IdentifierValue] = []
    for value in values.get("DI", ()):
        found.extend(doi_field(value))
    for value in values.get("DL", ()):  # the DOI as a link
        if len(value) <= LONGEST_IDENTIFIER:
            found.extend(identify.in_url(value))
    for value in values.get("UT", ()):
        found.extend(_accession(value))
    for value in values.get("PM", ()):
        found.extend(identify.pubmed(value))
    return found


def _authors(values: dict[str, list[str]]) -> list[str]:
    """Full names (AF) where the record has them for every author, else AU's."""
    short, full = values.get("AU", []), values.get("AF", [])
    return full if full and len(full) >= len(short) else short


class WosReader:
    name = "wos"

    def header(self, head: str) -> Header:
        return Header(database=DATABASE)

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> StartSplitter:
        return RecordSplitter(SYNTAX, max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        return tagged_entries(piece, SYNTAX)

    def work(self, entry: Entry, header: Header) -> Work:
        values, one = values_by_tag(entry.fields)
        first_page, last_page = None, None
        if one.get("BP"):
            first_page, last_page = article_pages(one["BP"], one.get("EP"))
        elif one.get("AR"):
            first_page = one.get("AR")  # an article number stands as the first page
        title, venue = one.get("TI"), one.get("SO")
        return Work(
            title=one_line(title) if title else None,
            authors=_authors(values),
            year=year_in(values, ("PY", "EA")),
            venue=venue,
            venue_type=_VENUE_TYPES.get(one.get("PT", "")) if venue else None,
            volume=one.get("VL"),
            issue=one.get("IS"),
            first_page=first_page,
            last_page=last_page,
            publisher=one.get("PU"),
            issns=issns(values.get("SN", []) + values.get("EI", [])),
            abstract=one.get("AB"),
            identifiers=_identifiers(values),
        )


READER = WosReader()
