"""The PubMed/MEDLINE reader: CoLRev's ERIC exports against CoLRev's reading of them, a
PubMed export written by hand after PubMed's documented tags, each dialect quirk, hostile input."""

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
from import_pipeline.formats.base import Header
from import_pipeline.formats.convert import ConvertedEntry, convert_piece, convert_text, pieces
from import_pipeline.formats.lines import FileContext
from import_pipeline.formats.medline import last_page, pages

ROOT = Path(__file__).resolve().parents[1]
COLREV = ROOT / "import_pipeline" / "demo_data" / "exports" / "colrev"
PUBMED_FIXTURE = ROOT / "tests" / "data" / "exports" / "medline" / "pubmed_records.nbib"
CONTEXT = FileContext("medline", "my-source", "2025-01-02T00:00:00+00:00")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("medline", text, CONTEXT, **limits)


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


# -- CoLRev's ERIC exports -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eric_nbib.nbib", "nbib_data.nbib"])
def test_colrev_eric_exports_read_as_colrev_reads_them(name: str) -> None:
    expected = bibtexparser.parse_string((COLREV / "eric_nbib_result.bib").read_text()).entries[0]
    [line] = lines_of((COLREV / name).read_text())
    biblio = content(line, "bibliographic")
    assert biblio["title"] == expected["title"]
    assert authors(line) == expected["author"].split(" and ")
    assert biblio["publication_year"] == int(expected["year"])
    assert biblio["publication_venue"]["display_name"] == expected["journal"]
    assert biblio["publication_venue"]["issn"] == [expected["issn"]]
    pagination = biblio["pagination"]
    assert (pagination["volume"], pagination["issue"]) == (expected["volume"], expected["number"])
    assert f"{pagination['first_page']}--{pagination['last_page']}" == expected["pages"]
    assert content(line, "abstract")["abstract"] == expected["abstract"]
    assert identifiers(line) == [
        ("doi", expected["doi"], None),
        ("eric", expected["colrev.eric.eric_id"], None),
    ]
    # ERIC names itself (OWN - ERIC): the enhancements' source.
    assert {e["source"] for e in line["enhancements"]} == {"ERIC"}
    raw = content(line, "raw")["data"]
    assert raw["LID"] == expected["colrev.eric.eric_url"]
    assert raw["ISSN"] == "ISSN-1234-4567"  # ERIC's five-character tag
    assert raw["PT"] == ["Journal Articles", "Reports - Research"]


def test_colrev_eric_export_starts_on_its_first_tag_line() -> None:
    [entry] = convert((COLREV / "eric_nbib.nbib").read_text())
    assert entry.line_number == 2  # line 1 is blank
    assert entry.text.startswith("OWN - ERIC\n") and entry.text.endswith("PT  - Reports - Research")


# -- a PubMed export -----------------------------------------------------------------------------


