"""The EPPI-Reviewer JSON report reader (contract section 10): the SDK's example report gives the
SDK's expected lines enhancement by enhancement (plus the raw enhancement); the dialects of
EPPI-Reviewer's exports (indented at column 0 with CRLF, single-line with codes); a broken,
deep, cut-off or too long reference fails alone; the document is streamed in bounded memory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats import reader
from import_pipeline.formats.base import Header, Piece, too_long
from import_pipeline.formats.convert import (
    MAX_ENTRY_CHARS,
    PIECE_CHARS,
    ConvertedEntry,
    convert_piece,
    convert_text,
    numbered,
)
from import_pipeline.formats.eppi import ReferencesSplitter
from import_pipeline.formats.lines import FileContext
from import_pipeline.pipeline.exports import convert_file

DEMO = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data"
REPORT = DEMO / "exports/destiny_eppi/eppi_report.json"
#: The SDK's own test: `EPPIParser().parse_data(report, source="test-source")`.
EXPECTED = DEMO / "destiny/eppi_import.jsonl"
EXPECTED_WITH_RAW = DEMO / "destiny/eppi_import_with_raw.jsonl"
EXPECTED_WITH_ANNOTATIONS = DEMO / "destiny/eppi_import_with_annotations.jsonl"
#: As the SDK's test of raw enhancements dates the export.
CONTEXT = FileContext("eppi_json", "test-source", "2023-12-02T16:30:00")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("eppi_json", text, CONTEXT, **limits)


def lines_of(text: str) -> list[dict[str, Any]]:
    """Every entry's line, validated by the line model; no entry may fail."""
    converted = convert(text)
    assert [e.problem for e in converted if e.problem] == []
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)
    return [json.loads(entry.line) for entry in converted if entry.line]


def contents(line: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["content"]["enhancement_type"]: e["content"] for e in line["enhancements"]}


def streamed(text: str, chunk: int, **limits: int) -> list[ConvertedEntry]:
    """The entries of `text` fed to the splitter `chunk` characters at a time."""
    eppi = reader("eppi_json")
    header = eppi.header(text[:65_536])
    splitter = eppi.splitter(
        header,
        limits.get("max_entry_chars", MAX_ENTRY_CHARS),
        limits.get("piece_chars", PIECE_CHARS),
    )
    cut = [p for i in range(0, len(text), chunk) for p in splitter.feed(text[i : i + chunk])]
    cut.extend(splitter.finish())
    entries: list[ConvertedEntry] = []
    for piece in cut:
        last = entries[-1].line_number if entries else 0
        entries += numbered(convert_piece("eppi_json", piece, header, CONTEXT), last)
    return entries


def report(*references: str, indent: str = "    ") -> str:
    """An indented report (as `json.dumps(indent=...)` and EPPI-Reviewer's older exports)."""
    body = ",\n".join(indent + r for r in references)
    return '{\n  "CodeSets": [],\n  "References": [\n' + body + "\n  ]\n}\n"


# -- the SDK's example -----------------------------------------------------------------------


def test_the_sdk_example_report_imports_every_reference_at_the_line_it_starts_on() -> None:
    converted = convert(REPORT.read_text(encoding="utf-8"))
    assert [(e.line_number, e.problem) for e in converted] == [
        (9, None),
        (18, None),
        (27, None),
        (36, None),
    ]
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)


def test_the_sdk_example_gives_the_sdks_lines_enhancement_by_enhancement() -> None:
    """Identifiers, the abstract and the bibliographic enhancement as the SDK's expected
    output, source included (the record's source_name, the file naming no database); the one
    difference the contract asks for: a raw enhancement more."""
    ours = lines_of(REPORT.read_text(encoding="utf-8"))
    expected = [json.loads(line) for line in EXPECTED.read_text(encoding="utf-8").splitlines()]
    assert len(ours) == len(expected) == 4
    for line, sdk_line in zip(ours, expected, strict=True):
        assert line["visibility"] == sdk_line["visibility"]
        assert line["identifiers"] == sdk_line["identifiers"]
        by_type = {e["content"]["enhancement_type"]: e for e in line["enhancements"]}
        for sdk_enhancement in sdk_line["enhancements"]:
            assert by_type.pop(sdk_enhancement["content"]["enhancement_type"]) == sdk_enhancement
        assert list(by_type) == ["raw"]


