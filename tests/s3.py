"""A real S3 API for the tests: moto in server mode on 127.0.0.1, one process for the session,
so that separate processes (the daemon, run workers, the CLI) see the same buckets."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The standard variables botocore (and so s3fs) reads; the values are moto's.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Starts `moto_server` on a free loopback port; yields its endpoint URL; stops it."""
    port = free_port()
    executable = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def new_bucket(endpoint: str) -> str:
    """A fresh bucket on the server: each test its own."""
    import boto3

    name = f"landing-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, **_client_credentials()).create_bucket(Bucket=name)
    return name


def _client_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_REGION"],
    }


def client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **_client_credentials())


def environment(endpoint: str) -> dict[str, str]:
    """The variables a process needs to reach the server, as a deployment sets them."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def set_environment(endpoint: str) -> dict[str, str | None]:
    """Sets `environment(endpoint)` in this process; returns what to restore."""
    saved = {name: os.environ.get(name) for name in environment(endpoint)}
    os.environ.update(environment(endpoint))
    return saved