def test_pubmed_export_written_after_pubmeds_tags() -> None:
    text = PUBMED_FIXTURE.read_text()
    converted = convert(text)
    assert [entry.line_number for entry in converted] == [2, 63, 102, 120]
    lancet, plos, chapter, french = lines_of(text)

    biblio = content(lancet, "bibliographic")
    assert biblio["title"] == (
        "Household transmission of seasonal respiratory viruses in three urban cohorts: "
        "a prospective observational study."
    )
    # Full names (FAU) rather than AU, in order; the group (CN) last, where PubMed puts it.
    assert authors(lancet) == [
        "Okafor, Adaeze N",
        "Lindqvist, Per-Erik",
        "van der Berg, Johanna",
        "Urban Respiratory Cohorts Collaborative Group",
    ]
    assert biblio["publication_year"] == 2020
    assert biblio["pagination"] == {
        "volume": "395",
        "issue": "10219",
        "first_page": "123",
        "last_page": "130",
    }
    assert biblio["publication_venue"] == {
        "display_name": "Lancet (London, England)",
        "venue_type": "journal",
        "issn": ["1474-547X", "0140-6736"],
    }
    assert content(lancet, "abstract")["abstract"].startswith(
        "BACKGROUND: Household contacts carry much of the burden of seasonal respiratory "
        "viruses, yet"
    )
    assert identifiers(lancet) == [
        ("pm_id", "31900001", None),
        ("doi", "10.5555/S0140-6736(19)32001-5", None),
        ("other", "PMC7000001", "PMCID"),
    ]
    assert {e["source"] for e in lancet["enhancements"]} == {"PubMed"}
    raw = content(lancet, "raw")["data"]
    assert raw["MH"][3] == "Respiratory Tract Infections/*epidemiology/transmission"
    assert raw["AID"] == ["S0140-6736(19)32001-5 [pii]", "10.5555/S0140-6736(19)32001-5 [doi]"]
    assert raw["SO"].endswith("doi: 10.5555/S0140-6736(19)32001-5. Epub 2019 Dec 10.")
    assert raw["AUID"] == "ORCID: 0000-0002-1825-0097"

    plos_biblio = content(plos, "bibliographic")
    assert plos_biblio["pagination"]["first_page"] == "e0229876"  # an article number
    assert "last_page" not in plos_biblio["pagination"]
    assert plos_biblio["publication_venue"]["issn"] == ["1932-6203"]  # (Electronic), (Linking)
    assert identifiers(plos) == [
        ("pm_id", "31900002", None),
        ("doi", "10.5555/journal.pone.0229876", None),
    ]
    assert content(plos, "raw")["data"]["OT"] == ["adolescents", "sleep"]

    chapter_biblio = content(chapter, "bibliographic")
    assert chapter_biblio["title"] == "Example Deficiency Syndrome"
    assert chapter_biblio["publication_venue"] == {
        "display_name": "Handbook of Rare Metabolic Disorders"
    }
    assert chapter_biblio["publisher"] == "Example University Press"
    assert authors(chapter) == ["Whitfield, Laura"]  # the editor (ED) is no author
    assert identifiers(chapter) == [("pm_id", "20301999", None)]

    french_biblio = content(french, "bibliographic")
    assert french_biblio["pagination"]["first_page"] == "S12"
    assert french_biblio["pagination"]["last_page"] == "S18"
    assert french_biblio["publication_year"] == 1998
    assert "abstract" not in [e["content"]["enhancement_type"] for e in french["enhancements"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123-30", ("123", "130")),
        ("1021-1029", ("1021", "1029")),
        ("98-102", ("98", "102")),
        ("S12-8", ("S12", "S18")),
        ("e0229876", ("e0229876", None)),
        ("727-33; discussion 734", ("727", "733")),
        ("iii-iv", ("iii", "iv")),
        ("", (None, None)),
    ],
)
def test_pages_expand_medlines_abbreviated_last_page(
    value: str, expected: tuple[str | None, str | None]
) -> None:
    assert pages(value) == expected


def test_last_page_longer_than_first_is_kept() -> None:
    assert last_page("9", "12") == "12"


# -- quirks, each as its own small case ----------------------------------------------------------

TWO = """PMID- 1001
TI  - First title that wraps
      onto a second line
      and a third.
FAU - Doe, Jane
AU  - Doe J
DP  - 2019 Mar

PMID- 1002
TI  - Second title.
AU  - Roe R
DP  - 2018
"""


def test_multi_line_values_join_with_a_space() -> None:
    first, _ = lines_of(TWO)
    assert content(first, "bibliographic")["title"] == (
        "First title that wraps onto a second line and a third."
    )


def test_repeated_tags_keep_their_values_in_order() -> None:
    text = "PMID- 7\nMH  - A\nMH  - B\nMH  - C\nPT  - Journal Article\n"
    [line] = lines_of(text)
    assert content(line, "raw")["data"]["MH"] == ["A", "B", "C"]


def test_au_without_fau_is_an_author() -> None:
    _, second = lines_of(TWO)
    assert authors(second) == ["Roe R"]


def test_a_pmid_line_starts_a_record_without_a_blank_line() -> None:
    text = TWO.replace("\n\nPMID- 1002", "\nPMID- 1002")
    converted = convert(text)
    assert [entry.line_number for entry in converted] == [1, 8]
    assert [identifiers(json.loads(e.line or ""))[0][1] for e in converted] == ["1001", "1002"]


def test_crlf_line_ends_read_as_lf() -> None:
    assert lines_of(TWO.replace("\n", "\r\n")) == lines_of(TWO)


