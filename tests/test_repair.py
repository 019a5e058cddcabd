"""From "the import had failures" to "every line is in" with the project's commands: `failures`
gives each failing entry exactly as its file holds it, `patch` puts the fixed ones back in
place and imports, `reimport` imports unchanged batches again (real CLI, real job, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

RECORD = {
    "source_name": "repair-test",
    "expected_reference_count": -1,
    "processor_name": "tests",
    "processor_version": "1",
}
GOOD_LINE = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/good.1"}]}'
#: A bad DOI, then a line whose bytes are not UTF-8; CRLF line ends.
JSONL = (
    GOOD_LINE.encode() + b"\r\n"
    + b'{"identifiers": [{"identifier_type": "doi", "identifier": "not-a-doi"}]}\r\n'
    + b"\r\n"
    + b'{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/caf\xe9"}]}\r\n'
)  # fmt: skip
#: The second record is cut off by the third.
RIS = (
    "TY  - JOUR\nTI  - First title\nDO  - 10.1000/ris.1\nER  - \n\n"
    "TY  - JOUR\nTI  - Cut off before its end\nDO  - 10.1000/ris.2\n"
    "TY  - JOUR\nTI  - Third title\nDO  - 10.1000/ris.3\nER  - \n"
)
CSV = (
    "Title,DOI,Year\n"
    '"A first one",10.1000/csv.1,2020\n'
    '"One field too many",10.1000/csv.2,2021,extra\n'
    '"A third",10.1000/csv.3,2022\n'
)
EPPI = """{
  "CodeSets": [],
  "References": [
    {"ItemId": 1, "Title": "A", "DOI": "10.1000/eppi.1"},
    {"ItemId": 2, "Title": "B" "DOI": "10.1000/eppi.2"},
    {"ItemId": 3, "Title": "C", "DOI": "10.1000/eppi.3"}
  ]
}
"""
FIXES = {
    ("a.jsonl", 2): lambda text: text.replace("not-a-doi", "10.1000/fixed.2"),
    ("a.jsonl", 4): lambda text: text.replace("\udce9", "e"),
    ("b.ris", 6): lambda text: text + "\nER  - ",
    ("c.csv", 3): lambda text: text.replace(",extra", ""),
    ("d.json", 5): lambda text: text.replace('"B" "DOI"', '"B", "DOI"'),
}


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "import_pipeline.cli", *argv],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record "rec" ingested: four batches of four formats, one or two failing entries each."""
    root = tmp_path_factory.mktemp("repair")
    folder = root / "drop" / "rec"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / "a.jsonl").write_bytes(JSONL)
    (folder / "b.ris").write_text(RIS)
    (folder / "c.csv").write_text(CSV)
    (folder / "d.json").write_text(EPPI)
    home = root / "home"
    ingested = cli(home, "ingest", str(folder))
    assert ingested.returncode == 0, ingested.stderr
    return home


