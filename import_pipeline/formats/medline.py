"""PubMed/MEDLINE tagged text (``.nbib``, ``.medline``), and the MEDLINE-like text ERIC exports.

A record is a block of ``TAG - value`` lines (PubMed pads its tags to four characters: ``PMID-``,
``AB  -``; ERIC writes ``ISSN -``), a value that wraps going on in lines indented six spaces.
Records are separated by blank lines; a ``PMID-`` line starts one where the blank line is
missing. PubMed's tags: https://pubmed.ncbi.nlm.nih.gov/help/#pubmed-format.

Read here rather than by Biopython's `Bio.Medline`, which keeps a record as a dict by tag (the
order of different tags, an author's FAU then AU, is lost), has no line numbers nor bounded
reading of a stream, and would bring Biopython and NumPy for what `tagged_blocks.py` does in a
regex split. What needs care is what the tags mean: full author names in ``FAU``, the last page
abbreviated in ``PG``, the kind after an ``AID``/``LID`` value, ERIC's ids in ``OID`` and URLs.
"""

from __future__ import annotations

import re

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Work
from import_pipeline.formats.tagged_blocks import BlockReader, TaggedSyntax

SYNTAX = TaggedSyntax(
    name="MEDLINE", tag="[A-Z][A-Z0-9]{1,4}", separator=" {0,3}-", record_tag="PMID- ", joiner=" "
)

_ISSN = re.compile(r"\b([0-9]{4})-?([0-9]{3}[0-9Xx])\b")
_YEAR = re.compile(r"\b([12][0-9]{3})\b")
_DIGITS_END = re.compile(r"^(.*?)([0-9]+)$")
#: Other databases' ids after an AID/LID value, by the kind PubMed gives them. A publisher's
#: item id ("[pii]": an Elsevier PII, a manuscript number) names no database: it stays in `raw`.
_OTHER_KINDS = {"pmc": "PMCID", "pmcid": "PMCID"}
#: Tags read for every value; of the others the first value is read.
_LISTED = frozenset({"FAU", "AU", "CN", "AID", "LID", "OID", "IS", "ISSN", "AB"})
#: PubMed's owners of records (OWN): a record of theirs is PubMed's.
_PUBMED_OWNERS = frozenset({"NLM", "PIP", "KIE", "NASA", "HSR", "HMD", "NOTNLM", "PUBMED"})


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
    if ";" in value or "," in value:
        value = re.split(r"[;,]", value, maxsplit=1)[0]
    first, dash, last = value.replace("\u2013", "-").partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not last:
        return first or None, None
    return first or None, last_page(first, last)


def _located(value: str, is_eric: bool) -> list[IdentifierValue]:
    """The ids of an AID or LID value: "… [doi]", "… [pii]", or (ERIC) a URL or an ERIC id."""
    located, bracket, kind = value.rpartition("[")
    if not bracket or not kind.endswith("]"):
        found = identify.in_url(value) if "/" in value else []
        return found + (identify.eric(value) if is_eric and not found else [])
    kind = kind[:-1].strip().lower()
    if kind == "doi":
        return identify.doi(located)
    if kind in _OTHER_KINDS:
        return identify.other(_OTHER_KINDS[kind], located)
    return []


def _identifiers(
    first: dict[str, str], listed: dict[str, list[str]], is_eric: bool
) -> list[IdentifierValue]:
    found: list[IdentifierValue] = []
    pmid = first.get("PMID", "")
    found.extend([("pm_id", pmid, None)] if pmid.isdigit() else identify.pubmed(pmid))
    # LID repeats an AID as a rule: each value read once.
    for value in dict.fromkeys(listed.get("AID", []) + listed.get("LID", [])):
        found.extend(_located(value, is_eric))
    if is_eric:
        for value in listed.get("OID", ()):
            found.extend(identify.eric(value))
    found.extend(identify.other("PMCID", first.get("PMC", "")))
    source = first.get("SO", "")
    if "doi" in source and not any(kind == "doi" for kind, _, _ in found):
        found.extend(("doi", doi, None) for doi in identify.dois_in(source))
    return found


def _authors(fields: tuple[tuple[str, str], ...], listed: dict[str, list[str]]) -> list[str]:
    """Authors in order: each full name (``FAU``) rather than the short one (``AU``) after it;
    an ``AU`` with no ``FAU`` (ERIC, older records) and a group's name (``CN``) as they are."""
    full, short = listed.get("FAU", []), listed.get("AU", [])
    if "CN" not in listed and (not full or not short or len(full) == len(short)):
        return full or short  # one name each: no need to pair them
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


def _year(first: dict[str, str]) -> int | None:
    for tag in ("DP", "DEP", "YR"):
        value = first.get(tag, "")
        if value[:4].isdigit():
            return int(value[:4])
        match = _YEAR.search(value)
        if match:
            return int(match.group(1))
    return None


def _database(first: dict[str, str]) -> str | None:
    owner = first.get("OWN", "").upper()
    if owner == "ERIC":
        return "ERIC"
    return "PubMed" if "PMID" in first or owner in _PUBMED_OWNERS else None


class MedlineReader(BlockReader):
    name = "medline"
    syntax = SYNTAX

    def work(self, entry: Entry, header: Header) -> Work:
        fields = entry.fields
        first = dict(reversed(fields))  # each tag's first value
        listed: dict[str, list[str]] = {}
        for tag, value in [field for field in fields if field[0] in _LISTED]:
            listed.setdefault(tag, []).append(value)
        database = _database(first)
        first_page, final_page = pages(first.get("PG", ""))
        venue = first.get("JT") or first.get("TA")
        title = first.get("TI") or first.get("BTI") or first.get("TT")
        book = first.get("BTI")
        return Work(
            title=title,
            authors=_authors(fields, listed),
            year=_year(first),
            venue=venue or (book if book != title else None),  # a chapter's book
            venue_type="journal" if venue else None,
            volume=first.get("VI"),
            issue=first.get("IP"),
            first_page=first_page,
            last_page=final_page,
            publisher=first.get("PB"),
            issns=[
                f"{match[0]}-{match[1].upper()}"
                for value in listed.get("IS", []) + listed.get("ISSN", [])
                for match in _ISSN.findall(value)
            ],
            abstract="\n".join(listed["AB"]) if "AB" in listed else None,
            identifiers=_identifiers(first, listed, database == "ERIC"),
            database=database,
        )


READER = MedlineReader()
