"""The EndNote tagged reader: CoLRev's AIS eLibrary export against CoLRev's reading of it, an
export in EndNote's own shape written by hand, each dialect quirk, hostile input."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import bibtexparser
import pytest

from import_pipeline.domain.formats import sniff
from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats.convert import ConvertedEntry, convert_piece, convert_text, pieces
from import_pipeline.formats.endnote import pages
from import_pipeline.formats.lines import FileContext

ROOT = Path(__file__).resolve().parents[1]
COLREV = ROOT / "import_pipeline" / "demo_data" / "exports" / "colrev"
LIBRARY = ROOT / "tests" / "data" / "exports" / "endnote" / "endnote_library.enw"


CONTEXT = FileContext("endnote", "my-source", "2025-01-02T00:00:00+00:00")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("endnote", text, CONTEXT, **limits)


def lines_of(text: str, **limits: int) -> list[dict[str, Any]]:
    """Every entry's line, each validated as a batch line; no entry may fail."""
    converted = convert(text, **limits)
    assert [entry.problem for entry in converted] == [None] * len(converted)
    found = []
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)
        found.append(json.loads(entry.line))
    return found


def content(line: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["content"] for e in line["enhancements"] if e["content"]["enhancement_type"] == kind]
    return found[0] if found else {}


def identifiers(line: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
    ]


def authors(line: dict[str, Any]) -> list[str]:
    return [a["display_name"] for a in content(line, "bibliographic").get("authorship", [])]


# -- CoLRev's AIS eLibrary export (%T before %0) ------------------------------------------------


def test_colrev_enl_export_reads_as_colrev_reads_it() -> None:
    text = (COLREV / "enl_data.enl").read_text()
    expected = bibtexparser.parse_string((COLREV / "enl_data_expected.bib").read_text()).entries
    converted = convert(text)
    assert [entry.line_number for entry in converted] == [1, 17, 29]
    found = lines_of(text)
    assert len(found) == len(expected) == 3
    for line, bib in zip(found, expected, strict=True):
        biblio = content(line, "bibliographic")
        assert biblio["title"] == bib["title"]
        assert authors(line) == (bib["author"].split(" and ") if "author" in bib else [])
        assert biblio["publication_year"] == int(bib["year"])
        assert biblio["publication_venue"]["display_name"] == bib["journal"]
        pagination = biblio["pagination"]
        assert (pagination["volume"], pagination["issue"]) == (bib["volume"], bib["number"])
        if "pages" in bib:
            assert f"{pagination['first_page']}-{pagination['last_page']}" == bib["pages"]
        else:
            assert "first_page" not in pagination
        if "abstract" in bib:
            assert content(line, "abstract")["abstract"] == bib["abstract"]
        raw = content(line, "raw")["data"]
        assert (raw["%U"], raw["%8"]) == (bib["url"], bib["date"])
        # No identifier in the export: each entry its entry key, under the record's source.
        [(kind, _, name)] = identifiers(line)
        assert (kind, name) == ("other", "import_pipeline.entry")
        assert {e["source"] for e in line["enhancements"]} == {"my-source"}
    # The first entry's %0 after its %T: the type belongs to it, not to a next entry.
    assert content(found[0], "raw")["data"]["%0"] == "Journal Article"
    assert "%0" not in content(found[2], "raw")["data"]


# -- an export in EndNote's own shape ------------------------------------------------------------


