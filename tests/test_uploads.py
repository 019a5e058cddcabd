"""`ingest` imports exactly what it copied, or exits 2 saying why: two uploads of one name never
silently replace each other (contract section 2, issue "Nothing stuck, nothing lost")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from import_pipeline.landing import LandingZone, uploads
from import_pipeline.settings import Settings

from .test_faults import canonical_store, synthetic_lines

RECORD = {"source_name": "t", "processor_name": "t", "processor_version": "1", "expected_reference_count": -1}  # fmt: skip


def _folder(root: Path, name: str, lines: str, key: str = "rec") -> Path:
    folder = root / name / key
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / "same.jsonl").write_text(lines)
    return folder


def _ingest(home: Path, folder: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen(
        [sys.executable, "-m", "import_pipeline.cli", "ingest", str(folder), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_ingests_of_one_name_at_once_import_one_and_refuse_the_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _folder(tmp_path, "first", synthetic_lines(20_000))
    second = _folder(tmp_path, "second", synthetic_lines(15_000, offset=50_000))
    processes = {"first": _ingest(home, first), "second": _ingest(home, second)}
    ended = {name: (p.wait(timeout=600), *p.communicate()) for name, p in processes.items()}
    codes = sorted(code for code, _, _ in ended.values())
    assert codes == [0, 2], {name: err[-2000:] for name, (_, _, err) in ended.items()}
    winner = next(name for name, (code, _, _) in ended.items() if code == 0)
    loser_error = next(err for code, _, err in ended.values() if code == 2)
    assert "another ingest of same.jsonl into record rec is under way" in loser_error
    summary = json.loads(ended[winner][1])
    assert summary["total"] == {"first": 20_000, "second": 15_000}[winner]
    # The store holds exactly what a clean import of the winner's file holds.
    clean = tmp_path / "clean"
    assert _ingest(clean, {"first": first, "second": second}[winner]).wait(timeout=600) == 0
    assert canonical_store(
        Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    ) == canonical_store(Settings.from_env({"IMPORT_PIPELINE_HOME": str(clean)}))


def test_an_ingest_is_refused_while_another_of_the_name_holds_it(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(tmp_path / "home")})
    landing = LandingZone(settings.landing)
    folder = _folder(tmp_path, "drop", synthetic_lines(3))
    upload = uploads.plan_upload(folder, None, landing)
    with uploads.exclusive(upload, landing, settings.home / "locks"):
        refused = subprocess.run(
            [sys.executable, "-m", "import_pipeline.cli", "ingest", str(folder)],
            env={**os.environ, "IMPORT_PIPELINE_HOME": str(settings.home)},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert refused.returncode == 2
    assert f"(pid {os.getpid()})" in refused.stderr
    assert not Path(landing.root, "rec").exists()  # nothing copied


def test_content_someone_dropped_that_is_not_imported_is_never_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    dropped = Path(settings.landing, "rec")
    dropped.mkdir(parents=True)
    (dropped / "record.json").write_text(json.dumps(RECORD))
    (dropped / "same.jsonl").write_text(synthetic_lines(4))  # the sensor has not taken it yet
    refused = _ingest(home, _folder(tmp_path, "mine", synthetic_lines(3, offset=10)))
    _, err = refused.communicate(timeout=300)
    assert refused.returncode == 2
    assert "holds other content that is not imported yet" in err
    assert (dropped / "same.jsonl").read_text() == synthetic_lines(4)
    # Once it is imported, a new version of the name replaces it, as the contract says.
    assert _ingest(home, dropped).wait(timeout=300) == 0
    replaced = _ingest(home, _folder(tmp_path, "again", synthetic_lines(3, offset=10)))
    out, err = replaced.communicate(timeout=300)
    assert replaced.returncode == 0, err
    assert json.loads(out)["total"] == 3
