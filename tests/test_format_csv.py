"""The delimited (CSV / TSV) reader: the shared exports, each database's columns, the dialect
quirks as small strings, and hostile input that must fail alone and cost no more than its size."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

import import_pipeline
from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats import reader as reader_of
from import_pipeline.formats.base import Piece
from import_pipeline.formats.convert import ConvertedEntry, convert_piece, convert_text, pieces
from import_pipeline.formats.delimited import READER, split_authors, split_pages
from import_pipeline.formats.delimited_split import RowSplitter
from import_pipeline.formats.lines import FileContext

EXPORTS = Path(import_pipeline.__file__).parent / "demo_data" / "exports"
CONTEXT = FileContext("csv", "tests", "2024-05-01T00:00:00Z")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("csv", text, CONTEXT, **limits)


def lines_of(text: str, **limits: int) -> list[dict[str, Any]]:
    """Every entry as its validated DESTINY line; none may fail."""
    converted = convert(text, **limits)
    assert [entry.problem for entry in converted if entry.problem] == []
    lines = []
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)
        lines.append(json.loads(entry.line))
    return lines


def content(line: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["content"] for e in line["enhancements"] if e["content"]["enhancement_type"] == kind]
    return found[0] if found else {}


def biblio(line: dict[str, Any]) -> dict[str, Any]:
    return content(line, "bibliographic")


def authors(line: dict[str, Any]) -> list[str]:
    return [a["display_name"] for a in biblio(line).get("authorship", [])]


def identifiers(line: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
    ]


def dois(line: dict[str, Any]) -> list[str]:
    return [value for kind, value, _ in identifiers(line) if kind == "doi"]


def source(line: dict[str, Any]) -> str:
    return str(line["enhancements"][0]["source"])


def shared(path: str) -> str:
    return (EXPORTS / path).read_text(encoding="utf-8-sig")


# -- the shared exports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        ("asreview/embase.csv", 6),
        ("asreview/generic.csv", 2),
        ("colrev/csv_data.csv", 2),
        ("colrev/ieee_csv.csv", 2),
    ],
)
def test_every_shared_export_imports_whole(path: str, rows: int) -> None:
    text = shared(path)
    lines = lines_of(text)
    assert len(lines) == rows
    for line in lines:
        assert biblio(line)["title"]
        raw = content(line, "raw")["data"]
        assert raw and all(raw.values())
    # Each row starts on the line after the one before it ends (no quoted line ends here).
    assert [e.line_number for e in convert(text)] == list(range(2, rows + 2))


def _bib_entries(text: str) -> list[dict[str, str]]:
    """The fields of CoLRev's expected .bib (one `key = {value},` per line)."""
    entries = []
    for block in text.split("\n@")[0:]:
        fields = dict(re.findall(r"^\s+(\w+)\s+= \{(.*)\},$", block, re.MULTILINE))
        if fields:
            entries.append(fields)
    return entries


def test_ieee_as_colrev_reads_it() -> None:
    lines = lines_of(shared("colrev/ieee_csv.csv"))
    expected = _bib_entries(shared("colrev/ieee_csv_result.bib"))
    assert len(lines) == len(expected) == 2
    for line, bib in zip(lines, expected, strict=True):
        work = biblio(line)
        assert work["title"] == bib["title"]
        assert dois(line) == [bib["doi"]]
        assert work["publication_venue"]["display_name"] == (bib.get("journal") or bib["booktitle"])
        # CoLRev writes "Rottman, Joseph"; the export (and so the line) "Joseph Rottman".
        assert [name.split()[-1] for name in authors(line)] == [
            name.split(",")[0] for name in bib["author"].split(" and ")
        ]
        assert "publication_year" not in work and bib["year"] == "UNKNOWN"
        assert "pagination" not in work
        # IEEE's HTML entities ("Solvers&#x0027;") read as CoLRev reads them.
        assert content(line, "abstract")["abstract"] == bib["abstract"]
    assert [biblio(line)["publication_venue"]["venue_type"] for line in lines] == [
        "journal",
        "conference",
    ]