def test_endnote_library_export() -> None:
    text = LIBRARY.read_text()
    assert [entry.line_number for entry in convert(text)] == [1, 30, 43, 58]
    article, chapter, scopus, conference = lines_of(text)

    biblio = content(article, "bibliographic")
    assert authors(article) == ["Okafor, Adaeze N.", "Lindqvist, Per-Erik", "van der Berg, Johanna"]
    assert biblio["publication_venue"] == {
        "display_name": "Lancet (London, England)",  # %J before %B
        "venue_type": "journal",
        "issn": ["0140-6736"],
    }
    assert biblio["pagination"] == {
        "volume": "395",
        "issue": "10219",
        "first_page": "123",
        "last_page": "130",
    }
    assert biblio["publication_year"] == 2020
    # A value's lines (and the blank line between two of them) kept as the export breaks them.
    assert content(article, "abstract")["abstract"] == (
        "BACKGROUND: Household contacts carry much of the burden of seasonal respiratory viruses."
        "\nMETHODS: We followed 1204 households in three cities for two winters.\n\n"
        "FINDINGS: The secondary attack rate was 18.4%."
    )
    assert content(article, "raw")["data"]["%K"] == "Adult\nFamily Characteristics\nHumans"
    assert identifiers(article) == [
        ("doi", "10.5555/S0140-6736(19)32001-5", None),
        ("pm_id", "31900001", None),
    ]
    assert {e["source"] for e in article["enhancements"]} == {"PubMed"}  # %~

    chapter_biblio = content(chapter, "bibliographic")
    assert chapter_biblio["publication_venue"] == {
        "display_name": "Handbook of Rare Metabolic Disorders"
    }
    assert chapter_biblio["publisher"] == "Example University Press"
    assert authors(chapter) == ["Whitfield, Laura"]  # the editor (%E) is no author
    assert "issn" not in chapter_biblio["publication_venue"]  # %@ holds an ISBN
    assert identifiers(chapter) == [("doi", "10.5555/978-3-16-148410-0_3", None)]
    assert {e["source"] for e in chapter["enhancements"]} == {"my-source"}

    assert content(scopus, "bibliographic")["pagination"]["first_page"] == "e1234"
    assert identifiers(scopus)[0] == ("other", "2-s2.0-85071234567", "Scopus EID")
    assert {e["source"] for e in scopus["enhancements"]} == {"Scopus"}

    conference_biblio = content(conference, "bibliographic")
    assert conference_biblio["publication_venue"]["venue_type"] == "conference"
    assert identifiers(conference) == [("eric", "EJ1234567", None)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1309-1348", ("1309", "1348")),
        ("i-ii", ("i", "ii")),
        ("e1234", ("e1234", None)),
        ("12 – 19", ("12", "19")),
        ("", (None, None)),
    ],
)
def test_pages(value: str, expected: tuple[str | None, str | None]) -> None:
    assert pages(value) == expected


# -- quirks, each as its own small case ----------------------------------------------------------

TWO = """%0 Journal Article
%T First title
%A Doe, Jane
%A Roe, Richard
%D 2019
%X An abstract
on two lines.

%0 Journal Article
%T Second title
%A Poe, Edgar
%D 2018
"""


def test_lines_without_a_tag_continue_the_field_before() -> None:
    first, _ = lines_of(TWO)
    assert content(first, "abstract")["abstract"] == "An abstract\non two lines."


def test_repeated_authors_keep_their_order() -> None:
    first, second = lines_of(TWO)
    assert authors(first) == ["Doe, Jane", "Roe, Richard"]
    assert authors(second) == ["Poe, Edgar"]


def test_a_second_type_line_starts_an_entry_without_a_blank_line() -> None:
    converted = convert(TWO.replace("\n\n%0", "\n%0"))
    assert [entry.line_number for entry in converted] == [1, 8]
    assert [content(json.loads(e.line or ""), "bibliographic")["title"] for e in converted] == [
        "First title",
        "Second title",
    ]


def test_title_before_type_without_blank_lines_stays_with_its_type() -> None:
    text = "%T Only one\n%0 Journal Article\n%A Doe, Jane\n"
    [line] = lines_of(text)
    assert content(line, "raw")["data"] == {
        "%T": "Only one",
        "%0": "Journal Article",
        "%A": "Doe, Jane",
    }


def test_crlf_line_ends_read_as_lf() -> None:
    assert lines_of(TWO.replace("\n", "\r\n")) == lines_of(TWO)


def test_several_blank_lines_between_entries() -> None:
    assert len(lines_of(TWO.replace("\n\n%0", "\n\n \n\t\n%0"))) == 2


def test_a_blank_line_inside_a_value_does_not_end_the_entry() -> None:
    text = "%0 Generic\n%T T\n%X First paragraph.\n\nSecond paragraph.\n%D 2001\n"
    [line] = lines_of(text)
    assert content(line, "abstract")["abstract"] == "First paragraph.\n\nSecond paragraph."
    assert content(line, "bibliographic")["publication_year"] == 2001


def test_unknown_tags_and_an_empty_value_are_kept() -> None:
    [line] = lines_of("%0 Generic\n%T T\n%Z a note\n%Q\n")
    raw = content(line, "raw")["data"]
    assert (raw["%Z"], raw["%Q"]) == ("a note", "")