def test_blank_lines_with_spaces_separate_records() -> None:
    text = TWO.replace("\n\nPMID- 1002", "\n   \nPMID- 1002")
    assert len(lines_of(text)) == 2


def test_unknown_tags_are_kept() -> None:
    [line] = lines_of("PMID- 5\nTI  - T\nZZZ - something new\nXY  - other\n")
    raw = content(line, "raw")["data"]
    assert (raw["ZZZ"], raw["XY"]) == ("something new", "other")


def test_a_record_with_no_identifier_gets_its_entry_key() -> None:
    text = "TI  - No ids at all\nAU  - Someone S\nDP  - 2001\n"
    [line] = lines_of(text)
    [(kind, value, name)] = identifiers(line)
    assert (kind, name) == ("other", "import_pipeline.entry")
    assert value.startswith("my-source:")
    # The same record again is the same key; another record another.
    assert identifiers(lines_of(text)[0]) == identifiers(line)
    assert identifiers(lines_of(text.replace("2001", "2002"))[0]) != identifiers(line)


def test_byte_order_mark_before_the_first_tag() -> None:
    [line] = lines_of("\ufeffPMID- 42\nTI  - T\n")
    assert identifiers(line) == [("pm_id", "42", None)]


def test_text_before_the_first_record_fails_alone() -> None:
    converted = convert("Search results from somewhere\n" + TWO)
    assert [e.problem is not None for e in converted] == [True, False, False]
    assert "does not start with a MEDLINE tag line" in (converted[0].problem or "")
    assert [e.line_number for e in converted] == [1, 2, 10]


def test_text_before_an_eric_record_fails_alone() -> None:
    eric = (COLREV / "eric_nbib.nbib").read_text().lstrip("\n")
    converted = convert("Exported 2024-05-01\n" + eric)
    assert [(e.line_number, e.problem is None) for e in converted] == [(1, False), (2, True)]


def test_an_empty_value_is_kept() -> None:
    [line] = lines_of("PMID- 5\nTI  - T\nAB  -\nLA  - eng\n")
    assert content(line, "raw")["data"]["AB"] == ""


@pytest.mark.parametrize("name", ["eric_nbib.nbib", "nbib_data.nbib"])
def test_a_txt_export_is_told_medline(name: str) -> None:
    assert sniff((COLREV / name).read_text()) == "medline"
    assert sniff(PUBMED_FIXTURE.read_text()) == "medline"


def test_a_doi_in_so_only_is_found() -> None:
    [line] = lines_of("PMID- 9\nSO  - J X. 2001;1:1-2. doi: 10.5555/abc.123.\n")
    assert ("doi", "10.5555/abc.123", None) in identifiers(line)


# -- pieces and bounded memory -------------------------------------------------------------------


def _by_pieces(text: str, chunk: int, piece_chars: int, max_entry_chars: int) -> list[Any]:
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    found = []
    for header, piece in pieces(
        "medline", chunks, piece_chars=piece_chars, max_entry_chars=max_entry_chars
    ):
        for entry in convert_piece("medline", piece, header, CONTEXT):
            found.append((entry.line_number, entry.line, entry.problem))
    return found


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
@pytest.mark.parametrize("piece_chars", [1, 50, 1000])
def test_entries_do_not_depend_on_where_pieces_end(chunk: int, piece_chars: int) -> None:
    text = PUBMED_FIXTURE.read_text() + TWO.replace("\n\nPMID- 1002", "\nPMID- 1002") + TWO
    whole = [(e.line_number, e.line, e.problem) for e in convert(text)]
    assert len(whole) == 8
    assert _by_pieces(text, chunk, piece_chars, 10**9) == whole


@pytest.mark.parametrize("chunk", [5, 100, 100_000])
def test_a_too_long_record_fails_alone(chunk: int) -> None:
    long_abstract = "AB  - " + "word " * 2000 + "\n" + "      more " * 500 + "\n"
    text = TWO + "\nPMID- 2000\n" + long_abstract + "\n" + TWO
    found = _by_pieces(text, chunk, piece_chars=200, max_entry_chars=5000)
    assert [(line_number, problem is None) for line_number, _, problem in found] == [
        (1, True),
        (9, True),
        (14, False),
        (18, True),
        (26, True),
    ]
    assert "longer than the maximum entry size (5000" in found[2][2]


