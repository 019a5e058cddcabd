"""The one resource: where the landing zone and the reference store are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from pydantic import Field

from import_pipeline import store
from import_pipeline.landing import LandingZone
from import_pipeline.settings import DEFAULT_STORE_MEMORY, Settings, parse_ttl


class ImportPipelineResource(dg.ConfigurableResource):
    """The landing zone and the DuckDB reference store of an import pipeline.

    Example:
        ```python
        pipeline = ImportPipelineResource.from_settings(Settings.from_env())
        with pipeline.store() as conn:
            store.table_counts(conn)
        ```
    """

    home: str = Field(description="Root of local state (IMPORT_PIPELINE_HOME); staging lives here.")
    landing: str = Field(
        description="The landing zone: a path or fsspec URL (IMPORT_PIPELINE_LANDING)."
    )
    duckdb_path: str = Field(
        description="The reference store's DuckDB file (IMPORT_PIPELINE_DUCKDB)."
    )
    unresolved_ttl: str = Field(
        default="48h",
        description="How long an unresolved association waits (IMPORT_PIPELINE_UNRESOLVED_TTL).",
    )
    max_line_bytes: int = Field(description="Lines longer than this fail with LineTooLong.")
    max_decompressed_bytes: int = Field(description="A gzip batch may not expand past this.")
    max_decompression_ratio: int = Field(description="... nor past this many times its size.")
    store_memory: str = Field(
        default=DEFAULT_STORE_MEMORY,
        description="DuckDB's memory per store connection (IMPORT_PIPELINE_STORE_MEMORY).",
    )
    lock_wait_seconds: float = Field(
        default=120.0, description="How long to wait for another process to release the store."
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportPipelineResource:
        return cls(
            home=str(settings.home),
            landing=settings.landing,
            duckdb_path=str(settings.duckdb_path),
            unresolved_ttl=f"{int(settings.unresolved_ttl.total_seconds() // 60)}m",
            max_line_bytes=settings.max_line_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            max_decompression_ratio=settings.max_decompression_ratio,
            store_memory=settings.store_memory,
        )

    def settings(self) -> Settings:
        from pathlib import Path

        return Settings(
            home=Path(self.home),
            landing=self.landing,
            duckdb_path=Path(self.duckdb_path),
            dagster_home=Path(self.home) / "dagster",
            unresolved_ttl=parse_ttl(self.unresolved_ttl),
            max_line_bytes=self.max_line_bytes,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_decompression_ratio=self.max_decompression_ratio,
            store_memory=self.store_memory,
        )

    def landing_zone(self) -> LandingZone:
        return LandingZone(self.landing)

    @contextmanager
    def store(
        self, *, read_only: bool = False, wait_seconds: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection to the store, closed however the body ends."""
        from pathlib import Path

        wait = self.lock_wait_seconds if wait_seconds is None else wait_seconds
        with store.connect(
            Path(self.duckdb_path),
            read_only=read_only,
            wait_seconds=wait,
            memory_limit=self.store_memory,
        ) as conn:
            yield conn
