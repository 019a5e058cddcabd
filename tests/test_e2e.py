"""End to end: the real `dagster dev`, a record dropped into the landing zone, the sensor's run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from import_pipeline.landing import LandingZone

from .conftest import EPPI_FILES, RECORD
from .dagster_dev import dagster_dev

pytestmark = pytest.mark.e2e


def drop_record(
    landing: LandingZone, key: str, source: Path, names: list[str], tmp: Path, **record
) -> None:
    """Copies a record folder in as a user's upload would land: record.json first."""
    record_file = tmp / f"{key}-record.json"
    record_file.write_text(json.dumps({**RECORD, **record}))
    landing.put_file(str(record_file), key, "record.json")
    for name in names:
        landing.put_file(str(source / name), key, name)


def test_sensor_imports_a_dropped_record_and_a_changed_batch(tmp_path: Path, destiny: Path) -> None:
    with dagster_dev(tmp_path) as server:
        landing = LandingZone(str(server.home / "landing"))
        drop_record(landing, "eppi-e2e", destiny, EPPI_FILES, tmp_path, expected_reference_count=12)
        run = server.wait_for_run("eppi-e2e")
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/partition"] == "eppi-e2e"
        assert tags["import_pipeline/batches"] == ",".join(sorted(EPPI_FILES))

        done = server.cli("summary", "eppi-e2e", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["total"] == 12 and summary["results"]["completed"] == 12
        assert [b["status"] for b in summary["batches"]] == ["completed"] * 3
        ref = json.loads(
            server.cli("reference", "doi:10.1016/j.eclinm.2024.102524", "--json").stdout
        )
        assert len(ref["enhancements"]) == 4  # abstract, bibliographic, annotation, raw: one work

        # A changed batch is a new version: imported again, its results replacing the old ones.
        changed = tmp_path / "changed.jsonl"
        shutil.copy(destiny / "eppi_import.jsonl", changed)
        with changed.open("a") as handle:
            handle.write('{"identifiers": [{"identifier_type": "doi", "identifier": "broken"}]}\n')
        landing.put_file(str(changed), "eppi-e2e", "eppi_import.jsonl")
        second = _wait_for_second_run(server, "eppi-e2e")
        assert second["status"] == "SUCCESS"
        summary = json.loads(server.cli("summary", "eppi-e2e", "--json").stdout)
        assert summary["total"] == 13 and summary["results"]["failed"] == 1
        first_batch = next(b for b in summary["batches"] if b["name"] == "eppi_import.jsonl")
        assert first_batch["status"] == "partially_failed"
        assert first_batch["failure_details"][0].startswith("Line 5: InvalidField")


def _wait_for_second_run(server, key: str, timeout: float = 240) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = server.runs(key)
        finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE")]
        if len(finished) >= 2:
            return finished[0]
        time.sleep(1)
    raise AssertionError(f"no second run for {key}:\n{server.log.read_text()[-4000:]}")
