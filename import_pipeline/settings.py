"""Where local state lives and the limits an import keeps, from the environment (contract
section 1). The only module that reads the environment: `VARIABLES` names each variable with
the setting it gives, and `Settings.from_env` applies the defaults, once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from import_pipeline.domain.recovery import DEFAULT_ATTEMPTS, DEFAULT_RETRY_SECONDS
from import_pipeline.errors import ConfigurationError

_TTL_PATTERN = re.compile(r"^(\d+)([dhm])$")
_TTL_UNITS = {"d": "days", "h": "hours", "m": "minutes"}

#: Lines longer than this fail alone with `LineTooLong` (bytes, before decoding).
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
#: An export's entries longer than this fail alone with `LineTooLong` (characters): longer
#: than a line, since a real entry's abstract alone may pass 16 MiB.
DEFAULT_MAX_ENTRY_BYTES = 64 * 1024 * 1024
#: A gzip batch may not expand past this many bytes.
DEFAULT_MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024 * 1024
#: ... nor past this many times its compressed size (a gzip bomb guard).
DEFAULT_MAX_DECOMPRESSION_RATIO = 200
#: DuckDB's memory per store connection: big joins spill to <store>.tmp beyond it, but the
#: primary-key index and the blocks a commit pins must fit (768 MB holds a 10M-reference store;
#: 640 MB does not).
DEFAULT_STORE_MEMORY = "768MB"
DEFAULT_READ_WAIT_SECONDS = 30.0
DEFAULT_SENSOR_INTERVAL_SECONDS = 5
DEFAULT_INGEST_CRON = "0 2 * * *"  # scheduled ingestion (stopped unless turned on)
DEFAULT_RESOLVE_CRON = "0 * * * *"  # association resolution, hourly


def parse_ttl(text: str) -> timedelta:
    """Parses `IMPORT_PIPELINE_UNRESOLVED_TTL` values such as ``48h``, ``2d`` or ``90m``."""
    match = _TTL_PATTERN.match(text.strip())
    if not match:
        raise ConfigurationError(
            f"IMPORT_PIPELINE_UNRESOLVED_TTL={text!r} is not of the form <digits><d|h|m>"
        )
    return timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


def format_ttl(ttl: timedelta) -> str:
    """A TTL as `parse_ttl` reads it (in minutes)."""
    return f"{int(ttl.total_seconds() // 60)}m"


def postgres_url_for_dagster(url: str) -> str:
    """`url` with the driver dagster-postgres needs (psycopg2) when it names none: SQLAlchemy
    2.1 reads a bare `postgresql://` as psycopg 3, which dagster-postgres cannot use."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url.removeprefix(bare)
    return url


def python_path_with(folder: str, environ: Mapping[str, str] | None = None) -> str:
    """PYTHONPATH with `folder` first: for the processes a command starts."""
    existing = (os.environ if environ is None else environ).get("PYTHONPATH")
    return os.pathsep.join([folder, existing] if existing else [folder])


