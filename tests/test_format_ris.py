"""The RIS reader: every shared RIS export read whole and checked against CoLRev's reading or by
hand, each dialect's quirk as a small case of its own, and hostile input failing alone."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from import_pipeline.domain.formats import sniff
from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats.base import Header, Piece
from import_pipeline.formats.convert import ConvertedEntry, convert_piece, convert_text, pieces
from import_pipeline.formats.lines import FileContext
from import_pipeline.formats.ris import READER

EXPORTS = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data/exports"
ASREVIEW = EXPORTS / "asreview"
CONTEXT = FileContext("ris", "my-source", "2024-05-01T00:00:00Z")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("ris", text, CONTEXT, **limits)


def read_file(path: Path) -> str:
    # As the import reads a file: decoded, a BOM and the \r of each line end dropped.
    return path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")


def lines_of(text: str) -> list[dict[str, Any]]:
    """The lines a text becomes, each judged by the line model; no entry may fail."""
    converted = convert(text)
    assert [c.problem for c in converted if c.problem] == []
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)
    return [json.loads(entry.line) for entry in converted if entry.line is not None]


def content(line: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["content"] for e in line["enhancements"] if e["content"]["enhancement_type"] == kind]
    return found[0] if found else {}


def ids(line: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
    ]


def authors(line: dict[str, Any]) -> list[str]:
    return [a["display_name"] for a in content(line, "bibliographic").get("authorship", [])]


def raw(line: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = content(line, "raw")["data"]
    return data


def work_of(text: str) -> Any:
    entries = list(READER.entries(Piece(1, text), Header()))
    assert len(entries) == 1 and entries[0].problem is None
    return READER.work(entries[0], Header())


# -- the shared exports ----------------------------------------------------------------------


def test_embase() -> None:
    lines = lines_of(read_file(ASREVIEW / "embase.ris"))
    assert len(lines) == 6
    first, second = lines[0], lines[1]
    biblio = content(first, "bibliographic")
    assert biblio["title"].startswith("Duplication cysts: Diagnosis, management")
    assert authors(first) == ["Liu R.", "Adler D.G."]
    assert biblio["publication_year"] == 2014
    assert biblio["pagination"] == {
        "volume": "3",
        "issue": "3",
        "first_page": "152",
        "last_page": "160",
    }
    assert biblio["publication_venue"] == {
        "display_name": "Endoscopic Ultrasound",
        "venue_type": "journal",
        "issn": ["2226-7190"],
    }
    # M3 is Embase's article type, not a DOI; U2 is Embase's id; the sources name Embase.
    assert ids(first) == [
        ("doi", "10.4103/2303-9027.138783", None),
        ("other", "L373791783", "Embase"),
    ]
    assert {e["source"] for e in first["enhancements"]} == {"Embase"}
    assert content(first, "abstract")["abstract"].startswith("Gastrointestinal tract duplication")
    # Embase's C5 is the PubMed id; both DB values stay in the raw enhancement.
    assert ("pm_id", "15368318", None) in ids(second)
    assert raw(second)["DB"] == ["Embase", "Medline"]
    assert len(raw(second)["M1"]) == 4


def test_scopus() -> None:
    lines = lines_of(read_file(ASREVIEW / "scopus.ris"))
    assert len(lines) == 6
    first = lines[0]
    biblio = content(first, "bibliographic")
    assert ids(first) == [
        ("doi", "10.1016/j.psyneuen.2019.104501", None),
        ("other", "2-s2.0-85074596690", "Scopus EID"),
    ]
    assert authors(first) == ["Labanski, A.", "Langhorst, J.", "Engler, H.", "Elsenbruch, S."]
    assert biblio["publication_venue"]["issn"] == ["0306-4530"]  # "03064530 (ISSN)"
    assert biblio["publisher"] == "Elsevier Ltd"
    # No SP: the article number (C7) is the first page.
    assert biblio["pagination"] == {"volume": "111", "first_page": "104501"}
    references = next(n for n in raw(first)["N1"] if n.startswith("References:"))
    assert references.count("\n") > 100  # the continuation lines, joined as written
    assert ("pm_id", "31421429", None) in ids(lines[1])  # Scopus's C2
    assert content(lines[4], "bibliographic")["pagination"]["last_page"] == "568"


def test_ovid_psycinfo() -> None:
    converted = convert(read_file(ASREVIEW / "ovid_psycinfo.ris"))
    assert [c.line_number for c in converted] == [2, 31, 109, 196, 223, 298]
    lines = lines_of(read_file(ASREVIEW / "ovid_psycinfo.ris"))
    first = lines[0]
    biblio = content(first, "bibliographic")
    assert ids(first) == [
        ("doi", "10.1002/cpp.2398", None),
        ("other", "2019-65183-001", "PsycINFO"),
    ]
    assert {e["source"] for e in first["enhancements"]} == {"PsycINFO"}  # its Ovid link's D=psyc
    assert biblio["publication_year"] == 2019  # "2019//"
    assert "pagination" not in biblio  # SP "No", EP "Specified"
    assert biblio["publisher"] == "John Wiley & Sons"
    # What Ovid writes after ER stays with the record.
    assert raw(first)["NL"] == "Clin Psychol Psychother"
    assert raw(first)["Link to the Ovid Full Text or citation"].startswith("https://login.proxy")
    assert authors(lines[1]) == [
        "Trindade, Ines A",
        "Ferreira, Claudia",
        "Duarte, Cristiana",
        "Pinto-Gouveia, Jose",
    ]  # A2 lists the cited authors: no author


def test_pubmed_through_endnote() -> None:
    lines = lines_of(read_file(ASREVIEW / "pubmed_endnote.txt"))
    assert len(lines) == 6
    first = lines[0]
    biblio = content(first, "bibliographic")
    assert ids(first) == [
        ("doi", "10.2165/11586800-000000000-00000", None),
        ("pm_id", "21553931", None),
    ]
    assert {e["source"] for e in first["enhancements"]} == {"PubMed"}  # DP  - NLM
    assert biblio["pagination"]["first_page"] == "349"
    assert biblio["pagination"]["last_page"] == "369"  # "349-69"
    assert biblio["publication_venue"]["display_name"] == "Clin Pharmacokinet"
    assert raw(first)["KW"].split("\n")[:2] == [
        "Animals",
        "Anti-Inflammatory Agents/adverse effects/pharmacokinetics/*pharmacology",
    ]


def test_web_of_science_ris() -> None:
    lines = lines_of(read_file(ASREVIEW / "web_of_science.txt"))
    assert len(lines) == 10
    first = lines[0]
    biblio = content(first, "bibliographic")
    assert ids(first) == [
        ("doi", "10.1016/j.jarmac.2018.03.001", None),
        ("other", "WOS:000444108200009", "Web of Science"),
    ]
    assert biblio["publication_venue"]["issn"] == ["2211-3681", "2211-369X"]
    assert biblio["publisher"] == "ELSEVIER SCIENCE INC"
    assert raw(first)["N1"] == (
        "Times Cited in Web of Science Core Collection:  5\nTotal Times Cited:  7\n"
        "Cited Reference Count:  30"
    )
    denault = next(line for line in lines if authors(line)[0] == "Denault, V")
    assert content(denault, "bibliographic")["pagination"]["first_page"] == "1175856"
    kassin = next(line for line in lines if authors(line)[0] == "Kassin, Saul M.")
    assert ids(kassin) == [("doi", "10.1023/A:1024814009769", None)]  # UR and DO: one DOI
    # A .txt: told RIS from its content.
    assert sniff(read_file(ASREVIEW / "web_of_science.txt")) == "ris"
    assert sniff(read_file(ASREVIEW / "pubmed_endnote.txt")) == "ris"


def test_faulty_year_and_empty_values() -> None:
    (faulty,) = lines_of(read_file(ASREVIEW / "faulty_year.ris"))
    assert "publication_year" not in content(faulty, "bibliographic")  # PY  - 10 15
    assert raw(faulty)["PY"] == "10 15"
    empty = lines_of(read_file(ASREVIEW / "baseline_empty_values.ris"))
    assert [content(line, "bibliographic").get("title") for line in empty] == [
        "Title of reference",
        None,
        "Title of reference",
        None,
    ]
    assert raw(empty[0]) == {"TY": "GEN", "ID": "1", "TI": "Title of reference", "N2": ""}
    assert content(empty[1], "abstract")["abstract"].startswith("Lorem ipsum")
    # No identifier: each is imported under its entry key, the same key for the same entry.
    assert all(ids(line)[0][2] == "import_pipeline.entry" for line in empty)
    assert ids(empty[0]) != ids(empty[2])  # their ID fields differ


def test_reference_types() -> None:
    text = read_file(ASREVIEW / "baseline_reference_types.ris")
    lines = lines_of(text)
    assert len(lines) == 61
    assert raw(lines[0]) == {"TY": ""}
    assert [raw(line)["TY"] for line in lines[-2:]] == ["VIDEO", "WEB"]
    assert [c.line_number for c in convert(text)][:3] == [1, 4, 7]


def test_colrev_ris_data() -> None:
    """CoLRev's file: its first record has no ER, but a blank line ends it (a comment line
    follows): both records read as CoLRev reads them."""
    converted = convert(read_file(EXPORTS / "colrev/ris_data.ris"))
    assert [(c.line_number, c.problem is None) for c in converted] == [(2, True), (26, True)]
    first = json.loads(converted[0].line or "")
    assert content(first, "bibliographic")["title"] == "Title of a conference paper"
    assert ("doi", "10.1234/Random-name55555.2020.00050", None) in ids(first)
    assert "% Comment" not in converted[0].text
    line = json.loads(converted[1].line or "")
    biblio = content(line, "bibliographic")
    assert biblio["title"] == "Title of a journal paper"
    assert biblio["publication_venue"] == {
        "display_name": "Secondary Title (journal title, if applicable)",
        "venue_type": "journal",
        "issn": ["1111-2222"],
    }
    assert authors(line) == ["A. Author-One", "B. Author-Two", "C. Author-Three"]
    assert biblio["publication_year"] == 2017
    assert biblio["pagination"] == {
        "volume": "50",
        "issue": "3",
        "first_page": "14",
        "last_page": "25",
    }
    assert ids(line) == [("doi", "10.1111/MC.2017.66", None)]


def test_colrev_first_record_with_its_er() -> None:
    """The same first record with its ER: its one-space KW, continuation keywords and PMID
    read as CoLRev reads them."""
    text = read_file(EXPORTS / "colrev/ris_data.ris").replace("\n\n\n% Comment", "\nER  -\n")
    converted = convert(text)
    assert [c.problem for c in converted] == [None, None]
    line = json.loads(converted[0].line or "")
    biblio = content(line, "bibliographic")
    assert biblio["title"] == "Title of a conference paper"
    assert authors(line) == [
        f"{c}. Author-{n}"
        for c, n in zip("ABCDE", ["One", "Two", "Three", "Four", "Five"], strict=True)
    ]
    assert biblio["publication_venue"] == {
        "display_name": "Secondary Title (booktitle title, if applicable)",
        "venue_type": "conference",
        "issn": ["1111-3333"],
    }
    assert (biblio["publication_year"], biblio["pagination"]) == (
        2020,
        {"first_page": "183", "last_page": "186"},
    )
    assert ids(line) == [
        ("doi", "10.1234/Random-name55555.2020.00050", None),
        ("pm_id", "12345678", None),
    ]
    assert raw(line)["KW"] == "keyword2\nkeyword2\nkeyword3"
    assert raw(line)["Y1"] == "4-8 Aug. 2020"


# -- dialect quirks, one case each ---------------------------------------------------------------


def test_multi_line_values_and_repeated_tags() -> None:
    text = (
        "TY  - JOUR\nAU  - First, A.\nA1  - Third, C.\nAU  - Second, B.\nTI  - A title wrapped\n"
        "  over two lines\nKW  - one\nKW  - two\nN1  - note line 1\nnote line 2\n"
        "AB  - Paragraph one.\n\nParagraph two.\nER  - \n"
    )
    (line,) = lines_of(text)
    assert authors(line) == ["First, A.", "Second, B.", "Third, C."]  # AU first, then A1
    assert content(line, "bibliographic")["title"] == "A title wrapped over two lines"
    assert raw(line)["KW"] == ["one", "two"]
    assert raw(line)["N1"] == "note line 1\nnote line 2"
    assert content(line, "abstract")["abstract"] == "Paragraph one.\n\nParagraph two."


def test_loose_tags() -> None:
    """Lower-case tags, one space before the dash, a four-letter PMID; an unknown loose tag is
    text of the value above."""
    text = "ty  - jour\nti  - Lower case\nAU - One, Space\nPMID - 12345678\nAB  - Text\nHIV - positive\ner  - \n"
    (line,) = lines_of(text)
    assert content(line, "bibliographic")["title"] == "Lower case"
    assert authors(line) == ["One, Space"]
    assert ("pm_id", "12345678", None) in ids(line)
    assert content(line, "abstract")["abstract"] == "Text\nHIV - positive"
    assert list(raw(line)) == ["ty", "ti", "AU", "PMID", "AB"]
    assert convert("TY - JOUR\nTI - One space\nER -\n")[0].problem is None


def test_record_boundaries() -> None:
    text = "TY  - JOUR\n\nTI  - Blank line inside\n\nER  - \nTY  - JOUR\nTI  - No blank line between\nER  -"
    converted = convert(text)
    assert [(c.line_number, c.problem) for c in converted] == [(1, None), (6, None)]
    assert converted[0].text == "TY  - JOUR\n\nTI  - Blank line inside\n\nER  - "
    titles = [content(json.loads(c.line or ""), "bibliographic")["title"] for c in converted]
    assert titles == ["Blank line inside", "No blank line between"]


def test_er_missing_at_the_end() -> None:
    """An exporter that leaves out the last ER: the file's end ends the record."""
    converted = convert(
        "TY  - JOUR\nTI  - Whole\nER  - \n\nTY  - JOUR\nTI  - Last\nAB  - Its abstract"
    )
    assert [(c.line_number, c.problem) for c in converted] == [(1, None), (5, None)]
    assert converted[1].text == "TY  - JOUR\nTI  - Last\nAB  - Its abstract"


