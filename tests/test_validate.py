"""Validation: one test per error code, asserting code, field and line; and that the one-call
path never accepts what the model refuses."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import Field

from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.pipeline.frames import LOADED_LINES
from import_pipeline.pipeline.validate import line_model, validate_chunk
from import_pipeline.settings import Settings

from .conftest import explain_line, import_directly, results_of, write_batch, write_record

DOI_LINE = {"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/ok"}]}


def line(**fields: object) -> str:
    return json.dumps({**DOI_LINE, **fields})


def import_lines(
    settings: Settings, landing: LandingZone, lines: list[str], key: str = "rec"
) -> list[dict]:
    write_record(landing, key)
    write_batch(landing, key, "batch.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, key)
    return results_of(settings, key)


def only_error(result: dict) -> dict:
    return result["errors"][0]


@pytest.mark.parametrize(
    ("bad_line", "code", "field", "status"),
    [
        ('{"identifiers": [', "InvalidJsonInput", None, "failed"),
        ("[1, 2, 3]", "InvalidJsonInput", None, "failed"),
        ('"just a string"', "InvalidJsonInput", None, "failed"),
        (
            '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x",}]}',
            "InvalidJsonInput",
            None,
            "failed",
        ),
        (
            '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"}], "identifiers": []}',
            "InvalidJsonInput",
            None,
            "failed",
        ),
        ("{}", "RequiredField", "identifiers", "failed"),
        ('{"visibility": "public"}', "RequiredField", "identifiers", "failed"),
        ('{"identifiers": []}', "InvalidField", "identifiers", "failed"),
        ('{"identifiers": "10.1000/x"}', "InvalidField", "identifiers", "failed"),
        (line(visibility="secret"), "InvalidField", "visibility", "failed"),
        (line(enhancements={"source": "x"}), "InvalidField", "enhancements", "failed"),
        (line(title="not a field"), "UnknownField", "title", "failed"),
        (
            '{"identifiers": [{"identifier_type": "doi", "identifier": "nope"}]}',
            "InvalidField",
            "identifiers[0].identifier",
            "failed",
        ),
        (
            '{"identifiers": [{"identifier_type": "isbn", "identifier": "1"}]}',
            "InvalidField",
            "identifiers[0].identifier_type",
            "failed",
        ),
        (
            '{"identifiers": [{"identifier_type": "other", "identifier": "x"}]}',
            "RequiredField",
            "identifiers[0].other_identifier_name",
            "failed",
        ),
        (
            '{"identifiers": [{"identifier": "10.1000/x"}]}',
            "RequiredField",
            "identifiers[0].identifier_type",
            "failed",
        ),
        (
            # An unknown key is dropped alone: the identifier is kept (contract section 3).
            '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x", "extra": 1}]}',
            "UnknownField",
            "identifiers[0].extra",
            "partially_failed",
        ),
    ],
)
def test_line_level_errors(settings, landing, bad_line, code, field, status) -> None:
    results = import_lines(settings, landing, [line(), bad_line, line()])
    assert [r["line_number"] for r in results] == [1, 2, 3]
    bad = results[1]
    assert bad["status"] == status
    assert (bad["reference_id"] is None) is (status == "failed")
    assert only_error(bad)["code"] == code
    assert only_error(bad)["field"] == field
    assert bad["failure_details"].startswith("Line 2: ")
    assert results[0]["status"] == results[2]["status"] == "completed"


@pytest.mark.parametrize(
    ("enhancement", "field"),
    [
        ({"source": "s", "visibility": "public", "content": {"enhancement_type": "bibliographic", "publication_year": "2024"}},
         "enhancements[0].content.publication_year"),
        ({"source": "s", "visibility": "public", "content": {"enhancement_type": "abstract", "process": "other"}},
         "enhancements[0].content.abstract"),
        ({"source": "s", "visibility": "public", "content": {"enhancement_type": "telepathy"}},
         "enhancements[0].content.enhancement_type"),
        ({"visibility": "public", "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"}},
         "enhancements[0].source"),
        ({"source": "s", "visibility": "public", "content": {"enhancement_type": "bibliographic",
          "authorship": [{"display_name": "A", "position": "top"}]}},
         "enhancements[0].content.authorship[0].position"),
    ],
)  # fmt: skip
def test_a_bad_enhancement_is_dropped_and_the_line_partially_fails(
    settings, landing, enhancement, field
) -> None:
    good = {
        "source": "s",
        "visibility": "public",
        "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"},
    }
    results = import_lines(settings, landing, [line(enhancements=[enhancement, good])])
    (result,) = results
    assert result["status"] == "partially_failed" and result["reference_id"]
    assert [e["field"] for e in result["errors"]] == [field]


def test_a_bad_identifier_is_dropped_when_another_is_valid(settings, landing) -> None:
    bad_and_good = json.dumps(
        {"identifiers": [{"identifier_type": "pm_id", "identifier": "abc"},
                         {"identifier_type": "doi", "identifier": "10.1000/kept"}]}
    )  # fmt: skip
    (result,) = import_lines(settings, landing, [bad_and_good])
    assert result["status"] == "partially_failed"
    assert result["errors"][0]["code"] == "InvalidField"
    assert result["errors"][0]["field"] == "identifiers[0].identifier"


def test_invalid_utf8_is_invalid_input(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(
        landing, "rec", "b.jsonl", line().encode() + b"\n" + b'{"x": "\xff"}\n' + line().encode()
    )
    import_directly(settings, landing, "rec")
    results = results_of(settings, "rec")
    assert [r["status"] for r in results] == ["completed", "failed", "completed"]
    assert only_error(results[1])["code"] == "InvalidInput"


def test_line_too_long(settings: Settings, landing) -> None:
    settings = Settings.from_env(
        {"IMPORT_PIPELINE_HOME": str(settings.home), "IMPORT_PIPELINE_MAX_LINE_BYTES": "200"}
    )
    long_line = line(
        enhancements=[
            {
                "source": "s" * 300,
                "visibility": "public",
                "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"},
            }
        ]
    )
    results = import_lines(settings, landing, [line(), long_line])
    assert results[1]["status"] == "failed"
    assert only_error(results[1])["code"] == "LineTooLong"
    assert results[1]["line_number"] == 2


def test_identifier_collision_names_both_references(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(
        landing,
        "rec",
        "a.jsonl",
        json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/a"}]}) + "\n",
    )
    write_batch(
        landing,
        "rec",
        "b.jsonl",
        json.dumps({"identifiers": [{"identifier_type": "pm_id", "identifier": 42}]}) + "\n",
    )
    import_directly(settings, landing, "rec")
    write_batch(landing, "rec", "c.jsonl", json.dumps({"identifiers": [
        {"identifier_type": "doi", "identifier": "10.1000/A"}, {"identifier_type": "pm_id", "identifier": "42"}]}) + "\n")  # fmt: skip
    import_directly(settings, landing, "rec", ["c.jsonl"])
    results = {r["line_number"]: r for r in results_of(settings, "rec") if r["status"] == "failed"}
    error = only_error(results[1])
    assert error["code"] == "IdentifierCollision" and error["field"] == "identifiers"
    references = {r["reference_id"] for r in results_of(settings, "rec") if r["reference_id"]}
    assert len(references) == 2 and all(ref in error["message"] for ref in references)


def test_duplicate_reference_with_fail_strategy(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", line() + "\n")
    import_directly(settings, landing, "rec")
    write_batch(landing, "rec", "b.jsonl", line() + "\n")
    import_directly(settings, landing, "rec", ["b.jsonl"], strategy=CollisionStrategy.FAIL)
    failed = [r for r in results_of(settings, "rec") if r["status"] == "failed"]
    assert [only_error(r)["code"] for r in failed] == ["DuplicateReference"]


def test_real_files_take_the_one_call_path(destiny: Path) -> None:
    for path in destiny.glob("*.jsonl"):
        texts = path.read_text(encoding="utf-8").splitlines()
        chunk = pl.DataFrame(
            {
                "line_number": range(1, len(texts) + 1),
                "text": texts,
                "problem": [None] * len(texts),
            },
            schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
        )
        result = validate_chunk(chunk)
        assert result.slow_path_lines == 0, path.name
        assert result.errors.height == 0


SCREEN_CORPUS = [
    line(),
    line(visibility="hidden", id="7f0c", enhancements=[]),
    line(enhancements=[{"source": "s", "visibility": "public", "robot_version": "1", "content": {"enhancement_type": "location", "locations": [{"landing_page_url": "https://x.org/a"}]}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "location", "locations": [{"landing_page_url": "not a url"}]}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "bibliographic", "publication_date": "2024-02-30"}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "bibliographic", "publication_date": "2024-02-29", "cited_by_count": -1}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "annotation", "annotations": []}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "annotation", "annotations": [{"annotation_type": "score", "scheme": "a", "label": "b", "score": 1}]}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "raw", "source_export_date": "2023-12-02T16:30:00", "description": "d", "data": {"k": [1, {"x": None}]}}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "full_text"}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "full_text", "file_url": "https://x.org/f.pdf", "byte_size": 10}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "raw", "source_export_date": "2023-12-02T16:30:00", "description": "d", "data": {}}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "raw", "source_export_date": "2023-12-02T16:30:00", "description": "d", "data": 0.0}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "raw", "source_export_date": "2023-12-02T16:30:00", "description": "d", "data": "x"}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "annotation", "annotations": [{"annotation_type": "boolean", "scheme": "a/b", "label": "b", "value": True}]}}]),
    line(enhancements=[{"source": "s", "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "linked_data", "vocabulary_uri": "https://v.org/v1", "data": {"@context": "https://v.org/c"}}}]),
    line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "reference_association", "association_type": "cites", "associated_reference_ids": [{"identifier_type": "doi", "identifier": "10.1000/t"}]}}]),
    line(enhancements=[{"source": "", "visibility": "public", "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"}}]),
    line(enhancements=[{"source": "s", "visibility": 3, "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"}}]),
]  # fmt: skip


def test_a_line_is_clean_exactly_when_the_model_accepts_it() -> None:
    chunk = pl.DataFrame(
        {"line_number": range(1, len(SCREEN_CORPUS) + 1), "text": SCREEN_CORPUS, "problem": [None] * len(SCREEN_CORPUS)},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )  # fmt: skip
    result = validate_chunk(chunk)
    failing = set(result.errors["line_number"].to_list())
    for number, text in enumerate(SCREEN_CORPUS, start=1):
        try:
            ReferenceFileInput.model_validate_json(text, strict=True)
            pydantic_ok = True
        except ValueError:
            pydantic_ok = False
        assert (number not in failing) is pydantic_ok, text


def _corpus() -> list[str]:
    from .test_hostile_input import LINE_CASES

    real = [
        text
        for path in sorted(
            Path(__file__).resolve().parents[1].glob("import_pipeline/demo_data/destiny/*.jsonl")
        )
        for text in path.read_text(encoding="utf-8").splitlines()
    ]
    return [case[1] for case in LINE_CASES] + SCREEN_CORPUS + real


def _repeats_a_key(text: str) -> bool:
    """Whether the line, an identifier, an enhancement or its content repeats a key."""
    found = []

    def hook(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        found.append(len(keys) != len(set(keys)))
        return dict(pairs)

    def levels(document: dict) -> list:
        enhancements = document.get("enhancements") or []
        contents = [e.get("content") for e in enhancements if isinstance(e, dict)]
        return [document, *document.get("identifiers", []), *enhancements, *contents]

    objects: list = []

    def tracking(pairs: list) -> dict:
        obj = hook(pairs)
        objects.append((id(obj), found[-1]))
        return obj

    document = json.loads(text, object_pairs_hook=tracking)
    repeated = {key for key, flag in objects if flag}
    return any(id(o) in repeated for o in levels(document) if isinstance(o, dict))


def _pydantic_accepts(text: str) -> bool:
    """The oracle: the strict line model accepts the line and no key is repeated where the
    format has a schema (this project's one rule on top of the model)."""
    try:
        ReferenceFileInput.model_validate_json(text, strict=True)
    except ValueError:
        return False
    return not _repeats_a_key(text)


_ODD_VALUES: list[object] = [None, 0, -1, 1.5, 1e300, float("nan"), float("inf"), "", "x", " ", True, [], [1], ["x"], {}, {"k": 1}, [{}]]  # fmt: skip


def _mutations(document: object, path: tuple = ()) -> list[tuple[tuple, str, object]]:
    """Every (path, kind, value) mutation of a parsed line: other values, nulls, extra keys."""
    out: list[tuple[tuple, str, object]] = []
    if isinstance(document, dict):
        out += [(path, "add", ("unknown_key", value)) for value in (None, 1, {})]
        for key, value in document.items():
            out.append((path, "drop", key))
            out += [((*path, key), "set", odd) for odd in _ODD_VALUES]
            out += _mutations(value, (*path, key))
    elif isinstance(document, list):
        out += [(path, "append", odd) for odd in _ODD_VALUES[:1] + _ODD_VALUES[8:9]]
        for index, value in enumerate(document):
            out += [((*path, index), "set", odd) for odd in _ODD_VALUES]
            out += _mutations(value, (*path, index))
    return out


def _apply(document: object, mutation: tuple[tuple, str, object]) -> object:
    import copy

    path, kind, value = mutation
    mutated = copy.deepcopy(document)
    parent = mutated
    for step in path[:-1] if kind == "set" else path:
        parent = parent[step]  # type: ignore[index]
    if kind == "set":
        parent[path[-1]] = value  # type: ignore[index]
    elif kind == "add":
        parent[value[0]] = value[1]  # type: ignore[index]
    elif kind == "drop":
        del parent[value]  # type: ignore[arg-type]
    else:
        parent.append(value)  # type: ignore[union-attr]
    return mutated


def test_no_mutated_line_is_clean_unless_the_model_accepts_it() -> None:
    """Every value of real lines set to the wrong type, to null, dropped, or joined by an
    unknown or a repeated key: a line imports without error exactly when the strict model
    accepts it, and a part the model accepts is never dropped."""
    import random

    seeds = [json.loads(t) for t in _corpus() if t.startswith("{") and _pydantic_accepts(t)]
    candidates = [(document, mutation) for document in seeds for mutation in _mutations(document)]
    sample = random.Random(6).sample(candidates, min(len(candidates), 6000))
    texts = [json.dumps(_apply(document, mutation)) for document, mutation in sample] + [
        t.replace(": ", ":", 3) for t in _corpus()
    ]
    texts += [_repeat_first_key(t, level) for t in texts[:300] for level in range(4)]
    chunk = pl.DataFrame(
        {"line_number": range(1, len(texts) + 1), "text": texts, "problem": [None] * len(texts)},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )
    result = validate_chunk(chunk)
    with_errors = set(result.errors["line_number"].to_list())
    clean = [number not in with_errors for number in range(1, len(texts) + 1)]
    wrong = [t for t, ok in zip(texts, clean, strict=True) if ok != _pydantic_accepts(t)]
    assert wrong == []
    assert sum(clean) > 500 and len(texts) - sum(clean) > 2000  # it decides both ways
    # A line with a bad part keeps every part the model accepts on its own.
    kept = result.enhancements.group_by("line_number").len()
    assert kept.height > sum(clean)


def _repeat_first_key(text: str, level: int) -> str:
    """The text with a key repeated in the line (0), its first identifier (1), enhancement (2)
    or content (3): a key it already has written once more, first."""
    needle, repeated = [
        ("{", '"id": 0, "id": 0, '),
        ('{"identifier_type"', '"identifier_type": "doi", '),
        ('{"source"', '"source": "x", '),
        ('"content": {', '"enhancement_type": "x", '),
    ][level]
    at = text.find(needle)
    if at < 0:
        return text
    at = text.index("{", at) + 1
    return text[:at] + repeated + text[at:]


def test_duplicate_keys_fail_their_part() -> None:
    good = line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "abstract", "process": "other", "abstract": "a"}}])  # fmt: skip
    repeated = [
        good.replace('{"identifier_type"', '{"identifier_type": "doi", "identifier_type"', 1),
        good.replace('"process": "other"', '"process": "other", "process": "other"'),
        good.replace('{"source": "s"', '{"source": "s", "source": "s"'),
        good.replace("{", '{"visibility": "public", "visibility": "public", ', 1),
        # A quote spelled \u0022 before a colon, so that the keys' count alone cannot tell.
        good.replace('"abstract": "a"', '"abstract": "x\\u0022: y", "abstract": "a"'),
        # A repeated key in a part the model refuses anyway.
        good.replace('"process": "other"', '"process": 7, "abstract": "b"'),
        # White space before a key's colon (JSON allows it), once at the line, once in a part.
        good.replace(
            '{"identifiers"', '{"visibility" : "hidden", "visibility": "public", "identifiers"', 1
        ),
        good.replace('"source": "s"', '"source" : "s", "source": "t"'),
    ]
    assert explain_line(1, good) == []
    for text, field in zip(
        repeated,
        [
            "identifiers[0]",
            "enhancements[0]",
            "enhancements[0]",
            None,
            "enhancements[0]",
            "enhancements[0]",
            None,
            "enhancements[0]",
        ],
        strict=True,
    ):
        errors = explain_line(1, text)
        assert [(e["code"], e["field"]) for e in errors if e["code"] == "InvalidJsonInput"] == [
            ("InvalidJsonInput", field)
        ], text


