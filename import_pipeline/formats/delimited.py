"""Delimited exports (format "csv": `.csv` and `.tsv`): one work per row under a header row.

The header row names the columns; `COLUMNS` says which Work field each name fills, for the
columns of Scopus, Web of Science, IEEE Xplore, Springer, PubMed, Embase, Zotero, rispy/ASReview
and generic exports alike. The delimiter (`,`, `;` or tab) is sniffed from the header line: the
reader is not told the file's name, so a `.tsv` is known by the tabs of its header.

Rows may hold quoted line ends, so `RowSplitter` cuts only where the count of quotes before a
line end is even (str.count, not a character loop); the stdlib csv module then reads each piece.
A row with the wrong number of fields, a quote never closed or a row over the size limit fails
alone; the rows around it import.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import compress
from typing import Any
from urllib.parse import unquote

from import_pipeline.formats import identify
from import_pipeline.formats.base import Entry, Header, IdentifierValue, Piece, Work
from import_pipeline.formats.delimited_split import RowSplitter

# The splitter already bounds an entry (max_entry_chars): the csv module's own limit (128 KiB)
# would fail a long abstract the splitter accepted.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))

#: The Work field each column fills, by the names exports give it (compared lower-cased without
#: spaces, underscores, dots or hyphens). Within a field an earlier name wins over a later one.
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("Title", "Document Title", "Article Title", "Item Title", "TI", "primary_title"),
    "authors": ("Author full names", "AF", "Authors", "Author", "Author Names", "AU",
                "first_authors"),
    "year": ("Year", "Publication Year", "PY", "Year Published", "Date", "Publication Date",
             "PD", "Issue Date", "Date of Publication", "Online Date"),
    "venue": ("Source title", "SO", "Publication Title", "Journal/Book", "Journal",
              "Journal Title", "journal_name", "secondary_title", "alternate_title3",
              "booktitle", "Book Title", "Publication", "Conference Title", "Conference name"),
    "volume": ("Volume", "VL", "Journal Volume"),
    "issue": ("Issue", "IS", "Journal Issue", "number"),
    "first_page": ("Start Page", "Page start", "BP", "First Page", "spage"),
    "last_page": ("End Page", "Page end", "EP", "Last Page", "epage"),
    "pages": ("Pages", "Page Range", "Page"),
    "article_number": ("Art. No.", "Article Number", "AR", "Article No"),
    "publisher": ("Publisher", "PU"),
    "abstract": ("Abstract", "AB", "Abstract Note", "notes_abstract"),
    "issn": ("ISSN", "SN", "EI", "eISSN", "Electronic ISSN", "Print ISSN", "ISSNs"),
    "doi": ("DOI", "DI", "Item DOI", "Book DOI", "D2"),
    "url": ("URL", "Link", "DOI Link", "DL", "PDF Link", "Open URL Link", "urls",
            "Full Text Link", "file_attachments1", "file_attachments2"),
    "pmid": ("PMID", "PubMed ID", "PM", "Medline PMID", "pubmed"),
    "pmcid": ("PMCID", "PMC ID"),
    "scopus_eid": ("EID",),
    "wos_ut": ("UT", "UT (Unique WOS ID)"),
    "embase_id": ("Embase Accession ID",),
    "eric": ("ERIC ID", "ERIC Number", "ERIC"),
    "openalex": ("OpenAlex ID", "OpenAlex"),
    "database": ("Database", "name_of_database", "database_provider"),
    "source": ("Source",),  # Embase: "Cancer (2004) 102:4 (253-258). …"; Scopus: "Scopus"
    "citation": ("Citation",),  # PubMed: "Nature. 2021 Dec 21;1(2):10-11. doi: …"
    "venue_type": ("Publication Type", "PT", "Document Type", "DT", "Item Type", "Content Type",
             "Category", "Document Identifier", "type_of_reference", "ENTRYTYPE"),
}  # fmt: skip

#: The database a header names by columns only its exports have (all of them present).
DIALECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Embase", ("Emtree Medical Index Terms",)),
    ("Embase", ("Embase Accession ID",)),
    ("Scopus", ("EID", "Source title")),
    ("Web of Science", ("PT", "UT")),
    ("Web of Science", ("UT (Unique WOS ID)",)),
    ("IEEE Xplore", ("Document Title", "PDF Link")),
    ("SpringerLink", ("Item Title", "Item DOI")),
    ("PubMed", ("PMID", "Citation", "Journal/Book")),
)

#: Names a `Source` or `Database` cell gives a database (Scopus writes "Scopus" in `Source`).
DATABASES = {
    name.lower(): name
    for name in ("Scopus", "Embase", "MEDLINE", "PubMed", "Web of Science", "PsycINFO", "ERIC")
}

#: Document and publication types (lower-cased) that tell the venue's type.
VENUE_TYPES = {
    **dict.fromkeys(
        ("article", "journal article", "journalarticle", "jour", "j", "review", "letter",
         "editorial", "note", "magazine", "ieee journals", "ieee magazines"),
        "journal",
    ),
    **dict.fromkeys(
        ("conference paper", "conferencepaper", "conference publication", "proceedings paper",
         "conference review", "inproceedings", "conf", "cpaper", "ieee conferences"),
        "conference",
    ),
    **dict.fromkeys(("book series", "s"), "book_series"),
}  # fmt: skip

_OTHER_ID_NAMES = {
    "pmcid": "PMCID",
    "scopus_eid": "Scopus EID",
    "wos_ut": "Web of Science",
    "embase_id": "Embase",
}
_Collect = Callable[[Work, str], None]
_NAME_NOISE = re.compile(r"[\s_.\-]+")
_YEAR = re.compile(r"(?<!\d)([12]\d{3})(?!\d)")
_PAGE_RANGE = re.compile(r"^\s*(\S*\d\S*?)\s*[-\u2010-\u2015]+\s*(\S*\d\S*)\s*$")
_ISSN = re.compile(r"(?<![0-9Xx])([0-9]{4})-?([0-9]{3}[0-9Xx])(?![0-9Xx])")
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z]+);")
_QUOTED_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
# Springer runs its authors together ("Datong WeiCan Liu"): a lower-case letter then a capital.
_NAME_JOIN = re.compile(r"(?<=[a-z\u00df-\u00ff])(?<!\bMc)(?<!\bMac)(?=[A-Z\u00c0-\u00de])")
# The query parameters of a link that may name an identifier or an ISSN (OpenURL, Scopus).
_QUERY_ITEM = re.compile(r"[?&](doi|pmid|eid|e?issn|id|rft_id)=([^&#\s]*)", re.IGNORECASE)
_EMBASE_YEAR = re.compile(r" \(([12]\d{3})\)")
_EMBASE_NUMBERS = re.compile(r"\s*(\w[^\s:(]*)?(?::([^(]+))?\s*(?:\(([^)]*)\))?")
_PUBMED_NUMBERS = re.compile(r";\s*([^;:()\s]*)(?:\(([^()]*)\))?(?::\s*([^;\s]+))?")


def column_key(name: str) -> str:
    """A column name as `COLUMNS` compares it: case, spacing and punctuation aside."""
    return _NAME_NOISE.sub("", name.lower())


@dataclass(frozen=True)
class _Plan:
    """What a header row means, worked out once per file."""

    names: tuple[str, ...]  # the field name of each column (an unnamed one numbered)
    #: column name → (Work field, rank among its names, how a cell adds to it if every one does)
    kinds: dict[str, tuple[str, int, _Collect | None]]
    named: int  # columns up to the last named one (a row may leave out unnamed ones)
    database: str | None
    joined_authors: bool  # Springer: authors run together without a separator


@lru_cache(maxsize=64)
def _plan(columns: tuple[str, ...]) -> _Plan:
    ranks = {
        column_key(name): (kind, rank)
        for kind, names in reversed(COLUMNS.items())
        for rank, name in reversed(list(enumerate(names)))
    }
    names = tuple(name or f"column {index + 1}" for index, name in enumerate(columns))
    kinds = {
        name: (*ranks[key], _COLLECTED.get(ranks[key][0]))
        for name, key in zip(names, map(column_key, names), strict=True)
        if key in ranks
    }
    keys = {column_key(name) for name in columns}
    database = next(
        (db for db, signs in DIALECTS if all(column_key(s) in keys for s in signs)), None
    )
    named = max((i + 1 for i, name in enumerate(columns) if name), default=0)
    return _Plan(names, kinds, named, database, database == "SpringerLink")


def _quoted(header: Header) -> bool:
    # Web of Science writes its tab-delimited rows raw: a quote there is a character of the text.
    return not (header.delimiter == "\t" and _plan(header.columns).database == "Web of Science")


def _dialect(header: Header) -> dict[str, Any]:
    quoting = csv.QUOTE_MINIMAL if _quoted(header) else csv.QUOTE_NONE
    return {"delimiter": header.delimiter, "quoting": quoting}


def sniff_delimiter(line: str) -> str:
    """The delimiter a header line uses: the most frequent of tab, `;` and `,` outside quotes."""
    bare = re.sub(r'"[^"]*"', "", line)
    counts = [(bare.count(candidate), -order, candidate) for order, candidate in enumerate("\t;,")]
    count, _, delimiter = max(counts)
    return delimiter if count else ","


# -- the values of cells ------------------------------------------------------------------------


def _text(value: str) -> str:
    value = value.strip()
    # IEEE writes HTML entities into titles and abstracts ("Solvers&#x0027;").
    return html.unescape(value) if "&" in value and _ENTITY.search(value) else value


def _comma_names(value: str) -> list[str]:
    """ "Liu R., Adler D.G." / "Smith A, Walter B." / "Joseph Rottman, Erran Carmel" hold one
    name per part; "Smith, John, Doe, Jane" a surname and given names per pair."""
    parts = [part.strip() for part in value.split(",")]
    if all(" " in part for part in parts):
        if parts[-1].endswith(".") and not any("." in part for part in parts[:-1]):
            parts[-1] = parts[-1][:-1]  # PubMed ends its list with a full stop
        return parts
    if len(parts) % 2 == 0:
        return [f"{last}, {given}" for last, given in zip(parts[::2], parts[1::2], strict=True)]
    return parts


def split_authors(value: str, joined: bool = False) -> list[str]:
    """The names of an authors cell, in order, as the export writes each."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):  # ASReview: "['Marx, Karl', '…']"
        names = [single or double for single, double in _QUOTED_ITEM.findall(value)]
    elif ";" in value:
        names = value.split(";")
    elif " and " in value and all(p.count(",") <= 1 for p in value.split(" and ")):
        names = value.split(" and ")  # BibTeX's "Last, First and Last, First"
    elif "," in value:
        names = _comma_names(value)
    elif joined:
        names = _NAME_JOIN.split(value)
    else:
        names = [value]
    return [name for name in map(_without_author_id, names) if name]


