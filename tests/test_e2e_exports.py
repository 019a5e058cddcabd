"""End to end: exports dropped into the landing zone of the real `dagster dev` are imported by
the sensor's run like JSONL batches (gzipped, a `.txt` told by its content), and `ingest`
imports an export file now."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from import_pipeline.landing import LandingZone

from .conftest import RECORD
from .dagster_dev import dagster_dev

pytestmark = pytest.mark.e2e

EXPORTS = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data/exports"


def test_the_sensor_imports_exports_of_every_kind(tmp_path: Path) -> None:
    files = {
        "scopus.ris": (EXPORTS / "asreview/scopus.ris").read_bytes(),
        "eric.nbib.gz": gzip.compress((EXPORTS / "colrev/eric_nbib.nbib").read_bytes()),
        "pubmed_endnote.txt": (EXPORTS / "asreview/pubmed_endnote.txt").read_bytes(),
        "wiley.bib": (EXPORTS / "colrev/wiley_bib.bib").read_bytes(),
        "ieee.csv": (EXPORTS / "colrev/ieee_csv.csv").read_bytes(),
    }
    with dagster_dev(tmp_path) as server:
        landing = LandingZone(str(server.home / "landing"))
        record = tmp_path / "record.json"
        record.write_text(json.dumps(RECORD))
        landing.put_file(str(record), "exports-e2e", "record.json")
        for name, content in files.items():
            (tmp_path / name).write_bytes(content)
            landing.put_file(str(tmp_path / name), "exports-e2e", name)
        run = server.wait_for_run("exports-e2e")
        assert run["status"] == "SUCCESS"
        summary = json.loads(server.cli("summary", "exports-e2e", "--json").stdout)
        assert {b["name"]: b["status"] for b in summary["batches"]} == {
            name: "completed" for name in files
        }
        assert summary["results"]["completed"] == summary["total"] > 0
        ref = json.loads(
            server.cli("reference", "doi:10.1016/j.psyneuen.2019.104501", "--json").stdout
        )
        kinds = {e["content"]["enhancement_type"] for e in ref["enhancements"]}
        assert {"bibliographic", "abstract", "raw"} <= kinds


def test_ingest_imports_an_export_now(tmp_path: Path) -> None:
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    folder = tmp_path / "drop" / "embase-search"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / "embase.csv").write_bytes((EXPORTS / "asreview/embase.csv").read_bytes())
    (folder / "embase.ris").write_bytes((EXPORTS / "asreview/embase.ris").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "import_pipeline.cli", "ingest", str(folder), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["results"].get("failed", 0) == 0 and summary["total"] > 0
    assert {b["status"] for b in summary["batches"]} == {"completed"}
