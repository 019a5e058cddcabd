"""End to end beyond one machine: the real `dagster dev` with its instance and its reference
store in PostgreSQL and its landing zone on S3 (moto in server mode), real servers started by
the test."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg2
import pytest

from import_pipeline.settings import postgres_url_for_dagster

from . import s3
from .conftest import EPPI_FILES, RECORD
from .dagster_dev import dagster_dev
from .postgres import new_database, postgres_server

pytestmark = pytest.mark.e2e


def _upload_while_changing(client, bucket: str, key: str, seconds: float) -> str:
    """Puts the object again and again, a line longer each time (an upload in progress, as
    its ETag shows); returns its final content."""
    body = ""
    deadline = time.monotonic() + seconds
    line = 0
    while time.monotonic() < deadline:
        line += 1
        body += (
            json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": f"10.1/g{line}"}]})
            + "\n"
        )
        client.put_object(Bucket=bucket, Key=key, Body=body.encode())
        time.sleep(0.3)
    return body


def test_the_sensor_imports_from_s3_into_postgresql(tmp_path: Path, destiny) -> None:
    with s3.moto_server() as endpoint, postgres_server() as postgres_url:
        bucket = s3.new_bucket(endpoint)
        client = s3.client(endpoint)
        store_url = new_database(postgres_url, "references")
        env = {
            **s3.environment(endpoint),
            "IMPORT_PIPELINE_LANDING": f"s3://{bucket}/landing",
            "DAGSTER_POSTGRES_URL": postgres_url_for_dagster(postgres_url),
            "IMPORT_PIPELINE_STORE": store_url,
        }
        with dagster_dev(tmp_path, env=env) as server:
            client.put_object(
                Bucket=bucket, Key="landing/s3rec/record.json", Body=json.dumps(RECORD)
            )
            for name in EPPI_FILES:
                client.put_object(
                    Bucket=bucket, Key=f"landing/s3rec/{name}", Body=(destiny / name).read_bytes()
                )
            first = server.wait_for_run("s3rec")
            summary = json.loads(server.cli("summary", "s3rec", "--json").stdout)
            assert summary["results"]["completed"] == 12
            assert summary["batches"][0]["storage_url"].startswith(f"s3://{bucket}/landing/s3rec/")
            # A changed object is a new version: imported again.
            broken = '{"identifiers": [{"identifier_type": "doi", "identifier": "broken"}]}\n'
            body = (destiny / EPPI_FILES[0]).read_bytes() + broken.encode()
            client.put_object(Bucket=bucket, Key=f"landing/s3rec/{EPPI_FILES[0]}", Body=body)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                runs = [r for r in server.runs("s3rec") if r["runId"] != first["runId"]]
                if runs and runs[0]["status"] in ("SUCCESS", "FAILURE"):
                    break
                time.sleep(1)
            assert runs and runs[0]["status"] == "SUCCESS", server.log.read_text()[-3000:]
            summary = json.loads(server.cli("summary", "s3rec", "--json").stdout)
            assert summary["total"] == 13 and summary["results"]["failed"] == 1
            # An object still being uploaded (its ETag changing at every tick) is not taken.
            client.put_object(
                Bucket=bucket, Key="landing/growing/record.json", Body=json.dumps(RECORD)
            )
            final = _upload_while_changing(client, bucket, "landing/growing/works.jsonl", 8)
            assert server.runs("growing") == []
            run = server.wait_for_run("growing")
            assert run["status"] == "SUCCESS"
            summary = json.loads(server.cli("summary", "growing", "--json").stdout)
            assert summary["total"] == final.count("\n")
        # The runs and the record's partition are in PostgreSQL, not in DAGSTER_HOME.
        with psycopg2.connect(postgres_url) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE status = 'SUCCESS'")
            assert len(cursor.fetchall()) >= 2
            cursor.execute("SELECT partition FROM dynamic_partitions")
            assert ("s3rec",) in cursor.fetchall()
        assert not (tmp_path / "home" / "dagster" / "history").exists()
        # The references are in PostgreSQL too, and there is no DuckDB file.
        with psycopg2.connect(store_url) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM import_results")
            assert cursor.fetchone() == (13 + final.count("\n"),)
        assert not list((tmp_path / "home").glob("*.duckdb"))