def test_the_raw_enhancement_holds_the_whole_reference_as_the_sdks_raw_data() -> None:
    """The SDK's raw data is the reference without its Abstract (excluded by its importer's
    default, the abstract being an enhancement of its own); ours keeps every field. Its export
    date is the record's; its description and metadata (the SDK's: the codeset ids) ours."""
    ours = lines_of(REPORT.read_text(encoding="utf-8"))
    expected = [json.loads(line) for line in EXPECTED_WITH_RAW.read_text("utf-8").splitlines()]
    references = json.loads(REPORT.read_text(encoding="utf-8"))["References"]
    for line, sdk_line, reference in zip(ours, expected, references, strict=True):
        raw, sdk_raw = contents(line)["raw"], contents(sdk_line)["raw"]
        assert raw["data"] == reference
        assert {k: v for k, v in raw["data"].items() if k != "Abstract"} == sdk_raw["data"]
        assert raw["source_export_date"] == sdk_raw["source_export_date"]
        assert raw["metadata"] == {"format": "eppi_json"}
        assert sdk_raw["metadata"] == {"codeset_ids": [83429]}
        assert contents(line)["abstract"] == contents(sdk_line)["abstract"]


def test_codes_make_no_annotation_as_by_the_sdks_default() -> None:
    """The SDK annotates only with the tags its command line is given (its
    `_with_annotations` output); by default, as here, there is no annotation."""
    ours = lines_of(REPORT.read_text(encoding="utf-8"))
    tagged = [
        json.loads(line) for line in EXPECTED_WITH_ANNOTATIONS.read_text("utf-8").splitlines()
    ]
    for line, sdk_line in zip(ours, tagged, strict=True):
        assert "annotation" not in contents(line)
        assert "annotation" in contents(sdk_line)
        assert contents(line)["bibliographic"] == contents(sdk_line)["bibliographic"]


# -- the dialects ----------------------------------------------------------------------------

#: EPPI-Reviewer's older exports: indented, references at column 0, codes nested deeper.
COLUMN_ZERO = """{
"CodeSets": [
{
  "SetName": "Data Extraction",
  "SetId": 93634
}
],
"References": [
{
  "QuickCitation": "Smith Anna (2020) A first work. Journal of Tests 52(1), 3-12",
  "ItemId": 46656814,
  "Title": "A first work",
  "ParentTitle": "Journal of Tests",
  "Year": "2020",
  "StandardNumber": "WOS:000511663100014 ER",
  "Volume": "52",
  "Pages": "3-12",
  "Issue": "1",
  "TypeName": "Journal, Article",
  "Authors": "Smith Anna ; Jones Bob ; ",
  "DOI": "10.1177/0961000618785408",
  "Codes": [
    {
      "AttributeId": 5822506,
      "ItemAttributeFullTextDetails": []
    }
  ]
},
{
  "ItemId": 46656815,
  "Title": "A second work",
  "Year": "2019",
  "StandardNumber": "1353-3452 (Linking)",
  "TypeName": "Conference Proceedings",
  "ParentTitle": "A Conference",
  "Authors": "Doe Jane",
  "DOI": "",
  "URL": "https://doi.org/10.1007/s11948-012-9356-3"
}
]
}
"""