def _ris_records(text: str) -> list[dict[str, list[str]]]:
    records = []
    for block in text.split("\nER  -"):
        fields: dict[str, list[str]] = {}
        for tag, value in re.findall(r"^([A-Z][A-Z0-9])  - ?(.*)$", block, re.MULTILINE):
            fields.setdefault(tag, []).append(value.strip())
        if "TY" in fields:
            records.append(fields)
    return records


def test_embase_csv_holds_what_the_same_search_as_ris_holds() -> None:
    lines = lines_of(shared("asreview/embase.csv"))
    records = _ris_records(shared("asreview/embase.ris"))
    assert len(records) == len(lines) == 6
    for line, record in zip(lines, records, strict=True):
        work = biblio(line)
        assert work["title"] == record["T1"][0]
        assert dois(line) == record["DO"]
        assert authors(line) == record["A1"]
        assert work["publication_year"] == int(record["Y1"][0][:4])
        assert work["publication_venue"]["display_name"] == record["JF"][0]
        assert work["publication_venue"]["issn"][0] in record["SN"]
        pages = work["pagination"]
        assert (pages["volume"], pages["first_page"], pages["last_page"]) == (
            record["VL"][0],
            record["SP"][0],
            record["EP"][0],
        )
        assert pages.get("issue") == (record["IS"][0] if "IS" in record else None)
        assert source(line) == "Embase"


def test_embase_first_row_by_hand() -> None:
    line = lines_of(shared("asreview/embase.csv"))[0]
    assert biblio(line) == {
        "enhancement_type": "bibliographic",
        "authorship": [
            {"display_name": "Liu R.", "position": "first"},
            {"display_name": "Adler D.G.", "position": "last"},
        ],
        "title": "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
        "publication_year": 2014,
        "pagination": {"volume": "3", "issue": "3", "first_page": "152", "last_page": "160"},
        "publication_venue": {"display_name": "Endoscopic Ultrasound", "issn": ["2226-7190"]},
    }
    # The DOI comes from the OpenURL link, URL-encoded there ("10.4103%2F2303-…").
    assert identifiers(line) == [("doi", "10.4103/2303-9027.138783", None)]
    assert content(line, "abstract")["abstract"].startswith("Gastrointestinal tract duplication")
    raw = content(line, "raw")["data"]
    assert raw["Copyright"] == "Copyright 2014 Elsevier B.V., All rights reserved."
    assert "Original Title" not in raw  # an empty cell says nothing


def test_asreview_generic_by_hand() -> None:
    first, second = lines_of(shared("asreview/generic.csv"))
    assert authors(first) == ["Marx, Karl", "Lindgren, Astrid"]
    assert authors(second) == ["Marxus, Karlus", "Lindgren, Astrid"]
    work = biblio(first)
    assert work["title"] == "Title of reference"
    assert work["publication_year"] == 2014  # "2014//"
    assert work["publisher"] == "Fun Factory"
    assert work["pagination"] == {"volume": "9", "issue": "3", "first_page": "e0815"}
    assert work["publication_venue"] == {
        "display_name": "Lorem",  # alternate_title3: rispy's name for JF
        "venue_type": "journal",
        "issn": ["1932-6208"],
    }
    # No identifier at all: the entry key, the same for the same row read again.
    (kind, key, name), *_ = identifiers(first)
    assert (kind, name) == ("other", "import_pipeline.entry")
    assert identifiers(lines_of(shared("asreview/generic.csv"))[0])[0][1] == key


