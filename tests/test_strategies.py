"""Collision strategies (contract section 5) on the same pair of batches."""

from __future__ import annotations

import json

import pytest

from import_pipeline import store
from import_pipeline.domain.strategies import CollisionStrategy

from .conftest import import_directly, results_of, write_batch, write_record


def enhancement(kind: str, source: str, **content: object) -> dict:
    return {
        "source": source,
        "visibility": "public",
        "content": {"enhancement_type": kind, **content},
    }


ANNOTATION = enhancement(
    "annotation",
    "b",
    annotations=[{"annotation_type": "boolean", "scheme": "s", "label": "l", "value": True}],
)
STORED = {
    "identifiers": [
        {"identifier_type": "doi", "identifier": "10.1000/s"},
        {"identifier_type": "pm_id", "identifier": 1},
    ],
    "enhancements": [
        enhancement("abstract", "a", process="other", abstract="old"),
        enhancement("bibliographic", "a", title="Old"),
        ANNOTATION,
    ],
}
INCOMING = {
    "identifiers": [
        {"identifier_type": "doi", "identifier": "https://doi.org/10.1000/S"},
        {"identifier_type": "pm_id", "identifier": 2},
        {"identifier_type": "open_alex", "identifier": "W5"},
    ],
    "enhancements": [
        enhancement("abstract", "a", process="other", abstract="new"),
        enhancement("bibliographic", "c", title="New"),
        ANNOTATION,  # an exact duplicate: never stored twice
    ],
}
AGGRESSIVE_IDS = [("doi", "10.1000/s"), ("open_alex", "W5"), ("pm_id", "2")]
STORED_IDS = [("doi", "10.1000/s"), ("pm_id", "1")]
STORED_ENH = [("abstract", "a", "old"), ("annotation", "b", None), ("bibliographic", "a", "Old")]

EXPECTED = {
    CollisionStrategy.MERGE_DEFENSIVE: (
        [("doi", "10.1000/s"), ("open_alex", "W5"), ("pm_id", "1")],
        [*STORED_ENH, ("bibliographic", "c", "New")],
    ),
    CollisionStrategy.MERGE_AGGRESSIVE: (
        AGGRESSIVE_IDS,
        [("abstract", "a", "new"), ("annotation", "b", None), ("bibliographic", "a", "Old"), ("bibliographic", "c", "New")],
    ),
    CollisionStrategy.APPEND: (
        AGGRESSIVE_IDS,
        [("abstract", "a", "new"), *STORED_ENH, ("bibliographic", "c", "New")],
    ),
    CollisionStrategy.OVERWRITE: (
        AGGRESSIVE_IDS,
        [("abstract", "a", "new"), ("annotation", "b", None), ("bibliographic", "c", "New")],
    ),
    CollisionStrategy.DISCARD: (STORED_IDS, STORED_ENH),
    CollisionStrategy.FAIL: (STORED_IDS, STORED_ENH),
}  # fmt: skip


def _stored(settings) -> tuple[list, list, int]:
    with store.connect(settings.store, read_only=True) as conn:
        ref = store.find_reference(conn, identifier_type="doi", identifier="10.1000/s")
        references = store.table_counts(conn)["reference"]
    identifiers = sorted((i["identifier_type"], i["identifier"]) for i in ref["identifiers"])
    enhancements = sorted(
        (
            e["content"]["enhancement_type"],
            e["source"],
            e["content"].get("abstract") or e["content"].get("title"),
        )
        for e in ref["enhancements"]
    )
    return identifiers, enhancements, references


@pytest.mark.parametrize("strategy", list(CollisionStrategy))
def test_strategy_on_a_matching_line(settings, landing, strategy: CollisionStrategy) -> None:
    write_record(landing, "rec", collision_strategy=strategy.value)
    write_batch(landing, "rec", "1-stored.jsonl", json.dumps(STORED) + "\n")
    import_directly(settings, landing, "rec", ["1-stored.jsonl"])
    stored_id = results_of(settings, "rec")[0]["reference_id"]
    write_batch(landing, "rec", "2-incoming.jsonl", json.dumps(INCOMING) + "\n")
    import_directly(settings, landing, "rec", ["2-incoming.jsonl"], strategy=strategy)

    identifiers, enhancements, references = _stored(settings)
    expected_ids, expected_enh = EXPECTED[strategy]
    assert identifiers == sorted(expected_ids)
    assert enhancements == sorted(expected_enh, key=lambda e: (e[0], e[1], e[2] or ""))
    assert references == 1
    incoming = results_of(settings, "rec")[1]
    if strategy == CollisionStrategy.FAIL:
        assert incoming["status"] == "failed" and incoming["reference_id"] is None
        assert incoming["errors"][0]["code"] == "DuplicateReference"
    else:
        assert incoming["status"] == "completed" and incoming["reference_id"] == stored_id


@pytest.mark.parametrize("strategy", list(CollisionStrategy))
def test_a_line_matching_nothing_is_created_under_every_strategy(
    settings, landing, strategy
) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", json.dumps(INCOMING) + "\n")
    (stored,) = import_directly(settings, landing, "rec", strategy=strategy)
    assert stored.references_created == 1 and stored.counts["completed"] == 1


def test_strategy_comes_from_record_json(settings, landing) -> None:
    from import_pipeline.landing.records import read_record

    write_record(landing, "rec", collision_strategy="append")
    assert read_record(landing, landing.record_folder("rec")).record.collision_strategy == "append"
    write_record(landing, "bad", collision_strategy="smash")
    assert "collision_strategy" in read_record(landing, landing.record_folder("bad")).problem