def _without_author_id(name: str) -> str:
    # Scopus's "Author full names" follow each name with its author id: "Liu, Rui (5719…)".
    name = name.strip()
    if name.endswith(")"):
        rest, _, number = name[:-1].rpartition("(")
        if number.isdigit():
            return rest.rstrip()
    return name


def year_of(value: str) -> int | None:
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None


def split_pages(value: str) -> tuple[str | None, str | None]:
    """ "123-130" → ("123", "130"); an article number ("e1234", "S-12") is a first page."""
    match = _PAGE_RANGE.match(value) if len(value) < 100 else None  # the pattern backtracks
    if match:
        return match.group(1), match.group(2)
    return (value.strip() or None), None


def issns_in(value: str) -> list[str]:
    return [f"{left}-{right.upper()}" for left, right in _ISSN.findall(value)]


def _url_values(work: Work, value: str) -> None:
    """Identifiers and ISSNs a link names, its query too (Scopus's `doi=`, OpenURL's `id=doi:`)."""
    for url in value.split():
        work.identifiers.extend(identify.in_url(unquote(url.partition("?")[0])))
        for key, encoded in _QUERY_ITEM.findall(url):
            key, item = key.lower(), unquote(encoded.replace("+", " "))
            lowered = item.lower()
            if key == "doi" or lowered.startswith(("doi:", "info:doi/")):
                work.identifiers.extend(("doi", d, None) for d in identify.dois_in(item))
            elif key == "pmid" or lowered.startswith(("pmid:", "info:pmid/")):
                work.identifiers.extend(identify.pubmed(item.rpartition(":")[2]))
            elif key == "eid":
                work.identifiers.extend(identify.other("Scopus EID", item))
            elif key.endswith("issn"):
                work.issns.extend(issns_in(item))