def test_colrev_pubmed_csv_by_hand() -> None:
    first, second = lines_of(shared("colrev/csv_data.csv"))
    assert identifiers(first) == [
        ("pm_id", "11223344", None),
        ("other", "PMC1122334", "PMCID"),
        ("doi", "10.1111/nature1111", None),
    ]
    assert authors(first) == ["Smith A", "Walter B"]
    work = biblio(first)
    assert work["publication_year"] == 2021
    assert work["publication_venue"]["display_name"] == "Nature"  # Journal/Book before journal
    # Volume and pages from the Citation ("Nature. 2021 Dec 21;1(2):10-11. …"); the issue
    # column's own "no issue" wins over the citation's.
    assert work["pagination"] == {
        "volume": "1",
        "issue": "no issue",
        "first_page": "10",
        "last_page": "11",
    }
    assert source(first) == "PubMed"
    assert identifiers(second)[0] == ("pm_id", "11223345", None)


# -- each database's columns --------------------------------------------------------------------

SCOPUS_HEADER = (
    "Authors,Author full names,Author(s) ID,Title,Year,Source title,Volume,Issue,Art. No.,"
    "Page start,Page end,Page count,Cited by,DOI,Link,Affiliations,Authors with affiliations,"
    "Abstract,Author Keywords,Index Keywords,Molecular Sequence Numbers,Chemicals/CAS,Tradenames,"
    "Manufacturers,Funding Details,Funding Texts,References,Correspondence Address,Editors,"
    "Publisher,Sponsors,Conference name,Conference date,Conference location,Conference code,ISSN,"
    "ISBN,CODEN,PubMed ID,Language of Original Document,Abbreviated Source Title,Document Type,"
    "Publication Stage,Open Access,Source,EID"
)


def _row(header: str, delimiter: str = ",", **cells: str) -> str:
    """A row of `header` with the named cells (quoted), the others empty."""
    names = header.split(delimiter)
    assert set(cells) <= set(names), set(cells) - set(names)
    quoted = [f'"{cells[name]}"' if name in cells else "" for name in names]
    return delimiter.join(quoted)


def test_scopus_columns() -> None:
    row = _row(
        SCOPUS_HEADER,
        Authors="Alceste F.; Luke T.J.",
        **{
            "Author full names": "Alceste, Fabiana (57190000001); Luke, Timothy J. (57190000002)",
            "Source title": "Journal of Applied Research in Memory and Cognition",
            "Art. No.": "e1234",
            "Link": "https://www.scopus.com/inward/record.uri?eid=2-s2.0-85047&doi=10.1016%2fj.jarmac.2018.03.001&partnerID=40",
            "Document Type": "Article",
        },
        Title="Holding Yourself Captive",
        Year="2018",
        Volume="7",
        Issue="3",
        DOI="10.1016/j.jarmac.2018.03.001",
        ISSN="22113681",
        Publisher="Elsevier Inc.",
        Source="Scopus",
        EID="2-s2.0-85047",
    )
    (line,) = lines_of(f"{SCOPUS_HEADER}\n{row}\n")
    assert authors(line) == ["Alceste, Fabiana", "Luke, Timothy J."]  # full names, ids dropped
    assert identifiers(line) == [
        ("doi", "10.1016/j.jarmac.2018.03.001", None),
        ("other", "2-s2.0-85047", "Scopus EID"),
    ]
    work = biblio(line)
    assert work["pagination"] == {"volume": "7", "issue": "3", "first_page": "e1234"}
    assert work["publication_venue"] == {
        "display_name": "Journal of Applied Research in Memory and Cognition",
        "venue_type": "journal",
        "issn": ["2211-3681"],
    }
    assert (work["publisher"], work["publication_year"], source(line)) == (
        "Elsevier Inc.",
        2018,
        "Scopus",
    )


WOS_TAGS = (
    "PT AU BA BE GP AF BF CA TI SO SE BS LA DT CT CY CL SP HO DE ID AB C1 C3 RP EM RI OI FU FP FX "
    "CR NR TC Z9 U1 U2 PU PI PA SN EI BN J9 JI PD PY VL IS PN SU SI MA BP EP AR DI DL D2 EA PG WC "
    "WE SC GA PM OA HC HP DA UT"
).split()