def _number(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a whole number") from None


def _seconds(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a number of seconds") from None


def _store_url(url: str | None) -> str | None:
    """IMPORT_PIPELINE_STORE: a PostgreSQL URL (the one engine beyond the file, section 9)."""
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError(
            f"IMPORT_PIPELINE_STORE={url!r}: expected a postgresql:// URL (the store on "
            f"PostgreSQL); for a DuckDB file, set IMPORT_PIPELINE_DUCKDB instead"
        )
    return url


@dataclass(frozen=True)
class Variable:
    """An environment variable and the `Settings` field it sets. `run_time`: the resource
    reads it when a run starts (`dg.EnvVar`); otherwise it shapes the definitions."""

    field: str
    name: str
    run_time: bool = True
    text: Callable[[object], str] = str  # the field's value written as the variable would be


VARIABLES = (
    Variable("home", "IMPORT_PIPELINE_HOME"),
    Variable("landing", "IMPORT_PIPELINE_LANDING"),
    Variable("duckdb_path", "IMPORT_PIPELINE_DUCKDB"),
    Variable("store_url", "IMPORT_PIPELINE_STORE", text=lambda url: str(url or "")),
    Variable("unresolved_ttl", "IMPORT_PIPELINE_UNRESOLVED_TTL", text=format_ttl),  # type: ignore[arg-type]
    Variable("max_line_bytes", "IMPORT_PIPELINE_MAX_LINE_BYTES"),
    Variable("max_entry_bytes", "IMPORT_PIPELINE_MAX_ENTRY_BYTES"),
    Variable("max_decompressed_bytes", "IMPORT_PIPELINE_MAX_DECOMPRESSED_BYTES"),
    Variable("max_decompression_ratio", "IMPORT_PIPELINE_MAX_DECOMPRESSION_RATIO"),
    Variable("store_memory", "IMPORT_PIPELINE_STORE_MEMORY"),
    Variable("dagster_home", "DAGSTER_HOME", run_time=False),
    Variable("dagster_postgres_url", "DAGSTER_POSTGRES_URL", run_time=False),
    Variable("read_wait_seconds", "IMPORT_PIPELINE_READ_WAIT", run_time=False),
    Variable("sensor_interval_seconds", "IMPORT_PIPELINE_SENSOR_INTERVAL", run_time=False),
    Variable("ingest_cron", "IMPORT_PIPELINE_INGEST_CRON", run_time=False),
    Variable("resolve_cron", "IMPORT_PIPELINE_RESOLVE_CRON", run_time=False),
    Variable("run_attempts", "IMPORT_PIPELINE_RUN_ATTEMPTS"),
    Variable("retry_seconds", "IMPORT_PIPELINE_RETRY_SECONDS"),
)
#: What a run reads when it starts (the resource's fields).
RUN_TIME_VARIABLES = tuple(variable for variable in VARIABLES if variable.run_time)


def set_variables(environ: Mapping[str, str] | None = None) -> list[Variable]:
    """The run-time variables that are set (and not empty) in `environ` (the process's)."""
    env = os.environ if environ is None else environ
    return [variable for variable in RUN_TIME_VARIABLES if env.get(variable.name)]


@dataclass(frozen=True)
class Settings:
    """Resolved locations and limits; every path is absolute."""

    home: Path
    landing: str
    duckdb_path: Path
    dagster_home: Path
    unresolved_ttl: timedelta
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO
    store_memory: str = DEFAULT_STORE_MEMORY
    #: How long the CLI's readers wait for a writer to release the store.
    read_wait_seconds: float = DEFAULT_READ_WAIT_SECONDS
    #: How often the landing-zone sensor looks.
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS
    ingest_cron: str = DEFAULT_INGEST_CRON
    resolve_cron: str = DEFAULT_RESOLVE_CRON
    #: Attempts of a batch version whose run ended by a failure that passes (the first included).
    run_attempts: int = DEFAULT_ATTEMPTS
    #: The wait before the first retry; it doubles for each later one.
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    #: Where the Dagster instance lives when it is shared (PostgreSQL); None: DAGSTER_HOME.
    dagster_postgres_url: str | None = None
    #: The reference store on PostgreSQL (contract section 9); None: the DuckDB file.
    store_url: str | None = None

    @property
    def store(self) -> Path | str:
        """Where the reference store lives: the PostgreSQL URL when set, else the file."""
        return self.store_url or self.duckdb_path

    @property
    def staging(self) -> Path:
        """Scratch space for the Parquet files handed from op to op."""
        return self.home / "staging"

    def as_variables(self) -> dict[str, str]:
        """The run-time settings written as their variables would be: `from_env` of these
        gives these settings back."""
        return {v.name: v.text(getattr(self, v.field)) for v in RUN_TIME_VARIABLES}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (the process's environment unless given) asks for, with the
        contract's defaults for what it leaves unset (an empty variable is unset)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        home = Path(get("IMPORT_PIPELINE_HOME") or "./var").expanduser().resolve()
        landing = get("IMPORT_PIPELINE_LANDING") or str(home / "landing")
        if "://" not in landing:
            landing = str(Path(landing).expanduser().resolve())

        def path(name: str, default: Path) -> Path:
            return Path(get(name) or default).expanduser().resolve()

        def number(name: str, default: int) -> int:
            text = get(name)
            return default if text is None else _number(name, text)

        return cls(
            home=home,
            landing=landing,
            duckdb_path=path("IMPORT_PIPELINE_DUCKDB", home / "references.duckdb"),
            dagster_home=path("DAGSTER_HOME", home / "dagster"),
            unresolved_ttl=parse_ttl(get("IMPORT_PIPELINE_UNRESOLVED_TTL") or "48h"),
            max_line_bytes=number("IMPORT_PIPELINE_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES),
            max_entry_bytes=number("IMPORT_PIPELINE_MAX_ENTRY_BYTES", DEFAULT_MAX_ENTRY_BYTES),
            max_decompressed_bytes=number(
                "IMPORT_PIPELINE_MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED_BYTES
            ),
            max_decompression_ratio=number(
                "IMPORT_PIPELINE_MAX_DECOMPRESSION_RATIO", DEFAULT_MAX_DECOMPRESSION_RATIO
            ),
            store_memory=get("IMPORT_PIPELINE_STORE_MEMORY") or DEFAULT_STORE_MEMORY,
            read_wait_seconds=_seconds(
                "IMPORT_PIPELINE_READ_WAIT",
                get("IMPORT_PIPELINE_READ_WAIT") or str(DEFAULT_READ_WAIT_SECONDS),
            ),
            sensor_interval_seconds=number(
                "IMPORT_PIPELINE_SENSOR_INTERVAL", DEFAULT_SENSOR_INTERVAL_SECONDS
            ),
            ingest_cron=get("IMPORT_PIPELINE_INGEST_CRON") or DEFAULT_INGEST_CRON,
            resolve_cron=get("IMPORT_PIPELINE_RESOLVE_CRON") or DEFAULT_RESOLVE_CRON,
            run_attempts=max(1, number("IMPORT_PIPELINE_RUN_ATTEMPTS", DEFAULT_ATTEMPTS)),
            retry_seconds=_seconds(
                "IMPORT_PIPELINE_RETRY_SECONDS",
                get("IMPORT_PIPELINE_RETRY_SECONDS") or str(DEFAULT_RETRY_SECONDS),
            ),
            dagster_postgres_url=(
                postgres_url_for_dagster(url) if (url := get("DAGSTER_POSTGRES_URL")) else None
            ),
            store_url=_store_url(get("IMPORT_PIPELINE_STORE")),
        )


#: Below this much free space where the project writes, every command warns: imports stop.
LOW_SPACE_BYTES = 64 * 1024 * 1024


def low_space_warnings(settings: Settings) -> list[str]:
    """A line for each folder the project writes to (its home, the store's, the instance's)
    whose disk has less than `LOW_SPACE_BYTES` free."""
    folders = [settings.home, settings.dagster_home]
    if settings.store_url is None:
        folders.append(settings.duckdb_path.parent)
    warned, lines = set(), []
    for folder in folders:
        try:
            space = os.statvfs(folder)
        except OSError:
            continue  # not made yet
        free = space.f_bavail * space.f_frsize
        if free < LOW_SPACE_BYTES and space.f_fsid not in warned:
            warned.add(space.f_fsid)
            lines.append(
                f"warning: {folder} has {free // (1024 * 1024)} MB free: no space left on "
                f"device; imports stop (their runs fail and are retried) until space is freed"
            )
    return lines
