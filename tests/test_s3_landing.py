"""The landing zone on S3 (contract section 9): a real S3 API (moto in server mode on
127.0.0.1), reached through s3fs with the standard AWS variables only."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.landing import LandingZone
from import_pipeline.settings import Settings

from . import s3
from .conftest import EPPI_FILES, RECORD, import_directly, results_of
from .test_sensor import Ticker


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One moto server for the module's tests."""
    with s3.moto_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, and this process pointed at the server the standard way."""
    for name, value in s3.environment(endpoint).items():
        monkeypatch.setenv(name, value)
    return s3.new_bucket(endpoint)


@pytest.fixture
def s3_settings(tmp_path: Path, bucket: str) -> Settings:
    return Settings.from_env(
        {
            "IMPORT_PIPELINE_HOME": str(tmp_path / "home"),
            "IMPORT_PIPELINE_LANDING": f"s3://{bucket}/landing",
        }
    )


def put(endpoint: str, bucket: str, key: str, body: bytes | str) -> None:
    data = body.encode() if isinstance(body, str) else body
    s3.client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)


def test_the_zone_on_s3_lists_records_batches_and_refusals(endpoint, bucket, destiny) -> None:
    eppi = (destiny / EPPI_FILES[0]).read_bytes()
    put(endpoint, bucket, "landing/rec/record.json", json.dumps(RECORD))
    put(endpoint, bucket, "landing/rec/a.jsonl", eppi)
    put(endpoint, bucket, "landing/rec/b.jsonl.gz", gzip.compress(eppi))
    put(endpoint, bucket, "landing/rec/c.jsonl.part", eppi)  # an upload in progress
    put(endpoint, bucket, "landing/rec/README.md", "notes")
    put(endpoint, bucket, "landing/rec/_finalised", "")
    put(endpoint, bucket, "landing/bad name/record.json", json.dumps(RECORD))
    put(endpoint, bucket, "landing/../escape/record.json", json.dumps(RECORD))
    put(endpoint, bucket, "elsewhere/rec2/record.json", json.dumps(RECORD))  # outside the prefix
    zone = LandingZone(f"s3://{bucket}/landing")
    scan = zone.scan()
    (folder,) = scan.records
    assert folder.key == "rec" and folder.finalised
    assert [b.name for b in folder.batches] == ["a.jsonl", "b.jsonl.gz"]
    assert all(
        b.version and b.url.startswith(f"s3://{bucket}/landing/rec/") for b in folder.batches
    )
    assert any("README.md" in reason for reason in folder.ignored)
    assert any("bad name" in reason for reason in scan.refused)
    assert any("'..'" in reason for reason in scan.refused)
    assert zone.checksum(folder.batches[0].path) == hashlib.sha256(eppi).hexdigest()
    with pytest.raises(Exception, match="outside the landing zone"):
        zone.read_text(f"{bucket}/elsewhere/rec2/record.json")
    with pytest.raises(Exception, match="outside the landing zone"):
        zone.read_text(f"{bucket}/landing/../escape/record.json")


def test_a_listing_pages_through_more_objects_than_one_page_holds(endpoint, bucket) -> None:
    put(endpoint, bucket, "landing/many/record.json", json.dumps(RECORD))
    client = s3.client(endpoint)
    for index in range(1_050):  # S3 lists at most 1,000 keys a page
        client.put_object(Bucket=bucket, Key=f"landing/many/part-{index:05d}.jsonl", Body=b"{}\n")
    (folder,) = LandingZone(f"s3://{bucket}/landing").scan().records
    assert len(folder.batches) == 1_050


def test_a_record_on_s3_imports_like_a_local_one(endpoint, bucket, s3_settings, destiny) -> None:
    put(endpoint, bucket, "landing/rec/record.json", json.dumps(RECORD))
    for name in EPPI_FILES:
        put(
            endpoint, bucket, f"landing/rec/{name}.gz", gzip.compress((destiny / name).read_bytes())
        )
    zone = LandingZone(s3_settings.landing)
    resolved = import_directly(s3_settings, zone, "rec")
    assert [r.status for r in resolved] == ["completed"] * 3
    results = results_of(s3_settings, "rec")
    assert len(results) == 12 and {r["status"] for r in results} == {"completed"}
    with store.connect(s3_settings.store, read_only=True) as conn:
        batches = store.record_summary(conn, "rec")["batches"]
    assert {b["storage_url"] for b in batches} == {
        f"s3://{bucket}/landing/rec/{name}.gz" for name in EPPI_FILES
    }
    # The same objects again: nothing is pending.
    assert import_directly(s3_settings, zone, "rec") == []


def test_exports_on_s3_import_like_local_ones(endpoint, bucket, s3_settings) -> None:
    exports = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data/exports"
    put(endpoint, bucket, "landing/exp/record.json", json.dumps(RECORD))
    put(
        endpoint,
        bucket,
        "landing/exp/scopus.ris.gz",
        gzip.compress((exports / "asreview/scopus.ris").read_bytes()),
    )
    put(
        endpoint,
        bucket,
        "landing/exp/pubmed.txt",
        (exports / "asreview/pubmed_endnote.txt").read_bytes(),
    )
    resolved = import_directly(s3_settings, LandingZone(s3_settings.landing), "exp")
    assert [r.status for r in resolved] == ["completed"] * 2
    assert {r["status"] for r in results_of(s3_settings, "exp")} == {"completed"}


def test_the_sensor_takes_an_object_once_its_etag_is_stable(endpoint, bucket, s3_settings) -> None:
    line = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/s3"}]}\n'
    changed = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/s3b"}]}\n'
    put(endpoint, bucket, "landing/rec/record.json", json.dumps(RECORD))
    put(endpoint, bucket, "landing/rec/b.jsonl", line)
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, s3_settings)
        assert ticker.tick().run_requests == []  # seen once
        put(endpoint, bucket, "landing/rec/b.jsonl", changed)  # still being written: new ETag
        assert ticker.tick().run_requests == []
        (request,) = ticker.tick().run_requests  # unchanged across two ticks: taken
        config = request.run_config["ops"]["import_results"]["ops"]["find_pending_batches"]
        assert config["config"]["batches"] == [
            {"name": "b.jsonl", "checksum": hashlib.sha256(changed.encode()).hexdigest()}
        ]
        assert ticker.tick().run_requests == []  # the same content is not taken again
        put(endpoint, bucket, "landing/rec/b.jsonl", line)  # a new version
        assert ticker.tick().run_requests == []
        assert len(ticker.tick().run_requests) == 1


def test_demo_and_ingest_work_on_an_s3_landing_zone(endpoint, bucket, tmp_path, destiny) -> None:
    env = {
        **os.environ,
        **s3.environment(endpoint),
        "IMPORT_PIPELINE_HOME": str(tmp_path / "home"),
        "IMPORT_PIPELINE_LANDING": f"s3://{bucket}/landing",
    }
    env.pop("DAGSTER_HOME", None)
    cli = [sys.executable, "-m", "import_pipeline.cli"]
    demo = subprocess.run(
        [*cli, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0, demo.stderr
    keys = json.loads(demo.stdout)["records"]
    assert {f.key for f in LandingZone(f"s3://{bucket}/landing").scan().records} == set(keys)
    folder = tmp_path / "drop" / "mine"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / EPPI_FILES[0]).write_bytes((destiny / EPPI_FILES[0]).read_bytes())
    done = subprocess.run(
        [*cli, "ingest", str(folder), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["results"]["completed"] == 4
    assert summary["batches"][0]["storage_url"] == f"s3://{bucket}/landing/mine/{EPPI_FILES[0]}"