def test_web_of_science_tab_delimited_rows_are_raw_text() -> None:
    cells = {
        "PT": "J",
        "AU": "Alceste, F; Luke, TJ; Kassin, SM",
        "AF": "Alceste, Fabiana; Luke, Timothy J.; Kassin, Saul M.",
        # A quote of the text, never closed: Web of Science does not quote its cells.
        "TI": 'Holding Yourself Captive: a "reasonable person',
        "SO": "JOURNAL OF APPLIED RESEARCH IN MEMORY AND COGNITION",
        "DT": "Article",
        "SP": "IEEE",  # conference sponsors, not a page
        "PU": "ELSEVIER SCIENCE INC",
        "SN": "2211-3681",
        "EI": "2211-369X",
        "PY": "2018",
        "VL": "7",
        "IS": "3",
        "BP": "387",
        "EP": "397",
        "DI": "10.1016/j.jarmac.2018.03.001",
        "PM": "29000001",
        "UT": "WOS:000444108200009",
    }
    header = "\t".join(WOS_TAGS)
    first = "\t".join(cells.get(tag, "") for tag in WOS_TAGS)
    second = first.replace("WOS:000444108200009", "WOS:000444108200010").replace('"', "")
    lines = lines_of(f"{header}\n{first}\t\n{second}\n")  # a trailing tab, as WoS writes
    assert len(lines) == 2
    line = lines[0]
    work = biblio(line)
    assert work["title"] == 'Holding Yourself Captive: a "reasonable person'
    assert authors(line) == ["Alceste, Fabiana", "Luke, Timothy J.", "Kassin, Saul M."]
    assert work["pagination"] == {
        "volume": "7",
        "issue": "3",
        "first_page": "387",
        "last_page": "397",
    }
    assert work["publication_venue"]["issn"] == ["2211-3681", "2211-369X"]
    assert work["publication_venue"]["venue_type"] == "journal"
    assert identifiers(line) == [
        ("doi", "10.1016/j.jarmac.2018.03.001", None),
        ("pm_id", "29000001", None),
        ("other", "WOS:000444108200009", "Web of Science"),
    ]
    assert source(line) == "Web of Science"


IEEE_HEADER = (
    '"Document Title","Authors","Author Affiliations","Publication Title","Date Added To Xplore",'
    '"Publication Year","Volume","Issue","Start Page","End Page","Abstract","ISSN","ISBNs","DOI",'
    '"Funding Information","PDF Link","Author Keywords","IEEE Terms","INSPEC Controlled Terms",'
    '"INSPEC Non-Controlled Terms","Mesh_Terms","Article Citation Count","Patent Citation Count",'
    '"Reference Count","License","Online Date","Issue Date","Meeting Date","Publisher",'
    '"Document Identifier"'
)


def test_ieee_xplore_columns() -> None:
    row = _row(
        IEEE_HEADER.replace('"', ""),
        **{
            "Document Title": "Rural Outsourcing: Delivering ITO and BPO Services",
            "Authors": "J. Rottman; E. Carmel; M. Lacity",
            "Publication Title": "Computer",
            "Publication Year": "2011",
            "Start Page": "38",
            "End Page": "43",
            "DOI": "10.1109/MC.2011.377",
            "PDF Link": "https://ieeexplore.ieee.org/stamp/stamp.jsp?arnumber=6060811",
            "ISSN": "1558-0814",
            "Publisher": "IEEE",
            "Document Identifier": "IEEE Magazines",
        },
    )
    (line,) = lines_of(f"{IEEE_HEADER}\n{row}\n")
    assert authors(line) == ["J. Rottman", "E. Carmel", "M. Lacity"]
    work = biblio(line)
    assert work["pagination"] == {"first_page": "38", "last_page": "43"}
    assert work["publication_venue"] == {
        "display_name": "Computer",
        "venue_type": "journal",
        "issn": ["1558-0814"],
    }
    assert (work["publisher"], source(line)) == ("IEEE", "IEEE Xplore")