def test_er_missing_before_a_blank_line_and_the_next_record() -> None:
    converted = convert("TY  - JOUR\nTI  - No ER\n\nTY  - JOUR\nTI  - Whole\nER  - \n")
    assert [(c.line_number, c.problem) for c in converted] == [(1, None), (4, None)]


def test_record_cut_off_by_the_next() -> None:
    converted = convert("TY  - JOUR\nTI  - Cut\nTY  - JOUR\nTI  - Whole\nER  - \n")
    assert [(c.line_number, c.problem is None) for c in converted] == [(1, False), (3, True)]
    assert converted[0].problem == (
        "the RIS record is cut off before its ER line: the next record starts right after its "
        "last field"
    )


def test_stray_carriage_return_and_bom() -> None:
    (line,) = lines_of("\ufeffTY  - JOUR\r\nTI  - A\rB\r\nPY  - 2001\r\nER  - \r")
    assert content(line, "bibliographic")["title"] == "A\rB"
    assert content(line, "bibliographic")["publication_year"] == 2001
    assert list(raw(line)) == ["TY", "TI", "PY"]


def test_empty_tags() -> None:
    (line,) = lines_of("TY  - JOUR\nTI  - Title\nN2  -\nAB  - \nVL  -\nER  -\n")
    assert raw(line) == {"TY": "JOUR", "TI": "Title", "N2": "", "AB": "", "VL": ""}
    assert content(line, "abstract") == {}


