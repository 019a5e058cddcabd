"""Status derivation: batch from its results, record from its batches (contract section 4)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from import_pipeline import store
from import_pipeline.domain.statuses import ImportResultStatus, derive_batch_status

from .conftest import import_directly, write_batch, write_record

ALL = [s.value for s in ImportResultStatus]
ONE_LINE = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/a"}]}\n'

TABLE = [
    ([], "created"),
    (["created"], "started"),
    (["started"], "started"),
    (["retrying"], "started"),
    (["completed", "retrying"], "started"),
    (["failed", "started"], "started"),
    (["completed"], "completed"),
    (["failed"], "failed"),
    (["partially_failed"], "partially_failed"),  # DESTINY says failed: references were created
    (["failed", "partially_failed"], "partially_failed"),
    (["completed", "failed"], "partially_failed"),
    (["completed", "partially_failed"], "partially_failed"),
    (["completed", "partially_failed", "failed"], "partially_failed"),
]


@pytest.mark.parametrize(("present", "expected"), TABLE)
def test_status_table(present: list[str], expected: str) -> None:
    assert derive_batch_status(dict.fromkeys(present, 3)) == expected


@pytest.mark.parametrize(
    "present", [list(c) for n in range(len(ALL) + 1) for c in itertools.combinations(ALL, n)]
)
def test_every_mix_of_result_statuses(present: list[str]) -> None:
    counts = {status: (2 if status in present else 0) for status in ALL}
    got = derive_batch_status(counts)
    if not present:
        assert got == "created"
    elif {"created", "started", "retrying"} & set(present):
        assert got == "started"
    elif set(present) == {"completed"}:
        assert got == "completed"
    elif set(present) == {"failed"}:
        assert got == "failed"
    else:
        assert got == "partially_failed"


def _record_status(settings, key: str) -> str:
    with store.connect(settings.store, read_only=True) as conn:
        return store.record_summary(conn, key)["record"]["status"]


def test_record_goes_created_started_completed(settings, landing) -> None:
    write_record(landing, "rec")
    with store.connect(settings.store) as conn:
        store.upsert_record(conn, "rec", None)
    assert _record_status(settings, "rec") == "created"
    write_batch(landing, "rec", "a.jsonl", ONE_LINE)
    import_directly(settings, landing, "rec")
    assert _record_status(settings, "rec") == "started"  # not finalised yet
    (Path(landing.root) / "rec" / "_finalised").touch()
    with store.connect(settings.store) as conn:
        store.upsert_record(conn, "rec", None, finalised=True)
    assert _record_status(settings, "rec") == "completed"


def test_an_unreadable_batch_is_failed_with_its_reason(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "empty.jsonl", "")
    write_batch(landing, "rec", "blank.jsonl", "\n\n  \n")
    import_directly(settings, landing, "rec")
    with store.connect(settings.store, read_only=True) as conn:
        batches = {b["name"]: b for b in store.record_summary(conn, "rec")["batches"]}
    assert batches["empty.jsonl"]["status"] == "failed"
    assert batches["empty.jsonl"]["failure_details"] == "the batch is empty"
    assert batches["blank.jsonl"]["failure_details"] == "the batch has only blank lines"
    assert sum(batches["blank.jsonl"]["results"].values()) == 0


def test_summary_says_whether_the_expected_count_matches(settings, landing) -> None:
    write_record(landing, "rec", expected_reference_count=2)
    write_batch(landing, "rec", "a.jsonl", ONE_LINE)
    import_directly(settings, landing, "rec")
    with store.connect(settings.store) as conn:
        from import_pipeline.landing.records import read_record

        store.upsert_record(conn, "rec", read_record(landing, landing.record_folder("rec")).record)
        summary = store.record_summary(conn, "rec")
    assert summary["record"]["expected_reference_count"] == 2
    assert summary["record"]["expected_reference_count_matches"] is False


def test_the_ladder_in_sql_agrees_with_python_on_every_mix_of_statuses() -> None:
    """`batch_status_sql` and `batch_status` are read from one ladder: they agree on each of
    the 64 sets of result statuses a batch can have."""
    import itertools

    import duckdb

    from import_pipeline.domain.statuses import batch_status, batch_status_sql

    statuses = [s.value for s in ImportResultStatus]
    mixes = [
        list(mix)
        for size in range(len(statuses) + 1)
        for mix in itertools.combinations(statuses, size)
    ]
    engine = duckdb.connect()
    for mix in mixes:
        (in_sql,) = engine.execute(
            f"SELECT {batch_status_sql('$mix::VARCHAR[]')}", {"mix": mix}
        ).fetchone()
        assert in_sql == batch_status(mix).value, mix
    assert len(mixes) == 64