#: The identifiers a cell of each identifier column holds.
_IDENTIFIERS: dict[str, Callable[[str], list[IdentifierValue]]] = {
    "doi": identify.doi,
    "pmid": identify.pubmed,
    "eric": identify.eric,
    "openalex": lambda value: identify.in_url(value) or [("open_alex", value.strip(), None)],
    **{kind: partial(identify.other, name) for kind, name in _OTHER_ID_NAMES.items()},
}


def _adding_identifiers(read: Callable[[str], list[IdentifierValue]]) -> _Collect:
    return lambda work, value: work.identifiers.extend(read(value))


#: Kinds whose every cell counts (identifiers, links, ISSNs) rather than the best ranked one.
_COLLECTED: dict[str, _Collect] = {
    **{kind: _adding_identifiers(read) for kind, read in _IDENTIFIERS.items()},
    "url": _url_values,
    "issn": lambda work, value: work.issns.extend(issns_in(value)),
}


def _embase_source(work: Work, value: str) -> bool:
    """Embase's "Endoscopic Ultrasound (2014) 3:3 (152-160). Date of Publication: 2014"."""
    match = _EMBASE_YEAR.search(value[:2000])
    if match is None:
        return False
    work.venue = work.venue or _text(value[: match.start()])
    work.year = work.year or int(match.group(1))
    numbers = value[match.end() : 2000].partition(". Date of Publication")[0].rstrip(". ")
    found = _EMBASE_NUMBERS.match(numbers)
    if found is not None:
        volume, issue, pages = found.groups()
        work.volume = work.volume or volume
        work.issue = work.issue or (issue.strip() if issue else None) or None
        if pages and not work.first_page:
            work.first_page, work.last_page = split_pages(pages)
    return True


