"""The landing zone's rules: record keys, batch names, uploads in progress, links outside."""

import os
from pathlib import Path

import pytest

from import_pipeline.landing import LandingZone, batch_name_problem, is_valid_record_key

from .conftest import write_batch, write_record


@pytest.mark.parametrize("key", ["a", "Rec-1_x", "A" * 64, "0abc"])
def test_valid_record_keys(key: str) -> None:
    assert is_valid_record_key(key)


@pytest.mark.parametrize(
    "key", ["", "with space", "..", "a|b", "A" * 65, "-lead", "_lead", "a/b", "é"]
)
def test_invalid_record_keys(key: str) -> None:
    assert not is_valid_record_key(key)


@pytest.mark.parametrize(
    ("name", "is_batch"),
    [
        ("refs.jsonl", True),
        ("refs.jsonl.gz", True),
        (".refs.jsonl", False),
        ("_refs.jsonl", False),
        ("refs.jsonl.tmp", False),
        ("refs.jsonl.part", False),
        ("refs.csv", True),  # an export (contract section 10)
        ("refs.docx", False),
        ("bad\nname.jsonl", False),
    ],
)
def test_batch_names(name: str, is_batch: bool) -> None:
    assert (batch_name_problem(name) is None) is is_batch


def test_scan_refuses_bad_folders_and_lists_batches(landing: LandingZone) -> None:
    write_record(landing, "good")
    write_batch(landing, "good", "b.jsonl", "{}\n")
    write_batch(landing, "good", "upload.jsonl.part", "{}\n")
    write_batch(landing, "good", "notes.docx", "hello")
    (Path(landing.root) / "good" / "_finalised").touch()
    (Path(landing.root) / "bad key").mkdir()
    scan = landing.scan()
    assert [r.key for r in scan.records] == ["good"]
    record = scan.records[0]
    assert [b.name for b in record.batches] == ["b.jsonl"]
    assert record.finalised
    assert any("notes.docx" in reason for reason in record.ignored)
    assert any("'bad key'" in reason for reason in scan.refused)


def test_links_leading_outside_are_refused(landing: LandingZone, tmp_path: Path) -> None:
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"identifiers": []}\n')
    write_record(landing, "rec")
    os.symlink(outside, Path(landing.root) / "rec" / "leak.jsonl")
    os.symlink(tmp_path, Path(landing.root) / "escape")
    scan = landing.scan()
    assert [b.name for b in scan.records[0].batches] == []
    assert any("outside the landing zone" in r for r in scan.records[0].ignored)
    assert any("outside the landing zone" in r for r in scan.refused)


def test_what_is_not_a_regular_file_is_refused_with_a_word(landing: LandingZone) -> None:
    write_record(landing, "rec")
    folder = Path(landing.root) / "rec"
    os.mkfifo(folder / "fifo.jsonl")  # reading it would wait for ever
    os.symlink("loop.jsonl", folder / "loop.jsonl")
    os.symlink("nowhere.jsonl", folder / "dangling.jsonl")
    os.mkfifo(folder / ".upload.jsonl.part")  # an upload in progress: passed over in silence
    (folder / "ok.jsonl").write_text("{}\n")
    (record,) = landing.scan().records
    assert [b.name for b in record.batches] == ["ok.jsonl"]
    refused = sorted(r for r in record.ignored if "not a regular file" in r)
    assert [r.split("'")[1].rsplit("/", 1)[1] for r in refused] == [
        "dangling.jsonl", "fifo.jsonl", "loop.jsonl"
    ]  # fmt: skip


def test_names_written_two_ways_are_both_refused_and_print_apart(landing: LandingZone) -> None:
    write_record(landing, "rec")
    folder = Path(landing.root) / "rec"
    composed, decomposed = "caf\u00e9.jsonl", "cafe\u0301.jsonl"
    for name in (composed, decomposed, "other.jsonl"):
        (folder / name).write_text("{}\n")
    (record,) = landing.scan().records
    assert [b.name for b in record.batches] == ["other.jsonl"]
    (problem,) = record.ignored
    assert "'caf\\xe9.jsonl'" in problem and "'cafe\\u0301.jsonl'" in problem
    assert "written two ways" in problem


def test_put_file_never_shows_a_partial_file(landing: LandingZone, tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text("{}\n")
    landing.put_file(str(source), "rec", "x.jsonl")
    assert sorted(p.name for p in (Path(landing.root) / "rec").iterdir()) == ["x.jsonl"]