#: EPPI-Reviewer's newer exports: the whole report on one line, every reference with its codes.
SINGLE_LINE = (
    '{"CodeSets":[{"SetName":"Comparison Sets","SetId":168751,"Attributes":{"AttributesList":'
    '[{"AttributeId":9095072,"AttributeName":"References"}]}}],"References":[{"Codes":'
    '[{"AttributeId":9095041,"AdditionalText":"","ArmId":0}],"Outcomes":[],"ItemId":54786072,'
    '"Title":"Informetric analysis","ParentTitle":"A Conference","Year":"2019","Month":"",'
    '"StandardNumber":"9781728155296 (ISBN)","Volume":"376","Pages":"576-585","TypeName":'
    '"Conference Proceedings","Authors":"Zhang Chunbo ; Ding Kun ; ","DOI":'
    '"10.2991/sschd-19.2019.100","Keywords":"Bibliometrics\\r\\nRetraction"},{"Codes":[],'
    '"Outcomes":[],"ItemId":54779252,"Title":"Collaboration and retraction","ParentTitle":'
    '"Scientometrics","Year":"2020","StandardNumber":"01389130 (ISSN)","Volume":"125","Pages":'
    '"213-232","Issue":"1","URL":"https://www.scopus.com/inward/record.uri?partnerID=HzOxMe3b&'
    'scp=85088878125&origin=inward","TypeName":"Journal, Article","Authors":"Zhang Qin ; ",'
    '"DOI":"10.1007/s11192-020-03636-w"}]}'
)


def test_an_indented_report_at_column_zero_with_codesets_before() -> None:
    text = COLUMN_ZERO
    converted = convert(text)
    assert [e.line_number for e in converted] == [9, 29]
    first, second = lines_of(text)
    assert first["identifiers"] == [
        {"identifier_type": "doi", "identifier": "10.1177/0961000618785408"},
        {
            "identifier_type": "other",
            "identifier": "WOS:000511663100014",
            "other_identifier_name": "Web of Science",
        },
    ]
    biblio = contents(first)["bibliographic"]
    assert [a["display_name"] for a in biblio["authorship"]] == ["Smith Anna", "Jones Bob"]
    assert biblio["publication_year"] == 2020
    assert biblio["pagination"] == {
        "volume": "52",
        "issue": "1",
        "first_page": "3",
        "last_page": "12",
    }
    assert biblio["publication_venue"] == {
        "display_name": "Journal of Tests",
        "venue_type": "journal",
    }
    raw = contents(first)["raw"]["data"]
    assert raw["ItemId"] == 46656814  # not an identifier (the SDK's default), kept in raw
    assert raw["Codes"] == [{"AttributeId": 5822506, "ItemAttributeFullTextDetails": []}]
    assert "annotation" not in contents(first)
    assert second["identifiers"] == [
        {"identifier_type": "doi", "identifier": "10.1007/s11948-012-9356-3"}
    ]
    venue = contents(second)["bibliographic"]["publication_venue"]
    assert venue == {
        "display_name": "A Conference",
        "venue_type": "conference",
        "issn": ["1353-3452"],
    }
    assert all(
        e["source"] == "test-source" for line in (first, second) for e in line["enhancements"]
    )


def test_a_report_on_one_line() -> None:
    converted = convert(SINGLE_LINE)
    # Both start on line 1: the second takes the next number, to keep a result of its own.
    assert [e.line_number for e in converted] == [1, 2]
    first, second = lines_of(SINGLE_LINE)
    assert first["identifiers"] == [
        {"identifier_type": "doi", "identifier": "10.2991/sschd-19.2019.100"}
    ]
    assert "issn" not in contents(first)["bibliographic"]["publication_venue"]  # an ISBN
    assert contents(first)["raw"]["data"]["Keywords"] == "Bibliometrics\r\nRetraction"
    assert contents(first)["raw"]["data"]["Outcomes"] == []
    assert second["identifiers"] == [
        {"identifier_type": "doi", "identifier": "10.1007/s11192-020-03636-w"},
        {
            "identifier_type": "other",
            "identifier": "2-s2.0-85088878125",
            "other_identifier_name": "Scopus EID",
        },
    ]
    biblio = contents(second)["bibliographic"]
    assert biblio["publication_venue"]["issn"] == ["0138-9130"]
    assert biblio["pagination"] == {
        "volume": "125",
        "issue": "1",
        "first_page": "213",
        "last_page": "232",
    }


