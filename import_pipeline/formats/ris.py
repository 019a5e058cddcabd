"""RIS (contract section 10), in the dialects of Scopus, Embase, Ovid, PsycINFO, ProQuest, Web of
Science, JSTOR, IEEE, PubMed (through EndNote), Zotero, EndNote and Mendeley.

A record runs from its ``TY  -`` line to its ``ER  -`` line. A record whose tag lines are all as
the specification writes them is split into fields by one regular expression; continuation
lines without a tag belong to the field above, joined with ``\\n``. Lower-case tags, tags with
one space before the dash and four-letter tags (``PMID``) are read when they are known RIS tags.
A record that reaches the next ``TY`` or the end of the file before its ``ER`` fails alone;
text outside records is furniture (Ovid's ``1.`` counters, JSTOR's ``Provider:`` header), or
written after ``ER`` by Ovid (its ``NL`` tag and links, which stay with their record), or else
fails alone as an entry of its own.

rispy (0.10.0) is not used. On a whole file it merges a record that lacks ``ER`` into the next
(CoLRev's file becomes one record whose eleven "authors" are both records' eight and three
keyword lines) and drops the last record when the file ends without ``ER``; called per record,
as line numbers and records failing alone need, it still reads nothing of a lower-case record,
takes a one-space tag line for text of the field above, keeps only the first value of a
repeated tag that is not one of its list tags (Embase's second DB and its M1s, Web of Science's
second SN, Ovid's second PB), joins most tags' continuation lines with spaces, drops what Ovid writes
after ``ER``. Its `loads` alone also takes two to three times as long per record as `entries`
here (measured on Scopus, Embase and PubMed records).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

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

# A tag line as the specification writes it (two upper-case characters, two spaces, a dash) or
# loosely (lower case, one space, four characters as IEEE's PMID, then a space or the line's
# end).
_STRICT = r"[A-Z][A-Z0-9]  -"
_TAG_LINE = rf"(?:{_STRICT}|[A-Za-z][A-Za-z0-9]{{1,3}} {{1,2}}-(?=[ \t\r\n]|\Z))"
_TAG_AT = re.compile(r"(?:([A-Z][A-Z0-9])  -|([A-Za-z][A-Za-z0-9]{1,3}) {1,2}-(?=[ \t\r\n]|\Z))")
# Splitting a record at strict tag lines is one C-speed pass instead of Python work per line.
_STRICT_TAG = re.compile(r"\n([A-Z][A-Z0-9])  -")
_LOOSE_TAG = re.compile(rf"\n(?!{_STRICT})(?={_TAG_LINE})")
_FIELD_SPLIT = re.compile(rf"\n(?={_TAG_LINE})")
#: Tags read even when written loosely (lower case, one space, four letters): the RIS
#: specification's and those Web of Science, Ovid and IEEE add. A loose line with another tag
#: is text ("HIV - positive" goes on with an abstract).
KNOWN_TAGS = frozenset(
    "TY A1 A2 A3 A4 AB AD AI AN AU AV BT C1 C2 C3 C4 C5 C6 C7 C8 CA CN CP CT CY DA DB DI DO DP "
    "ED EP ER ET FU FX ID IS J1 J2 J9 JA JF JI JO KW L1 L2 L3 L4 LA LB LK M1 M2 M3 N1 N2 NL NV "
    "OP PA PB PI PMID PP PU PY RI RN RP SE SN SP ST T1 T2 T3 TA TI TT U1 U2 U3 U4 U5 UR VL VO "
    "WE Y1 Y2".split()
)
# Lines outside records that say nothing about a reference: Ovid's and JSTOR's counters and
# headers, an end-of-file mark, a comment line ("% Comment", "# exported by…").
_FURNITURE = re.compile(
    r"(?i)^(?:[0-9]+\.|record #?[0-9]+ of [0-9]+|(?:provider|database|content):.*|EF|[%#].*)$"
)
# What Ovid writes after a record's ER: "Link to the Ovid Full Text or citation: URL…".
_OVID_LINK = re.compile(r"^(Link to [^:\n]{1,80}):[ \t]*(.*)$")

_DOI_ONLY = re.compile(r"(?i)^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?10\.[0-9]{4,9}/\S+$")
_SCOPUS_EID = re.compile(r"\b[Ee][Ii][Dd]=(2-s2\.0-[0-9]+)")
_OVID_DATABASE = re.compile(r"(?i)[?&]D=([a-z]{4})")  # in an ovid.com link
_JSTOR_STABLE = re.compile(r"jstor\.org/stable/([0-9]+)")  # in a lower-cased link
#: What a link holds when `identify.in_url` finds an identifier other than a DOI in it.
_IDENTIFYING_LINKS = ("pubmed", "openalex", "proquest", "eric.ed.gov")
_PSYCINFO_ID = re.compile(r"^[0-9]{4}-[0-9]{5}-[0-9]{3}$")
_EMBASE_ID = re.compile(r"^L[0-9]{6,}$")
_ERIC_ID = re.compile(r"^E[DJ][0-9]+$")
_ARTICLE_NUMBER = re.compile(r"^(?:[eE][0-9]+|[0-9]{5,})$")
#: Ovid's database codes (the ``D=`` of its links) and the databases they are.
_OVID_CODES = {
    "psyc": "PsycINFO",
    "emed": "Embase",
    "emez": "Embase",
    "emba": "Embase",
    "medl": "MEDLINE",
    "prem": "MEDLINE",
    "mesz": "MEDLINE",
}
#: Providers that name a database otherwise (EndNote's PubMed import writes ``DP  - NLM``).
_DATABASE_ALIASES = {"NLM": "PubMed"}
#: Where a dialect puts PubMed ids: Scopus in C2, Embase in C5.
_PUBMED_TAGS = {"Scopus": "C2", "Embase": "C5"}
_LINK_TAGS = ("UR", "L1", "L2", "L4", "LK")
_JOURNAL_TYPES = frozenset({"JOUR", "EJOUR", "JFULL", "INPR", "MGZN", "ABST"})
_CONFERENCE_TYPES = frozenset({"CONF", "CPAPER"})
_CHAPTER_TYPES = frozenset({"CHAP", "ECHAP"})
_BOOK_TYPES = frozenset({"BOOK", "EBOOK", "EDBOOK"})


def read_fields(record: str) -> Fields:
    """A record's fields in file order (the ER line excluded), each value stripped and its
    continuation lines joined with ``\\n``."""
    record = "\n" + record
    if _LOOSE_TAG.search(record) is None and record[1:6] == "TY  -":
        split = _STRICT_TAG.split(record)
        return list(zip(split[1::2], map(str.strip, split[2::2]), strict=True))
    # The values' parts gathered, then joined once: each added line copies nothing.
    names: list[str] = []
    parts: list[list[str]] = []
    for chunk in _FIELD_SPLIT.split(record)[1:]:
        field = _field(chunk)
        if field is None and parts:  # not a tag ("HIV - positive"): the value above goes on
            parts[-1].append(chunk)
        elif field is not None:
            names.append(field[0])
            parts.append([field[1]])
    return [(name, "\n".join(part).strip()) for name, part in zip(names, parts, strict=True)]


def _field(line: str) -> tuple[str, str] | None:
    """A field from a line (and its continuation lines) that starts with a RIS tag, strict or
    loose and known."""
    tag = _TAG_AT.match(line)
    if tag is None or (tag.group(2) is not None and tag.group(2).upper() not in KNOWN_TAGS):
        return None
    return tag.group(1) or tag.group(2), line[tag.end() :].strip()


def _after_end(line: str) -> tuple[str, str] | None:
    """A line after ER that is still its record's (Ovid's NL tag and links), as a field."""
    field = _field(line)
    link = _OVID_LINK.match(line) if field is None else None
    return (link.group(1), link.group(2).strip()) if link is not None else field


SYNTAX = TaggedSyntax(
    name="RIS",
    start_tag="TY",
    end_tag="ER",
    start=r"[Tt][Yy] {1,2}-(?=[ \t\r\n]|\Z)",
    start_literal="\nTY  -",
    end=r"[Ee][Rr] {1,2}-([^\n]*)",
    read_fields=read_fields,
    furniture=_FURNITURE,
    after_end=_after_end,
)


def _database(values: dict[str, list[str]], one: dict[str, str]) -> str | None:
    """The database the record names: DB, else DP, else the one its Ovid link names."""
    named = one.get("DB") or one.get("DP")
    if named is not None:
        return _DATABASE_ALIASES.get(named, named)
    for tag in _LINK_TAGS:
        for link in values.get(tag, ()):
            ovid = _OVID_DATABASE.search(link) if "ovid.com/" in link.lower() else None
            if ovid is not None and ovid.group(1).lower() in _OVID_CODES:
                return _OVID_CODES[ovid.group(1).lower()]
    return None


def _title(one: dict[str, str], kind: str) -> str | None:
    # A whole book may name itself only in BT or T2 (its "book title").
    tags = ("TI", "T1", "CT", "BT", "T2") if kind in _BOOK_TYPES else ("TI", "T1", "CT")
    for tag in tags:
        title = one.get(tag)
        if title:
            return one_line(title)
    return None


def _venue(one: dict[str, str], kind: str) -> tuple[str | None, str | None]:
    """The venue and its type: a chapter's book (T2 is the book's title there), a book's
    series, a paper's proceedings, an article's journal (JF the full name where both are)."""
    tags: tuple[str, ...]
    venue_type: str | None
    if kind in _CHAPTER_TYPES:
        tags, venue_type = ("T2", "BT", "T3"), None
    elif kind in _BOOK_TYPES:
        tags, venue_type = ("T3",), "book_series"
    elif kind in _CONFERENCE_TYPES:
        tags, venue_type = ("T2", "BT", "T3", "JF", "JO"), "conference"
    else:
        tags = ("JF", "T2", "JO", "JA", "J2", "J1", "BT")
        venue_type = "journal" if kind in _JOURNAL_TYPES else None
    for tag in tags:
        venue = one.get(tag)
        if venue:
            return one_line(venue), venue_type
    return None, None


def _authors(values: dict[str, list[str]]) -> list[str]:
    # AU and A1 both hold the primary authors; A2-A4 are editors and others (Ovid's A2 even
    # lists the cited authors).
    names = values.get("AU", []) + values.get("A1", [])
    return [line.strip() for name in names for line in name.split("\n") if line.strip()]


def _pages(values: dict[str, list[str]], one: dict[str, str]) -> tuple[str | None, str | None]:
    start, end = one.get("SP"), one.get("EP")
    if start == "No" and end == "Specified":  # Ovid's "No Pagination Specified", cut in two
        start = end = None
    if start:
        return article_pages(start, end)
    # An article number stands as the first page: Scopus's and Web of Science's C7, an M1
    # that is one (Embase's M1 is an address, Ovid's a cited reference, EndNote's an issue).
    numbers = [m1 for m1 in values.get("M1", ()) if _ARTICLE_NUMBER.match(m1)]
    return one.get("C7") or (numbers[0] if numbers else None), None


def _accession(value: str, database: str | None) -> list[IdentifierValue]:
    """An accession number, named after the database it is of (its form tells, else the
    record's database)."""
    source = (database or "").lower()
    digits = value.isdigit()
    if value[:4].upper() == "WOS:":
        return identify.other("Web of Science", value)
    if value.startswith("2-s2.0-"):
        return identify.other("Scopus EID", value)
    if _PSYCINFO_ID.match(value):
        return identify.other("PsycINFO", value)
    if _EMBASE_ID.match(value):
        return identify.other("Embase", value)
    if _ERIC_ID.match(value):
        return identify.eric(value)
    if digits and "proquest" in source:
        return [("pro_quest", value, None)]
    if digits and source in ("pubmed", "medline"):
        return identify.pubmed(value)
    return identify.other(database, value) if database else []


def _link_identifiers(link: str) -> list[IdentifierValue]:
    """The identifiers a link names (Scopus's and SFX's percent-encoded DOIs too); a DOI read
    from a query string ends at the next parameter. Each search runs only on a link that names
    its site: most links are publishers' pages and link resolvers, some hundreds of characters
    long."""
    lowered = link.lower()
    found: list[IdentifierValue] = []
    if "doi" in lowered:
        plain = unquote(link) if "%2f" in lowered else link
        for doi in identify.dois_in(plain):
            found.append(("doi", re.split(r"[&?#]", doi, maxsplit=1)[0], None))
    if any(marker in lowered for marker in _IDENTIFYING_LINKS):
        found.extend(found_id for found_id in identify.in_url(link) if found_id[0] != "doi")
    if "eid=2-s2.0-" in lowered:
        for eid in _SCOPUS_EID.findall(link):
            found.extend(identify.other("Scopus EID", eid))
    if "jstor.org/stable/" in lowered:
        for stable in _JSTOR_STABLE.findall(lowered):
            found.extend(identify.other("JSTOR", stable))
    return found


def _identifiers(values: dict[str, list[str]], database: str | None) -> list[IdentifierValue]:
    found: list[IdentifierValue] = []
    for tag in ("DO", "DI"):  # DI: Web of Science's RIS and some EndNote styles
        for value in values.get(tag, ()):
            found.extend(doi_field(value))
    for tag in ("M3", "L3"):  # a DOI only when it is one: Embase's M3 is "Article"
        for value in values.get(tag, ()):
            if _DOI_ONLY.match(value):
                found.extend(doi_field(value))
    for tag in _LINK_TAGS:
        for value in values.get(tag, ()):
            for link in value.split():
                if len(link) <= LONGEST_IDENTIFIER:
                    found.extend(_link_identifiers(link))
    return found + _database_identifiers(values, database)


def _database_identifiers(
    values: dict[str, list[str]], database: str | None
) -> list[IdentifierValue]:
    """Accession numbers (AN; Ovid's PsycINFO id in ID, Embase's in U2) and PubMed ids."""
    found: list[IdentifierValue] = []
    for value in values.get("AN", ()):
        found.extend(_accession(value, database))
    for value in values.get("ID", []) + values.get("U2", []):
        if _PSYCINFO_ID.match(value) or _EMBASE_ID.match(value):
            found.extend(_accession(value, database))
    pubmed_tag = _PUBMED_TAGS.get(database or "", "")
    pubmed_ids = values.get("PMID", []) + [v for v in values.get(pubmed_tag, ()) if v.isdigit()]
    for value in pubmed_ids:
        found.extend(identify.pubmed(value))
    return found


class RisReader:
    name = "ris"

    def header(self, head: str) -> Header:
        """JSTOR and ProQuest name the database in a header line (``Database: JSTOR``)."""
        head = head.lstrip("\ufeff")
        found = None if SYNTAX.start_at.match(head) else SYNTAX.line_start.search(head)
        preamble = "" if found is None and SYNTAX.start_at.match(head) else head
        preamble = preamble[: found.start()] if found is not None else preamble
        named = re.search(r"(?im)^database:[ \t]*(\S.*?)[ \t\r]*$", preamble)
        return Header(database=named.group(1) if named is not None else None)

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> StartSplitter:
        return RecordSplitter(SYNTAX, max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        return tagged_entries(piece, SYNTAX)

    def work(self, entry: Entry, header: Header) -> Work:
        values, one = values_by_tag(entry.fields)
        kind = one.get("TY", "").upper()
        database = _database(values, one)
        venue, venue_type = _venue(one, kind)
        first_page, last_page = _pages(values, one)
        return Work(
            title=_title(one, kind),
            authors=_authors(values),
            year=year_in(values, ("PY", "Y1", "DA")),
            venue=venue,
            venue_type=venue_type,
            volume=one.get("VL") or one.get("VO"),
            issue=one.get("IS"),
            first_page=first_page,
            last_page=last_page,
            publisher=one.get("PB") or one.get("PU"),
            issns=issns(values.get("SN", [])),
            abstract=one.get("AB") or one.get("N2"),
            identifiers=_identifiers(values, database),
            database=database,
        )


READER = RisReader()
