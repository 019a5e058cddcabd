"""What operators see in Dagster: metadata, run tags, checks (passing and failing), failures."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.cli import main
from import_pipeline.defs import build_defs
from import_pipeline.defs.jobs import import_record_job
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.recovery import RecoveryTags, settle_failed_runs
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.domain.statuses import ImportResultStatus

from .conftest import EPPI_FILES, write_batch, write_record

BAD = [
    '{"identifiers": [{"identifier_type": "doi", "identifier": "not-a-doi"}]}',
    '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/z"}], "title": "x|y"}',
]


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        yield inst


def run(settings, instance, key: str, **kwargs):
    instance.add_dynamic_partitions(import_records.name, [key])
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    return job.execute_in_process(
        partition_key=key, instance=instance, raise_on_error=False, **kwargs
    )


def metadata_of(result) -> dict:
    (event,) = [
        e for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.to_user_string() == "import_results"
    ]  # fmt: skip
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks_of(result) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_metadata_of_a_record_with_failing_lines(settings, landing, instance, destiny) -> None:
    write_record(landing, "rec")
    good = (destiny / "eppi_import.jsonl").read_text().splitlines()
    write_batch(
        landing, "rec", "mixed.jsonl", "\n".join([good[0], BAD[0], good[1], "", BAD[1]]) + "\n"
    )
    result = run(settings, instance, "rec")
    assert result.success
    metadata = metadata_of(result)
    assert {s.value: metadata[s.value] for s in ImportResultStatus} == {
        "created": 0, "started": 0, "completed": 2, "partially_failed": 0, "failed": 2, "retrying": 0,
    }  # fmt: skip
    assert all(isinstance(metadata[s.value], int) for s in ImportResultStatus)  # plottable
    assert metadata["dagster/row_count"] == 4
    assert metadata["lines_read_this_run"] == 4 and metadata["batches"] == 1
    assert metadata["references_created"] == 2 and metadata["references_merged"] == 0
    assert metadata["duration_seconds"] > 0 and metadata["lines_per_second"] > 0
    assert metadata["failed_lines"] == 2
    shown = metadata["failing_lines"]
    assert shown.startswith("**2 of 4 line(s) failed** — the record is not clean.")
    assert "|---" not in shown  # no table: it wraps in the panel
    # Every error of a line, its field, the whole message, and the value it is about.
    line_2 = shown.split("**mixed.jsonl, line 2** (failed)")[1].split("**mixed.jsonl, line 5**")[0]
    assert (
        "- `identifiers[0].identifier` · **InvalidField**: not a valid doi: expected 10." in line_2
    )
    assert 'offending value: `"not-a-doi"`' in line_2
    assert "- `identifiers` · **InvalidField**: no valid identifier is left" in line_2
    assert (
        '> line: `{"identifiers": [{"identifier_type": "doi", "identifier": "not-a-doi"}]}`'
        in line_2
    )
    line_5 = shown.split("**mixed.jsonl, line 5** (failed)")[1]
    assert "- `title` · **UnknownField**" in line_5 and 'offending value: `"x|y"`' in line_5
    command = "import-pipeline failures rec --out fix.jsonl"
    assert metadata["list_failing_lines"] == command and f"`{command}`" in shown
    # Not clean, where the UI shows it: the run's tag and a failing check (a warning).
    assert instance.get_run_by_id(result.run_id).tags["import_pipeline/failed_lines"] == "2"
    (check,) = [
        e.event_specific_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "every_line_imported"
    ]  # fmt: skip
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failing_lines_by_batch"].value == {"mixed.jsonl": 2}


def test_a_clean_record_says_so_in_its_tag_and_check(settings, landing, instance, destiny) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "e.jsonl", (destiny / "eppi_import.jsonl").read_bytes())
    result = run(settings, instance, "rec")
    assert instance.get_run_by_id(result.run_id).tags["import_pipeline/failed_lines"] == "0"
    assert checks_of(result)["every_line_imported"] is True
    assert metadata_of(result)["failing_lines"] == "All 4 line(s) imported: no failing line."


def test_the_failing_lines_command_lists_them(
    settings, landing, instance, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(settings.home))
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", "\n".join(BAD) + "\n")
    command = metadata_of(run(settings, instance, "rec"))["list_failing_lines"]
    out = settings.home / "fix.jsonl"
    assert main([*command.split()[1:-1], str(out)]) == 0
    listed = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line_number"], r["text"]) for r in listed] == [(1, BAD[0]), (2, BAD[1])]


def test_every_run_is_tagged_with_record_batches_and_checksums(
    settings, landing, instance, destiny
) -> None:
    write_record(landing, "rec")
    for name in EPPI_FILES[:2]:
        write_batch(landing, "rec", name, (destiny / name).read_bytes())
    result = run(settings, instance, "rec")  # launched as from the UI: no tags given
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["import_pipeline/record"] == "rec"
    assert tags["import_pipeline/batches"] == ",".join(EPPI_FILES[:2])
    assert [len(c) for c in tags["import_pipeline/checksums"].split(",")] == [12, 12]


def test_checks_pass_on_a_clean_import(settings, landing, instance, destiny) -> None:
    write_record(landing, "rec", expected_reference_count=4)
    write_batch(landing, "rec", "e.jsonl", (destiny / "eppi_import.jsonl").read_bytes())
    assert set(checks_of(run(settings, instance, "rec")).values()) == {True}


def test_checks_fail_when_the_store_is_damaged(settings, landing, instance, destiny) -> None:
    write_record(landing, "rec", expected_reference_count=99)
    write_batch(landing, "rec", "e.jsonl", (destiny / "eppi_import.jsonl").read_bytes())
    assert checks_of(run(settings, instance, "rec"))["expected_reference_count"] is False
    with store.connect(settings.store) as conn:
        conn.execute("DELETE FROM import_results WHERE line_number = 2")
        conn.execute(
            "DELETE FROM reference WHERE id = (SELECT reference_id FROM import_results WHERE line_number = 3)"
        )
        a, b = [
            r
            for (r,) in conn.execute(
                "SELECT DISTINCT reference_id FROM reference_identifier LIMIT 2"
            ).fetchall()
        ]
        conn.execute(
            "UPDATE reference_identifier SET identifier = '10.1000/shared' WHERE reference_id IN (?, ?)",
            [a, b],
        )
    result = run(settings, instance, "rec")
    assert not result.success  # the blocking check stops the run
    assert checks_of(result) == {
        "every_line_has_one_result": False,
        "results_point_at_references": False,
        "identifiers_belong_to_one_reference": False,
        "expected_reference_count": False,
        "every_line_imported": True,  # each line that has a result imported
    }


def test_a_failed_run_marks_its_batches_failed(settings, landing, instance) -> None:
    write_record(landing, "rec", searched_at="2999-01-01T00:00:00")  # the run fails at once
    write_batch(landing, "rec", "b.jsonl", BAD[0] + "\n")
    failed = run(settings, instance, "rec")
    assert not failed.success
    with store.connect(settings.store) as conn:
        store.start_batch(conn, "rec", "b.jsonl", "file:///b.jsonl", failed.run_id)  # left behind
    (failure,) = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure_event = failure.dagster_event
    with dg.build_run_status_sensor_context(
        sensor_name=settle_failed_runs.name,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(failed.run_id),
        dagster_event=failure_event,
        resources={"pipeline": ImportPipelineResource.from_settings(settings)},
    ) as context:
        settle_failed_runs(context)
    with store.connect(settings.store, read_only=True) as conn:
        (batch,) = store.record_summary(conn, "rec")["batches"]
    assert batch["status"] == "failed"
    assert batch["failure_details"].startswith(f"run {failed.run_id} failed")
    # A record that is refused would be refused again: not retried, and the run says so.
    assert batch["failure_details"].endswith("not retried: it would fail again")
    tags = instance.get_run_by_id(failed.run_id).tags
    assert tags[RecoveryTags.RETRY] == "no"
    assert "searched_at" in tags[RecoveryTags.OUTCOME]
