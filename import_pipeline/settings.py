"""Where local state lives, read once from the environment (contract section 1)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from import_pipeline.errors import ConfigurationError

_TTL_PATTERN = re.compile(r"^(\d+)([dhm])$")
_TTL_UNITS = {"d": "days", "h": "hours", "m": "minutes"}

#: Lines longer than this fail alone with `LineTooLong` (bytes, before decoding).
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
#: A gzip batch may not expand past this many bytes.
DEFAULT_MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024 * 1024
#: ... nor past this many times its compressed size (a gzip bomb guard).
DEFAULT_MAX_DECOMPRESSION_RATIO = 200
#: DuckDB's memory per store connection: big joins spill to <store>.tmp beyond it, but the
#: primary-key index and the blocks a commit pins must fit (768 MB holds a 10M-reference store;
#: 640 MB does not).
DEFAULT_STORE_MEMORY = "768MB"


def parse_ttl(text: str) -> timedelta:
    """Parses `IMPORT_PIPELINE_UNRESOLVED_TTL` values such as ``48h``, ``2d`` or ``90m``."""
    match = _TTL_PATTERN.match(text.strip())
    if not match:
        raise ConfigurationError(
            f"IMPORT_PIPELINE_UNRESOLVED_TTL={text!r} is not of the form <digits><d|h|m>"
        )
    return timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Settings:
    """Resolved locations and limits; every path is absolute."""

    home: Path
    landing: str
    duckdb_path: Path
    dagster_home: Path
    unresolved_ttl: timedelta
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO
    store_memory: str = DEFAULT_STORE_MEMORY

    @property
    def staging(self) -> Path:
        """Scratch space for the Parquet files handed from op to op."""
        return self.home / "staging"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("IMPORT_PIPELINE_HOME", "./var")).expanduser().resolve()
        landing = env.get("IMPORT_PIPELINE_LANDING") or str(home / "landing")
        if "://" not in landing:
            landing = str(Path(landing).expanduser().resolve())
        duckdb_path = (
            Path(env.get("IMPORT_PIPELINE_DUCKDB") or home / "references.duckdb")
            .expanduser()
            .resolve()
        )
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
        return cls(
            home=home,
            landing=landing,
            duckdb_path=duckdb_path,
            dagster_home=dagster_home,
            unresolved_ttl=parse_ttl(env.get("IMPORT_PIPELINE_UNRESOLVED_TTL", "48h")),
            max_line_bytes=int(env.get("IMPORT_PIPELINE_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)),
            max_decompressed_bytes=int(
                env.get("IMPORT_PIPELINE_MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED_BYTES)
            ),
            max_decompression_ratio=int(
                env.get("IMPORT_PIPELINE_MAX_DECOMPRESSION_RATIO", DEFAULT_MAX_DECOMPRESSION_RATIO)
            ),
            store_memory=env.get("IMPORT_PIPELINE_STORE_MEMORY", DEFAULT_STORE_MEMORY),
        )