def test_text_before_the_first_record() -> None:
    header = 'Provider: JSTOR http://www.jstor.org\nDatabase: JSTOR\nContent: text/plain; charset="UTF-8"\n\n1.\n'
    record = "TY  - JOUR\nTI  - A\nUR  - http://www.jstor.org/stable/1234567\nDB  - JSTOR\nER  - \n"
    converted = convert(header + record)
    assert [(c.line_number, c.problem) for c in converted] == [(6, None)]
    assert READER.header(header + record) == Header(database="JSTOR")
    line = json.loads(converted[0].line or "")
    # JSTOR's stable id is not trusted: the entry key (under the record's database) is added.
    assert ids(line)[0] == ("other", "1234567", "JSTOR")
    assert ids(line)[1][1].startswith("JSTOR:") and ids(line)[1][2] == "import_pipeline.entry"
    # Anything else before the first record is not lost silently: it fails as one entry.
    converted = convert("Search results exported 2024\n\n" + record)
    assert converted[0].line_number == 1 and converted[0].text == "Search results exported 2024"
    assert "not part of any RIS record" in (converted[0].problem or "")
    assert converted[1].problem is None and converted[1].line_number == 3


def test_ris_turning_into_bibtex() -> None:
    text = (
        "TY  - JOUR\nTI  - One\nER  - \n\nTY  - JOUR\nTI  - Two\nER  - \n\n"
        "@article{key,\n  title = {Three},\n  year = {2020}\n}\n"
    )
    converted = convert(text)
    assert [(c.line_number, c.problem is None) for c in converted] == [
        (1, True),
        (5, True),
        (9, False),
    ]
    assert converted[2].text == "@article{key,\n  title = {Three},\n  year = {2020}\n}"


