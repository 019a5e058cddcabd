"""Identifiers found in the values of an export's fields: DOIs inside URLs and notes, PubMed,
ERIC, OpenAlex and ProQuest ids in the forms exports write them. Readers call these on the
fields that may carry one; the line model still judges every value found."""

from __future__ import annotations

import re

from import_pipeline.domain.formats import ENTRY_KEY_NAME
from import_pipeline.formats.base import IdentifierValue

# A DOI inside other text: "https://doi.org/10.1000/xyz", "doi:10.1000/xyz", "10.1000/xyz [doi]".
_DOI_IN_TEXT = re.compile(r"10\.[0-9]{4,9}/[^\s\"<>\[\]{}]+")
# Punctuation that ends a sentence or a list rather than the DOI.
_DOI_TRAILING = ".,;:)]}'\""
_PUBMED_URL = re.compile(
    r"(?i)(?:pubmed\.ncbi\.nlm\.nih\.gov/|ncbi\.nlm\.nih\.gov/pubmed/)([0-9]+)"
)
_PMID_PREFIX = re.compile(r"(?i)^pmid:?\s*")
_ERIC_ID = re.compile(r"(?i)\b(E[DJ][0-9]{5,7})\b")
_OPENALEX_ID = re.compile(r"(?i)openalex\.org/(?:works/)?(W[0-9]+)\b")
_PROQUEST_URL = re.compile(r"(?i)proquest\.com/(?:[a-z/-]*/)?docview/([0-9]+)")


def dois_in(text: str) -> list[str]:
    """Every DOI in `text`, in order, without the punctuation a sentence puts after it."""
    found = []
    for match in _DOI_IN_TEXT.finditer(text):
        doi = match.group(0)
        kept = doi.rstrip(_DOI_TRAILING)  # at once: a run of dots costs its length, no more
        # A closing bracket that the DOI opened is part of it: 10.1002/(SICI)1097-…
        closing = len(doi[len(kept) :]) - len(doi[len(kept) :].lstrip(")"))
        kept += ")" * max(0, min(closing, kept.count("(") - kept.count(")")))
        if kept:
            found.append(kept)
    return found


def doi(value: str) -> list[IdentifierValue]:
    """A field meant to hold a DOI: every DOI it holds, or the value itself so that the line
    model names what is wrong with it."""
    found = dois_in(value)
    if not found and value.strip():
        return [("doi", value.strip(), None)]
    return [("doi", found_doi, None) for found_doi in found]


def in_url(value: str) -> list[IdentifierValue]:
    """The identifiers a link names: doi.org, PubMed, OpenAlex, ProQuest, ERIC."""
    found: list[IdentifierValue] = []
    lowered = value.lower()
    if "doi" in lowered:
        found.extend(("doi", d, None) for d in dois_in(value))
    found.extend(("pm_id", m, None) for m in _PUBMED_URL.findall(value))
    found.extend(("open_alex", m, None) for m in _OPENALEX_ID.findall(value))
    found.extend(("pro_quest", m, None) for m in _PROQUEST_URL.findall(value))
    if "eric.ed.gov" in lowered:
        found.extend(("eric", m.upper(), None) for m in _ERIC_ID.findall(value))
    return found


def pubmed(value: str) -> list[IdentifierValue]:
    """A PubMed id field ("12345678", "PMID: 12345678", a PubMed URL)."""
    value = value.strip()
    if not value:
        return []
    urls = _PUBMED_URL.findall(value)
    if urls:
        return [("pm_id", urls[0], None)]
    if value.isdigit():
        return [("pm_id", value, None)]
    return [("pm_id", _PMID_PREFIX.sub("", value), None)]


def eric(value: str) -> list[IdentifierValue]:
    found = _ERIC_ID.findall(value)
    return [("eric", m.upper(), None) for m in found]


def other(name: str, value: str) -> list[IdentifierValue]:
    """Another database's own id, named after the database."""
    value = value.strip()
    if name == ENTRY_KEY_NAME:  # reserved: the one `other` name that is matched
        name = f"{name} (as exported)"
    return [("other", value, name)] if value else []
