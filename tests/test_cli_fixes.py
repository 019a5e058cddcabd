"""What users of the command line reported (issue 31), on a store made by a real `ingest`
(the CLI's subprocess, the job and its duplicate detection): batch names in `results`, one
lookup for every REF, titles and provenance, the summary's failing lines, a closed pipe, the
output of `ingest` off a terminal, the sensor after an ingest, a refused folder's summary."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.cli import CLOSED_PIPE, main
from import_pipeline.defs.jobs import run_config_for
from import_pipeline.defs.tags import run_tags
from import_pipeline.landing.demo import DESTINY
from import_pipeline.landing.records import BatchVersion
from import_pipeline.settings import Settings

from .conftest import EPPI_FILES, bibliographic_line, write_batch, write_record
from .test_sensor import LINE, Ticker

CLI = [sys.executable, "-m", "import_pipeline.cli"]
DOI = "10.1016/j.eclinm.2024.102524"  # line 1 of each EPPI file
OTHER_DOI = "10.1016/j.jvacx.2024.100459"  # line 2
TWIN_TITLE = "Diabetes, comorbidities and increased long-term mortality in older patients"
#: The failing lines of `zz_faulty.jsonl`: one too long to show whole, then many more.
FAILING = 401


@dataclass(frozen=True)
class Ingested:
    home: Path
    settings: Settings
    env: dict[str, str]
    done: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """Record "rec" ingested by `import-pipeline ingest` with its stdout and stderr piped:
    the three EPPI exports, two copies of a work and another (detection finds a duplicate),
    and a batch of failing lines."""
    tmp = tmp_path_factory.mktemp("ingested")
    folder = tmp / "drop" / "rec"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({
        "source_name": "EPPI", "processor_name": "t", "processor_version": "1",
        "expected_reference_count": -1}))  # fmt: skip
    for name in EPPI_FILES:
        shutil.copyfile(DESTINY / name, folder / name)
    twins = [bibliographic_line("a", TWIN_TITLE), bibliographic_line("b", TWIN_TITLE.upper() + "."),
             bibliographic_line("c", "An unrelated trial of something else entirely", 2001)]  # fmt: skip
    (folder / "twins.jsonl").write_text("\n".join(twins) + "\n")
    too_long = json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": "x" * 300}]})
    faulty = [too_long] + ['{"identifiers": []}'] * (FAILING - 1)
    (folder / "zz_faulty.jsonl").write_text("\n".join(faulty) + "\n")
    home = tmp / "home"
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(home)}
    for name in ("DAGSTER_HOME", "IMPORT_PIPELINE_STORE", "IMPORT_PIPELINE_LANDING"):
        env.pop(name, None)
    done = subprocess.run(
        [*CLI, "ingest", str(folder)],
        env=env,
        capture_output=True,  # pipes: not a terminal
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Ingested(home, Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)}), env, done)


@pytest.fixture
def home(ingested: Ingested, monkeypatch: pytest.MonkeyPatch) -> Ingested:
    """The commands run in this process read the ingested store."""
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(ingested.home))
    for name in ("IMPORT_PIPELINE_STORE", "IMPORT_PIPELINE_LANDING"):
        monkeypatch.delenv(name, raising=False)
    return ingested


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def run_text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- 1. results name their batch -------------------------------------------------------------


def test_results_name_their_batch_in_the_table_and_in_json(home, capsys) -> None:
    code, out, _ = run_text(capsys, "results", "rec", "--status", "failed", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[2].split()[:2] == ["batch", "line_number"]
    assert [row.split()[:2] for row in lines[4:]] == [
        ["zz_faulty.jsonl", "1"], ["zz_faulty.jsonl", "2"], ["zz_faulty.jsonl", "3"],
    ]  # fmt: skip
    _, doc = run_json(capsys, "results", "rec", "--limit", "500")
    assert {(r["batch"], r["line_number"]) for r in doc["results"]} >= {
        (name, 1) for name in [*EPPI_FILES, "twins.jsonl", "zz_faulty.jsonl"]
    }
    assert all(r["batch"] == "zz_faulty.jsonl" for r in doc["results"] if r["status"] == "failed")


# --- 2. every REF is found as `reference` finds it -------------------------------------------


@pytest.mark.parametrize(
    "form",
    [f"doi:{DOI}", f"doi:{DOI.upper()}", f"doi:https://doi.org/{DOI}",
     f"doi:HTTPS://DOI.ORG/{DOI.upper()}"],
)  # fmt: skip
def test_decide_and_history_find_what_reference_finds(home, capsys, form: str) -> None:
    code, found = run_json(capsys, "reference", form)
    assert code == 0
    code, history = run_json(capsys, "duplicates", "--history", form)
    assert code == 0 and history["reference_id"] == found["id"]
    # As the canonical of a decision, then as the reference decided (undone in between).
    code, pointed = run_json(capsys, "decide", f"doi:{OTHER_DOI}", "--duplicate-of", form)
    assert code == 0 and pointed["duplicate_of"] == found["id"]
    assert run_json(capsys, "decide", f"doi:{OTHER_DOI}", "--distinct")[0] == 0
    code, decided = run_json(capsys, "decide", form, "--distinct")
    assert code == 0 and decided["reference_id"] == found["id"]
    assert main(["decide", "doi:10.9999/nobody", "--distinct"]) == 1


# --- 3. a reference's title and provenance ---------------------------------------------------


def test_reference_shows_its_title_and_where_it_came_from(home, capsys) -> None:
    title = next(
        e["content"]["title"]
        for e in json.loads((DESTINY / EPPI_FILES[0]).read_text().splitlines()[0])["enhancements"]
        if e["content"]["enhancement_type"] == "bibliographic"
    )
    code, ref = run_json(capsys, "reference", f"doi:{DOI}")
    assert code == 0 and ref["title"] == title
    assert ref["provenance"] == [
        {"record_key": "rec", "batch": name, "line_number": 1, "status": "completed"}
        for name in EPPI_FILES
    ]
    assert ref["provenance_total"] == 3
    code, out, _ = run_text(capsys, "reference", f"doi:{DOI}")
    assert code == 0 and f"title: {title}" in out
    for name in EPPI_FILES:
        assert f"record rec  batch {name}  line 1  completed" in out


# --- 4. duplicates name references by title, and so does the store's view --------------------


def test_duplicates_name_both_references_by_title(home, capsys) -> None:
    code, doc = run_json(capsys, "duplicates", "--decision", "duplicate")
    assert code == 0
    (pair,) = doc["results"]
    titles = {TWIN_TITLE, TWIN_TITLE.upper() + "."}
    assert {pair["title"], pair["duplicate_of_title"]} == titles
    code, out, _ = run_text(capsys, "duplicates", "--decision", "duplicate")
    header, _, row = out.splitlines()[2:5]
    assert header.split() == ["reference_id", "title", "decision", "duplicate_of",
                              "duplicate_of_title", "score", "decided_by", "evidence"]  # fmt: skip
    assert pair["reference_id"] in row and pair["duplicate_of"] in row
    assert pair["title"][:30] in row and pair["duplicate_of_title"][:30] in row
    with store.connect(home.settings.store, read_only=True) as conn:
        viewed = conn.execute(
            "SELECT reference_id::VARCHAR, title, duplicate_of::VARCHAR, duplicate_of_title "
            "FROM duplicate_decisions_with_titles WHERE decision = 'duplicate'"
        ).fetchall()
    assert viewed == [
        (pair["reference_id"], pair["title"], pair["duplicate_of"], pair["duplicate_of_title"])
    ]


# --- 5. the summary's table shows the failing lines ------------------------------------------


def test_summary_table_shows_each_batchs_failing_lines(home, capsys) -> None:
    code, out, _ = run_text(capsys, "summary", "rec")
    assert code == 0
    lines = out.splitlines()
    (head,) = [line for line in lines if line.startswith("zz_faulty.jsonl")]
    assert head.rstrip().endswith(f"{FAILING} failing line(s), the first 3:")
    shown = [line.rstrip() for line in lines if "  line " in line]
    assert [s.split("  line ")[1].split(" ")[:2] for s in shown] == [
        ["1", "InvalidField"], ["2", "InvalidField"], ["3", "InvalidField"],
    ]  # fmt: skip
    cells = [s[s.index("  line ") :] for s in shown]
    assert all(len(c) <= 100 for c in cells) and cells[0].endswith("...")
    assert cells[1].endswith("at least one identifier is required")
    code, doc = run_json(capsys, "summary", "rec")
    faulty = doc["batches"][-1]["failing_lines"]
    assert faulty["count"] == FAILING and [f["line"] for f in faulty["lines"]] == [1, 2, 3]


# --- 6. a closed pipe ends the command quietly -----------------------------------------------


def test_a_pipe_closed_early_ends_quietly(ingested) -> None:
    reader = subprocess.Popen(
        [*CLI, "results", "rec", "--limit", "500", "--json"],
        env=ingested.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().strip() == b"{"  # more is on its way than a pipe holds
    reader.stdout.close()  # as `| head -1` does
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == CLOSED_PIPE == 141
    assert "Traceback" not in err and "Exception ignored" not in err and not err.strip()


# --- 7. ingest off a terminal prints its own progress lines, once ----------------------------


def test_ingest_off_a_terminal_prints_only_its_own_lines_once(ingested) -> None:
    lines = ingested.done.stderr.splitlines()
    assert not [line for line in lines if " - dagster - " in line]  # no DEBUG, no INFO
    assert not [line for line in lines if "progress:" in line]  # the run log's copy
    stages = [line.split(" ")[0] for line in lines if line.split(" ")[0] in
              ("load", "validate", "cluster", "store")]  # fmt: skip
    assert set(stages) == {"load", "validate", "cluster", "store"}
    assert f"validate {12 + 3 + FAILING}/{12 + 3 + FAILING} lines (100%)" in ingested.done.stderr
    assert lines[0].startswith("copied 5 batch file(s)") and lines[-1].endswith("finished")


# --- 8. the sensor leaves what ingest imported alone -----------------------------------------


def test_the_sensor_requests_no_run_for_what_ingest_imported(ingested) -> None:
    with dg.DagsterInstance.from_config(str(ingested.home / "dagster")) as instance:
        ticker = Ticker(instance, ingested.settings)
        first = ticker.tick()
        second = ticker.tick()
    assert [r.partition_key for r in first.run_requests + second.run_requests] == []
    assert json.loads(ticker.cursor)["taken"]  # not read again on the next ticks


def test_the_sensor_requests_no_run_for_a_version_a_run_is_importing(settings, landing) -> None:
    write_record(landing, "rec")
    path = write_batch(landing, "rec", "b.jsonl", LINE)
    version = BatchVersion("b.jsonl", hashlib.sha256(LINE.encode()).hexdigest())
    with dg.instance_for_test() as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="import_record",
                run_id="0f0f0f0f-0000-4000-8000-000000000001",
                run_config=run_config_for([version]),
                tags=run_tags("rec", [version], source="cli"),
                status=dg.DagsterRunStatus.STARTED,
            )
        )
        ticker = Ticker(instance, settings)
        ticker.tick()
        assert ticker.tick().run_requests == []
        path.write_text(LINE + LINE)  # another version: the running import is not its own
        ticker.tick()
        (request,) = ticker.tick().run_requests
    assert request.partition_key == "rec"


# --- 9. a refused folder's summary says why --------------------------------------------------


def test_summary_of_a_refused_folder_says_why_and_exits_2(home, capsys) -> None:
    root = home.home / "landing"
    refused = {
        "broken": "record.json is not valid JSON",
        "future": "searched_at",
        "norecord": "has no record.json",
        "bad key": "is not a valid record key",
    }
    (root / "broken").mkdir()
    (root / "broken" / "record.json").write_text("{not json")
    (root / "future").mkdir()
    (root / "future" / "record.json").write_text(json.dumps({
        "source_name": "s", "processor_name": "p", "processor_version": "1",
        "expected_reference_count": -1, "searched_at": "2999-01-01T00:00:00"}))  # fmt: skip
    (root / "norecord").mkdir()
    (root / "norecord" / "b.jsonl").write_text(LINE)
    (root / "bad key").mkdir()
    try:
        for key, why in refused.items():
            code, _, err = run_text(capsys, "summary", key)
            assert code == 2, (key, err)
            assert f"no import record {key!r}" in err and why in err, (key, err)
        code, _, err = run_text(capsys, "summary", "nowhere")
        assert code == 1 and "no import record 'nowhere'" in err
    finally:
        for key in refused:
            shutil.rmtree(root / key)