def test_springer_authors_run_together() -> None:
    header = (
        "Item Title,Publication Title,Book Series Title,Journal Volume,Journal Issue,Item DOI,"
        "Authors,Publication Year,URL,Content Type"
    )
    row = (
        "Understanding transitions in animated bar charts,Visual Intelligence,,1,2,"
        '10.1007/s44267-023-00015-w,"Datong WeiCan LiuXiaolong (Luke) ZhangJan van DiekenAnn '
        'McDonald",2023,https://link.springer.com/article/10.1007/s44267-023-00015-w,Article'
    )
    (line,) = lines_of(f"{header}\n{row}\n")
    assert authors(line) == [
        "Datong Wei",
        "Can Liu",
        "Xiaolong (Luke) Zhang",
        "Jan van Dieken",
        "Ann McDonald",
    ]
    assert dois(line) == ["10.1007/s44267-023-00015-w"]
    work = biblio(line)
    assert work["pagination"] == {"volume": "1", "issue": "2"}
    assert (work["publication_venue"]["display_name"], source(line)) == (
        "Visual Intelligence",
        "SpringerLink",
    )


def test_zotero_columns() -> None:
    header = (
        '"Key","Item Type","Publication Year","Author","Title","Publication Title","ISBN","ISSN",'
        '"DOI","Url","Abstract Note","Date","Date Added","Date Modified","Access Date","Pages",'
        '"Num Pages","Issue","Volume","Journal Abbreviation","Extra","Manual Tags"'
    )
    row = (
        '"ABCD1234","journalArticle","","Alceste, Fabiana; Luke, Timothy J.","Holding Yourself '
        'Captive","Journal of Applied Research in Memory and Cognition","","2211-3681; 2211-369X",'
        '"","https://doi.org/10.1016/j.jarmac.2018.03.001","","2018-09","2021-03-04 10:11:12",'
        '"2021-03-04 10:11:12","","387-397","","3","7","J. Appl. Res. Mem. Cogn.","PMID: 1",""'
    )
    (line,) = lines_of(f"{header}\n{row}\n")
    work = biblio(line)
    assert authors(line) == ["Alceste, Fabiana", "Luke, Timothy J."]
    assert work["publication_year"] == 2018  # from Date, not from Date Added
    assert work["pagination"] == {
        "volume": "7",
        "issue": "3",
        "first_page": "387",
        "last_page": "397",
    }
    assert work["publication_venue"]["venue_type"] == "journal"
    assert work["publication_venue"]["issn"] == ["2211-3681", "2211-369X"]
    assert dois(line) == ["10.1016/j.jarmac.2018.03.001"]  # from the link


def test_generic_names_ignore_case_and_spacing() -> None:
    text = (
        "TITLE; publication_year ;Journal-Title;DOI ;Pages;abstract;PMID;author\n"
        "A study;2020;Some Journal;https://doi.org/10.1000/xyz;12–19;Words.;123;"
        "Doe, Jane and Roe, Richard\n"
    )
    (line,) = lines_of(text)
    work = biblio(line)
    assert (work["title"], work["publication_year"]) == ("A study", 2020)
    assert work["publication_venue"]["display_name"] == "Some Journal"
    assert work["pagination"] == {"first_page": "12", "last_page": "19"}
    assert identifiers(line) == [("doi", "10.1000/xyz", None), ("pm_id", "123", None)]
    assert authors(line) == ["Doe, Jane", "Roe, Richard"]
    assert content(line, "abstract")["abstract"] == "Words."
    assert source(line) == "tests"  # no database named: the record's source


