"""The landing-zone sensor, evaluated against a real instance and real files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.defs import sensors
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.sensors import SETTLE_SECONDS, build_landing_zone_sensor
from import_pipeline.landing import LandingZone

from .conftest import landing_zone_sensor, write_batch, write_record

LINE = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"}]}\n'


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


class Ticker:
    """Evaluates the sensor tick after tick, carrying the cursor like the daemon does."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        settings,
        sensor: dg.SensorDefinition = landing_zone_sensor,
    ) -> None:
        self.instance = instance
        self.sensor = sensor
        self.resource = ImportPipelineResource.from_settings(settings)
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"pipeline": self.resource}
        ) as context:
            result = self.sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        return result


def test_a_stable_batch_is_taken_once(settings, landing, instance) -> None:
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", LINE)
    first = ticker.tick()
    assert first.run_requests == []  # seen once: not yet known to be stable
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["rec"]]
    second = ticker.tick()
    (request,) = second.run_requests
    assert request.partition_key == "rec"
    assert request.tags["import_pipeline/batches"] == "b.jsonl"
    checksum = hashlib.sha256(LINE.encode()).hexdigest()
    assert _batches_of(request) == [{"name": "b.jsonl", "checksum": checksum}]
    assert ticker.tick().run_requests == []


def test_a_changed_batch_gets_a_new_run_key_and_a_touched_one_none(
    settings, landing, instance
) -> None:
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    path = write_batch(landing, "rec", "b.jsonl", LINE)
    ticker.tick()
    (first,) = ticker.tick().run_requests
    os.utime(path, (1_000_000_000, 1_000_000_000))  # same content, new modification time
    ticker.tick()
    assert ticker.tick().run_requests == []
    path.write_text(LINE + LINE)
    ticker.tick()
    (changed,) = ticker.tick().run_requests
    assert changed.run_key != first.run_key


def test_a_file_still_growing_is_not_taken(settings, landing, instance) -> None:
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    path = write_batch(landing, "rec", "b.jsonl", LINE)
    ticker.tick()
    with path.open("a") as handle:
        handle.write(LINE)
    assert ticker.tick().run_requests == []
    assert len(ticker.tick().run_requests) == 1


def test_refused_records_are_reported_and_never_partitions(settings, landing, instance) -> None:
    ticker = Ticker(instance, settings)
    (Path(landing.root) / "bad key").mkdir(parents=True)
    write_record(landing, "future", searched_at="2999-01-01T00:00:00")
    write_batch(landing, "future", "b.jsonl", LINE)
    write_batch(landing, "norecord", "b.jsonl", LINE)
    broken = Path(landing.root) / "broken"
    broken.mkdir()
    (broken / "record.json").write_text("{not json")
    result = ticker.tick()
    ticker.tick()
    assert not result.dynamic_partitions_requests
    assert instance.get_dynamic_partitions("import_records") == []
    assert "'bad key' is not a valid record key" in result.skip_reason.skip_message
    assert "searched_at" in result.skip_reason.skip_message
    assert "no record.json" in result.skip_reason.skip_message
    with store.connect(settings.store, read_only=True) as conn:
        problems = dict(conn.execute("SELECT record_key, problem FROM import_records").fetchall())
    assert "not valid JSON" in problems["broken"]
    assert "future" in problems["future"]


def test_a_batch_deleted_after_being_seen_is_no_crash(settings, landing, instance) -> None:
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    path = write_batch(landing, "rec", "b.jsonl", LINE)
    ticker.tick()
    path.unlink()
    result = ticker.tick()
    assert result.run_requests == []
    assert json.loads(ticker.cursor)["seen"] == {}


def test_a_record_s_batches_dropped_together_are_one_run(settings, landing, instance) -> None:
    # The first file is stable one tick before the second: it waits for it, so the record's
    # files are imported together; another record is not held by this one's arrivals.
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    write_record(landing, "other")
    write_batch(landing, "rec", "a.jsonl", LINE)
    write_batch(landing, "other", "a.jsonl", LINE)
    ticker.tick()
    write_batch(landing, "rec", "b.jsonl", LINE)
    held = ticker.tick()
    assert [r.partition_key for r in held.run_requests] == ["other"]
    (together,) = ticker.tick().run_requests
    assert together.partition_key == "rec"
    assert together.tags["import_pipeline/batches"] == "a.jsonl,b.jsonl"
    assert ticker.tick().run_requests == []


def test_a_held_batch_is_read_once_and_reported(
    settings, landing, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    checksum = LandingZone.checksum

    def counted(self: LandingZone, path: str) -> str:
        reads.append(Path(path).name)
        return checksum(self, path)

    monkeypatch.setattr(LandingZone, "checksum", counted)
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", LINE)
    ticker.tick()
    write_batch(landing, "rec", "b.jsonl", LINE)
    held = ticker.tick()
    assert held.run_requests == []
    assert "1 stable batch(es) held until their record's others are stable" in (
        held.skip_reason.skip_message
    )
    (run,) = ticker.tick().run_requests
    assert [b["checksum"] for b in _batches_of(run)] == [
        hashlib.sha256(LINE.encode()).hexdigest()
    ] * 2
    assert sorted(reads) == ["a.jsonl", "b.jsonl"]


def test_batches_held_a_minute_go_while_others_keep_arriving(
    settings, landing, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1_000_000.0
    monkeypatch.setattr(sensors, "_clock", lambda: now)
    ticker = Ticker(instance, settings)  # the sensor ticks every 5 s
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", LINE)
    ticker.tick()
    growing = write_batch(landing, "rec", "b.jsonl", LINE)
    held_since = now + 5
    while True:  # b.jsonl keeps growing: a.jsonl is held, up to SETTLE_SECONDS
        now += 5
        result = ticker.tick()
        if result.run_requests:
            break
        assert now - held_since < SETTLE_SECONDS
        with growing.open("a") as handle:
            handle.write(LINE)
    assert now - held_since == SETTLE_SECONDS  # the first tick past the wait
    (alone,) = result.run_requests
    assert alone.tags["import_pipeline/batches"] == "a.jsonl"
    now += 5  # b.jsonl stopped growing before the last tick
    (rest,) = ticker.tick().run_requests
    assert rest.tags["import_pipeline/batches"] == "b.jsonl"


def test_a_sensor_ticking_minutes_apart_holds_nothing(settings, landing, instance) -> None:
    ticker = Ticker(instance, settings, build_landing_zone_sensor(120))
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", LINE)
    ticker.tick()
    write_batch(landing, "rec", "b.jsonl", LINE)
    (alone,) = ticker.tick().run_requests  # held, it would wait 2 minutes
    assert alone.tags["import_pipeline/batches"] == "a.jsonl"


def _batches_of(request: dg.RunRequest) -> list[dict]:
    config = request.run_config["ops"]["import_results"]["ops"]["find_pending_batches"]["config"]
    return config["batches"]


def test_a_clock_set_back_does_not_stretch_the_wait(
    settings, landing, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "_clock", lambda: 1_000_000.0)
    ticker = Ticker(instance, settings)
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", LINE)
    ticker.tick()
    write_batch(landing, "rec", "b.jsonl", LINE)
    cursor = json.loads(ticker.cursor)
    cursor["settling"] = {"rec": 1_000_000.0 + 3600}  # written by a clock an hour ahead
    ticker.cursor = json.dumps(cursor)
    assert ticker.tick().run_requests == []
    assert json.loads(ticker.cursor)["settling"] == {"rec": 1_000_000.0}