def test_twenty_megabyte_abstract() -> None:
    abstract = "word " * 4_000_000
    (line,) = lines_of(f"TY  - JOUR\nTI  - Long\nAB  - {abstract}\nER  - \n")
    assert len(content(line, "abstract")["abstract"]) == len(abstract.strip())


def test_hundred_thousand_entries() -> None:
    record = "TY  - JOUR\nDO  - 10.1000/{n}\nER  - \n"
    text = "".join(record.format(n=n) for n in range(100_000))
    entries = list(READER.entries(Piece(1, text), Header()))
    assert len(entries) == 100_000 and all(entry.problem is None for entry in entries)
    assert [entry.line_number for entry in entries[-2:]] == [3 * 99_998 + 1, 3 * 99_999 + 1]
    assert READER.work(entries[-1], Header()).identifiers == [("doi", "10.1000/99999", None)]


# -- fields ----------------------------------------------------------------------------------------


def test_issns_not_isbns() -> None:
    work = work_of(
        "TY  - BOOK\nSN  - 03064530 (ISSN)\nSN  - 9780123456789 (ISBN)\nSN  - 0-306-40615-2\n"
        "SN  - 1234-567x; 978-3-16-148410-0\nER  - \n"
    )
    assert work.issns == ["0306-4530", "1234-567X"]


def test_dois_wherever_written() -> None:
    work = work_of(
        "TY  - JOUR\nDO  - http://dx.doi.org/10.1000/ABC\nM3  - Article\nL3  - 10.1000/l3\n"
        "UR  - https://doi.org/10.1000/url\nUR  - https://pubmed.ncbi.nlm.nih.gov/12345/\n"
        "L2  - https://www.proquest.com/docview/2273858735?accountid=1\n"
        "LK  - http://sfx.example.org/?id=doi:10.1000%2Fsfx&atitle=x\nER  - \n"
    )
    assert work.identifiers == [
        ("doi", "10.1000/ABC", None),
        ("doi", "10.1000/l3", None),
        ("doi", "10.1000/url", None),
        ("pm_id", "12345", None),
        ("pro_quest", "2273858735", None),
        ("doi", "10.1000/sfx", None),
    ]
    mendeley = work_of("TY  - JOUR\nM3  - doi: 10.1000/mendeley\nER  - \n")
    assert mendeley.identifiers == [("doi", "10.1000/mendeley", None)]


@pytest.mark.parametrize(
    ("fields", "expected", "database"),
    [
        (
            "AN  - 2-s2.0-85074596690\nDB  - Scopus",
            ("other", "2-s2.0-85074596690", "Scopus EID"),
            "Scopus",
        ),
        (
            "AN  - 2273858735\nDB  - ProQuest Central",
            ("pro_quest", "2273858735", None),
            "ProQuest Central",
        ),
        (
            "AN  - 2019-65183-001\nDB  - APA PsycInfo",
            ("other", "2019-65183-001", "PsycINFO"),
            "APA PsycInfo",
        ),
        ("AN  - WOS:000444108200009", ("other", "WOS:000444108200009", "Web of Science"), None),
        ("AN  - L373791783\nDB  - Embase", ("other", "L373791783", "Embase"), "Embase"),
        ("AN  - 21553931\nDP  - NLM", ("pm_id", "21553931", None), "PubMed"),
        ("AN  - EJ1234567\nDB  - ERIC", ("eric", "EJ1234567", None), "ERIC"),
        ("AN  - 12-34\nDB  - CINAHL", ("other", "12-34", "CINAHL"), "CINAHL"),
    ],
)
def test_accession_numbers(
    fields: str, expected: tuple[str, str, str | None], database: str | None
) -> None:
    work = work_of(f"TY  - JOUR\n{fields}\nER  - \n")
    assert work.identifiers == [expected]
    assert work.database == database