def summary(home: Path) -> dict:
    done = cli(home, "summary", "rec", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def batch_bytes(home: Path, name: str) -> bytes:
    return (home / "landing" / "rec" / name).read_bytes()


def test_the_loop_from_failures_to_every_line_in(record: Path) -> None:
    home = record
    before = summary(home)
    assert before["results"]["failed"] + before["results"]["partially_failed"] == 5
    shown = cli(home, "failures", "rec")  # for a terminal: each error whole, the text
    assert shown.returncode == 0 and shown.stdout.startswith("5 failing line(s) in record rec")
    assert "\na.jsonl line 4 (failed)\n  (the whole line): InvalidInput: " in shown.stdout
    assert "caf\\xe9" in shown.stdout  # a refused byte, printable
    assert "  text: TY  - JOUR\\nTI  - Cut off before its end" in shown.stdout
    fix = home / "fix.jsonl"
    listed = cli(home, "failures", "rec", "--out", str(fix))
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    failures = [json.loads(line) for line in fix.read_text(encoding="utf-8").splitlines()]
    assert [(f["batch"], f["line_number"]) for f in failures] == sorted(FIXES)
    # Each text is the entry exactly as its file holds it (a refused byte as its escape).
    for failure in failures:
        data = batch_bytes(home, failure["batch"])
        assert failure["text"].encode("utf-8", "surrogateescape") in data
    assert failures[0]["text"] == JSONL.split(b"\r\n")[1].decode()
    assert failures[1]["text"] == JSONL.split(b"\r\n")[3].decode("utf-8", "surrogateescape")
    assert failures[2]["text"] == "TY  - JOUR\nTI  - Cut off before its end\nDO  - 10.1000/ris.2"
    assert failures[4]["text"] == '{"ItemId": 2, "Title": "B" "DOI": "10.1000/eppi.2"}'
    assert all(f["errors"] and f["checksum"] for f in failures)

    originals = {name: batch_bytes(home, name) for name in ("a.jsonl", "b.ris", "c.csv", "d.json")}
    for failure in failures:
        failure["text"] = FIXES[(failure["batch"], failure["line_number"])](failure["text"])
    fix.write_text("".join(json.dumps(f) + "\n" for f in failures), encoding="utf-8")
    patched = cli(home, "patch", "rec", str(fix))
    assert patched.returncode == 0, patched.stderr

    after = summary(home)
    assert after["total"] == before["total"] == 12
    assert after["results"]["completed"] + after["results"]["created"] == 12
    # Only the named entries changed; every other byte (line ends, blank lines) is as it was.
    assert batch_bytes(home, "a.jsonl") == JSONL.replace(b"not-a-doi", b"10.1000/fixed.2").replace(
        b"caf\xe9", b"cafe"
    )
    assert batch_bytes(home, "b.ris").decode() == RIS.replace("ris.2\n", "ris.2\nER  - \n")
    assert batch_bytes(home, "c.csv").decode() == CSV.replace(",extra", "")
    assert batch_bytes(home, "d.json").decode() == EPPI.replace('"B" "DOI"', '"B", "DOI"')
    assert {n: len(v) for n, v in originals.items()} != {
        n: len(batch_bytes(home, n)) for n in originals
    }

    # The same fixes again: the batches changed since that export.
    stale = cli(home, "patch", "rec", str(fix))
    assert stale.returncode == 2 and "has changed since the export" in stale.stderr
    listed = cli(home, "failures", "rec", "--json")
    assert json.loads(listed.stdout) == {"count": 0, "failures": []}


def test_patch_refuses_a_batch_or_line_that_does_not_exist(record: Path, tmp_path: Path) -> None:
    home = record
    (checksum,) = {b["checksum"] for b in _batches(home) if b["name"] == "c.csv"}
    for item, said in [
        ({"batch": "nope.csv", "line_number": 2}, "has no batch"),
        ({"batch": "c.csv", "line_number": 99}, "has no entry at line 99"),
        ({"batch": "c.csv", "line_number": 1}, "has no entry at line 1"),  # the header
    ]:
        path = tmp_path / "fix.jsonl"
        path.write_text(json.dumps({"checksum": checksum, "text": "x", **item}) + "\n")
        refused = cli(home, "patch", "rec", str(path))
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    path.write_text('{"batch": "c.csv"}\n')
    refused = cli(home, "patch", "rec", str(path))
    assert refused.returncode == 2 and "'checksum' missing" in refused.stderr


def test_reimport_imports_unchanged_batches_again(record: Path) -> None:
    home = record
    runs_before = {b["name"]: b["run_id"] for b in _batches(home)}
    results_before = summary(home)["results"]
    again = cli(home, "reimport", "rec", "--batch", "c.csv")
    assert again.returncode == 0, again.stderr
    runs_after = {b["name"]: b["run_id"] for b in _batches(home)}
    assert runs_after["c.csv"] != runs_before["c.csv"]
    assert {n: r for n, r in runs_after.items() if n != "c.csv"} == {
        n: r for n, r in runs_before.items() if n != "c.csv"
    }
    assert summary(home)["results"] == results_before  # the same lines, the same results
    missing = cli(home, "reimport", "rec", "--batch", "nope.csv")
    assert missing.returncode == 2 and "has no batch" in missing.stderr


def _batches(home: Path) -> list[dict]:
    with duckdb.connect(str(home / "references.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT name, checksum, run_id FROM import_batches WHERE record_key = 'rec'"
        ).fetchall()
    return [{"name": n, "checksum": c, "run_id": r} for n, c, r in rows]
