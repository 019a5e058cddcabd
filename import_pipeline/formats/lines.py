"""One entry → one DESTINY batch line (contract section 10), the same for every format: the
identifiers it carries (or its entry key), a `bibliographic`, an `abstract` and a `raw`
enhancement. The line model judges the result exactly as it judges a JSONL line."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from import_pipeline.domain.formats import ENTRY_KEY_NAME, FORMATS
from import_pipeline.domain.identifiers import TRUSTED_TYPES, normalise_identifier
from import_pipeline.formats.base import Entry, IdentifierValue, Work


@dataclass(frozen=True)
class FileContext:
    """What the import knows of the file beside its text."""

    format: str
    source_name: str  # the record's: the source when neither entry nor file names a database
    export_date: str  # ISO 8601: the raw enhancement's `source_export_date`
    database: str | None = None  # the file's header names it


#: Fields an export writes anew each time it is made (the export's date, a review's codes so
#: far): left out of an entry key, so that the same search exported again gives the same keys.
_CHANGING_FIELDS = {"wos": frozenset({"DA"}), "eppi_json": frozenset({"Codes", "Outcomes"})}
_EXPORT_DATE = re.compile(r"(?i)^\s*(?:export(?:ed)? date|date (?:exported|accessed))\b")


def entry_key(source: str, entry: Entry, format_name: str, accessions: list[str]) -> str:
    """The identifier of an entry that carries no trusted one: its source and a digest of its
    database's own ids when it has some, else of its fields but those that change with every
    export, so that the same entry dropped again (its line moved, the file exported anew) is
    the same reference."""
    if accessions:
        canonical = json.dumps(sorted(accessions))
    else:
        changing = _CHANGING_FIELDS.get(format_name, frozenset())
        canonical = json.dumps(
            [
                [name, " ".join(value.split())]
                for name, value in entry.fields
                if name not in changing and not _EXPORT_DATE.match(value)
            ]
        )
    return f"{source}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def raw_data(entry: Entry) -> dict[str, Any]:
    """The whole entry, field by field: a name that repeats holds its values as a list."""
    if entry.raw is not None:
        return dict(entry.raw)
    data: dict[str, Any] = dict(entry.fields)
    if len(data) == len(entry.fields):
        return data  # no name repeats: what most entries of most formats are
    data = {}
    for name, value in entry.fields:
        if name not in data:
            data[name] = value
        elif isinstance(data[name], list):
            data[name].append(value)
        else:
            data[name] = [data[name], value]
    return data


def _authorship(authors: list[str]) -> list[dict[str, str]]:
    # As the DESTINY SDK's parsers: the first author first, the last last, the rest middle.
    names = [name for name in authors if name.strip()]
    last = len(names) - 1
    return [
        {
            "display_name": name,
            "position": "first" if i == 0 else "last" if i == last else "middle",
        }
        for i, name in enumerate(names)
    ]


def _pagination(work: Work) -> dict[str, str]:
    pages = {}
    if work.volume:
        pages["volume"] = work.volume
    if work.issue:
        pages["issue"] = work.issue
    if work.first_page:
        pages["first_page"] = work.first_page
    if work.last_page:
        pages["last_page"] = work.last_page
    return pages


def _venue(work: Work) -> dict[str, Any]:
    venue: dict[str, Any] = {}
    if work.venue:
        venue["display_name"] = work.venue
    if work.venue_type:
        venue["venue_type"] = work.venue_type
    if work.issns:
        venue["issn"] = list(dict.fromkeys(work.issns))
    return venue


def bibliographic(work: Work) -> dict[str, Any] | None:
    """The `bibliographic` content of a work, None when it says nothing."""
    content: dict[str, Any] = {"enhancement_type": "bibliographic"}
    if work.authors and (authorship := _authorship(work.authors)):
        content["authorship"] = authorship
    if work.title:
        content["title"] = work.title
    if work.year is not None:
        content["publication_year"] = work.year
    if work.publisher:
        content["publisher"] = work.publisher
    if pages := _pagination(work):
        content["pagination"] = pages
    if venue := _venue(work):
        content["publication_venue"] = venue
    return content if len(content) > 1 else None


def identifiers(work: Work, entry: Entry, source: str, format_name: str) -> list[dict[str, Any]]:
    """The entry's identifiers, each once, and its entry key when none is trusted and valid."""
    seen: set[IdentifierValue] = set()
    found: list[dict[str, Any]] = []
    trusted = False
    for kind, value, name in work.identifiers:
        normal = normalise_identifier(kind, value)
        key = (kind, normal if normal is not None else value, name)
        if key in seen:
            continue
        seen.add(key)
        if name is None:
            found.append({"identifier_type": kind, "identifier": value})
            trusted = trusted or (normal is not None and kind in TRUSTED_TYPES)
        else:
            found.append(
                {"identifier_type": kind, "identifier": value, "other_identifier_name": name}
            )
    if not trusted:
        accessions = [
            f"{i['other_identifier_name']}:{i['identifier']}"
            for i in found
            if i["identifier_type"] == "other"
        ]
        found.append(
            {
                "identifier_type": "other",
                "identifier": entry_key(source, entry, format_name, accessions),
                "other_identifier_name": ENTRY_KEY_NAME,
            }
        )
    return found


def destiny_line(entry: Entry, work: Work, context: FileContext) -> dict[str, Any]:
    """The batch line an entry becomes."""
    source = work.database or context.database or context.source_name
    contents: list[dict[str, Any]] = []
    biblio = bibliographic(work)
    if biblio is not None:
        contents.append(biblio)
    if work.abstract and work.abstract.strip():
        contents.append(
            {"enhancement_type": "abstract", "process": "other", "abstract": work.abstract}
        )
    contents.append(
        {
            "enhancement_type": "raw",
            "source_export_date": context.export_date,
            "description": f"The entry as the {FORMATS[context.format].title} export holds it",
            "metadata": {"format": context.format},
            "data": raw_data(entry) or {"text": entry.text},
        }
    )
    return {
        "visibility": "public",
        "identifiers": identifiers(work, entry, source, context.format),
        "enhancements": [
            {"source": source, "visibility": "public", "content": content} for content in contents
        ],
    }


def line_text(entry: Entry, work: Work, context: FileContext) -> str:
    """The batch line as JSON text (msgspec: ~5x json.dumps here, and the same JSON values).
    A lone surrogate (an unpaired JSON escape in the export, say) is no character and cannot be
    stored as UTF-8: the entry fails alone (`ValueError`)."""
    try:
        return _ENCODER.encode(destiny_line(entry, work, context)).decode()
    except UnicodeEncodeError:
        raise ValueError(
            "it holds an unpaired surrogate (U+D800–U+DFFF), which is no character"
        ) from None


_ENCODER = msgspec.json.Encoder()
