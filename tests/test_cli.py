"""`import-pipeline`: output shapes, exit codes, and `ingest` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from import_pipeline.cli import main
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.settings import Settings

from .conftest import EPPI_FILES, import_directly, write_batch, write_record

ALL_STATUSES = sorted(s.value for s in ImportResultStatus)


@pytest.fixture
def home(settings, monkeypatch):
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(settings.home))
    return settings


@pytest.fixture(scope="module")
def imports() -> dict[str, Settings]:
    """The settings of `imported`'s store on each kind of store, once it is made."""
    return {}


@pytest.fixture
def imported(home, landing, destiny, store_kind, imports, monkeypatch):
    """Record "eppi": three real EPPI exports plus a batch with two faulty lines. Imported by
    the first test of the module that takes it, on each kind of store, in that test's home;
    every test that takes it only reads it (the commands run here point at it)."""
    if store_kind not in imports:
        write_record(landing, "eppi", expected_reference_count=14)
        for name in EPPI_FILES:
            write_batch(landing, "eppi", name, (destiny / name).read_bytes())
        write_batch(landing, "eppi", "zz_faulty.jsonl", '{"identifiers": []}\n\n{"oops"\n')
        import_directly(home, landing, "eppi")
        imports[store_kind] = home
    shared = imports[store_kind]
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(shared.home))
    if shared.store_url is not None:
        monkeypatch.setenv("IMPORT_PIPELINE_STORE", shared.store_url)
    return shared


def run_json(capsys, *argv: str) -> tuple[int, object]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_summary_counts_every_status(imported, capsys) -> None:
    code, doc = run_json(capsys, "summary", "eppi")
    assert code == 0
    assert set(doc) == {"record", "batches", "results", "total"}
    assert (
        doc["total"] == 14 and doc["results"]["completed"] == 12 and doc["results"]["failed"] == 2
    )
    assert sorted(doc["results"]) == ALL_STATUSES
    assert doc["record"]["status"] == "started"
    faulty = doc["batches"][-1]
    assert set(faulty) == {
        "id", "name", "storage_url", "status", "results", "failure_details", "failing_lines",
    }  # fmt: skip
    assert faulty["status"] == "failed" and sorted(faulty["results"]) == ALL_STATUSES
    assert [d.split(":")[0] for d in faulty["failure_details"]] == ["Line 1", "Line 3"]
    assert faulty["storage_url"].startswith("file://")


def test_results_pages_and_filters(imported, capsys) -> None:
    code, doc = run_json(capsys, "results", "eppi", "--limit", "5", "--offset", "10")
    assert code == 0 and doc["total"] == 14 and doc["count"] == 4 and doc["limit"] == 5
    assert set(doc["results"][0]) == {
        "id", "import_batch_id", "batch", "line_number", "status", "reference_id", "errors",
        "failure_details", "unresolved_references",
    }  # fmt: skip
    _, failed = run_json(capsys, "results", "eppi", "--status", "failed")
    assert [(r["line_number"], r["errors"][0]["code"]) for r in failed["results"]] == [
        (1, "InvalidField"), (3, "InvalidJsonInput"),
    ]  # fmt: skip
    _, one_batch = run_json(capsys, "results", "eppi", "--batch", "eppi_import.jsonl")
    assert one_batch["total"] == 4


def test_reference_lookup_by_identifier_and_id(imported, capsys) -> None:
    code, ref = run_json(capsys, "reference", "doi:HTTPS://DOI.ORG/10.1016/J.ECLINM.2024.102524")
    assert code == 0
    assert {"identifier_type": "doi", "identifier": "10.1016/j.eclinm.2024.102524"} in ref[
        "identifiers"
    ]
    assert len(ref["enhancements"]) == 4
    code, again = run_json(capsys, "reference", ref["id"])
    assert code == 0 and again["id"] == ref["id"]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["summary", "nope"], 1),
        (["results", "nope"], 1),
        (["results", "eppi", "--batch", "nope.jsonl"], 1),
        (["reference", "doi:10.9999/none"], 1),
        (["reference", "isbn:123"], 2),
        (["reference", "doi:not-a-doi"], 2),
        (["results", "eppi", "--limit", "501"], 2),
        (["results", "eppi", "--offset", "-1"], 2),
        (["results", "eppi", "--status", "done"], 2),
    ],
)
def test_exit_codes(imported, capsys, argv, code) -> None:
    with pytest.raises(SystemExit) if code == 2 and argv[0] == "results" else _no_raise() as raised:
        assert main(argv) == code
    if raised is not None and hasattr(raised, "value"):
        assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() and len(err.strip().splitlines()) >= 1


class _no_raise:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_reader_waits_then_fails_clearly_while_a_writer_holds_the_store(
    imported, capsys, store_kind
) -> None:
    if store_kind == "postgres":
        pytest.skip("the DuckDB file's lock: a PostgreSQL reader never waits (test_postgres_store)")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
         str(imported.duckdb_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert main(["summary", "eppi", "--wait", "1.5"]) == 2
        # The reader waited for the lock (about --wait), then gave up: bounded, not a speed target.
        assert 1.0 <= time.monotonic() - started < 10
        assert "held by another process" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert main(["summary", "eppi"]) == 0


def test_schema_is_the_batch_line_json_schema(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "ReferenceFileInput" and schema["required"] == ["identifiers"]
    assert schema["additionalProperties"] is False


def test_ingest_and_demo_through_the_entry_point(tmp_path: Path, destiny) -> None:
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    folder = tmp_path / "drop" / "my-record"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({
        "source_name": "EPPI", "processor_name": "t", "processor_version": "1", "expected_reference_count": 4}))  # fmt: skip
    (folder / "eppi_import.jsonl").write_bytes((destiny / "eppi_import.jsonl").read_bytes())
    cli = [sys.executable, "-m", "import_pipeline.cli"]
    done = subprocess.run(
        [*cli, "ingest", str(folder), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["results"]["completed"] == 4 and summary["record"]["record_key"] == "my-record"
    assert "finished" in done.stderr
    # Not a terminal: progress as plain lines, each stage's last one at 100%.
    for stage in ("load", "validate", "cluster", "store"):
        assert any(
            line.startswith(f"{stage} ") and ("(100%)" in line or stage == "load")
            for line in done.stderr.splitlines()
        ), (stage, done.stderr)
    assert "validate 4/4 lines (100%)" in done.stderr
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()
    assert (tmp_path / "home" / "landing" / "my-record" / "eppi_import.jsonl").exists()
    refused = subprocess.run(
        [*cli, "ingest", str(tmp_path / "missing")], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "does not exist" in refused.stderr
    demo = subprocess.run(
        [*cli, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0
    assert "synergy-cohen-2006" in json.loads(demo.stdout)["records"]