def test_vectorised_verdicts_equal_pydantic_on_the_hostile_corpus() -> None:
    """Line by line: a line imports without error exactly when pydantic accepts it."""
    from .test_hostile_input import LINE_CASES

    corpus = _corpus()
    chunk = pl.DataFrame(
        {"line_number": range(1, len(corpus) + 1), "text": corpus, "problem": [None] * len(corpus)},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )
    result = validate_chunk(chunk)
    with_errors = set(result.errors["line_number"].to_list())
    ours_only = {case[1] for case in LINE_CASES if case[0] in ("duplicate top-level key",)}
    for number, text in enumerate(corpus, start=1):
        try:
            ReferenceFileInput.model_validate_json(text, strict=True)
            pydantic_ok = text not in ours_only  # stricter on purpose: duplicate keys refused
        except ValueError:
            pydantic_ok = False
        assert (number not in with_errors) is pydantic_ok, text[:200]


def test_number_literals_are_decided_by_the_model() -> None:
    """nan, inf, Infinity... in any case: in free-form payloads and in typed fields alike, a
    line is clean exactly when the model accepts it."""
    annotated = line(enhancements=[{"source": "s", "visibility": "public", "content": {"enhancement_type": "annotation", "annotations": [{"annotation_type": "score", "scheme": "a", "label": "b", "score": 0.5, "data": {"x": 1}}]}}])  # fmt: skip
    texts = [line(), annotated]
    for literal in ("nan", "inf", "-inf", "Inf", "NAN", "infinity", "NaN", "Infinity", "-Infinity"):
        texts.append(line().replace("{", '{"id": ' + literal + ", ", 1))
        texts.append(annotated.replace('"x": 1', '"x": ' + literal))
        texts.append(annotated.replace('"score": 0.5', '"score": ' + literal))
    for text in texts:
        assert (explain_line(1, text) == []) is _pydantic_accepts(text), text
    assert explain_line(1, texts[0]) == explain_line(1, texts[1]) == []


