"""Runs the real `dagster dev` (webserver + daemon) for end-to-end tests, and talks GraphQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from import_pipeline.daemon_site import SITE_FOLDER
from import_pipeline.defs.instance import write_instance_config
from import_pipeline.settings import python_path_with

STARTUP_SECONDS = 180
STOP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DagsterDev:
    url: str
    home: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL to the whole `dagster dev` group (webserver, daemon, code servers and the
        run workers they started): as a machine that loses power."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_SECONDS)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert "errors" not in body, body
        return body["data"]

    def runs(self, record_key: str) -> list[dict]:
        data = self.graphql(
            """
            query Runs($tags: [ExecutionTag!]) {
              runsOrError(filter: {tags: $tags}) {
                ... on Runs { results { runId status tags { key value } } }
              }
            }
            """,
            {"tags": [{"key": "import_pipeline/record", "value": record_key}]},
        )
        return data["runsOrError"]["results"]

    def run(self, run_id: str) -> dict:
        """A run's status, tags and steps (`stepStats`: key, status)."""
        data = self.graphql(
            """
            query Run($id: ID!) {
              runOrError(runId: $id) {
                ... on Run {
                  runId status tags { key value }
                  stepStats { stepKey status }
                }
              }
            }
            """,
            {"id": run_id},
        )
        run = data["runOrError"]
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return run

    def wait_for_run(self, record_key: str, timeout: float = 240) -> dict:
        """Waits until a run of `record_key` has finished; fails on a failed run or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(record_key)
            finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            if finished:
                assert finished[0]["status"] == "SUCCESS", (finished, self.log.read_text()[-4000:])
                return finished[0]
            time.sleep(1)
        raise AssertionError(
            f"no finished run for {record_key} in {timeout}s:\n{self.log.read_text()[-4000:]}"
        )

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "import_pipeline.cli", *argv],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    """`dagster dev` may ignore SIGTERM for a while: stop its whole group, then kill it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=STOP_SECONDS)


@contextmanager
def dagster_dev(
    root: Path, *, sensor_interval: int = 1, env: dict[str, str] | None = None
) -> Iterator[DagsterDev]:
    """Starts `dagster dev` on 127.0.0.1 with its own DAGSTER_HOME, landing zone and store;
    `env` adds variables (an S3 landing zone, DAGSTER_POSTGRES_URL: the instance file then
    keeps the instance in PostgreSQL)."""
    home = root / "home"
    dagster_home = home / "dagster"
    extra = env or {}
    write_instance_config(dagster_home, postgres="DAGSTER_POSTGRES_URL" in extra)
    port = free_port()
    env = {
        **os.environ,
        "IMPORT_PIPELINE_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "IMPORT_PIPELINE_SENSOR_INTERVAL": str(sensor_interval),
        # As `import-pipeline dev` starts it: repeated daemon errors shown once a minute.
        "PYTHONPATH": python_path_with(SITE_FOLDER),
        **extra,
    }
    log = root / "dagster-dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with log.open("ab") as output:  # a restart of the same root goes on in the same log
        process = subprocess.Popen(
            [str(dagster), "dev", "-m", "import_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        )  # fmt: skip
    server = DagsterDev(
        url=f"http://127.0.0.1:{port}", home=home, env=env, log=log, process=process
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"dagster dev exited:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"dagster dev did not start:\n{log.read_text()[-4000:]}"
                    ) from None
                time.sleep(1)
        yield server
    finally:
        _stop(process)
