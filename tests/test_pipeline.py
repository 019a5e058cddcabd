"""The whole job against a real Dagster instance and a real DuckDB file, on the real data."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.defs import build_defs
from import_pipeline.defs.jobs import import_record_job, run_config_for
from import_pipeline.defs.partitions import import_records
from import_pipeline.domain.duplicates import Decision
from import_pipeline.landing.demo import synergy_lines
from import_pipeline.landing.records import BatchVersion
from import_pipeline.settings import Settings

from .conftest import EPPI_FILES, OPENALEX_FILE, write_batch, write_record


@pytest.fixture
def instance():
    """A real, temporary Dagster instance with the pool limit the project ships."""
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        yield inst


def run_record(
    settings: Settings, instance: dg.DagsterInstance, key: str, batches: list[str] | None = None
):
    instance.add_dynamic_partitions(import_records.name, [key])
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    result = job.execute_in_process(
        partition_key=key,
        instance=instance,
        run_config=run_config_for(BatchVersion(name) for name in batches or []),
    )
    assert result.success
    return result


def materialization(result, asset: str) -> dict:
    (event,) = [
        e for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.to_user_string() == asset
    ]  # fmt: skip
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_three_eppi_exports_end_as_four_references(settings, landing, instance, destiny) -> None:
    write_record(landing, "eppi", expected_reference_count=12)
    for name in EPPI_FILES:
        write_batch(landing, "eppi", name, (destiny / name).read_bytes())
    result = run_record(settings, instance, "eppi")
    metadata = materialization(result, "import_results")
    assert metadata["completed"] == 12 and metadata["failed"] == 0
    assert metadata["references_created"] == 4 and metadata["references_merged"] == 8
    assert metadata["dagster/row_count"] == 12
    with store.connect(settings.store, read_only=True) as conn:
        counts = store.table_counts(conn)
        assert counts["reference"] == 4
        types = conn.execute(
            "SELECT enhancement_type, count(*) FROM reference_enhancement GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert types == [("abstract", 4), ("annotation", 4), ("bibliographic", 4), ("raw", 4)]
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }  # fmt: skip
    assert checks == dict.fromkeys(
        ["every_line_has_one_result", "results_point_at_references",
         "identifiers_belong_to_one_reference", "expected_reference_count", "every_line_imported",
         "every_duplicate_points_to_a_canonical", "every_reference_has_one_active_decision"],
        True
    )  # fmt: skip
    decisions = materialization(result, "duplicate_decisions")
    assert decisions["references_compared"] == 4  # the four the run created or merged
    assert sum(decisions[d.value] for d in Decision) == 4


def test_openalex_file_keeps_every_identifier_and_enhancement(
    settings, landing, instance, destiny
) -> None:
    write_record(landing, "oa")
    write_batch(landing, "oa", OPENALEX_FILE, (destiny / OPENALEX_FILE).read_bytes())
    run_record(settings, instance, "oa")
    lines = [json.loads(line) for line in (destiny / OPENALEX_FILE).read_text().splitlines()]
    with store.connect(settings.store, read_only=True) as conn:
        assert store.table_counts(conn)["reference"] == 10
        for source in lines:
            first = source["identifiers"][0]
            stored = store.find_reference(
                conn, identifier_type=first["identifier_type"], identifier=str(first["identifier"])
            )
            assert sorted((i["identifier_type"], i["identifier"]) for i in stored["identifiers"]) == sorted(
                (i["identifier_type"], str(i["identifier"]).lower() if i["identifier_type"] == "doi" else str(i["identifier"]))
                for i in source["identifiers"]
            )  # fmt: skip
            assert sorted(
                json.dumps(e["content"], sort_keys=True) for e in stored["enhancements"]
            ) == sorted(
                json.dumps(_with_sdk_defaults(e["content"]), sort_keys=True)
                for e in source["enhancements"]
            )
            assert {e["robot_version"] for e in stored["enhancements"]} == {
                e["robot_version"] for e in source["enhancements"]
            }


def _with_sdk_defaults(content: dict) -> dict:
    """The content as the DESTINY SDK stores it: an annotation without `data` gets `{}`."""
    if content["enhancement_type"] != "annotation":
        return content
    return {**content, "annotations": [{"data": {}, **a} for a in content["annotations"]]}


def _independent_keys(row: dict[str, str]) -> set[str]:
    """Normalised identifiers of a SYNERGY row, computed without the package's code."""
    keys = set()
    doi = (row.get("doi") or "").strip()
    if doi:
        value = re.sub(r"(?i)^https?://(dx\.)?doi\.org/", "", doi).lower()
        if re.fullmatch(r"10\.[0-9]{4,9}/\S+", value):
            keys.add("doi:" + value)
    pmid = (row.get("pmid") or "").strip().rstrip("/").rsplit("/", 1)[-1]
    if pmid.isdigit() and int(pmid) > 0:
        keys.add(f"pm_id:{int(pmid)}")
    openalex = (row.get("openalex_id") or "").strip().rsplit("/", 1)[-1]
    if re.fullmatch(r"[Ww][0-9]+", openalex):
        keys.add("open_alex:" + openalex.upper())
    return keys


