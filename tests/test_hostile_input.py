"""Hostile input: every case ends with the right status and code, the valid lines around it
imported, and the sensor still ticking. The table is the README's "What happens to bad input"."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import dagster as dg
import pytest

from import_pipeline import store
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.settings import Settings

from .conftest import import_directly, landing_zone_sensor, results_of, write_batch, write_record

GOOD = json.dumps(
    {"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/good-before"}]}
)
AFTER = json.dumps(
    {"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/good-after"}]}
)


def ref(**fields: object) -> str:
    return json.dumps(
        {"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"}], **fields}
    )


def ident(kind: str, value: object, **extra: object) -> str:
    return json.dumps({"identifiers": [{"identifier_type": kind, "identifier": value, **extra}]})


def enh(content: dict, **envelope: object) -> str:
    item = {"source": "s", "visibility": "public", **envelope, "content": content}
    return ref(enhancements=[item])


ABSTRACT = {"enhancement_type": "abstract", "process": "other", "abstract": "a"}

# (case, line, status, code, field)
LINE_CASES = [
    ("invalid JSON", '{"identifiers": [', "failed", "InvalidJsonInput", None),
    ("a JSON array", "[1, 2]", "failed", "InvalidJsonInput", None),
    ("a JSON string", '"text"', "failed", "InvalidJsonInput", None),
    ("a JSON number", "42", "failed", "InvalidJsonInput", None),
    ("JSON null", "null", "failed", "InvalidJsonInput", None),
    ("JSON true", "true", "failed", "InvalidJsonInput", None),
    ("trailing comma", '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"},]}', "failed", "InvalidJsonInput", None),
    ("single quotes", "{'identifiers': []}", "failed", "InvalidJsonInput", None),
    ("two objects on one line", GOOD + GOOD, "failed", "InvalidJsonInput", None),
    ("missing identifiers", '{"enhancements": []}', "failed", "RequiredField", "identifiers"),
    ("empty object", "{}", "failed", "RequiredField", "identifiers"),
    ("empty identifiers", '{"identifiers": []}', "failed", "InvalidField", "identifiers"),
    ("identifiers not a list", '{"identifiers": {"identifier_type": "doi"}}', "failed", "InvalidField", "identifiers"),
    ("identifiers null", '{"identifiers": null}', "failed", "InvalidField", "identifiers"),
    ("identifier not an object", '{"identifiers": ["10.1000/x"]}', "failed", "InvalidField", "identifiers[0]"),
    ("unknown identifier type", ident("isbn", "978"), "failed", "InvalidField", "identifiers[0].identifier_type"),
    ("identifier type missing", '{"identifiers": [{"identifier": "10.1000/x"}]}', "failed", "RequiredField", "identifiers[0].identifier_type"),
    ("identifier value missing", '{"identifiers": [{"identifier_type": "doi"}]}', "failed", "RequiredField", "identifiers[0].identifier"),
    ("DOI without 10. prefix", ident("doi", "1000/x"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("DOI registrant too short", ident("doi", "10.123/x"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("DOI with a space", ident("doi", "10.1000/a b"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("DOI on another host", ident("doi", "https://example.org/10.1000/x"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("DOI as a number", ident("doi", 101000), "failed", "InvalidField", "identifiers[0].identifier"),
    ("PMID zero", ident("pm_id", 0), "failed", "InvalidField", "identifiers[0].identifier"),
    ("PMID negative", ident("pm_id", -3), "failed", "InvalidField", "identifiers[0].identifier"),
    ("PMID with letters", ident("pm_id", "12ab"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("PMID as a float", ident("pm_id", 12.5), "failed", "InvalidField", "identifiers[0].identifier"),
    ("PMID URL of another site", ident("pm_id", "https://example.org/123"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("OpenAlex author id", ident("open_alex", "A123"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("OpenAlex without digits", ident("open_alex", "https://openalex.org/W"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("ERIC with a bad prefix", ident("eric", "EX123"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("ProQuest with letters", ident("pro_quest", "abc"), "failed", "InvalidField", "identifiers[0].identifier"),
    ("other without a name", ident("other", "x"), "failed", "RequiredField", "identifiers[0].other_identifier_name"),
    ("other with a blank name", ident("other", "x", other_identifier_name=" "), "failed", "InvalidField", "identifiers[0].other_identifier_name"),
    ("unknown key in an identifier", ident("doi", "10.1000/x", note="hi"), "partially_failed", "UnknownField", "identifiers[0].note"),
    ("unknown top-level key", ref(title="t"), "failed", "UnknownField", "title"),
    ("visibility not allowed", ref(visibility="secret"), "failed", "InvalidField", "visibility"),
    ("visibility as a number", ref(visibility=1), "failed", "InvalidField", "visibility"),
    ("enhancements not a list", ref(enhancements={}), "failed", "InvalidField", "enhancements"),
    ("duplicate top-level key", GOOD[:-1] + ', "identifiers": []}', "failed", "InvalidJsonInput", None),
    ("NUL byte in a string", ref()[:-2] + '\x00"}', "failed", "InvalidJsonInput", None),
    ("10,000 levels of nesting", ref(enhancements=[])[:-1] + ', "id": ' + "[" * 10_000 + "]" * 10_000 + "}", "failed", "InvalidJsonInput", None),
    ("unknown enhancement type", enh({"enhancement_type": "telepathy"}), "partially_failed", "InvalidField", "enhancements[0].content.enhancement_type"),
    ("enhancement type missing", enh({"abstract": "a"}), "partially_failed", "RequiredField", "enhancements[0].content.enhancement_type"),
    ("abstract without its text", enh({"enhancement_type": "abstract", "process": "other"}), "partially_failed", "RequiredField", "enhancements[0].content.abstract"),
    ("abstract process unknown", enh({**ABSTRACT, "process": "magic"}), "partially_failed", "InvalidField", "enhancements[0].content.process"),
    ("year as a string", enh({"enhancement_type": "bibliographic", "publication_year": "2024"}), "partially_failed", "InvalidField", "enhancements[0].content.publication_year"),
    ("title as a number", enh({"enhancement_type": "bibliographic", "title": 7}), "partially_failed", "InvalidField", "enhancements[0].content.title"),
    ("impossible date", enh({"enhancement_type": "bibliographic", "publication_date": "2024-02-30"}), "partially_failed", "InvalidField", "enhancements[0].content.publication_date"),
    ("boolean as a string", enh({"enhancement_type": "annotation", "annotations": [{"annotation_type": "boolean", "scheme": "s", "label": "l", "value": "true"}]}), "partially_failed", "InvalidField", "enhancements[0].content.annotations[0].value"),
    ("score as a string", enh({"enhancement_type": "annotation", "annotations": [{"annotation_type": "score", "scheme": "s", "label": "l", "score": "0.5"}]}), "partially_failed", "InvalidField", "enhancements[0].content.annotations[0].score"),
    ("source missing", ref(enhancements=[{"visibility": "public", "content": ABSTRACT}]), "partially_failed", "RequiredField", "enhancements[0].source"),
    ("source as a number", enh(ABSTRACT, source=5), "partially_failed", "InvalidField", "enhancements[0].source"),
    ("enhancement visibility missing", ref(enhancements=[{"source": "s", "content": ABSTRACT}]), "partially_failed", "RequiredField", "enhancements[0].visibility"),
    ("unknown enhancement key", enh(ABSTRACT, colour="red"), "partially_failed", "UnknownField", "enhancements[0].colour"),
    ("not a URL", enh({"enhancement_type": "location", "locations": [{"landing_page_url": "not a url"}]}), "partially_failed", "InvalidField", "enhancements[0].content.locations[0].landing_page_url"),
    ("empty raw data", enh({"enhancement_type": "raw", "source_export_date": "2023-12-02T16:30:00", "description": "d", "data": {}}), "partially_failed", "InvalidField", "enhancements[0].content.data"),
    ("one bad identifier of two", json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": "bad"}, {"identifier_type": "pm_id", "identifier": 5}]}), "partially_failed", "InvalidField", "identifiers[0].identifier"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "status", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in LINE_CASES],
)
def test_a_bad_line_fails_alone(settings, landing, line, status, code, field) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", "\n".join([GOOD, line, AFTER]) + "\n")
    import_directly(settings, landing, "rec")
    results = results_of(settings, "rec")
    assert [r["line_number"] for r in results] == [1, 2, 3]
    assert results[0]["status"] == results[2]["status"] == "completed"
    bad = results[1]
    assert bad["status"] == status
    assert (bad["reference_id"] is None) == (status == "failed")
    assert (bad["errors"][0]["code"], bad["errors"][0]["field"]) == (code, field)
    assert bad["failure_details"].startswith(f"Line 2: {code}")


def test_there_are_at_least_forty_cases() -> None:
    assert len(LINE_CASES) + len(FILE_CASES) >= 40


def _bytes_cases() -> dict[str, tuple[bytes, list[str]]]:
    """File contents → the statuses of their results, line by line."""
    good, after = GOOD.encode(), AFTER.encode()
    return {
        "crlf line ends": (good + b"\r\n" + after + b"\r\n", ["completed", "completed"]),
        "utf-8 byte order mark": (b"\xef\xbb\xbf" + good + b"\n" + after, ["completed", "completed"]),
        "invalid utf-8 in one line": (good + b"\n" + b'{"x": "\xc3\x28"}\n' + after, ["completed", "failed", "completed"]),
        "u2028 and u2029 in strings": (
            good + b"\n" + ref(enhancements=[{"source": "s\u2028t\u2029", "visibility": "public", "content": ABSTRACT}]).encode("utf-8") + b"\n",
            ["completed", "completed"],
        ),
        "escaped NUL in a string": (good + b"\n" + enh({**ABSTRACT, "abstract": "a\u0000b"}).encode() + b"\n", ["completed", "completed"]),
        "binary file named .jsonl": (bytes(range(256)) * 4, ["failed"] * 5),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_bytes_cases()))
def test_files_with_odd_bytes(settings, landing, case: str) -> None:
    content, statuses = _bytes_cases()[case]
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", content)
    import_directly(settings, landing, "rec")
    assert [r["status"] for r in results_of(settings, "rec")] == statuses


def test_a_20_mb_line_fails_alone_with_line_too_long(settings, landing) -> None:
    huge = ref(
        enhancements=[
            {
                "source": "s",
                "visibility": "public",
                "content": {**ABSTRACT, "abstract": "x" * 20_000_000},
            }
        ]
    )
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", "\n".join([GOOD, huge, AFTER]) + "\n")
    import_directly(settings, landing, "rec")
    results = results_of(settings, "rec")
    assert [r["status"] for r in results] == ["completed", "failed", "completed"]
    assert results[1]["errors"][0]["code"] == "LineTooLong"


def test_the_maximum_line_size_is_configurable(settings, landing) -> None:
    small = Settings.from_env(
        {"IMPORT_PIPELINE_HOME": str(settings.home), "IMPORT_PIPELINE_MAX_LINE_BYTES": "120"}
    )
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", "\n".join([GOOD, enh(ABSTRACT), AFTER]) + "\n")
    import_directly(small, landing, "rec")
    assert [r["status"] for r in results_of(small, "rec")] == ["completed", "failed", "completed"]


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\n" * 50_000_000, compresslevel=9)


FILE_CASES = {
    "empty file": (b"", "the batch is empty"),
    "only blank lines": (b"\n  \n\t\n\r\n", "the batch has only blank lines"),
    "truncated gzip": (gzip.compress(os.urandom(30_000).hex().encode())[:-40], "truncated gzip"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00garbage-garbage-garbage", "corrupt gzip"),
    "gzip bomb": (None, "gzip bomb"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_a_bad_file_fails_alone(settings, landing, case: str) -> None:
    content, reason = FILE_CASES[case]
    name = "bad.jsonl.gz" if "gzip" in case else "bad.jsonl"
    write_record(landing, "rec")
    write_batch(landing, "rec", name, _gzip_bomb() if content is None else content)
    write_batch(landing, "rec", "good.jsonl", GOOD + "\n")
    import_directly(settings, landing, "rec")
    with store.connect(settings.store, read_only=True) as conn:
        batches = {b["name"]: b for b in store.record_summary(conn, "rec")["batches"]}
    assert batches[name]["status"] == "failed"
    assert reason in batches[name]["failure_details"]
    assert batches["good.jsonl"]["status"] == "completed"


# -- records and folders: refused visibly, the sensor keeps ticking, good records go on ------------


def _tick(instance, settings, cursor):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"pipeline": ImportPipelineResource.from_settings(settings)},
    ) as context:
        return landing_zone_sensor(context)


RECORD_CASES = {
    "record.json missing": (None, "no record.json"),
    "record.json not JSON": ("{oops", "not valid JSON"),
    "record.json a list": ("[]", "record.json is invalid"),
    "searched_at in the future": (
        {"searched_at": "2999-01-01T00:00:00"},
        "must not be in the future",
    ),
    "expected_reference_count below -1": (
        {"expected_reference_count": -2},
        "expected_reference_count",
    ),
    "required field missing": ({"source_name": None}, "source_name"),
    "unknown collision strategy": ({"collision_strategy": "smash"}, "collision_strategy"),
}


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_a_bad_record_is_refused_and_others_go_on(settings, landing, case: str) -> None:
    record, reason = RECORD_CASES[case]
    folder = Path(landing.root) / "bad"
    folder.mkdir(parents=True)
    if isinstance(record, str):
        (folder / "record.json").write_text(record)
    elif isinstance(record, dict):
        write_record(landing, "bad", **record)
        if record.get("source_name", "") is None:
            data = json.loads((folder / "record.json").read_text())
            del data["source_name"]
            (folder / "record.json").write_text(json.dumps(data))
    write_batch(landing, "bad", "b.jsonl", GOOD + "\n")
    write_record(landing, "good")
    write_batch(landing, "good", "b.jsonl", GOOD + "\n")
    with dg.instance_for_test() as instance:
        first = _tick(instance, settings, None)
        for request in first.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        second = _tick(instance, settings, first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["good"]
        assert instance.get_dynamic_partitions("import_records") == ["good"]
        assert reason in first.skip_reason.skip_message


@pytest.mark.parametrize(
    "folder", ["with space", "a..b", "a|b", "k" * 65, "-starts-with-dash", "ünïcode"]
)
def test_bad_record_keys_never_become_partitions(settings, landing, folder: str) -> None:
    (Path(landing.root) / folder).mkdir(parents=True)
    (Path(landing.root) / folder / "record.json").write_text("{}")
    with dg.instance_for_test() as instance:
        result = _tick(instance, settings, None)
        assert not result.dynamic_partitions_requests
        assert "is not a valid record key" in result.skip_reason.skip_message


def test_links_outside_and_names_with_newlines_are_refused(settings, landing, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(GOOD + "\n")
    write_record(landing, "rec")
    os.symlink(outside / "secret.jsonl", Path(landing.root) / "rec" / "leak.jsonl")
    os.symlink(outside, Path(landing.root) / "linked")
    write_batch(landing, "rec", "bad\nname.jsonl", GOOD + "\n")
    write_batch(landing, "rec", "fine.jsonl", GOOD + "\n")
    with dg.instance_for_test() as instance:
        first = _tick(instance, settings, None)
        second = _tick(instance, settings, first.cursor)
    message = first.skip_reason.skip_message
    assert "leak.jsonl" in message and "outside the landing zone" in message
    assert "'linked'" in message or "linked" in message
    assert "control character" in message
    (request,) = second.run_requests
    assert request.tags["import_pipeline/batches"] == "fine.jsonl"