def test_a_single_huge_line_is_dropped_in_bounded_memory() -> None:
    from import_pipeline.formats.medline import READER

    splitter = READER.splitter(READER.header(""), max_entry_chars=1000, piece_chars=100)
    produced = list(splitter.feed(TWO))
    produced += splitter.feed("PMID- 3\nAB  - ")
    held = []
    for _ in range(200):
        produced += splitter.feed("x" * 1000)
        held.append(splitter.held + len(splitter.partial))
    produced += splitter.feed("\n\n" + TWO)
    produced += splitter.finish()
    assert max(held) <= 2000
    assert [(p.first_line, p.problem is not None) for p in produced] == [
        (1, False),
        (9, False),
        (13, True),
        (16, False),
        (24, False),
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
        lambda n: "\n" * (20 * n),  # blank lines only
        lambda n: (" " * 50 + "\n") * (2 * n),  # whitespace lines
        lambda n: "PMID- 1\n" + "      x\n" * (10 * n),  # one field of many lines
        lambda n: "PMID- 1\n" + ("\n" + " " * 60) * (5 * n),  # blanks between its lines
        lambda n: "PMID- 1\n" * (n // 5),  # records of one line
        lambda n: "AB  - " + "a" * (100 * n),  # a line with no end
    ],
)
def test_hostile_input_costs_no_more_than_its_size(hostile: Any) -> None:
    small, large = _seconds(hostile(1_000)), _seconds(hostile(4_000))
    # Four times the input: about four times the time (a quadratic cost would be sixteen).
    assert large < 8 * small + 0.05
    assert all(entry.problem is None for entry in convert(hostile(100)))


def test_many_records_in_many_pieces() -> None:
    record = TWO.split("\n\n")[1]
    text = "\n".join(record.replace("1002", str(n)) for n in range(1, 2001))
    converted = convert(text, piece_chars=20_000)
    assert len(converted) == 2000
    assert converted[-1].line_number == 1 + 1999 * 5
    assert all(entry.problem is None for entry in converted)


def test_random_texts_read_the_same_in_any_pieces() -> None:
    """Lines of every kind in random order, cut into random pieces (and with a random maximum
    entry size): the same entries, problems and lines as one piece read at once."""
    atoms = [
        "PMID- 1",
        "PMID- 22",
        "TI  - t",
        "ISSN - 1234-5678",
        "      cont",
        "",
        "",
        "  ",
        "junk",
        "AB  -",
        "AB  - x\r",
        "XYZZY - q",
        "FAU - long " + "y" * 30,
        "AB  - " + "q" * 200,
    ]
    rng = random.Random(30)
    for _ in range(150):
        text = "\n".join(rng.choice(atoms) for _ in range(rng.randint(0, 30)))
        limit = rng.choice([10**9, rng.randint(20, 300)])
        whole = _by_pieces(text, max(len(text), 1), 1, limit)
        assert _by_pieces(text, rng.randint(1, 40), rng.randint(1, 400), limit) == whole, text


def test_a_hundred_thousand_records_split_whole() -> None:
    from import_pipeline.formats.medline import READER

    text = "".join(f"PMID- {n}\nTI  - Title {n}\n\n" for n in range(1, 100_001))
    splitter = READER.splitter(READER.header(text[:65536]), 10**6, 65536)
    chunks = (text[i : i + 100_000] for i in range(0, len(text), 100_000))
    split = [piece for chunk in chunks for piece in splitter.feed(chunk)] + list(splitter.finish())
    assert len(split) > 30
    assert "".join(piece.text for piece in split) == text  # nothing lost, nothing twice
    line = 1
    for piece in split:  # each piece starts on a record's first line, numbered right
        assert piece.first_line == line and piece.text.startswith("PMID- ")
        line += piece.text.count("\n")
    last = list(READER.entries(split[-1], Header()))[-1]
    assert (last.line_number, last.fields) == (
        299_998,
        (("PMID", "100000"), ("TI", "Title 100000")),
    )


def test_an_eric_id_as_an_aid() -> None:
    [line] = lines_of("OWN - ERIC\nTI  - T\nAID - ED123456\n")
    assert identifiers(line) == [("eric", "ED123456", None)]
