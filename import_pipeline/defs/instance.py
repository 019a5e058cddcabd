"""The Dagster instance's `dagster.yaml`: the one shipped with the package, and PostgreSQL
storage on top when `DAGSTER_POSTGRES_URL` is set (contract section 9)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The first line of the shipped file: a `dagster.yaml` that starts with it is ours to rewrite;
#: any other is the user's own, never touched.
SHIPPED_MARKER = "# The Dagster instance settings shipped with import_pipeline"

#: Runs, events, schedules, sensors' cursors, dynamic partitions and the pools' slots in
#: PostgreSQL: one instance for every process and machine that launches runs, so the
#: `duckdb_writer` pool serialises writers across all of them. The URL stays in the variable.
_POSTGRES_STORAGE = """
# DAGSTER_POSTGRES_URL is set: the instance lives in PostgreSQL (dagster-postgres), shared by
# every process and machine that uses this file.
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""


def instance_yaml(*, postgres: bool) -> str:
    shipped = (resources.files("import_pipeline") / "dagster.yaml").read_text(encoding="utf-8")
    return shipped + (_POSTGRES_STORAGE if postgres else "")


def write_instance_config(dagster_home: Path, *, postgres: bool) -> Path:
    """Writes the instance's `dagster.yaml` into `dagster_home`, unless the user wrote their
    own there; returns its path."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if config.exists() and not config.read_text(encoding="utf-8").startswith(SHIPPED_MARKER):
        return config
    config.write_text(instance_yaml(postgres=postgres), encoding="utf-8")
    return config