@pytest.mark.parametrize(
    ("cell", "names"),
    [
        ("Liu R., Adler D.G.", ["Liu R.", "Adler D.G."]),  # Embase, older Scopus
        ("Liu R.; Adler D.G.", ["Liu R.", "Adler D.G."]),  # Scopus
        ("Smith, John; Doe, Jane A.", ["Smith, John", "Doe, Jane A."]),  # Scopus full, WoS
        ("A. Smith; B. Doe", ["A. Smith", "B. Doe"]),  # IEEE
        ("Smith A, Walter B.", ["Smith A", "Walter B"]),  # PubMed ends with a full stop
        ("Smith AB, Walter B, Jones C.", ["Smith AB", "Walter B", "Jones C"]),
        ("Smith, John", ["Smith, John"]),
        ("van der Berg, Jan", ["van der Berg, Jan"]),
        ("Smith, John, Doe, Jane", ["Smith, John", "Doe, Jane"]),
        ("Smith, J. and Doe, J.", ["Smith, J.", "Doe, J."]),
        ("['Marx, Karl', \"O'Neil, Ann\"]", ["Marx, Karl", "O'Neil, Ann"]),
        ("WHO Collaboration", ["WHO Collaboration"]),
        (" ; ;", []),
    ],
)
def test_authors_cells(cell: str, names: list[str]) -> None:
    assert split_authors(cell) == names


@pytest.mark.parametrize(
    ("cell", "pages"),
    [
        ("123-130", ("123", "130")),
        ("123–30", ("123", "30")),
        ("S12--S15", ("S12", "S15")),
        ("e1234", ("e1234", None)),
        ("S-12", ("S-12", None)),
        ("", (None, None)),
    ],
)
def test_pages(cell: str, pages: tuple[str | None, str | None]) -> None:
    assert split_pages(cell) == pages


# -- dialect quirks -----------------------------------------------------------------------------


def titles(text: str, **limits: int) -> list[str]:
    return [biblio(line)["title"] for line in lines_of(text, **limits)]


def test_semicolon_delimiter() -> None:
    text = 'Title;Authors;Year\n"One, two";Doe, J.;2001\nThree;Roe, R.;2002\n'
    assert READER.header(text).delimiter == ";"
    assert titles(text) == ["One, two", "Three"]


def test_tab_delimiter() -> None:
    text = "Title\tAuthors\tYear\nOne, two; three\tDoe, J.\t2001\n"
    header = READER.header(text)
    assert (header.delimiter, header.columns) == ("\t", ("Title", "Authors", "Year"))
    (line,) = lines_of(text)
    assert (biblio(line)["title"], authors(line)) == ("One, two; three", ["Doe, J."])


def test_quoted_line_ends_count_as_lines() -> None:
    text = 'Title,Abstract\nOne,"first\nsecond\n\nthird"\nTwo,plain\n"Three\nlines",x\nFour,y'
    converted = convert(text)
    assert [e.line_number for e in converted] == [2, 6, 7, 9]
    assert content(json.loads(converted[0].line or ""), "abstract")["abstract"] == (
        "first\nsecond\n\nthird"
    )
    assert converted[0].text == 'One,"first\nsecond\n\nthird"'


def test_doubled_quotes() -> None:
    text = 'Title,Year\n"He said ""no"", twice",2001\n"""Quoted"" start",2002\n'
    assert titles(text) == ['He said "no", twice', '"Quoted" start']


def test_empty_trailing_columns() -> None:
    # A header with unnamed trailing columns, rows with and without them, and with extra ones.
    text = "Title,Year,,\nOne,2001,,\nTwo,2002\nThree,2003,,,,\n"
    lines = lines_of(text)
    assert [biblio(line)["title"] for line in lines] == ["One", "Two", "Three"]
    assert content(lines[0], "raw")["data"] == {"Title": "One", "Year": "2001"}


def test_crlf_line_ends() -> None:
    text = 'Title,Abstract\r\nOne,"two\r\nlines"\r\nThree,x\r\n'
    converted = convert(text)
    assert [e.line_number for e in converted] == [2, 4]
    assert titles(text) == ["One", "Three"]
    assert converted[1].text == "Three,x"


def test_byte_order_mark_and_blank_lines() -> None:
    text = "\ufeff\n\nTitle,Year\n\nOne,2001\n\n\nTwo,2002\n\n"
    header = READER.header(text)
    assert header.columns == ("Title", "Year")
    assert [e.line_number for e in convert(text)] == [5, 8]


def test_a_header_only() -> None:
    assert convert("Title,Authors,Year\n") == []
    assert convert("Title,Authors,Year") == []
    assert convert("") == []


