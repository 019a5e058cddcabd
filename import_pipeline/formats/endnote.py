"""EndNote tagged text (``.enw``, ``.enl``): an entry is a block of ``%X value`` lines
(``%0`` its type, ``%T`` title, ``%A`` an author, repeated…), a line without a tag going on
with the value before it, entries separated by blank lines.

Entries are told by blank lines, not by ``%0`` alone: AIS eLibrary's export writes ``%T``
before ``%0`` (CoLRev's ``enl_data.enl``). A second ``%0`` in a block starts an entry where a
writer left the blank line out (`tagged_blocks.py`). No package on PyPI reads this format (those
named for EndNote read its XML); the tags are EndNote's "Importing Reference Data" table, the
letters of refer(1)'s older ``%`` fields.
"""

from __future__ import annotations

import re

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Work
from import_pipeline.formats.tagged_blocks import BlockReader, TaggedSyntax

SYNTAX = TaggedSyntax(
    name="EndNote", tag="%[^ \t\r\n]", separator="", record_tag="%0 ", joiner="\n"
)

_YEAR = re.compile(r"\b([12][0-9]{3})\b")
_ISSN = re.compile(r"^\s*([0-9]{4})-?([0-9]{3}[0-9Xx])\s*$")
_PAGE_DASH = re.compile(r"\s*[-\u2013\u2014]+\s*")

#: Tags read for every value; of the others the first value is read.
_LISTED = frozenset({"%A", "%R", "%U", "%M", "%@"})

#: What `%0` types say of where a work appeared.
_VENUE_TYPES = {
    "journal article": "journal",
    "magazine article": "journal",
    "electronic article": "journal",
    "conference paper": "conference",
    "conference proceedings": "conference",
}

#: Whose accession number `%M` is, by the database `%~` or `%W` names (lower case, in part).
_ACCESSION_OWNERS = (
    ("pubmed", "pm_id"),
    ("medline", "pm_id"),
    ("eric", "eric"),
    ("scopus", "Scopus EID"),
    ("web of science", "Web of Science"),
    ("embase", "Embase"),
    ("psycinfo", "PsycINFO"),
)


def pages(value: str) -> tuple[str | None, str | None]:
    """First and last page ("1309-1348", "i-ii", "e1234")."""
    first, *rest = _PAGE_DASH.split(value.strip(), maxsplit=1)
    return first or None, (rest[0] or None) if rest else None


def _accession(value: str, database: str | None) -> list[IdentifierValue]:
    """`%M`'s id, named after the database the entry comes from (its form if none is named)."""
    value = value.strip()
    named = (database or "").lower()
    for part, owner in _ACCESSION_OWNERS:
        if part in named:
            if owner == "pm_id":
                return identify.pubmed(value) if value.isdigit() else []
            if owner == "eric":
                return identify.eric(value)
            return identify.other(owner, value)
    if value.startswith("2-s2.0-"):
        return identify.other("Scopus EID", value)
    if value.upper().startswith("WOS:"):
        return identify.other("Web of Science", value)
    return identify.eric(value) if re.fullmatch(r"E[DJ][0-9]{5,7}", value) else []


def _identifiers(listed: dict[str, list[str]], database: str | None) -> list[IdentifierValue]:
    found: list[IdentifierValue] = []
    for value in listed.get("%R", ()):
        # "Electronic Resource Number": a DOI as a rule, though writers put other ids there.
        dois = identify.dois_in(value)
        found.extend(
            [("doi", doi, None) for doi in dois]
            if dois
            else identify.other("EndNote electronic resource number", value)
        )
    for value in listed.get("%U", ()):
        for url in value.split():
            found.extend(identify.in_url(url))
    for value in listed.get("%M", ()):
        found.extend(_accession(value, database))
    return found


def _year(first: dict[str, str]) -> int | None:
    for tag in ("%D", "%8"):
        value = first.get(tag, "")
        if value[:4].isdigit():
            return int(value[:4])
        match = _YEAR.search(value)
        if match:
            return int(match.group(1))
    return None


class EndNoteReader(BlockReader):
    name = "endnote"
    syntax = SYNTAX

    def work(self, entry: Entry, header: Header) -> Work:
        first = dict(reversed(entry.fields))  # each tag's first value
        listed: dict[str, list[str]] = {}
        for tag, value in [field for field in entry.fields if field[0] in _LISTED]:
            listed.setdefault(tag, []).append(value)
        database = first.get("%~") or first.get("%W")
        first_page, last_page = pages(first.get("%P", ""))
        return Work(
            title=first.get("%T"),
            authors=listed.get("%A", []),
            year=_year(first),
            # A journal's name is %J; AIS eLibrary writes it as %B, a chapter's book is %B.
            venue=first.get("%J") or first.get("%B"),
            venue_type=_VENUE_TYPES.get(first.get("%0", "").lower()),
            volume=first.get("%V"),
            issue=first.get("%N"),
            first_page=first_page,
            last_page=last_page,
            publisher=first.get("%I"),
            issns=[
                f"{match.group(1)}-{match.group(2).upper()}"
                for value in listed.get("%@", ())
                for match in [_ISSN.match(value)]
                if match
            ],
            abstract=first.get("%X"),
            identifiers=_identifiers(listed, database),
            database=database,
        )


READER = EndNoteReader()
