"""A real PostgreSQL for the tests: Debian's server binaries, a throwaway cluster in a temp
folder owned by the `postgres` user (the server refuses to run as root), on a free loopback
port, started and stopped by the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .s3 import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*argv: str) -> list[str]:
    """`argv` run as the `postgres` user when this process is root."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Starts a PostgreSQL cluster; yields the URL of its database `dagster`; stops it."""
    folder = Path(tempfile.mkdtemp(prefix="import-pipeline-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True, "timeout": 120}
    subprocess.run(
        _as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"),
        **quiet,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                     str(folder / "server.log"), "start"),
        **quiet,
    )  # fmt: skip
    try:
        for _ in range(50):
            created = subprocess.run(
                _as_postgres(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                             "-U", "postgres", "dagster"),
                capture_output=True, timeout=30,
            )  # fmt: skip
            if created.returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{port}/dagster"
    finally:
        subprocess.run(
            _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server_url: str, name: str) -> str:
    """Creates database `name` on the server of `server_url`; returns its URL."""
    import psycopg2

    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
