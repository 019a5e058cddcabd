"""Reference associations: waiting (`retrying`), linked (`completed`), expired after the TTL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from import_pipeline import store
from import_pipeline.pipeline import associations

from .conftest import (
    hourly_association_resolution,
    import_directly,
    results_of,
    write_batch,
    write_record,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def citing(doi: str, *targets: object) -> str:
    return json.dumps(
        {
            "identifiers": [{"identifier_type": "doi", "identifier": doi}],
            "enhancements": [
                {
                    "source": "citations",
                    "visibility": "public",
                    "content": {
                        "enhancement_type": "reference_association",
                        "association_type": "cites",
                        "associated_reference_ids": list(targets),
                    },
                }
            ],
        }
    )


def doi(value: str) -> dict:
    return {"identifier_type": "doi", "identifier": value}


def plain(value: str) -> str:
    return json.dumps({"identifiers": [doi(value)]})


def batch_status(settings, key: str, name: str) -> str:
    with store.connect(settings.store, read_only=True) as conn:
        doc = store.record_summary(conn, key)
    return next(b["status"] for b in doc["batches"] if b["name"] == name)


def test_a_missing_target_waits_then_links_when_a_later_batch_brings_it(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(
        landing,
        "rec",
        "a.jsonl",
        citing("10.1000/citing", doi("https://doi.org/10.1000/CITED")) + "\n",
    )
    import_directly(settings, landing, "rec", now=T0)
    (waiting,) = results_of(settings, "rec")
    assert waiting["status"] == "retrying" and waiting["reference_id"]
    assert waiting["unresolved_references"] == [
        {"identifier_type": "doi", "identifier": "10.1000/cited"}
    ]
    assert batch_status(settings, "rec", "a.jsonl") == "started"

    write_batch(landing, "rec", "b.jsonl", plain("10.1000/cited") + "\n")
    import_directly(settings, landing, "rec", ["b.jsonl"], now=T0 + timedelta(hours=1))
    linked = next(
        r
        for r in results_of(settings, "rec")
        if r["line_number"] == 1 and r["import_batch_id"] == waiting["import_batch_id"]
    )
    assert linked["status"] == "completed" and linked["unresolved_references"] == []
    assert batch_status(settings, "rec", "a.jsonl") == "completed"
    with store.connect(settings.store, read_only=True) as conn:
        cited = store.find_reference(conn, identifier_type="doi", identifier="10.1000/cited")
        (target,) = conn.execute(
            "SELECT target_reference_id::VARCHAR FROM reference_association"
        ).fetchone()
    assert target == cited["id"]


def test_a_target_that_never_arrives_expires_after_the_ttl(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", citing("10.1000/lonely", doi("10.1000/never")) + "\n")
    import_directly(settings, landing, "rec", now=T0)
    ttl = settings.unresolved_ttl
    assert ttl == timedelta(hours=48)
    with store.connect(settings.store) as conn, store.transaction(conn):
        early = associations.refresh_associations(
            conn, now=T0 + ttl - timedelta(minutes=1), ttl=ttl
        )
    assert (early.expired, early.waiting) == (0, 1)
    assert results_of(settings, "rec")[0]["status"] == "retrying"
    with store.connect(settings.store) as conn, store.transaction(conn):
        late = associations.refresh_associations(conn, now=T0 + ttl, ttl=ttl)
    assert (late.expired, late.waiting, late.results_changed) == (1, 0, 1)
    (result,) = results_of(settings, "rec")
    assert result["status"] == "partially_failed" and result["reference_id"]
    assert result["unresolved_references"] == []
    assert [e["code"] for e in result["errors"]] == ["UnresolvedReference"]
    assert result["failure_details"].startswith("Line 1: UnresolvedReference")
    assert batch_status(settings, "rec", "a.jsonl") == "partially_failed"


def test_targets_in_the_store_or_the_same_batch_link_at_once(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", plain("10.1000/first") + "\n")
    import_directly(settings, landing, "rec", now=T0)
    first_id = results_of(settings, "rec")[0]["reference_id"]
    lines = [citing("10.1000/second", first_id, doi("10.1000/third")), plain("10.1000/third")]
    write_batch(landing, "rec", "b.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, "rec", ["b.jsonl"], now=T0)
    assert [r["status"] for r in results_of(settings, "rec")] == ["completed"] * 3
    assert batch_status(settings, "rec", "b.jsonl") == "completed"


def test_the_hourly_schedule_requests_the_resolution_run() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
        )
        request = hourly_association_resolution(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "resolve:20261123T1400"
    assert hourly_association_resolution.cron_schedule == "0 * * * *"
    assert hourly_association_resolution.default_status == dg.DefaultScheduleStatus.RUNNING
    assert hourly_association_resolution.job_name == "resolve_associations"


def test_the_resolution_job_runs_in_dagster(settings, landing) -> None:
    from import_pipeline.defs import build_defs
    from import_pipeline.defs.jobs import resolve_associations

    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", citing("10.1000/c1", doi("10.1000/missing")) + "\n")
    import_directly(settings, landing, "rec", now=datetime.now(UTC) - timedelta(days=3))
    with dg.instance_for_test() as instance:
        job = build_defs(settings).resolve_job_def(resolve_associations.name)
        result = job.execute_in_process(instance=instance)
    assert result.success
    assert result.output_for_node("resolve_waiting_associations")["expired"] == 1
    assert results_of(settings, "rec")[0]["status"] == "partially_failed"


def test_a_later_import_links_only_what_it_brings_and_expires_what_waited_too_long(
    settings, landing
) -> None:
    """An import links its own targets and those it writes, not every waiting association;
    one that waited past the TTL expires with any later import, as with the hourly job."""
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", citing("10.1000/a", doi("10.1000/later")) + "\n")
    write_batch(landing, "rec", "b.jsonl", citing("10.1000/b", doi("10.1000/never")) + "\n")
    import_directly(settings, landing, "rec", now=T0)
    assert [r["status"] for r in results_of(settings, "rec")] == ["retrying", "retrying"]
    # Within the TTL, an unrelated record's import moves neither.
    write_record(landing, "other")
    write_batch(landing, "other", "c.jsonl", plain("10.1000/c") + "\n")
    import_directly(settings, landing, "other", now=T0 + timedelta(hours=1))
    assert [r["status"] for r in results_of(settings, "rec")] == ["retrying", "retrying"]
    # The target of a.jsonl arrives after the TTL: a's line links, b's expires.
    write_batch(landing, "other", "d.jsonl", plain("10.1000/later") + "\n")
    import_directly(settings, landing, "other", ["d.jsonl"], now=T0 + timedelta(hours=49))
    a, b = results_of(settings, "rec")
    assert a["status"] == "completed" and a["unresolved_references"] == []
    assert b["status"] == "partially_failed"
    assert [e["code"] for e in b["errors"]] == ["UnresolvedReference"]
    assert batch_status(settings, "rec", "a.jsonl") == "completed"
    assert batch_status(settings, "rec", "b.jsonl") == "partially_failed"