def test_an_unnamed_column_keeps_its_values() -> None:
    (line,) = lines_of("Title,,Year\nOne,kept,2001\n")
    assert content(line, "raw")["data"] == {"Title": "One", "column 2": "kept", "Year": "2001"}


def test_chunks_of_any_size_give_the_same_entries() -> None:
    rows = [
        "Title,Abstract,Year",
        '"One ""quoted""","a\nb\r\nc",2001',
        "",
        'Two,"",2002',
        '"Three","x,y",2003',
        'Four,"z\n\n",2004',
    ]
    text = "\n".join(rows * 1) + "\n" + "\n".join(rows[1:] * 30)
    whole = [(e.line_number, e.line, e.problem) for e in convert(text)]
    assert len(whole) == 4 + 4 * 30
    randomness = random.Random(7)
    for _ in range(20):
        chunks, at = [], 0
        while at < len(text):
            size = randomness.randint(1, 40)
            chunks.append(text[at : at + size])
            at += size
        got = [
            (e.line_number, e.line, e.problem)
            for header, piece in pieces("csv", chunks, piece_chars=randomness.randint(1, 200))
            for e in convert_piece("csv", piece, header, CONTEXT)
        ]
        assert got == whole


def test_written_by_the_csv_module_read_back_whole() -> None:
    # Cells of quotes, delimiters and line ends, written by csv.writer, cut into random chunks.
    randomness = random.Random(11)
    alphabet = ['"', ",", "\n", "a", "b", " ", ";", "\t", "é"]
    columns = ["Title", "Abstract", "Notes"]
    rows = [
        ["".join(randomness.choices(alphabet, k=randomness.randint(1, 12))) for _ in columns]
        for _ in range(300)
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([columns, *rows])
    text = buffer.getvalue()
    for piece_chars in (1, 50, 1 << 20):
        chunks = [text[at : at + 37] for at in range(0, len(text), 37)]
        got = [
            entry
            for header, piece in pieces("csv", chunks, piece_chars=piece_chars)
            for entry in READER.entries(piece, header)
        ]
        assert [entry.problem for entry in got] == [None] * len(rows)
        assert [dict(entry.fields) for entry in got] == [
            {name: value for name, value in zip(columns, row, strict=True) if value} for row in rows
        ]
        # A row starts on the line after the line ends of the rows before it and their cells.
        ends = [sum(cell.count("\n") for cell in row) + 1 for row in [columns, *rows]]
        starts = [1 + sum(ends[:i]) for i in range(1, len(ends))]
        assert [entry.line_number for entry in got] == starts


def test_100000_rows() -> None:
    header = "Title,Authors,Year,DOI,Abstract"
    rows = [
        f'"Title {i}","Doe, J.; Roe, R.",{1900 + i % 100},10.1000/{i},"line one\nline two"'
        for i in range(100_000)
    ]
    text = header + "\n" + "\n".join(rows) + "\n"
    # Its speed is the exports benchmark's (benchmarks/exports.py), not a timed assertion.
    found = [
        (entry, head)
        for head, piece in pieces("csv", [text], piece_chars=1 << 20)
        for entry in READER.entries(piece, head)
    ]
    assert len(found) == 100_000
    assert [entry.line_number for entry, _ in found[::9_999]] == list(range(2, 200_001, 19_998))
    last, head = found[-1]
    work = READER.work(last, head)
    assert (work.title, work.year, work.authors, work.identifiers) == (
        "Title 99999",
        1999,
        ["Doe, J.", "Roe, R."],
        [("doi", "10.1000/99999", None)],
    )


# -- what fails, fails alone --------------------------------------------------------------------


def test_a_row_with_too_many_or_too_few_fields_fails_alone() -> None:
    text = "A,B,C,D,Title\n1,2,3,4,One\n1,2,3,4,5,6,Two\n1,2,Three\n1,2,3,4,Four\n"
    converted = convert(text)
    assert [(e.line_number, e.problem) for e in converted] == [
        (2, None),
        (3, "the row has 7 fields, the header 5"),
        (4, "the row has 3 fields, the header 5"),
        (5, None),
    ]
    assert converted[1].text == "1,2,3,4,5,6,Two"


def test_an_unterminated_quote_runs_to_the_end_as_one_bad_entry() -> None:
    text = 'Title,Year\nOne,2001\n"Two,2002\nThree,2003\nFour,2004\n'
    converted = convert(text)
    assert [(e.line_number, e.problem is None) for e in converted] == [(2, True), (3, False)]
    assert "never closed" in (converted[1].problem or "")


def test_an_unterminated_quote_over_the_limit_is_one_too_long_entry() -> None:
    text = "Title,Year\nOne,2001\n" + 'Two,"' + "x\n" * 5000
    converted = convert(text, max_entry_chars=1000, piece_chars=100)
    assert [(e.line_number, e.problem is None) for e in converted] == [(2, True), (3, False)]
    assert "longer than the maximum entry size" in (converted[1].problem or "")


def test_an_unterminated_quote_in_the_header() -> None:
    (converted,) = convert('"Title,Year\nOne,2001\n')
    assert converted.problem is not None and "header" in converted.problem


def test_a_stray_quote_in_an_unquoted_field_costs_nothing() -> None:
    # The quotes' parity says the row never ends; the csv module reads it as it is.
    rows = [f"Row {i},{i}" for i in range(400)]
    text = 'Title,Size\nDisk,5" floppy\n' + "\n".join(rows) + "\n"
    got = titles(text, max_entry_chars=1000, piece_chars=200)
    assert got == ["Disk"] + [f"Row {i}" for i in range(400)]


def test_a_field_of_100_mb_fails_alone_and_memory_stays_bounded() -> None:
    huge = "x" * 100_000_000
    text = f'Title,Abstract\nBefore,a\nHuge,"{huge}"\nAfter,"b\nc"\nLast,d\n'
    header = READER.header(text[:65536])
    chunk, max_entry = 1 << 20, 1 << 22
    splitter = RowSplitter({"delimiter": ",", "quoting": 0}, True, max_entry, 1 << 20)
    out: list[Piece] = []
    most = 0
    for at in range(0, len(text), chunk):
        out.extend(splitter.feed(text[at : at + chunk]))
        most = max(most, splitter.held)
    out.extend(splitter.finish())
    del huge, text
    assert most <= max_entry + 2 * chunk
    converted = [e for piece in out for e in convert_piece("csv", piece, header, CONTEXT)]
    assert [(e.line_number, e.problem is None) for e in converted] == [
        (2, True),
        (3, False),
        (4, True),
        (6, True),
    ]
    assert "longer than the maximum entry size" in (converted[1].problem or "")


def test_a_carriage_return_in_an_unquoted_field_fails_alone() -> None:
    converted = convert("Title,Year\nOne\rmore,2001\nTwo,2002\n")
    assert [(e.line_number, e.problem is None) for e in converted] == [(2, False), (3, True)]


@pytest.mark.parametrize(
    "cell",
    [
        "a" + " " * 200_000 + "(1",  # an author's id never closed
        "1" * 200_000 + "-",  # a page range with no end
        "(" * 100_000 + " (2014) " + ":" * 100_000,  # an Embase source
        "x;" * 20_000,  # authors: each is a name of the line
        "[" + "'a'," * 10_000 + "]",
        "&#" * 100_000,
        "\x00" * 1000,
    ],
)
def test_hostile_cells_cost_no_more_than_their_size(cell: str) -> None:
    text = "Title,Authors,Pages,Source,Citation,Year,ISSN\n" + ",".join([f'"{cell}"'] * 7) + "\n"
    started = time.process_time()
    (entry,) = convert(text)
    assert time.process_time() - started < 2
    if entry.line is not None:
        ReferenceFileInput.model_validate_json(entry.line)


def test_registered_as_the_csv_format() -> None:
    assert reader_of("csv") is READER
    assert READER.name == "csv"