@pytest.mark.parametrize(
    ("fields", "identifiers"),
    [
        ({"URL": "https://eric.ed.gov/?id=ED581143"}, [("eric", "ED581143", None)]),
        (
            {
                "DOI": "https://doi.org/10.1080/00220973.1978.11011636",
                "URL": "https://www.proquest.com/docview/1299989139",
            },
            [("doi", "10.1080/00220973.1978.11011636", None), ("pro_quest", "1299989139", None)],
        ),
        (
            {"URL": "http://dx.doi.org/10.1080/00220973.1978.11011636"},
            [("doi", "10.1080/00220973.1978.11011636", None)],
        ),
        ({"URL": "https://openalex.org/W2741809807"}, [("open_alex", "W2741809807", None)]),
        ({"StandardNumber": "MEDLINE:31886771"}, [("pm_id", "31886771", None)]),
        (
            {"StandardNumber": "DRCI:DATA2020264020818329"},
            [("other", "DRCI:DATA2020264020818329", "Web of Science")],
        ),
        (
            {"DOI": " 10.1000/xyz ", "URL": "https://doi.org/10.1000/xyz"},
            [("doi", "10.1000/xyz", None)],
        ),
    ],
)
def test_identifiers_from_the_doi_the_link_and_the_standard_number(
    fields: dict[str, str], identifiers: list[tuple[str, str, str | None]]
) -> None:
    (line,) = lines_of(report(json.dumps({"Title": "A work", **fields})))
    assert [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
        if i.get("other_identifier_name") != "import_pipeline.entry"  # with no trusted one
    ] == identifiers


def test_a_reference_without_an_identifier_is_imported_under_its_entry_key() -> None:
    """The SDK drops it (no known identifier); the contract imports it, ItemId staying in raw."""
    (line,) = lines_of(report('{"ItemId": 109014171, "Stuff": "that isn\'t", "An": "identifier"}'))
    (identifier,) = line["identifiers"]
    assert identifier["other_identifier_name"] == "import_pipeline.entry"
    assert identifier["identifier"].startswith("test-source:")
    assert contents(line)["raw"]["data"] == {
        "ItemId": 109014171,
        "Stuff": "that isn't",
        "An": "identifier",
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Year": "n.d."}, {}),
        ({"Year": 2021}, {"publication_year": 2021}),
        ({"Year": "20190"}, {}),
        ({"Pages": "1352-62"}, {"pagination": {"first_page": "1352", "last_page": "1362"}}),
        ({"Pages": "e1234"}, {"pagination": {"first_page": "e1234"}}),
        ({"Pages": "S1 – S10"}, {"pagination": {"first_page": "S1", "last_page": "S10"}}),
        (
            {"TypeName": "Book, Chapter", "ParentTitle": "A Book"},
            {"publication_venue": {"display_name": "A Book"}},
        ),
        (
            {"StandardNumber": "0959-8138, 1756-1833"},
            {"publication_venue": {"issn": ["0959-8138", "1756-1833"]}},
        ),
        ({"StandardNumber": "978-1-00-017905-7"}, {}),
        ({"Publisher": "Elsevier BV", "Authors": " ; "}, {"publisher": "Elsevier BV"}),
        (
            {"Authors": "Zuckerman Harriet ; "},
            {"authorship": [{"display_name": "Zuckerman Harriet", "position": "first"}]},
        ),
    ],
)
def test_bibliographic_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (line,) = lines_of(report(json.dumps({"Title": "T", "DOI": "10.1000/x", **fields})))
    assert contents(line)["bibliographic"] == {
        "enhancement_type": "bibliographic",
        "title": "T",
        **expected,
    }


def test_a_report_with_no_references_has_no_entry() -> None:
    assert convert('{"CodeSets": [], "References": []}') == []
    assert convert("") == []


