"""The one resource: where the landing zone and the reference store are, and the limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from import_pipeline import store
from import_pipeline.defs import first_error
from import_pipeline.defs.run_workers import Heartbeat
from import_pipeline.landing import LandingZone
from import_pipeline.settings import RUN_TIME_VARIABLES, Settings, set_variables

_UNSET = "unset: the contract's default"


class ImportPipelineResource(dg.ConfigurableResource):
    """The landing zone and the reference store (a DuckDB file or PostgreSQL) of an import pipeline. Each field is
    one environment variable of contract section 1, as text; an unset field takes the
    contract's default (`Settings.from_env` applies them).

    Example:
        ```python
        pipeline = ImportPipelineResource.from_environment()  # dg.EnvVar per variable set
        with pipeline.store(read_only=True) as conn:
            store.table_counts(conn)
        ```
    """

    home: str | None = Field(default=None, description=f"IMPORT_PIPELINE_HOME ({_UNSET} ./var).")
    landing: str | None = Field(
        default=None, description=f"IMPORT_PIPELINE_LANDING: a path or fsspec URL ({_UNSET})."
    )
    duckdb_path: str | None = Field(
        default=None, description=f"IMPORT_PIPELINE_DUCKDB: the store's file ({_UNSET})."
    )
    store_url: str | None = Field(
        default=None,
        description="IMPORT_PIPELINE_STORE: the store on PostgreSQL (postgresql://…), else the file.",
    )
    unresolved_ttl: str | None = Field(
        default=None, description=f"IMPORT_PIPELINE_UNRESOLVED_TTL, e.g. 48h ({_UNSET})."
    )
    max_line_bytes: str | None = Field(
        default=None, description="IMPORT_PIPELINE_MAX_LINE_BYTES: longer lines fail alone."
    )
    max_entry_bytes: str | None = Field(
        default=None,
        description="IMPORT_PIPELINE_MAX_ENTRY_BYTES: longer export entries fail alone.",
    )
    max_decompressed_bytes: str | None = Field(
        default=None, description="IMPORT_PIPELINE_MAX_DECOMPRESSED_BYTES: a gzip's limit."
    )
    max_decompression_ratio: str | None = Field(
        default=None, description="IMPORT_PIPELINE_MAX_DECOMPRESSION_RATIO: ... as a ratio."
    )
    store_memory: str | None = Field(
        default=None, description="IMPORT_PIPELINE_STORE_MEMORY: DuckDB's memory per connection."
    )
    run_attempts: str | None = Field(
        default=None,
        description="IMPORT_PIPELINE_RUN_ATTEMPTS: attempts of a batch version whose run ended "
        "by a failure that passes, the first included (default 4).",
    )
    retry_seconds: str | None = Field(
        default=None,
        description="IMPORT_PIPELINE_RETRY_SECONDS: the wait before the first retry, doubled "
        "for each later one (default 30).",
    )
    lock_wait_seconds: float = Field(
        default=120.0, description="How long to wait for another process to release the store."
    )

    _heartbeat: Heartbeat | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """In a run (every op requires this resource, so every run sets it up, re-executions
        of some steps too): says which process runs it and beats while it goes on
        (`run_workers`), and keeps the run's first error where a full disk still takes it
        (`first_error`)."""
        if context.dagster_run is None or context.instance is None:
            return  # a sensor's or a schedule's tick
        run_id = context.dagster_run.run_id
        self._heartbeat = Heartbeat(context.instance, run_id)
        self._heartbeat.start()
        first_error.keep_in(first_error.path_of(self.settings().staging, run_id))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
            first_error.keep_in(None)

    @classmethod
    def from_environment(cls) -> ImportPipelineResource:
        """Each field that has its variable set reads it through `dg.EnvVar`: resolved when a
        run starts, and shown by name (not value) in the UI."""
        fields: dict[str, Any] = {v.field: dg.EnvVar(v.name) for v in set_variables()}
        return cls(**fields)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportPipelineResource:
        """Explicit values, for a caller that resolved its settings itself (tests, the CLI)."""
        variables = settings.as_variables()
        fields: dict[str, Any] = {v.field: variables[v.name] for v in RUN_TIME_VARIABLES}
        return cls(**fields)

    def settings(self) -> Settings:
        values = {v.name: getattr(self, v.field) for v in RUN_TIME_VARIABLES}
        return Settings.from_env({name: value for name, value in values.items() if value})

    def landing_zone(self) -> LandingZone:
        return LandingZone(self.settings().landing)

    @contextmanager
    def store(
        self, *, read_only: bool = False, wait_seconds: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection to the store, closed however the body ends. What the body
        or the connection raises is kept as the run's error if it is its first (in a run's worker)."""
        settings = self.settings()
        with (
            first_error.remembering(),
            store.connect(
                settings.store,
                read_only=read_only,
                wait_seconds=self.lock_wait_seconds if wait_seconds is None else wait_seconds,
                memory_limit=settings.store_memory,
            ) as conn,
        ):
            yield conn