def test_an_electronic_resource_number_that_is_no_doi_is_kept_as_other() -> None:
    [line] = lines_of("%0 Generic\n%T T\n%R PMC1234567\n")
    assert identifiers(line)[0] == ("other", "PMC1234567", "EndNote electronic resource number")


def test_a_doi_url_is_a_doi() -> None:
    [line] = lines_of("%0 Generic\n%T T\n%U https://doi.org/10.5555/xyz.1\n")
    assert identifiers(line) == [("doi", "10.5555/xyz.1", None)]


def test_a_txt_export_is_told_endnote() -> None:
    assert sniff((COLREV / "enl_data.enl").read_text()) == "endnote"
    assert sniff(LIBRARY.read_text()) == "endnote"


def test_text_before_the_first_entry_fails_alone() -> None:
    converted = convert("Exported from somewhere\n\n" + TWO)
    assert [e.problem is not None for e in converted] == [True, False, False]
    assert "does not start with a EndNote tag line" in (converted[0].problem or "")


# -- pieces and bounded memory -------------------------------------------------------------------


def _by_pieces(text: str, chunk: int, piece_chars: int, max_entry_chars: int) -> list[Any]:
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    found = []
    for header, piece in pieces(
        "endnote", chunks, piece_chars=piece_chars, max_entry_chars=max_entry_chars
    ):
        for entry in convert_piece("endnote", piece, header, CONTEXT):
            found.append((entry.line_number, entry.line, entry.problem))
    return found


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
@pytest.mark.parametrize("piece_chars", [1, 50, 1000])
def test_entries_do_not_depend_on_where_pieces_end(chunk: int, piece_chars: int) -> None:
    text = (
        (COLREV / "enl_data.enl").read_text()
        + "\n"
        + LIBRARY.read_text()
        + TWO.replace("\n\n%0", "\n%0")
        + "%T T\n%0 Generic\n%A X\n%0 Generic\n%T U\n"
    )
    whole = [(e.line_number, e.line, e.problem) for e in convert(text)]
    assert len(whole) == 11
    assert _by_pieces(text, chunk, piece_chars, 10**9) == whole


@pytest.mark.parametrize("chunk", [5, 100, 100_000])
def test_a_too_long_entry_fails_alone(chunk: int) -> None:
    text = TWO + "\n%0 Generic\n%X " + "word " * 2000 + "\n" + "more\n" * 500 + "\n" + TWO
    found = _by_pieces(text, chunk, piece_chars=200, max_entry_chars=5000)
    assert [(line_number, problem is None) for line_number, _, problem in found] == [
        (1, True),
        (9, True),
        (14, False),
        (517, True),
        (525, True),
    ]


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        convert(text, piece_chars=10_000)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "hostile",
    [
        lambda n: "%X x\n" + "\n \n" * (10 * n),  # blank lines inside a value
        lambda n: "%X x\n" + "more\n" * (10 * n),  # a value of many lines
        lambda n: "%0 G\n" * (n // 5),  # entries of one line, no blank lines
        lambda n: "%T " + "a" * (100 * n),  # a line with no end
    ],
)
def test_hostile_input_costs_no_more_than_its_size(hostile: Any) -> None:
    small, large = _seconds(hostile(1_000)), _seconds(hostile(4_000))
    # Four times the input: about four times the time (a quadratic cost would be sixteen).
    assert large < 8 * small + 0.05
    assert all(entry.problem is None for entry in convert(hostile(100)))


def test_random_texts_read_the_same_in_any_pieces() -> None:
    """Lines of every kind in random order, cut into random pieces (and with a random maximum
    entry size): the same entries, problems and lines as one piece read at once."""
    atoms = [
        "%0 Journal Article",
        "%0 X",
        "%T t",
        "%A a",
        "%X",
        "%X x\r",
        "cont",
        "",
        "",
        "  ",
        "junk",
        "%0",
        "% no",
        "%T long " + "y" * 30,
        "%X " + "q" * 200,
    ]
    rng = random.Random(30)
    for _ in range(150):
        text = "\n".join(rng.choice(atoms) for _ in range(rng.randint(0, 30)))
        limit = rng.choice([10**9, rng.randint(20, 300)])
        whole = _by_pieces(text, max(len(text), 1), 1, limit)
        assert _by_pieces(text, rng.randint(1, 40), rng.randint(1, 400), limit) == whole, text