def test_odd_values_where_a_union_tag_is_looked_for_fail_only_their_part() -> None:
    """A list or an object under a key that is a union's tag elsewhere is an unknown key."""
    identifier = '{"identifier_type": "doi", "identifier": "10.1000/x", "annotation_type": {}}'
    errors = explain_line(1, '{"identifiers": [' + identifier + "]}")
    assert [(e["code"], e["field"]) for e in errors] == [
        ("UnknownField", "identifiers[0].annotation_type")
    ]
    enhancement = {"source": "s", "visibility": "public", "enhancement_type": [], "content": {"enhancement_type": "abstract", "process": 3, "abstract": "a"}}  # fmt: skip
    errors = explain_line(1, line(enhancements=[enhancement]))
    assert {e["field"] for e in errors} == {
        "enhancements[0].content.process",
        "enhancements[0].enhancement_type",
    }


def test_an_unknown_key_in_an_association_target_is_dropped_alone() -> None:
    target = {"identifier_type": "doi", "identifier": "https://doi.org/10.1234/X", "foo": 1}
    enhancement = {"source": "s", "visibility": "public", "content": {"enhancement_type": "reference_association", "association_type": "cites", "associated_reference_ids": [target]}}  # fmt: skip
    text = line(enhancements=[enhancement])
    chunk = pl.DataFrame(
        {"line_number": [1], "text": [text], "problem": [None]},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )
    result = validate_chunk(chunk)
    assert [(e["code"], e["field"]) for e in result.errors.to_dicts()] == [
        ("UnknownField", "enhancements[0].content.associated_reference_ids[0].foo")
    ]
    assert result.associations.select("target_type", "target").rows() == [("doi", "10.1234/x")]
    stored = json.loads(result.enhancements["content"].item())
    assert stored["associated_reference_ids"] == [
        {"identifier_type": "doi", "identifier": "10.1234/x"}
    ]