def test_cesu8_pairs_are_the_characters_they_encode(tmp_path: Path) -> None:
    """EPPI exports may write a character beyond U+FFFF as CESU-8 (two encoded surrogates),
    which UTF-8 refuses byte by byte; the SDK's importer replaces them, we read them."""
    above = ord("𝑥") - 0x10000
    pair = chr(0xD800 + (above >> 10)) + chr(0xDC00 + (above & 0x3FF))
    cesu8 = pair.encode("utf-8", "surrogatepass")  # each surrogate as three bytes
    path = tmp_path / "report.json"
    path.write_bytes(
        report('{"Title": "The variable X", "DOI": "10.1000/x"}').encode().replace(b"X", cesu8)
    )
    (entry,) = convert_file(path, None, None, "test-source")
    assert entry.problem is None and entry.line is not None
    assert contents(json.loads(entry.line))["bibliographic"]["title"] == "The variable 𝑥"


# -- what fails alone ------------------------------------------------------------------------

GOOD_1 = '{"Title": "One", "DOI": "10.1000/one"}'
GOOD_2 = '{"Title": "Two", "DOI": "10.1000/two"}'


def failures(converted: list[ConvertedEntry]) -> list[tuple[int, str]]:
    return [(e.line_number, e.problem) for e in converted if e.problem is not None]


def titles(converted: list[ConvertedEntry]) -> list[str]:
    return [contents(json.loads(e.line))["bibliographic"]["title"] for e in converted if e.line]


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ('{"Title": "Bad", "DOI": "10.1000/bad",,}', "not valid JSON: Expecting property name"),
        (
            '{"Title": "Bad "quoted" word"}',
            "not valid JSON: Expecting ',' delimiter (line 5, character 17",
        ),
        ('{"Title": "Raw\ttab"}', "not valid JSON: Invalid control character"),
        ('{"Title": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested too deeply"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('"just a string"', "not a JSON object"),
        ("12", "not a JSON object"),
        ('{"Title": "Lone \\ud800 surrogate"}', "unpaired surrogate"),
    ],
)
def test_a_broken_reference_fails_alone(broken: str, problem: str) -> None:
    for converted in (
        convert(report(GOOD_1, broken, GOOD_2)),
        streamed(report(GOOD_1, broken, GOOD_2), 7),
    ):
        assert titles(converted) == ["One", "Two"]
        ((line, message),) = failures(converted)
        assert line == 5 and problem in message


def test_a_broken_reference_over_several_lines_fails_alone_at_column_zero() -> None:
    broken = COLUMN_ZERO.replace('"Title": "A first work",', '"Title": "A first work" oops,')
    converted = convert(broken)
    ((line, message),) = failures(converted)
    assert line == 9 and "line 12" in message
    assert titles(converted) == ["A second work"]
    failed = next(e for e in converted if e.problem)
    assert failed.text.startswith("{") and failed.text.endswith("}")


def test_a_broken_last_reference_does_not_read_on_past_the_list() -> None:
    text = (
        '{\n  "References": [\n    ' + GOOD_1 + ',\n    {"Title": "Bad",,}\n  ],\n'
        '  "CodeSets": [\n    {"SetName": "Codes", "SetId": 1},\n    {"SetName": "More"}\n  ]\n}\n'
    )
    converted = convert(text)
    assert titles(converted) == ["One"]
    ((line, _),) = failures(converted)
    assert line == 4
    assert [e.text for e in converted if e.problem] == ['{"Title": "Bad",,}']


def test_a_broken_reference_in_a_single_line_report_fails_with_the_rest_of_the_file() -> None:
    text = '{"References": [' + GOOD_1 + ', {"Title": "Bad",,}, ' + GOOD_2 + "]}"
    converted = convert(text)
    assert titles(converted) == ["One"]
    ((line, message),) = failures(converted)
    assert line == 2 and "Expecting property name" in message  # numbered after the first


def test_a_broken_reference_longer_than_the_maximum_fails_without_its_text() -> None:
    broken = '{"Title": "Bad",, "Abstract": "' + "x" * 50_000 + '"}'
    for text in (report(GOOD_1, broken, GOOD_2), '{"References": [' + GOOD_1 + "," + broken + "]}"):
        converted = streamed(text, 1000, max_entry_chars=10_000)
        assert [(e.line_number, e.text) for e in converted if e.problem] == [
            (converted[1].line_number, "")
        ]
        assert "Expecting property name" in str(converted[1].problem)
        assert titles(converted) == (["One", "Two"] if text.startswith("{\n") else ["One"])


