"""The Dagster instance on PostgreSQL (contract section 9): with DAGSTER_POSTGRES_URL set, runs,
events, schedules, cursors, dynamic partitions and the duckdb_writer pool live in a real
PostgreSQL server, started and stopped by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from import_pipeline.defs.instance import write_instance_config
from import_pipeline.settings import postgres_url_for_dagster

from .conftest import EPPI_FILES, RECORD
from .postgres import postgres_server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def test_an_ingest_with_the_variable_set_keeps_the_instance_in_postgresql(
    tmp_path, postgres_url, destiny
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "IMPORT_PIPELINE_HOME": str(home),
        "DAGSTER_POSTGRES_URL": postgres_url,
    }
    env.pop("DAGSTER_HOME", None)
    folder = tmp_path / "drop" / "pg-record"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / EPPI_FILES[0]).write_bytes((destiny / EPPI_FILES[0]).read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "import_pipeline.cli", "ingest", str(folder), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"]["completed"] == 4
    # The instance DAGSTER_HOME points at is PostgreSQL's, read by another process.
    code = (
        "import dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    print(type(instance.run_storage).__name__, type(instance.event_log_storage).__name__,\n"
        "          type(instance.schedule_storage).__name__)\n"
        "    print(instance.get_dynamic_partitions('import_records'))\n"
        "    print(instance.event_log_storage.get_concurrency_info('duckdb_writer').slot_count)\n"
    )
    seen = subprocess.run(
        [sys.executable, "-c", code],
        # A process started without the CLI names the driver itself (docs/deploying.md).
        env={
            **env,
            "DAGSTER_HOME": str(home / "dagster"),
            "DAGSTER_POSTGRES_URL": postgres_url_for_dagster(postgres_url),
        },
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    storages, partitions, slots = seen.stdout.strip().splitlines()
    assert storages == "PostgresRunStorage PostgresEventLogStorage PostgresScheduleStorage"
    assert partitions == "['pg-record']"
    assert slots == "1"  # the shipped pool limit, now the shared instance's
    # And the rows are in the server itself.
    assert _rows(postgres_url, "SELECT status FROM runs") == [("SUCCESS",)]
    assert ("pg-record",) in _rows(postgres_url, "SELECT partition FROM dynamic_partitions")


def test_the_instance_file_is_the_shipped_one_and_never_a_users_own(tmp_path) -> None:
    ours = write_instance_config(tmp_path / "a", postgres=True)
    assert "postgres_url:\n      env: DAGSTER_POSTGRES_URL" in ours.read_text()
    assert "postgres" not in write_instance_config(tmp_path / "a", postgres=False).read_text()
    own = tmp_path / "b" / "dagster.yaml"
    own.parent.mkdir()
    own.write_text("telemetry:\n  enabled: false\n")
    write_instance_config(tmp_path / "b", postgres=True)
    assert own.read_text() == "telemetry:\n  enabled: false\n"


def test_the_deploy_folder_ships_the_same_instance_file_and_valid_yaml() -> None:
    import yaml

    from import_pipeline.defs.instance import instance_yaml

    deploy = Path(__file__).resolve().parents[1] / "deploy"
    assert (deploy / "dagster.yaml").read_text() == instance_yaml(postgres=True)
    values = yaml.safe_load((deploy / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "import_pipeline.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "import_pipeline.definitions" in (deploy / "Dockerfile").read_text()