def test_a_field_added_to_a_copy_of_the_line_model_is_enforced_by_the_model_alone() -> None:
    """The top-level rules come from the model: a new field needs no validator code."""

    class WithYear(ReferenceFileInput):
        year: int | None = Field(default=None, ge=1000)

    identifiers = '"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"}]'
    texts = [
        "{" + identifiers + ', "year": 2020}',
        "{" + identifiers + ', "year": "2020"}',  # strict: a string is not a year
        "{" + identifiers + ', "year": 12}',
        "{" + identifiers + "}",
    ]
    chunk = pl.DataFrame(
        {"line_number": [1, 2, 3, 4], "text": texts, "problem": [None] * 4},
        schema=LOADED_LINES,
    )
    with_year = validate_chunk(chunk, line_model(WithYear))
    refused = {row["line_number"]: row for row in with_year.errors.to_dicts()}
    assert sorted(refused) == [2, 3]
    assert {row["code"] for row in refused.values()} == {"InvalidField"}
    assert {row["field"] for row in refused.values()} == {"year"}
    assert all(row["fatal"] for row in refused.values())
    assert sorted(with_year.identifiers["line_number"].to_list()) == [1, 4]
    # The project's own model has no such field: the same lines are refused for it.
    plain = validate_chunk(chunk).errors.to_dicts()
    assert {(row["line_number"], row["code"], row["field"]) for row in plain} == {
        (1, "UnknownField", "year"),
        (2, "UnknownField", "year"),
        (3, "UnknownField", "year"),
    }


def test_a_line_with_no_identifier_fails_even_where_a_derived_model_allows_none() -> None:
    """Every line needs an identifier to become a reference, whatever the model allows."""

    class IdentifiersOptional(ReferenceFileInput):
        identifiers: list = Field(default_factory=list)  # type: ignore[assignment]

    texts = [
        '{"identifiers": []}',
        '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/x"}]}',
    ]
    chunk = pl.DataFrame(
        {"line_number": [1, 2], "text": texts, "problem": [None] * 2}, schema=LOADED_LINES
    )
    result = validate_chunk(chunk, line_model(IdentifiersOptional))
    assert [
        (e["line_number"], e["code"], e["field"], e["fatal"]) for e in result.errors.to_dicts()
    ] == [(1, "InvalidField", "identifiers", True)]
    assert result.identifiers["line_number"].to_list() == [2]
