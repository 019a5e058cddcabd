"""What a BibTeX entry's fields say, as a `Work`: field names read case-insensitively, the
first of a repeated field for the work (all of them for identifiers), LaTeX as text.

Dialects: BibLaTeX's ``journaltitle``, ``date = {2020-01-02}`` and ``eprinttype``; Scopus's
``art_number`` and ``source = {Scopus}``; ACM's ``articleno``; Web of Science's
``Article-Number`` and ``Unique-ID = {WOS:…}``; DBLP's ``bibsource``; Mendeley's ``arxivId``;
Wiley's and Taylor & Francis's DOI URLs in ``doi``, ``url`` and ``eprint``."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from import_pipeline.formats import identify
from import_pipeline.formats.base import IdentifierValue, Work
from import_pipeline.formats.bibtex_latex import author_names, plain_text

_YEAR = re.compile(r"(?<![0-9])([12][0-9]{3})(?![0-9])")
_PAGE_RANGE = re.compile(r"^(?:pp?\.\s*)?([^\s\-–—]+)\s*[-–—]+\s*([^\s\-–—]+)$")
_ISSN = re.compile(r"(?<![0-9A-Za-z-])([0-9]{4})-?([0-9]{3}[0-9Xx])(?![0-9A-Za-z-])")
_SCOPUS_EID = re.compile(r"(?i)\beid=(2-s2\.0-[0-9]+)")
_ARXIV_URL = re.compile(r"(?i)arxiv\.org/(?:abs|pdf)/([^\s?#]+)")
_ARXIV_IN_TEXT = re.compile(
    r"(?i)\barxiv:\s*([0-9]{4}\.[0-9]{4,5}(?:v[0-9]+)?|[a-z-]+(?:\.[a-z]{2})?/[0-9]{7})"
)
_ARXIV_ID = re.compile(r"^(?:[0-9]{4}\.[0-9]{4,5}|[a-z-]+(?:\.[A-Z]{2})?/[0-9]{7})(?:v[0-9]+)?$")
_PMID_IN_TEXT = re.compile(r"(?i)\bPMID:?\s*([0-9]{1,9})\b")
_PMCID_IN_TEXT = re.compile(r"(?i)\b(PMC[0-9]+)\b")
# What LaTeX wraps around a link or an identifier: \url{…}, {\_}, \%.
_LATEX_AROUND = re.compile(r"\\url\s*|\\(?=[_%&#~])|[{}]")

_VENUE_FIELDS = ("journaltitle", "journal", "booktitle")
_ARTICLE_NUMBER_FIELDS = ("articleno", "art_number", "article-number", "eid")
_VENUE_TYPES = {
    "article": "journal",
    "inproceedings": "conference",
    "conference": "conference",
    "proceedings": "conference",
}
#: The databases a ``source`` field may name (Scopus writes ``source = {Scopus}``).
_DATABASES = {
    name.lower(): name
    for name in (
        "Scopus", "Web of Science", "PubMed", "MEDLINE", "Embase", "PsycINFO", "ERIC",
        "CINAHL", "IEEE Xplore", "ACM Digital Library", "DBLP", "Google Scholar", "Crossref",
        "OpenAlex", "Semantic Scholar", "arXiv", "ProQuest", "EBSCOhost", "JSTOR",
        "Cochrane Library", "Dimensions", "Lens",
    )
}  # fmt: skip


def _unwrapped(value: str) -> str:
    """An identifier or link without the LaTeX around it."""
    return _LATEX_AROUND.sub("", value) if "\\" in value or "{" in value else value


def _link(value: str) -> list[IdentifierValue]:
    """The identifiers a link names (a Scopus link's percent-encoded DOI too: a DOI read from a
    query string ends at the next parameter)."""
    value = _unwrapped(value)
    lowered = value.lower()
    found: list[IdentifierValue] = []
    # Most links name none (Scopus's): what a link `identify.in_url` reads one from holds.
    if (
        "doi" in lowered
        or "pubmed" in lowered
        or "eric.ed" in lowered
        or "openalex" in lowered
        or "proquest" in lowered
    ):
        plain = unquote(value) if "%" in value else value
        for kind, found_id, name in identify.in_url(plain):
            if kind == "doi":
                found_id = re.split(r"[&?#]", found_id, maxsplit=1)[0]
                if found_id.endswith("/"):  # nothing of it was left before the parameter
                    continue
            found.append((kind, found_id, name))
    if "eid=" in value:
        found.extend(("other", eid, "Scopus EID") for eid in _SCOPUS_EID.findall(value))
    if "arxiv" in lowered:
        for arxiv in _ARXIV_URL.findall(value):
            found.extend(identify.other("arXiv", arxiv.removesuffix(".pdf")))
    return found


def _in_note(value: str) -> list[IdentifierValue]:
    """PubMed, PMC and arXiv ids a note names ("PMID: 123", Zotero's "arXiv: 2101.00001")."""
    lowered = value.lower()
    if "pm" not in lowered and "arxiv" not in lowered:
        return []
    found: list[IdentifierValue] = [("pm_id", m, None) for m in _PMID_IN_TEXT.findall(value)]
    found.extend(("other", m.upper(), "PMCID") for m in _PMCID_IN_TEXT.findall(value))
    found.extend(("other", m, "arXiv") for m in _ARXIV_IN_TEXT.findall(value))
    return found


def _accession(value: str) -> list[IdentifierValue]:
    """Web of Science's own id (``WOS:…``, once ``ISI:…``): its Unique-ID, or an entry key."""
    value = value.strip()
    return identify.other("Web of Science", value) if value[:4].upper() in ("WOS:", "ISI:") else []


def _article_number_id(value: str) -> list[IdentifierValue]:
    # BibLaTeX's eid is an article number, but a Scopus EID where it has that form.
    return identify.other("Scopus EID", value) if value.startswith("2-s2.0-") else []


_IDENTIFIER_FIELDS: dict[str, Callable[[str], list[IdentifierValue]]] = {
    "doi": identify.doi,
    "url": _link,
    "link": _link,
    "howpublished": _link,
    "pmid": identify.pubmed,
    "pubmed": identify.pubmed,
    "pubmed_id": identify.pubmed,  # Scopus's
    "pubmed-id": identify.pubmed,  # Web of Science's
    "pmcid": lambda value: identify.other("PMCID", value),
    "arxivid": lambda value: identify.other("arXiv", value),
    "eric": identify.eric,
    "note": _in_note,
    "annote": _in_note,
    "annotation": _in_note,
    "extra": _in_note,
    "unique-id": _accession,
    "id": _accession,
    "eid": _article_number_id,
    "journal": lambda value: _in_note(value) if "arxiv:" in value.lower() else [],
}


def _eprint(values: dict[str, str]) -> list[IdentifierValue]:
    """An eprint: a link (Wiley, Taylor & Francis), or an id its type names (arXiv, PubMed)."""
    eprint = _unwrapped(values.get("eprint", "")).strip()
    if not eprint:
        return []
    if "://" in eprint or eprint.startswith("www."):
        return _link(eprint)
    kind = (values.get("eprinttype") or values.get("archiveprefix") or "").lower()
    if kind == "arxiv" or (not kind and _ARXIV_ID.match(eprint)):
        return identify.other("arXiv", eprint.removeprefix("arXiv:"))
    if kind in ("pubmed", "pmid"):
        return identify.pubmed(eprint)
    if kind == "doi":
        return identify.doi(eprint)
    if kind == "jstor":
        return identify.other("JSTOR", eprint)
    return []


def _text(values: dict[str, str], *names: str) -> str | None:
    """The first of the fields `names` that has text, as text."""
    for name in names:
        value = values.get(name)
        if value:
            text = plain_text(value)
            if text:
                return text
    return None


def _year(values: dict[str, str]) -> int | None:
    for name in ("year", "date"):
        value = values.get(name, "")
        if value.isdigit() and len(value) == 4:
            return int(value)
        found = _YEAR.search(value)
        if found is not None:
            return int(found.group(1))
    return None


def _title(values: dict[str, str]) -> str | None:
    title = _text(values, "title")
    subtitle = _text(values, "subtitle")  # BibLaTeX's
    if title and subtitle:
        return f"{title}: {subtitle}"
    return title or subtitle


def _pages(values: dict[str, str]) -> tuple[str | None, str | None]:
    """First and last page ("12--19", "e1234", "S12--S19"; "349-69" completed to 369); with no
    pages, the article number (Scopus's art_number, ACM's articleno…) as the first page."""
    pages = _text(values, "pages")
    if pages is None:
        number = _text(values, *_ARTICLE_NUMBER_FIELDS)
        return (number, None) if number and not number.startswith("2-s2.0-") else (None, None)
    found = _PAGE_RANGE.match(pages)
    if found is None:
        return pages, None
    first, last = found.group(1), found.group(2)
    if first.isdigit() and last.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first, last


def _issns(values: dict[str, str]) -> list[str]:
    """The ISSNs of the issn fields ("0765-4321", "07654321 (Print)"); an ISBN is not one."""
    found: list[str] = []
    for name in ("issn", "eissn"):
        value = values.get(name)
        if not value:
            continue
        whole = _ISSN.fullmatch(value)
        if whole is not None:
            found.append(f"{whole.group(1)}-{whole.group(2).upper()}")
            continue
        for part in re.split(r"[;,]", value):
            if "isbn" not in part.lower():
                found.extend(f"{a}-{b.upper()}" for a, b in _ISSN.findall(part))
    return found


def _database(values: dict[str, str]) -> str | None:
    """The database the entry names: Scopus's ``source``, DBLP's ``bibsource``."""
    source = _DATABASES.get(values.get("source", "").strip().lower())
    if source is None and "dblp" in values.get("bibsource", "").lower():
        return "DBLP"
    return source


def _venue_type(values: dict[str, str]) -> str | None:
    # Scopus writes a conference paper in a journal-like series as @article.
    if "conference" in values.get("document_type", "").lower():
        return "conference"
    return _VENUE_TYPES.get(values.get("entrytype", "").lower())


def work_of(fields: tuple[tuple[str, str], ...]) -> Work:
    """The work an entry's fields (``ENTRYTYPE`` and ``ID`` first) describe."""
    values: dict[str, str] = {}
    identifiers: list[IdentifierValue] = []
    for name, value in fields:
        key = name.lower()
        if key not in values:
            values[key] = value
        read = _IDENTIFIER_FIELDS.get(key)
        if read is not None and value:
            identifiers.extend(read(_unwrapped(value)))
    identifiers.extend(_eprint(values))
    work = Work(
        title=_title(values),
        authors=author_names(values["author"]) if values.get("author") else [],
        year=_year(values),
        venue=_text(values, *_VENUE_FIELDS),
        volume=_text(values, "volume"),
        issue=_text(values, "number", "issue"),
        publisher=_text(values, "publisher"),
        issns=_issns(values),
        abstract=_text(values, "abstract"),
        identifiers=identifiers,
        database=_database(values),
    )
    if work.venue:
        work.venue_type = _venue_type(values)
    work.first_page, work.last_page = _pages(values)
    return work