def _source(work: Work, value: str) -> None:
    if _embase_source(work, value):
        return
    named = DATABASES.get(value.strip().lower())
    if named is not None:
        work.database = work.database or named
    else:
        work.venue = work.venue or _text(value)


def _citation(work: Work, value: str) -> None:
    """PubMed's "Nature. 2021 Dec 21;1(2):10-11. doi: 10.1111/nature1111." fills what the other
    columns left out, and names the DOI."""
    work.identifiers.extend(("doi", d, None) for d in identify.dois_in(value))
    work.venue = work.venue or _text(value.partition(". ")[0]) or None
    work.year = work.year or year_of(value)
    match = _PUBMED_NUMBERS.search(value[:2000])
    if match is not None:
        volume, issue, pages = match.groups()
        work.volume = work.volume or volume or None
        work.issue = work.issue or issue or None
        if pages and not work.first_page:
            work.first_page, work.last_page = split_pages(pages.rstrip("."))


#: How the best cell of a kind sets the Work's field of that name.
_SETTERS: dict[str, Callable[[str, bool], Any]] = {
    **dict.fromkeys(("title", "venue", "abstract"), lambda value, _: _text(value) or None),
    **dict.fromkeys(
        ("volume", "issue", "first_page", "last_page", "publisher", "database"),
        lambda value, _: value.strip() or None,
    ),
    "authors": split_authors,
    "year": lambda value, _: year_of(value),
    "venue_type": lambda value, _: VENUE_TYPES.get(value.strip().lower()),
}


