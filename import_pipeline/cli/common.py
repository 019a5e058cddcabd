"""What the commands share: exit-code exceptions, the store read, the import run, arguments."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import duckdb

from import_pipeline import store
from import_pipeline.domain.identifiers import TRUSTED_TYPES, IdentifierType, normalise_identifier
from import_pipeline.errors import ImportPipelineError, NotFound
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import progress
from import_pipeline.settings import Settings

#: How a module adds a command: name, handler, help; the subparser to add arguments to.
Command = Callable[[str, Callable[..., int], str], argparse.ArgumentParser]


class UsageProblem(ImportPipelineError):
    """Bad arguments or unusable input: exit 2."""


def prepare_dagster_home(settings: Settings) -> Path:
    """Points DAGSTER_HOME at a lasting folder with the shipped dagster.yaml (contract §1),
    its storage on PostgreSQL when DAGSTER_POSTGRES_URL is set (§9)."""
    from import_pipeline.defs.instance import write_instance_config

    home = settings.dagster_home
    write_instance_config(home, postgres=settings.dagster_postgres_url is not None)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.dagster_postgres_url is not None:  # with its driver, for every process started
        os.environ["DAGSTER_POSTGRES_URL"] = settings.dagster_postgres_url
    return home


def store_reader(
    settings: Settings, wait: float | None
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only store connection, waiting up to `wait` seconds (the setting's unless
    given) for a writer to finish."""
    return store.connect(
        settings.store,
        read_only=True,
        wait_seconds=settings.read_wait_seconds if wait is None else wait,
        memory_limit=settings.store_memory,
    )


def imported_checksums(settings: Settings, key: str) -> dict[str, str]:
    """Batch name → checksum of the version the store has, for record `key` (none: no store)."""
    try:
        with store_reader(settings, None) as conn:
            return store.imported_checksums(conn, key)
    except NotFound:
        return {}


#: Dagster's console logger off a terminal (CI, `| cat`): its warnings and errors only, so
#: that the progress lines (`progress.to_terminal`) are all an import prints there, each once.
#: (On a terminal it prints every event, as before; the run's log keeps them all anyway.)
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _console_config() -> dict[str, Any]:
    on_terminal = sys.stdout.isatty() and sys.stderr.isatty()
    return {} if on_terminal else QUIET_CONSOLE


def run_import(
    settings: Settings, key: str, versions: list[BatchVersion], *, again: bool = False
) -> str:
    """Imports `versions` of record `key` now, in this process, through the job the sensor
    launches; the run's id. Raises `UsageProblem` if the run failed."""
    with prepared_import(settings, key) as run:
        return run(versions, again)


#: Runs the prepared import of some batch versions (`again`: even those imported); its id.
RunImport = Callable[[list[BatchVersion], bool], str]


@contextmanager
def prepared_import(settings: Settings, key: str) -> Iterator[RunImport]:
    """The job, its instance and the record's partition, ready before the caller copies files
    into the landing zone: the run then exists within moments of the copy, before the sensor
    could take the files for a run of its own (it skips versions a run is importing)."""
    prepare_dagster_home(settings)
    import dagster as dg

    from import_pipeline.defs import build_defs
    from import_pipeline.defs.jobs import import_record_job
    from import_pipeline.defs.partitions import IMPORT_RECORDS

    with dg.DagsterInstance.get() as instance, progress.listening(progress.to_terminal()):
        instance.add_dynamic_partitions(IMPORT_RECORDS, [key])
        job = build_defs(settings).resolve_job_def(import_record_job.name)
        yield functools.partial(_execute, settings, instance, job, key)


def _execute(
    settings: Settings,
    instance: Any,
    job: Any,
    key: str,
    versions: list[BatchVersion],
    again: bool = False,
) -> str:
    from import_pipeline.defs.jobs import run_config_for
    from import_pipeline.defs.recovery import settle_ended_run
    from import_pipeline.defs.resources import ImportPipelineResource
    from import_pipeline.defs.tags import run_tags

    result = job.execute_in_process(
        partition_key=key,
        instance=instance,
        run_config={**run_config_for(versions, again=again), **_console_config()},
        tags=run_tags(key, versions, source="cli"),
        raise_on_error=False,
    )
    if not result.success and (run := instance.get_run_by_id(result.run_id)) is not None:
        # No batch left `started` by this run, with or without a daemon to settle it.
        settle_ended_run(instance, run, ImportPipelineResource.from_settings(settings))
    if not result.success:
        failure = next((e for e in result.all_events if e.is_failure), None)
        message = failure.message if failure else "the import run failed"
        raise UsageProblem(f"import of record {key!r} failed (run {result.run_id}): {message}")
    return str(result.run_id)


def parse_lookup(lookup: str) -> dict[str, str | None]:
    """`UUID`, `doi:…`, `pm_id:…`, `open_alex:…`, `eric:…`, `pro_quest:…` or `other:<name>:<value>`."""
    try:
        return {"reference_id": str(uuid.UUID(lookup))}
    except ValueError:
        pass
    kind, sep, value = lookup.partition(":")
    if not sep or kind not in {t.value for t in IdentifierType}:
        raise UsageProblem(
            f"cannot read {lookup!r}: expected a UUID or one of "
            + ", ".join(f"{t}:…" for t in sorted(TRUSTED_TYPES))
            + ", other:<name>:<value>"
        )
    name = None
    if kind == IdentifierType.OTHER:
        name, sep, value = value.partition(":")
        if not sep or not name.strip():
            raise UsageProblem("an other identifier is looked up as other:<name>:<value>")
        name = name.strip()
    normalised = normalise_identifier(kind, value)
    if normalised is None:
        raise UsageProblem(f"{value!r} is not a valid {kind} identifier")
    return {"identifier_type": kind, "identifier": normalised, "other_identifier_name": name}


def bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse
