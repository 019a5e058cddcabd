"""Exports through the real import path (contract section 10): the landing zone takes them,
each entry becomes one line with one result at the line it starts on, a broken entry fails
alone, encodings and gzip are read, and an entry without identifiers imported again is the
same reference."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest

from import_pipeline import store
from import_pipeline.landing import LandingZone
from import_pipeline.landing.zone import batch_name_problem
from import_pipeline.pipeline.exports import convert_file
from import_pipeline.settings import Settings

from .conftest import import_directly, results_of, write_batch, write_record

EXPORTS = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data/exports"
#: Every shared export that is a batch, with the format its name tells (`.txt`: sniffed).
SHARED = sorted(
    p
    for p in EXPORTS.rglob("*")
    if p.is_file()
    and not p.name.startswith("LICENSE")
    and not p.name.endswith(("_result.bib", "_expected.bib"))
)

RIS = """TY  - JOUR
TI  - A first work
AU  - Smith, Anna
PY  - 2020
ER  - 

TY  - JOUR
TI  - A second work with a DOI
DO  - 10.1000/second
ER  - 
"""


def _statuses(settings: Settings, key: str) -> list[tuple[int, str, list[str]]]:
    return [
        (r["line_number"], r["status"], [e["code"] for e in r["errors"] or []])
        for r in results_of(settings, key)
    ]


@pytest.mark.parametrize("path", SHARED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_export_imports_with_no_entry_failed(
    settings: Settings, landing: LandingZone, path: Path
) -> None:
    entries = list(convert_file(path, None, None, "test"))
    assert entries and all(e.problem is None for e in entries), [e.problem for e in entries]
    write_record(landing, "shared")
    write_batch(landing, "shared", path.name, path.read_bytes())
    [batch] = import_directly(settings, landing, "shared")
    assert batch.status == "completed", batch.failure_details
    results = results_of(settings, "shared")
    assert [r["line_number"] for r in results] == [e.line_number for e in entries]
    assert {r["status"] for r in results} == {"completed"}


def test_each_entry_gets_one_result_at_the_line_it_starts_on(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "ris")
    write_batch(landing, "ris", "search.ris", "\n\n" + RIS)
    import_directly(settings, landing, "ris")
    assert _statuses(settings, "ris") == [(3, "completed", []), (9, "completed", [])]
    with store.connect(settings.store, read_only=True) as conn:
        ref = store.find_reference(conn, identifier_type="doi", identifier="10.1000/second")
    types = {e["content"]["enhancement_type"] for e in ref["enhancements"]}
    assert types == {"bibliographic", "raw"}
    raw = next(e for e in ref["enhancements"] if e["content"]["enhancement_type"] == "raw")
    assert raw["content"]["data"]["TI"] == "A second work with a DOI"
    assert raw["source"] == "test"  # the record's source_name: the file names no database


def test_a_broken_entry_fails_alone(settings: Settings, landing: LandingZone) -> None:
    cut_off = "TY  - JOUR\nTI  - Cut off before its ER line\n"
    write_record(landing, "broken")
    write_batch(
        landing,
        "broken",
        "b.ris",
        RIS.replace("TY  - JOUR\nTI  - A second", cut_off + "TY  - JOUR\nTI  - A second"),
    )
    import_directly(settings, landing, "broken")
    statuses = _statuses(settings, "broken")
    assert [s[1] for s in statuses] == ["completed", "failed", "completed"]
    assert statuses[1][2] == ["InvalidInput"]


def test_an_entry_without_identifiers_dropped_again_is_the_same_reference(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "again")
    write_batch(landing, "again", "a.ris", RIS)
    import_directly(settings, landing, "again")
    before = {r["line_number"]: r["reference_id"] for r in results_of(settings, "again")}
    inserted = "TY  - JOUR\nTI  - A work added above\nER  - \n\n"
    write_batch(landing, "again", "a.ris", inserted + RIS)  # the file changed elsewhere
    import_directly(settings, landing, "again")
    after = {r["line_number"]: r["reference_id"] for r in results_of(settings, "again")}
    assert after[5] == before[1] and after[11] == before[7]
    with store.connect(settings.store, read_only=True) as conn:
        (count,) = conn.execute(
            "SELECT count(DISTINCT reference_id) FROM reference_identifier"
        ).fetchone()
    assert count == 3


def test_encodings_byte_order_marks_and_gzip(settings: Settings, landing: LandingZone) -> None:
    text = RIS.replace("A first work", "Über die Wärme").replace("\n", "\r\n")
    write_record(landing, "enc")
    write_batch(landing, "enc", "utf16.ris", text.encode("utf-16"))
    write_batch(landing, "enc", "bom.ris", b"\xef\xbb\xbf" + text.encode())
    write_batch(landing, "enc", "zipped.ris.gz", gzip.compress(text.encode()))
    write_record(landing, "cp", encoding="cp1252")
    write_batch(landing, "cp", "cp1252.ris", text.encode("cp1252"))
    import_directly(settings, landing, "enc")
    import_directly(settings, landing, "cp")
    for key in ("enc", "cp"):
        assert {s[1] for s in _statuses(settings, key)} == {"completed"}
    with store.connect(settings.store, read_only=True) as conn:
        titles = conn.execute(
            "SELECT DISTINCT content->>'title' FROM reference_enhancement "
            "WHERE enhancement_type = 'bibliographic'"
        ).fetchall()
    assert ("Über die Wärme",) in titles and len(titles) == 2


def test_bytes_the_encoding_refuses_fail_only_their_entry(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "bytes")
    write_batch(landing, "bytes", "b.ris", RIS.replace("A first", "A \xff first").encode("latin-1"))
    import_directly(settings, landing, "bytes")
    statuses = _statuses(settings, "bytes")
    assert [s[1] for s in statuses] == ["failed", "completed"]
    assert statuses[0][2] == ["InvalidInput"]


def test_a_txt_is_told_by_its_content_or_by_record_json(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "txt")
    write_batch(landing, "txt", "export.txt", RIS)
    write_batch(landing, "txt", "notes.txt", "Dear reviewer,\nhere are my notes.\n")
    import_directly(settings, landing, "txt")
    with store.connect(settings.store, read_only=True) as conn:
        batches = {
            name: (status, reason)
            for name, status, reason in conn.execute(
                "SELECT name, status, failure_details FROM import_batches"
            ).fetchall()
        }
    assert batches["export.txt"][0] == "completed"
    assert batches["notes.txt"][0] == "failed" and "cannot be told" in batches["notes.txt"][1]
    write_record(landing, "declared", format="ris")
    write_batch(landing, "declared", "notes.txt", RIS)
    import_directly(settings, landing, "declared")
    assert {s[1] for s in _statuses(settings, "declared")} == {"completed"}


def test_an_entry_longer_than_the_limit_fails_alone(
    settings: Settings, landing: LandingZone
) -> None:
    small = dataclasses.replace(settings, max_entry_bytes=2000)
    long_entry = "TY  - JOUR\nAB  - " + "x" * 5000 + "\nER  - \n\n"
    write_record(landing, "long")
    write_batch(landing, "long", "l.ris", long_entry + RIS)
    import_directly(small, landing, "long")
    statuses = _statuses(small, "long")
    assert statuses[0][1:] == ("failed", ["LineTooLong"])
    assert [s[1] for s in statuses[1:]] == ["completed", "completed"]


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("a.ris", True), ("a.RIS", True), ("a.nbib.gz", True), ("a.bib", True), ("a.enw", True),
        ("a.csv", True), ("a.tsv", True), ("a.json", True), ("a.txt.gz", True),
        ("record.json", False), ("a.pdf", False), ("a.ris.part", False),
    ],
)  # fmt: skip
def test_the_landing_zone_takes_every_format(name: str, batch: bool) -> None:
    assert (batch_name_problem(name) is None) is batch


def test_record_json_names_a_known_format_and_encoding(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "bad", format="word", encoding="klingon")
    from import_pipeline.landing.records import read_record

    reading = read_record(landing, landing.record_folder("bad"))
    assert reading.record is None
    assert "format must be one of" in reading.problem and "klingon" in reading.problem


def test_convert_prints_the_lines_an_export_becomes(tmp_path: Path, capsys) -> None:
    from import_pipeline.cli import main

    path = tmp_path / "two.ris"
    path.write_text(
        RIS.replace(
            "TY  - JOUR\nTI  - A second", "TY  - JOUR\nTI  - cut\nTY  - JOUR\nTI  - A second"
        )
    )
    assert main(["convert", str(path)]) == 1  # an entry failed
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2 and "line 7:" in err
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["convert", str(tmp_path / "notes.txt")]) == 2


def test_an_undecodable_utf16_tail_fails_only_its_entry(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "odd")
    write_batch(landing, "odd", "odd.ris", RIS.encode("utf-16") + b"\x00")  # an odd last byte
    write_batch(landing, "odd", "UPPER.RIS.GZ", gzip.compress(RIS.encode()))
    import_directly(settings, landing, "odd")
    with store.connect(settings.store, read_only=True) as conn:
        statuses = dict(conn.execute("SELECT name, status FROM import_batches").fetchall())
    assert statuses == {"odd.ris": "partially_failed", "UPPER.RIS.GZ": "completed"}


def test_a_search_exported_again_keys_its_entries_alike(
    settings: Settings, landing: LandingZone
) -> None:
    """Scopus writes the export's date into every record: the entry key leaves it out, and
    an entry with a Scopus EID is keyed by it."""
    entry = "TY  - JOUR\nTI  - No DOI here\nN1  - Export Date: {date}\nER  - \n\n"
    with_eid = "TY  - JOUR\nTI  - An EID\nUR  - https://www.scopus.com/inward/record.uri?eid=2-s2.0-85071&partnerID=40\nN1  - Export Date: {date}\nER  - \n\n"
    write_record(landing, "again", collision_strategy="append")
    write_batch(landing, "again", "s.ris", (entry + with_eid).format(date="18 November 2019"))
    import_directly(settings, landing, "again")
    before = [r["reference_id"] for r in results_of(settings, "again")]
    write_batch(landing, "again", "s.ris", (entry + with_eid).format(date="2 March 2021"))
    import_directly(settings, landing, "again")
    assert [r["reference_id"] for r in results_of(settings, "again")] == before
    with store.connect(settings.store, read_only=True) as conn:
        (raws,) = conn.execute(
            "SELECT count(*) FROM reference_enhancement WHERE enhancement_type = 'raw'"
        ).fetchone()
    assert raws == 4  # each export's raw once per entry: the dates differ, the export date not


def test_sniffing_reads_past_a_header_and_a_one_space_tag() -> None:
    from import_pipeline.domain.formats import sniff

    assert sniff("Provider: JSTOR http://www.jstor.org\nDatabase: JSTOR\n\nTY  - JOUR\n") == "ris"
    assert sniff("TY - JOUR\nTI - loose\n") == "ris"
    assert sniff("PMID- 1\nTI  - x\n") == "medline"
    assert sniff("PT\tAU\tTI\nJ\tA\tB\n") == "csv"


def test_an_export_of_no_entry_fails_as_a_batch_saying_so(
    settings: Settings, landing: LandingZone
) -> None:
    write_record(landing, "none")
    write_batch(landing, "none", "header.csv", "Title,Authors,DOI\n")
    write_batch(landing, "none", "comments.bib", "@comment{nothing here}\n")
    import_directly(settings, landing, "none")
    with store.connect(settings.store, read_only=True) as conn:
        batches = dict(conn.execute("SELECT name, failure_details FROM import_batches").fetchall())
    assert batches == {
        "header.csv": "the file holds no CSV entry",
        "comments.bib": "the file holds no BibTeX entry",
    }
