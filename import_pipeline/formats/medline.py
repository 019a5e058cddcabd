"""PubMed/MEDLINE tagged text (``.nbib``, ``.medline``), and the MEDLINE-like text ERIC exports.

A record is a block of ``TAG - value`` lines (PubMed pads its tags to four characters: ``PMID-``,
``AB  -``; ERIC writes ``ISSN -``), a value that wraps going on in lines indented six spaces.
Records are separated by blank lines; a ``PMID-`` line starts one where the blank line is
missing. PubMed's tags: https://pubmed.ncbi.nlm.nih.gov/help/#pubmed-format.

No library is used: the format is a dozen lines of reading (`tagged_blocks.py`); what needs
care is what the tags mean (full author names in ``FAU``, the last page abbreviated in ``PG``,
the identifier kind after ``AID``/``LID`` values, ERIC's ids in ``OID`` and URLs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Piece, Work
from import_pipeline.formats.tagged_blocks import BlockSplitter, TaggedSyntax, block_entries

SYNTAX = TaggedSyntax(
    name="MEDLINE", tag="[A-Z][A-Z0-9]{1,4}", separator=" {0,3}-", record_tag="PMID- ", joiner=" "
)

_ISSN = re.compile(r"\b([0-9]{4})-?([0-9]{3}[0-9Xx])\b")
_YEAR = re.compile(r"\b([12][0-9]{3})\b")
# "10.1056/NEJMoa2001017 [doi]", "S0140-6736(20)30183-5 [pii]": the value, then its kind.
_KIND = re.compile(r"^(.*?)\s*\[([a-z]+)\]$")
_DIGITS_END = re.compile(r"^(.*?)([0-9]+)$")
#: Other databases' ids after an AID/LID value, by the kind PubMed gives them. A publisher's
#: item id ("[pii]": an Elsevier PII, a manuscript number) names no database: it stays in `raw`.
_OTHER_KINDS = {"pmc": "PMCID", "pmcid": "PMCID"}


def last_page(first: str, last: str) -> str:
    """MEDLINE's abbreviated last page written out: ("123", "30") → "130", ("S12", "8") →
    "S18"; a last page as long as the first, or not a plain number, is kept."""
    first_match = _DIGITS_END.match(first)
    if first_match is None or not last.isdigit():
        return last
    prefix, digits = first_match.groups()
    if len(last) >= len(digits):
        return last
    return prefix + digits[: len(digits) - len(last)] + last


def pages(value: str) -> tuple[str | None, str | None]:
    """First and last page of a page range ("123-30", "e1234", "1021-9; discussion 1030")."""
    span = re.split(r"[;,]", value, maxsplit=1)[0].strip()
    if not span:
        return None, None
    first, dash, last = span.replace("\u2013", "-").partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not last:
        return first or None, None
    return first or None, last_page(first, last)


def _located(value: str, is_eric: bool) -> list[IdentifierValue]:
    """The ids of an AID or LID value: "… [doi]", "… [pii]", or (ERIC) a URL or an ERIC id."""
    match = _KIND.match(value)
    if match is None:
        found = identify.in_url(value) if "/" in value else []
        return found + (identify.eric(value) if is_eric and not found else [])
    located, kind = match.groups()
    if kind == "doi":
        return identify.doi(located)
    if kind in _OTHER_KINDS:
        return identify.other(_OTHER_KINDS[kind], located)
    return []


def _identifiers(values: dict[str, list[str]], is_eric: bool) -> list[IdentifierValue]:
    found: list[IdentifierValue] = []
    for pmid in values.get("PMID", ()):
        found.extend(identify.pubmed(pmid))
    for tag in ("AID", "LID"):
        for value in values.get(tag, ()):
            found.extend(_located(value, is_eric))
    for value in values.get("OID", ()):
        found.extend(identify.eric(value) if is_eric else [])
    for value in values.get("PMC", ()):
        found.extend(identify.other("PMCID", value))
    for value in values.get("SO", ()):
        if "doi" in value:
            found.extend(("doi", doi, None) for doi in identify.dois_in(value))
    return found


def _authors(fields: tuple[tuple[str, str], ...]) -> list[str]:
    """Authors in order: each full name (``FAU``) rather than the short one (``AU``) after it;
    an ``AU`` with no ``FAU`` (ERIC, older records) and a group's name (``CN``) as they are."""
    authors: list[str] = []
    paired = False  # the last FAU still waits for its AU
    for tag, value in fields:
        if tag == "FAU":
            authors.append(value)
            paired = True
        elif tag == "AU":
            if not paired:
                authors.append(value)
            paired = False
        elif tag == "CN":
            authors.append(value)
            paired = False
    return authors


def _year(values: dict[str, list[str]]) -> int | None:
    for tag in ("DP", "DEP", "YR"):
        for value in values.get(tag, ()):
            match = _YEAR.search(value)
            if match:
                return int(match.group(1))
    return None


def _first(values: dict[str, list[str]], *tags: str) -> str | None:
    for tag in tags:
        for value in values.get(tag, ()):
            if value:
                return value
    return None


def _database(values: dict[str, list[str]]) -> str | None:
    owner = (_first(values, "OWN") or "").upper()
    if owner == "ERIC":
        return "ERIC"
    if "PMID" in values or owner in ("NLM", "PIP", "KIE", "NASA", "HSR", "HMD", "NOTNLM"):
        return "PubMed"
    return None


class MedlineReader:
    name = "medline"

    def header(self, head: str) -> Header:
        return Header()  # a MEDLINE file names nothing once for all its records

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> BlockSplitter:
        return BlockSplitter(SYNTAX, max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        return block_entries(SYNTAX, piece)

    def work(self, entry: Entry, header: Header) -> Work:
        values: dict[str, list[str]] = {}
        for tag, value in entry.fields:
            values.setdefault(tag, []).append(value)
        database = _database(values)
        first_page, final_page = pages(_first(values, "PG") or "")
        venue = _first(values, "JT", "TA")
        title = _first(values, "TI", "BTI", "TT")
        book = _first(values, "BTI")
        return Work(
            title=title,
            authors=_authors(entry.fields),
            year=_year(values),
            venue=venue or (book if book != title else None),  # a chapter's book
            venue_type="journal" if venue else None,
            volume=_first(values, "VI"),
            issue=_first(values, "IP"),
            first_page=first_page,
            last_page=final_page,
            publisher=_first(values, "PB"),
            issns=[
                f"{match[0]}-{match[1].upper()}"
                for value in values.get("IS", []) + values.get("ISSN", [])
                for match in _ISSN.findall(value)
            ],
            abstract="\n".join(values["AB"]) if "AB" in values else None,
            identifiers=_identifiers(values, database == "ERIC"),
            database=database,
        )


READER = MedlineReader()
