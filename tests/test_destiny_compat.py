"""DESTINY compatibility: the SDK's own cases, run through the real import path.

`destiny_compat_cases.json` holds every concrete valid and invalid example of the DESTINY SDK's
unit tests and test-data files (destiny-evidence/destiny-repository, `libs/sdk/tests/unit`),
each with the verdict and the dumped value of the SDK at its current release (0.17.6), plus
the forms issue 13 names. Each is imported here as a line of one batch; a case may differ from
the SDK only where `docs/decisions.md` names the difference (`DIFFERENCES`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from import_pipeline import store
from import_pipeline.settings import Settings

from .conftest import import_directly, write_batch, write_record

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "destiny_compat_cases.json").read_text(encoding="utf-8")
)

#: Where this project deliberately differs from the SDK: case id → the section of
#: docs/decisions.md ("DESTINY compatibility") that says why, and what happens here instead.
_UNKNOWN = ("Unknown keys are reported", "kept, with UnknownField")
_STRICT_URL = ("URLs are parsed strictly", "Input violated strict URL syntax rules")
_IDENTIFIED = ("A line is a reference with an identifier", "failed: [{'code': 'RequiredField'")
DIFFERENCES: dict[str, tuple[str, str]] = {
    "content/bibliographic/openalex-biblio-key": _UNKNOWN,
    "content/bibliographic/pagination-and-biblio": _UNKNOWN,
    "enhancement/abstract/extra-key-in-content": _UNKNOWN,
    "enhancement/abstract/extra-key-on-enhancement": _UNKNOWN,
    # The SDK's tests build enhancements with `enhancement_type` beside the content.
    "enhancement/abstract/valid": _UNKNOWN,
    "enhancement/annotation/boolean-valid": _UNKNOWN,
    "enhancement/bibliographic/valid": _UNKNOWN,
    "enhancement/location/valid": _UNKNOWN,
    "enhancement/reference_association/uuid-and-open_alex-url": _UNKNOWN,
    "content/location/mojibake-url": _STRICT_URL,
    "line/location/mojibake-url": _STRICT_URL,
    # Elasticsearch hits (`_index`, `_id`, `_source`): the SDK reads them as empty references.
    **{f"line/destiny_references/{n:02d}": _IDENTIFIED for n in range(1, 11)},
    "line/empty-object": _IDENTIFIED,
}


def _without_nulls(value: Any) -> Any:
    # A null and a missing key mean the same to both (DESTINY's own files omit nulls).
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _line(case: dict[str, Any]) -> str:
    """The case as a batch line with an identifier of its own, so that cases never merge."""
    own = {"identifier_type": "other", "other_identifier_name": "compat", "identifier": case["id"]}
    value = case["input"]
    if case["kind"] == "identifier":
        document = {"identifiers": [value, own]}
    elif case["kind"] == "content":
        enhancement = {"source": "compat", "visibility": "public", "content": value}
        document = {"identifiers": [own], "enhancements": [enhancement]}
    elif case["kind"] == "enhancement":
        document = {"identifiers": [own], "enhancements": [value]}
    else:
        document = value
    return json.dumps(document, ensure_ascii=False)


def _import(root: Path, lines: list[str]) -> list[dict[str, Any]]:
    """Imports `lines` as one batch into a store of its own: each line's result and reference."""
    from import_pipeline.landing import LandingZone

    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(root)})
    Path(settings.landing).mkdir(parents=True, exist_ok=True)
    landing = LandingZone(settings.landing)
    write_record(landing, "compat")
    write_batch(landing, "compat", "cases.jsonl", "".join(line + "\n" for line in lines))
    import_directly(settings, landing, "compat")
    with store.connect(settings.store, read_only=True) as conn:
        results = []
        while len(results) < len(lines):
            page = store.list_results(conn, "compat", limit=500, offset=len(results))["results"]
            assert page, "a line has no result"
            results.extend(page)
        return [
            {
                "result": result,
                "reference": result["reference_id"]
                and store.find_reference(conn, reference_id=result["reference_id"]),
            }
            for result in sorted(results, key=lambda r: r["line_number"])
        ]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case imported: case id → its result and stored reference. Identifiers, contents
    and enhancements share one batch (each line has an identifier of its own); a whole line
    gets a store of its own, as the SDK's test files repeat works from file to file."""
    parts = [c for c in CASES if c["kind"] != "line"]
    out = dict(
        zip(
            [c["id"] for c in parts],
            _import(tmp_path_factory.mktemp("parts"), [_line(c) for c in parts]),
            strict=True,
        )
    )
    for case in (c for c in CASES if c["kind"] == "line"):
        (out[case["id"]],) = _import(tmp_path_factory.mktemp("line"), [_line(case)])
    return out