def _union_find_references(csv_files: list[Path]) -> tuple[int, int]:
    """(works, non-blank lines): components of rows linked by a shared identifier."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    lines = 0
    for path in csv_files:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                lines += 1
                keys = sorted(_independent_keys(row))
                for key in keys:
                    find(key)
                for a, b in zip(keys, keys[1:], strict=False):
                    parent[find(a)] = find(b)
    return len({find(k) for k in parent}), lines


def test_six_synergy_reviews_resolve_like_a_union_find(
    settings, landing, instance, synergy
) -> None:
    csv_files = sorted(synergy.glob("*_ids.csv"))
    write_record(landing, "synergy")
    expected_references, expected_lines = _union_find_references(csv_files)
    for path in csv_files:
        name = path.name.removesuffix("_ids.csv") + ".jsonl"
        write_batch(landing, "synergy", name, "\n".join(synergy_lines(path)) + "\n")
        run_record(settings, instance, "synergy", [name])
    with store.connect(settings.store, read_only=True) as conn:
        summary = store.record_summary(conn, "synergy")
        assert store.table_counts(conn)["reference"] == expected_references
        assert store.identifiers_on_two_references(conn) == []
        assert store.lines_without_one_result(conn, "synergy") == []
    assert summary["total"] == expected_lines
    assert len(summary["batches"]) == 6


def test_the_same_content_is_never_imported_twice(settings, landing, instance, destiny) -> None:
    write_record(landing, "oa")
    write_batch(landing, "oa", OPENALEX_FILE, (destiny / OPENALEX_FILE).read_bytes())
    run_record(settings, instance, "oa")
    with store.connect(settings.store, read_only=True) as conn:
        before = store.table_counts(conn)
    again = materialization(run_record(settings, instance, "oa"), "import_results")
    assert again["batches_imported_this_run"] == 0 and again["completed"] == 10
    with store.connect(settings.store, read_only=True) as conn:
        assert store.table_counts(conn) == before


def test_the_shared_identifier_check_is_scoped_to_the_record(settings, landing) -> None:
    """Two references sharing a DOI are found from the record that points at one of them,
    not from another record (which need not group the whole store)."""
    from .conftest import import_directly

    write_record(landing, "mine")
    write_batch(landing, "mine", "a.jsonl", json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/shared"}]}) + "\n")  # fmt: skip
    import_directly(settings, landing, "mine")
    write_record(landing, "other")
    write_batch(landing, "other", "b.jsonl", json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/alone"}]}) + "\n")  # fmt: skip
    import_directly(settings, landing, "other")
    with store.connect(settings.store) as conn:
        assert store.identifiers_on_two_references(conn, "mine") == []
        # A second reference with the same DOI, as a broken writer would leave it.
        conn.execute("INSERT INTO reference (id, visibility) VALUES (uuid(), 'public')")
        conn.execute(
            "INSERT INTO reference_identifier (reference_id, identifier_type, identifier) "
            "SELECT id, 'doi', '10.1000/shared' FROM reference "
            "WHERE id NOT IN (SELECT reference_id FROM reference_identifier)"
        )
        assert store.identifiers_on_two_references(conn, "mine") == [("doi", "10.1000/shared", 2)]
        assert store.identifiers_on_two_references(conn, "other") == []
        assert len(store.identifiers_on_two_references(conn)) == 1
