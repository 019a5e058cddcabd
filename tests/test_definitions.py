"""The code location loads in a fresh process, the way `dagster dev` and `dg` load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dagster").mkdir()
    return {
        **os.environ,
        "IMPORT_PIPELINE_HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }


def test_dagster_definitions_validate_from_workspace_yaml(env) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_dg_checks_the_project(env) -> None:
    dg = Path(sys.executable).with_name("dg")
    done = subprocess.run(
        [str(dg), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_every_dagster_object_is_defined(env) -> None:
    code = (
        "from import_pipeline.definitions import defs\n"
        "repo = defs().get_repository_def()  # loaded as Dagster loads it: lazily\n"
        "print(sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()))\n"
        "print(sorted(s.name for s in repo.sensor_defs), sorted(s.name for s in repo.schedule_defs))\n"
        "print(sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith('__')))\n"
        "print(sorted(k.name for k in repo.asset_graph.asset_check_keys))\n"
        "sensor = repo.get_sensor_def('landing_zone_sensor')\n"
        "print(sensor.default_status.value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assets, automation, jobs, checks, sensor_status = done.stdout.strip().splitlines()
    assert assets == "['duplicate_decisions', 'import_results', 'landing_zone', 'reference_store']"
    assert automation == (
        "['landing_zone_sensor', 'run_recovery', 'settle_canceled_runs', 'settle_failed_runs'] "
        "['hourly_association_resolution', 'scheduled_ingestion']"
    )
    assert "import_record" in jobs and "resolve_associations" in jobs
    assert "every_line_has_one_result" in checks
    assert "every_duplicate_points_to_a_canonical" in checks
    assert "every_reference_has_one_active_decision" in checks
    assert sensor_status == "RUNNING"