def _fill(work: Work, chosen: dict[str, str], joined_authors: bool) -> None:
    """Sets the Work's fields from the best cell of each kind; fallbacks fill only what is left."""
    for kind, value in chosen.items():
        setter = _SETTERS.get(kind)
        if setter is not None:
            setattr(work, kind, setter(value, joined_authors))
    if not work.first_page and "pages" in chosen:
        work.first_page, work.last_page = split_pages(chosen["pages"])
    if not work.first_page and "article_number" in chosen:
        work.first_page = chosen["article_number"].strip() or None
    if "source" in chosen:
        _source(work, chosen["source"])
    if "citation" in chosen:
        _citation(work, chosen["citation"])


# -- reading ------------------------------------------------------------------------------------


def _row_problem(row: list[str], plan: _Plan, never_closed: bool) -> str | None:
    if never_closed:
        return "a quoted field of the row is never closed: it runs to the end of the file"
    count, width = len(row), len(plan.names)
    if count == width or plan.named <= count < width:
        return None
    if count > width and not "".join(row[width:]).strip():
        return None  # empty cells after the last column (a trailing delimiter)
    return f"the row has {count} fields, the header {width}"


def _never_closed(raw: str, dialect: dict[str, Any]) -> bool:
    """Whether the row (the last of the file) ends inside a quoted field."""
    if raw.count('"') % 2 == 0 or dialect["quoting"] == csv.QUOTE_NONE:
        return False
    try:
        for _ in csv.reader(io.StringIO(raw, newline="\n"), strict=True, **dialect):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


class DelimitedReader:
    """The `csv` format (`base.Reader`)."""

    name = "csv"

    def header(self, head: str) -> Header:
        text = head.lstrip("\ufeff\r\n")
        delimiter = sniff_delimiter(text.partition("\n")[0])
        row = next(csv.reader(io.StringIO(text, newline="\n"), delimiter=delimiter), [])
        columns = tuple(name.strip() for name in row)
        return Header(database=_plan(columns).database, columns=columns, delimiter=delimiter)

    def splitter(self, header: Header, max_entry_chars: int, piece_chars: int) -> RowSplitter:
        return RowSplitter(_dialect(header), _quoted(header), max_entry_chars, piece_chars)

    def entries(self, piece: Piece, header: Header) -> Iterator[Entry]:
        plan, dialect, text = _plan(header.columns), _dialect(header), piece.text
        names, width, size = plan.names, len(plan.names), len(text)
        stream = io.StringIO(text, newline="\n")
        rows = csv.reader(stream, **dialect)
        start = lines_before = 0
        while True:
            problem = None
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                row, problem = [], f"the row cannot be read: {exc}"
            end = stream.tell()
            raw, line_number = text[start:end], piece.first_line + lines_before
            start, lines_before = end, rows.line_num
            if problem is None:
                if not any(row) or (len(row) == 1 and row[0].isspace()):
                    continue  # a blank line
                if len(row) != width or end >= size:  # else the row is surely whole
                    problem = _row_problem(row, plan, end >= size and _never_closed(raw, dialect))
            # An empty cell says nothing: only the cells with a value are the entry's fields.
            fields = tuple(compress(zip(names, row, strict=False), row))
            yield Entry(line_number, raw.rstrip("\r\n"), fields, problem)

    def work(self, entry: Entry, header: Header) -> Work:
        plan = _plan(header.columns)
        work = Work()
        chosen: dict[str, tuple[int, str]] = {}
        for name, value in entry.fields:
            spec = plan.kinds.get(name)
            if spec is None:
                continue
            kind, rank, collect = spec
            if collect is not None:
                collect(work, value)
            elif kind not in chosen or rank < chosen[kind][0]:
                chosen[kind] = (rank, value)
        _fill(work, {kind: value for kind, (_, value) in chosen.items()}, plan.joined_authors)
        # The database the header's columns name, for want of the entry naming one (the
        # caller's FileContext does not carry Header.database).
        work.database = work.database or header.database
        return work


READER = DelimitedReader()