def test_venue_by_type() -> None:
    chapter = work_of("TY  - CHAP\nTI  - A chapter\nT2  - The book\nT3  - The series\nER  - \n")
    assert (chapter.title, chapter.venue, chapter.venue_type) == ("A chapter", "The book", None)
    book = work_of("TY  - BOOK\nT2  - The book\nT3  - The series\nER  - \n")
    assert (book.title, book.venue, book.venue_type) == ("The book", "The series", "book_series")
    paper = work_of("TY  - CPAPER\nTI  - A paper\nT2  - Proceedings of X\nER  - \n")
    assert (paper.venue, paper.venue_type) == ("Proceedings of X", "conference")
    assert work_of("TY  - JOUR\nT1  - Primary\nCT  - Caption\nER  - \n").title == "Primary"
    assert work_of("TY  - GEN\nCT  - Caption\nER  - \n").title == "Caption"
    article = work_of("TY  - JOUR\nJO  - J. Abbr.\nJF  - Journal Full\nER  - \n")
    assert (article.venue, article.venue_type) == ("Journal Full", "journal")


def test_years_and_pages() -> None:
    assert work_of("TY  - JOUR\nPY  - 2019///\nER  - \n").year == 2019
    assert work_of("TY  - JOUR\nY1  - 2004/06/01\nER  - \n").year == 2004
    assert work_of("TY  - JOUR\nDA  - Mar. 2017\nER  - \n").year == 2017
    assert work_of("TY  - JOUR\nPY  - 10 15\nER  - \n").year is None
    pages = work_of("TY  - JOUR\nSP  - 123-130\nER  - \n")
    assert (pages.first_page, pages.last_page) == ("123", "130")
    article = work_of("TY  - JOUR\nSP  - e1234\nER  - \n")
    assert (article.first_page, article.last_page) == ("e1234", None)
    numbered = work_of("TY  - JOUR\nM1  - e0212345\nER  - \n")
    assert numbered.first_page == "e0212345"
    assert work_of("TY  - JOUR\nM1  - (Liu R.) Department of X\nER  - \n").first_page is None


