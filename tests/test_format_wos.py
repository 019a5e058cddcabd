"""The Web of Science tagged-text reader: a hand-written ``savedrecs.txt`` (from the public field
tag list, with the metadata of real records) read whole and checked by hand, the format's
continuation lines, and input that fails alone."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from import_pipeline.domain.formats import sniff
from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats.base import Header, Piece
from import_pipeline.formats.convert import ConvertedEntry, convert_text, pieces
from import_pipeline.formats.lines import FileContext
from import_pipeline.formats.wos import READER

SAVEDRECS = Path(__file__).resolve().parent / "data/exports/wos/savedrecs.txt"
CONTEXT = FileContext("wos", "my-source", "2024-05-01T00:00:00Z", database="Web of Science")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("wos", text, CONTEXT, **limits)


def lines_of(text: str) -> list[dict[str, Any]]:
    converted = convert(text)
    assert [c.problem for c in converted if c.problem] == []
    for entry in converted:
        ReferenceFileInput.model_validate_json(entry.line or "")
    return [json.loads(entry.line or "") for entry in converted]


def content(line: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["content"] for e in line["enhancements"] if e["content"]["enhancement_type"] == kind]
    return found[0] if found else {}


def ids(line: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
    ]


def test_savedrecs() -> None:
    text = SAVEDRECS.read_text(encoding="utf-8")
    assert sniff(text) == "wos"
    assert READER.header(text) == Header(database="Web of Science")
    assert [c.line_number for c in convert(text)] == [3, 58, 99, 119]
    alceste, denault, medline, resnet = lines_of(text)

    biblio = content(alceste, "bibliographic")
    assert biblio["title"] == (
        "Holding Yourself Captive: Perceptions of Custody During Interviews and Interrogations"
    )
    assert [a["display_name"] for a in biblio["authorship"]] == [
        "Alceste, Fabiana",
        "Luke, Timothy J.",
        "Kassin, Saul M.",
    ]
    assert biblio["publication_year"] == 2018
    assert biblio["publisher"] == "ELSEVIER SCIENCE INC"
    assert biblio["pagination"] == {
        "volume": "7",
        "issue": "3",
        "first_page": "387",
        "last_page": "397",
    }
    assert biblio["publication_venue"] == {
        "display_name": "JOURNAL OF APPLIED RESEARCH IN MEMORY AND COGNITION",
        "venue_type": "journal",
        "issn": ["2211-3681", "2211-369X"],
    }
    assert ids(alceste) == [
        ("doi", "10.1016/j.jarmac.2018.03.001", None),
        ("other", "WOS:000444108200009", "Web of Science"),
    ]
    assert content(alceste, "abstract")["abstract"].startswith("Police custody activates")
    assert {e["source"] for e in alceste["enhancements"]} == {"Web of Science"}
    raw = content(alceste, "raw")["data"]
    assert raw["AU"] == ["Alceste, F", "Luke, TJ", "Kassin, SM"]  # one field per line
    assert len(raw["CR"]) == 3 and len(raw["C1"]) == 3
    assert raw["ID"] == (
        "PERSPECTIVE-TAKING; INNOCENCE; MIRANDA; ATTRIBUTION; OBSERVERS; ACTORS; SELF"
    )  # a wrapped value, joined with a space
    assert raw["TC"] == "5" and raw["DA"] == "2023-06-13"

    # An article number (AR) and no BP: the first page; the PubMed id (PM).
    assert content(denault, "bibliographic")["pagination"] == {
        "volume": "14",
        "first_page": "1175856",
    }
    assert ("pm_id", "37425185", None) in ids(denault)
    assert content(denault, "bibliographic")["publication_venue"]["issn"] == ["1664-1078"]
    # A MEDLINE record (UT MEDLINE:…): its accession number is its PubMed id; "349-69".
    assert ids(medline) == [
        ("doi", "10.2165/11586800-000000000-00000", None),
        ("pm_id", "21553931", None),
    ]
    assert content(medline, "bibliographic")["pagination"]["last_page"] == "369"
    assert [a["display_name"] for a in content(medline, "bibliographic")["authorship"]] == [
        "Abdel-Tawab, M",
        "Werz, O",
        "Schubert-Zsilavecz, M",
    ]  # no AF: AU's names
    # A proceedings paper (PT C): a conference venue.
    venue = content(resnet, "bibliographic")["publication_venue"]
    assert (venue["venue_type"], venue["issn"]) == ("conference", ["1063-6919"])


def test_crlf_file_and_bom() -> None:
    text = SAVEDRECS.read_text(encoding="utf-8")
    windows = "\ufeff" + text.replace("\n", "\r\n")
    crlf = [json.loads(c.line or "") for c in convert(windows.replace("\r\n", "\n"))]
    assert crlf == lines_of(text)
    stray = convert(
        "FN Clarivate Analytics Web of Science\r\nVR 1.0\r\nPT J\r\nTI A\rB\r\nER\r\nEF\r"
    )
    assert [c.problem for c in stray] == [None]
    assert content(json.loads(stray[0].line or ""), "bibliographic")["title"] == "A\rB"


def test_record_without_er() -> None:
    text = "FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nTI Cut\nPT J\nTI Whole\nER\n\nPT J\nTI Truncated"
    converted = convert(text)
    # Cut off by the next record; the last one, ended by the file's end, reads.
    assert [(c.line_number, c.problem is None) for c in converted] == [
        (3, False),
        (5, True),
        (9, True),
    ]
    assert converted[0].problem == (
        "the Web of Science record is cut off before its ER line: the next record starts right "
        "after its last field"
    )


def test_text_outside_records() -> None:
    text = "FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nTI One\nER\n\nEF\nSomething else\n"
    converted = convert(text)
    assert [(c.line_number, c.problem is None) for c in converted] == [(3, True), (8, False)]
    assert converted[1].text == "Something else"
    assert "not part of any Web of Science record" in (converted[1].problem or "")
    header = convert("Exported from somewhere\nPT J\nTI One\nER\n")
    assert [(c.line_number, c.problem is None) for c in header] == [(1, False), (2, True)]


def test_fields() -> None:
    (entry,) = READER.entries(
        Piece(
            1,
            "PT J\nAU Smith, J\n   Jones, K\nTI A title\n   wrapped\nAB\nUT BCI:BCI201900123\nDL http://dx.doi.org/10.1000/xyz\nER\n",
        ),
        Header(),
    )
    assert entry.fields == (
        ("PT", "J"),
        ("AU", "Smith, J"),
        ("AU", "Jones, K"),
        ("TI", "A title wrapped"),
        ("AB", ""),
        ("UT", "BCI:BCI201900123"),
        ("DL", "http://dx.doi.org/10.1000/xyz"),
    )
    work = READER.work(entry, Header())
    assert work.authors == ["Smith, J", "Jones, K"] and work.abstract is None
    assert work.identifiers == [
        ("doi", "10.1000/xyz", None),
        ("other", "BCI:BCI201900123", "Web of Science"),
    ]


def test_many_records_in_small_pieces() -> None:
    """A file read in small chunks is cut into many pieces, and reads as the whole text does."""
    record = "PT J\nAU Author, A\n   Author, B\nTI Title {n}\nPY 2020\nDI 10.1000/{n}\nER\n\n"
    text = "FN Clarivate Analytics Web of Science\nVR 1.0\n"
    text += "".join(record.format(n=n) for n in range(10_000)) + "EF\n"
    whole = list(READER.entries(Piece(1, text), Header()))
    assert len(whole) == 10_000 and whole[-1].line_number == 3 + 8 * 9_999
    chunks = [text[at : at + 4096] for at in range(0, len(text), 4096)]
    cut = list(pieces("wos", chunks, piece_chars=4096))
    assert len(cut) > 100
    entries = [entry for header, piece in cut for entry in READER.entries(piece, header)]
    assert entries == whole


def test_hostile_input_costs_its_size() -> None:
    started = time.process_time()
    abstract = "word " * 4_000_000  # a 20 MB abstract line
    references = "".join(f"   Author{n} A, 2000, J, V1, P{n}\n" for n in range(100_000))
    text = f"PT J\nTI Long\nAB {abstract}\nCR First A, 1999, J, V1, P1\n{references}DI {'10.1000/x' + '.' * 100_000}\nER\n"
    (entry,) = READER.entries(Piece(1, text), Header())
    assert len([tag for tag, _ in entry.fields if tag == "CR"]) == 100_001
    work = READER.work(entry, Header())
    assert work.abstract is not None and len(work.abstract) == len(abstract.strip())
    assert work.identifiers[0][0] == "doi"  # too long to search: left whole to the line model
    (garbage,) = convert("\x00\x01 not tagged text\n" * 10_000)
    assert garbage.line_number == 1 and garbage.problem is not None
    assert time.process_time() - started < 60  # only work growing faster than the input fails
