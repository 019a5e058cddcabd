"""Scheduled ingestion: a run per record whose batches are not imported yet."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from import_pipeline.defs.resources import ImportPipelineResource

from .conftest import import_directly, scheduled_ingestion, write_batch, write_record

LINE = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/s"}]}\n'


def _one_imported_record(settings, landing) -> None:
    write_record(landing, "done")
    write_batch(landing, "done", "a.jsonl", LINE)
    import_directly(settings, landing, "done")


def _tick(instance: dg.DagsterInstance, settings):
    """What the 02:00 tick of scheduled_ingestion gives."""
    with dg.build_schedule_context(
        instance=instance,
        resources={"pipeline": ImportPipelineResource.from_settings(settings)},
        scheduled_execution_time=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
    ) as context:
        return scheduled_ingestion(context)


def test_requests_runs_only_for_records_with_pending_batches(settings, landing) -> None:
    _one_imported_record(settings, landing)
    write_record(landing, "waiting")
    write_batch(landing, "waiting", "a.jsonl", LINE)
    write_batch(landing, "waiting", "b.jsonl", LINE)
    write_batch(landing, "no-record", "a.jsonl", LINE)
    with dg.instance_for_test() as instance:
        requests = _tick(instance, settings)
        assert [r.partition_key for r in requests] == ["waiting"]
        assert requests[0].tags["import_pipeline/batches"] == "a.jsonl,b.jsonl"
        assert instance.get_dynamic_partitions("import_records") == ["waiting"]


def test_skips_when_nothing_waits(settings, landing) -> None:
    _one_imported_record(settings, landing)
    with dg.instance_for_test() as instance:
        result = _tick(instance, settings)
        assert isinstance(result, dg.SkipReason)