def _stored_enhancements(reference: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [] if reference is None else reference["enhancements"]


def _agrees(case: dict[str, Any], outcome: dict[str, Any]) -> tuple[bool, str]:
    """Whether the import did what the SDK did with the case, and what it did."""
    result, reference = outcome["result"], outcome["reference"]
    errors = result["errors"]
    kind = case["kind"]
    if not case["sdk_accepts"]:
        if kind == "line":
            refused = result["status"] == "failed" or bool(errors)
        else:
            part = "identifiers[0]" if kind == "identifier" else "enhancements[0]"
            refused = any((e.get("field") or "").startswith(part) for e in errors)
        return refused, f"refused: {refused}; errors {errors}"
    # An unknown key the SDK ignores is dropped here too, but reported (contract section 3).
    unknown = [e["field"] for e in errors if e["code"] == "UnknownField"]
    errors = [e for e in errors if e["code"] != "UnknownField"]
    # An association whose targets are not stored yet waits for them (contract section 5).
    status = "completed" if result["status"] == "partially_failed" and unknown else result["status"]
    if status not in ("completed", "retrying") or errors:
        return False, f"{result['status']}: {errors}"
    stored, said = _stored_as_the_sdk(case, reference)
    if unknown:
        kept = "kept, with UnknownField" if stored else "not kept"
        return False, f"{kept} {unknown}: {said}"
    return stored, said


def _stored_as_the_sdk(case: dict[str, Any], reference: dict[str, Any]) -> tuple[bool, str]:
    kind, sdk = case["kind"], case["sdk_value"]
    stored_ids = {(i["identifier_type"], i["identifier"]) for i in reference["identifiers"]}
    contents = [_without_nulls(e["content"]) for e in _stored_enhancements(reference)]
    if kind == "identifier":
        expected = (sdk["identifier_type"], str(sdk["identifier"]))
        return expected in stored_ids, f"stored {sorted(stored_ids)}, SDK {expected}"
    if kind == "content":
        return _without_nulls(sdk) in contents, f"stored {contents}, SDK {_without_nulls(sdk)}"
    if kind == "enhancement":
        stored = [
            e for e in _stored_enhancements(reference)
            if _without_nulls(e["content"]) == _without_nulls(sdk["content"])
            and e["source"] == sdk["source"] and e["visibility"] == sdk["visibility"]
            # The SDK reads the version from `processor_version` only (its alias).
            and (sdk["robot_version"] is None or e["processor_version"] == sdk["robot_version"])
        ]  # fmt: skip
        return bool(stored), f"stored {_stored_enhancements(reference)}, SDK {sdk}"
    missing_ids = {
        (i["identifier_type"], str(i["identifier"])) for i in sdk.get("identifiers") or []
    } - stored_ids
    missing = [
        e["content"] for e in sdk.get("enhancements") or []
        if _without_nulls(e["content"]) not in contents
    ]  # fmt: skip
    return not missing_ids and not missing, f"missing {missing_ids} and {missing}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_the_sdk_case_imports_as_destiny_does(case: dict[str, Any], imported) -> None:
    agrees, said = _agrees(case, imported[case["id"]])
    if case["id"] in DIFFERENCES:
        decision, what = DIFFERENCES[case["id"]]
        assert not agrees, f"{case['id']} now agrees with the SDK: drop it from DIFFERENCES"
        assert what in said, f"{case['id']} ({decision}): expected {what!r}, got {said}"
    else:
        assert agrees, f"{case['id']} ({case['source']}): {said}"


def test_every_difference_is_written_down() -> None:
    decisions = (Path(__file__).parents[1] / "docs" / "decisions.md").read_text(encoding="utf-8")
    for case_id, (decision, _) in DIFFERENCES.items():
        assert case_id in {c["id"] for c in CASES}
        assert decision in decisions, f"{case_id}: docs/decisions.md has no {decision!r}"


def test_a_repository_export_round_trips(settings: Settings, landing, destiny: Path) -> None:
    """DESTINY's export (ids, reference ids and timestamps on every enhancement) imports with
    all 52 enhancements; the same references without the export keys then add nothing."""
    write_record(landing, "export")
    write_batch(
        landing, "export", "a-export.jsonl", (destiny / "destiny_export.jsonl").read_bytes()
    )
    (exported,) = import_directly(settings, landing, "export")
    assert exported.counts["completed"] == exported.lines_read == 10
    with store.connect(settings.store, read_only=True) as conn:
        after_export = store.table_counts(conn)
    assert after_export["reference"] == 10 and after_export["reference_enhancement"] == 52
    write_batch(
        landing, "export", "b-plain.jsonl", (destiny / "openalex_references.jsonl").read_bytes()
    )
    (plain,) = import_directly(settings, landing, "export", ["b-plain.jsonl"])
    assert plain.counts["completed"] == 10 and plain.references_created == 0
    with store.connect(settings.store, read_only=True) as conn:
        after_plain = store.table_counts(conn)
    changed = {t: (after_export[t], n) for t, n in after_plain.items() if "result" not in t}
    assert {t: n for t, n in changed.items() if n[0] != n[1] and t not in ("import_batches",)} == {}