# -- hostile input ---------------------------------------------------------------------------------


def test_garbage_fails_alone_and_costs_its_size() -> None:
    # The time bound only catches work that grows faster than the input (quadratic would take
    # hours here), not a slow machine.
    assert convert("") == []
    (garbage,) = convert("not a reference file\n" * 10_000)
    assert garbage.line_number == 1 and garbage.problem is not None
    started = time.process_time()
    many = "TY  - JOUR\n" + "KW  - k\n" * 100_000 + "continued\n" * 100_000 + "ER  - \n"
    (entry,) = READER.entries(Piece(1, many), Header())
    assert len(entry.fields) == 100_001 and entry.fields[-1][1].count("\n") == 100_000
    counters = "1.\n" * 100_000 + "TY  - JOUR\nTI  - After furniture\nER  - \n"
    assert [e.line_number for e in READER.entries(Piece(1, counters), Header())] == [100_001]
    assert time.process_time() - started < 60


def test_hostile_values_cost_their_size() -> None:
    started = time.process_time()
    # Lines that look like loose tags but are none, each going on with the value above.
    loose = "TY  - JOUR\nAB  - x\n" + "HIV - positive\n" * 200_000 + "ER  - \n"
    (entry,) = READER.entries(Piece(1, loose), Header())
    assert len(entry.fields) == 2 and entry.fields[1][1].count("\n") == 200_000
    # A DOI field ending in a million dots, a link naming Ovid a hundred thousand times.
    dots = "10.1000/x" + "." * 1_000_000
    hostile = f"TY  - JOUR\nDO  - {dots}\nUR  - {'http://ovid.com/' * 100_000}\nER  - \n"
    (entry,) = READER.entries(Piece(1, hostile), Header())
    assert READER.work(entry, Header()).identifiers == [("doi", dots, None)]
    assert time.process_time() - started < 60


def test_too_long_entry_fails_alone() -> None:
    long_record = "TY  - JOUR\n" + "AB  - x\n" * 20_000 + "ER  - \n"
    text = "TY  - JOUR\nTI  - Before\nER  - \n" + long_record + "TY  - JOUR\nTI  - After\nER  - \n"
    chunks = [text[at : at + 1000] for at in range(0, len(text), 1000)]  # as a file is read
    converted = [
        entry
        for header, piece in pieces("ris", chunks, max_entry_chars=10_000, piece_chars=1000)
        for entry in convert_piece("ris", piece, header, CONTEXT)
    ]
    assert [(c.line_number, c.problem is None) for c in converted] == [
        (1, True),
        (4, False),
        (20_006, True),
    ]
    assert "longer than the maximum entry size" in (converted[1].problem or "")


def test_small_pieces_read_as_one() -> None:
    """A file read in small chunks is cut into many pieces (at loose starts too), and reads as
    the whole text does."""
    loose = "TY - JOUR\nTI - Loose\nER -\n" * 400
    # After the first 64 KB (read whole before the splitter starts), the pieces are small.
    text = read_file(ASREVIEW / "ovid_psycinfo.ris") + read_file(ASREVIEW / "embase.ris") + loose
    whole = list(READER.entries(Piece(1, text), Header()))
    assert len(whole) == 412 and all(entry.problem is None for entry in whole)
    chunks = [text[at : at + 500] for at in range(0, len(text), 500)]
    cut = list(pieces("ris", chunks, max_entry_chars=10**6, piece_chars=500))
    assert len(cut) > 10 and sum(piece.text.startswith("TY - ") for _, piece in cut) > 5
    assert [entry for header, piece in cut for entry in READER.entries(piece, header)] == whole