def test_a_report_cut_off_inside_a_reference_or_between_two() -> None:
    text = report(GOOD_1, GOOD_2)
    inside = convert(text[: text.index('"Two"') + 3])
    assert titles(inside) == ["One"]
    assert failures(inside) == [(5, "the reference is cut off by the end of the file")]
    between = convert(text[: text.index(GOOD_2)])
    assert titles(between) == ["One"]
    ((_, message),) = failures(between)
    assert 'ends inside the "References" list' in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[{"Title": "A CSL-JSON list"}]', "not an EPPI-Reviewer JSON report"),
        ('{"CodeSets": []}', 'no "References" list'),
        ('{"References": null}', 'no "References" list'),
    ],
)
def test_a_file_that_is_no_report_fails_as_one_entry(text: str, problem: str) -> None:
    ((line, message),) = failures(convert(text))
    assert line == 1 and problem in message


def test_a_reference_longer_than_the_maximum_fails_alone_its_text_not_held() -> None:
    long_one = json.dumps({"Title": "Long", "Abstract": "x" * 50_000})
    text = report(GOOD_1, long_one, GOOD_2)
    for converted in (
        convert(text, max_entry_chars=10_000),
        streamed(text, 1000, max_entry_chars=10_000),
    ):
        assert titles(converted) == ["One", "Two"]
        assert failures(converted) == [(5, too_long(10_000))]


def test_any_cut_of_the_text_gives_the_same_entries() -> None:
    text = REPORT.read_text(encoding="utf-8")
    whole = convert(text)
    for chunk in (1, 2, 3, 5, 64, 4096):
        assert streamed(text, chunk, piece_chars=3000) == whole
    single = convert(SINGLE_LINE)
    assert streamed(SINGLE_LINE, 3, piece_chars=200) == single


def test_a_hundred_thousand_references_stream_in_bounded_memory_and_linear_time() -> None:
    text = report(*(f'{{"DOI": "10.1000/w{i}", "Codes": [{i}]}}' for i in range(100_000)))
    splitter = ReferencesSplitter(max_entry_chars=10_000, piece_chars=100_000)
    held, cut, started = 0, [], time.process_time()
    for start in range(0, len(text), 65_536):
        cut.extend(splitter.feed(text[start : start + 65_536]))
        held = max(held, len(splitter.buffer) + splitter.held_chars)
    cut.extend(splitter.finish())
    assert time.process_time() - started < 10  # linear: ~1 s on a loaded machine
    assert held < 100_000 + 10_000 + 65_536
    assert sum(piece.text.count('"DOI"') for piece in cut) == 100_000
    eppi = reader("eppi_json")
    last = list(eppi.entries(cut[-1], Header()))
    assert [e.line_number for e in eppi.entries(cut[0], Header())][:2] == [4, 5]
    assert last[-1].line_number == 100_003
    assert last[-1].fields == (("DOI", "10.1000/w99999"), ("Codes", "[99999]"))


def test_a_long_reference_fed_in_small_feeds_is_decoded_a_bounded_number_of_times() -> None:
    text = report(json.dumps({"Title": "Long", "DOI": "10.1000/l", "Abstract": "word " * 400_000}))
    started = time.process_time()
    converted = streamed(text, 1024, piece_chars=1 << 20)
    assert titles(converted) == ["Long"]
    assert time.process_time() - started < 2  # 2,000 feeds of a 2 MB reference: ~0.1 s


def test_the_reader_is_picklable_and_pieces_carry_only_text() -> None:
    import pickle

    eppi = pickle.loads(pickle.dumps(reader("eppi_json")))
    splitter = ReferencesSplitter(1000, 1000)
    cut = [*splitter.feed(report(GOOD_1)), *splitter.finish()]
    assert cut == [Piece(4, GOOD_1)]
    assert [e.fields for e in eppi.entries(cut[0], Header())] == [
        (("Title", "One"), ("DOI", "10.1000/one"))
    ]
