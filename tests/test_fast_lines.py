"""The fast way of validation (issue 32): its Structs are the line model's, and for any chunk
the staged frames are exactly those of the pydantic way alone (`validate_chunk(fast=False)`):
on lines generated from the line's JSON Schema, on mutations of the real lines, on the two
differences a prototype met (a float at or above 1e16, an integer pm_id in an association),
and on each form of value it keeps as sent, checked against pydantic itself."""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)

from import_pipeline.domain.lines import ReferenceFileInput, batch_line_json_schema
from import_pipeline.landing.demo import DESTINY
from import_pipeline.pipeline import fast_schema, fast_values
from import_pipeline.pipeline.fast_lines import FastLines, derive
from import_pipeline.pipeline.fast_schema import Derived
from import_pipeline.pipeline.frames import LOADED_LINES, VALIDATED_PARTS
from import_pipeline.pipeline.validate import (
    MAX_NESTING_DEPTH,
    LineModel,
    ValidatedChunk,
    line_model,
    validate_chunk,
)

REAL_LINES = [
    text
    for path in sorted(DESTINY.glob("*.jsonl"))
    for text in path.read_text(encoding="utf-8").splitlines()
    if text.strip()
]
LINE_SCHEMA = batch_line_json_schema()
SETTINGS = hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _chunk(texts: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"line_number": range(1, len(texts) + 1), "text": texts, "problem": [None] * len(texts)},
        schema=LOADED_LINES,
    )


def both_ways(texts: Sequence[str], model: LineModel | None = None) -> ValidatedChunk:
    """The chunk validated the fast way and the pydantic way alone; every staged frame must be
    the same, value for value and row for row. Returns the fast way's."""
    chunk = _chunk(texts)
    fast = validate_chunk(chunk, model, fast=True)
    alone = validate_chunk(chunk, model, fast=False)
    assert alone.fast_path_lines == 0
    for name in VALIDATED_PARTS:
        assert_frame_equal(getattr(fast, name), getattr(alone, name), check_exact=True)
        assert getattr(fast, name).equals(getattr(alone, name)), name
    return fast


def _line(*enhancements: dict[str, Any], **fields: Any) -> str:
    identifiers = [{"identifier_type": "doi", "identifier": "10.1000/fast"}]
    return json.dumps({"identifiers": identifiers, **fields, "enhancements": list(enhancements)})


def _enhancement(content: dict[str, Any]) -> dict[str, Any]:
    return {"source": "test", "visibility": "public", "content": content}


# -- the Structs are the model's ----------------------------------------------------------------


def _normalised(node: dict[str, Any], defs: dict[str, Any], prefix: str) -> Any:
    """A JSON Schema node in terms both schemas share: kinds, enum values, bounds, references
    to models (by name). What the fast way checks by other means is left out: `format` and
    URL lengths (`fast_values`), `pattern` (pydantic itself)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        return _normalised(target, defs, prefix) if "enum" in target else name.removeprefix(prefix)
    for key in ("anyOf", "oneOf"):
        if key in node:
            members: set[Any] = set()
            for member in node[key]:
                found = _normalised(member, defs, prefix)
                members |= found[1] if isinstance(found, tuple) and found[0] == "union" else {found}
            return ("union", frozenset(members))
    if "const" in node or "enum" in node:
        return ("enum", frozenset(node["enum"] if "enum" in node else [node["const"]]))
    kind = node.get("type", "any")
    if kind == "array":
        return ("array", _normalised(node["items"], defs, prefix), node.get("minItems"))
    if kind == "string":
        url = node.get("format") == "uri"
        lengths = (None, None) if url else (node.get("minLength"), node.get("maxLength"))
        return ("string", *lengths)
    return (kind, node.get("minimum"))


def schema_differences(model: type[BaseModel], derived: Derived) -> list[str]:
    """Where the Structs differ from the models reachable from `model`: models, fields and
    their order, types, optionality, defaults, tags."""
    pydantic_schema = model.model_json_schema()
    pydantic_defs = {**pydantic_schema.pop("$defs", {}), model.__name__: pydantic_schema}
    struct_defs = msgspec.json.schema(derived.line)["$defs"]
    models = {n: d for n, d in pydantic_defs.items() if d.get("type") == "object"}
    differences = []
    if {f"Fast{name}" for name in models} != set(struct_defs):
        differences.append(f"models {sorted(models)} != {sorted(struct_defs)}")
    structs = {s.__name__: s for s in derived.defaults}
    for name, node in models.items():
        struct = struct_defs.get(f"Fast{name}", {"properties": {}, "required": []})
        if list(node["properties"]) != list(struct["properties"]):
            differences.append(f"{name}: fields {list(node['properties'])}")
        if set(node.get("required", [])) != set(struct["required"]):
            differences.append(f"{name}: required {node.get('required')} != {struct['required']}")
        fields = _model(model, name).model_fields
        for field, prop in node["properties"].items():
            theirs = struct["properties"].get(field, {})
            before = any(type(m).__name__ == "BeforeValidator" for m in fields[field].metadata)
            expected = ("any", None) if before else _normalised(prop, pydantic_defs, "")
            if _normalised(theirs, struct_defs, "Fast") != expected:
                differences.append(f"{name}.{field}: {prop} != {theirs}")
        for field, default in derived.defaults.get(structs.get(f"Fast{name}"), {}).items():
            if default() != fields[field].get_default(call_default_factory=True):
                differences.append(f"{name}.{field}: default {default()}")
    return differences


def _model(root: type[BaseModel], name: str) -> type[BaseModel]:
    """The model called `name` reachable from `root`."""
    seen, todo = set(), [root]
    while todo:
        model = todo.pop()
        if model.__name__ == name:
            return model
        seen.add(model)
        for info in model.model_fields.values():
            todo += [m for m in _models_in(info.annotation) if m not in seen]
    raise KeyError(name)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def test_the_structs_are_derived_from_every_model_of_the_line() -> None:
    derived = Derived(ReferenceFileInput)
    assert schema_differences(ReferenceFileInput, derived) == []
    assert len(derived.defaults) == 22  # every model reachable from the line, tagged or not
    assert all(s.__struct_config__.forbid_unknown_fields for s in derived.defaults)
    assert sorted(derived.tags.values()) == sorted(
        ["doi", "pm_id", "open_alex", "eric", "pro_quest", "other", "boolean", "score"]
        + ["bibliographic", "abstract", "annotation", "location", "reference_association"]
        + ["linked_data", "full_text", "raw"]
    )


class WithYear(ReferenceFileInput):
    year: int | None = Field(default=None, ge=1000)


def test_a_field_added_to_the_model_is_in_the_structs_and_the_comparison_sees_any_gap() -> None:
    """Derived again from a model with one more field, the Structs have it; Structs of the
    model without it differ from the model with it (the comparison above would fail)."""
    assert schema_differences(WithYear, Derived(WithYear)) == []
    assert schema_differences(WithYear, Derived(ReferenceFileInput)) != []
    texts = [_line(year=2020), _line(year=12), _line(year="2020"), _line(), _line(year=None)]
    fast = both_ways(texts, line_model(WithYear))
    assert fast.fast_path_lines == 3  # the refused years go the pydantic way, for its errors


class _Base(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", use_enum_values=True)
    identifiers: list[dict[str, Any]] = Field(min_length=1)


class _Aliased(_Base):
    title: str | None = Field(default=None, alias="Title")


class _Serialized(_Base):
    title: str = ""

    @field_serializer("title")
    def _upper(self, value: str) -> str:
        return value.upper()


class _ModelChecked(_Base):
    @model_validator(mode="after")
    def _fine(self) -> _ModelChecked:
        return self


class _Lax(_Base):
    model_config = ConfigDict(strict=False, extra="forbid")


class _Stripped(_Base):
    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


class _Wrapped(_Base):
    title: str = ""

    @field_validator("title", mode="wrap")
    @classmethod
    def _wrapped(cls, value: Any, handler: Any) -> Any:
        return handler(value)


class _A(_Base):
    a: int = 0


class _Untagged(_Base):
    part: _A | _Base | None = None


class _Bounded(_Base):
    when: date = Field(default=date(2000, 1, 1), le=date(2030, 1, 1))


@pytest.mark.parametrize(
    "model", [_Aliased, _Serialized, _ModelChecked, _Lax, _Stripped, _Wrapped, _Untagged, _Bounded]
)
def test_a_model_with_what_the_derivation_does_not_translate_has_no_fast_way(model) -> None:
    with pytest.raises(fast_schema.Unsupported):
        Derived(model)
    assert derive(model) is None


def test_a_union_chosen_by_a_function_must_be_chosen_by_json_kind() -> None:
    from typing import Annotated

    from pydantic import Discriminator, Tag

    def by_content(value: Any) -> str:  # not by kind: a string may be either
        return "x" if isinstance(value, str) and value.startswith("x") else "other"

    class Chosen(_Base):
        part: Annotated[
            Annotated[int, Tag("x")] | Annotated[str, Tag("other")], Discriminator(by_content)
        ] = 0

    assert derive(Chosen) is None
    assert isinstance(derive(ReferenceFileInput), FastLines)


_ABSTRACT = _enhancement({"enhancement_type": "abstract", "process": "other", "abstract": "a"})
_TAKEN = {
    "plain": _line(_ABSTRACT),
    "a key spelled with escapes": _line(_ABSTRACT).replace('"abstract":', '"\\u0061bstract":'),
    "an escaped pair of surrogates": _line(_ABSTRACT).replace('"a"}', '"\\ud83d\\ude00"}'),
    "an object where anything goes": _line(_ABSTRACT, id={"k": [1, {"j": None}]}),
    "a pm_id as a JSON integer": json.dumps({"identifiers": [{"identifier_type": "pm_id", "identifier": 12}]}),
    "an other identifier, padded": json.dumps({"identifiers": [{"identifier_type": "other", "identifier": " x ", "other_identifier_name": " isbn "}]}),
}  # fmt: skip
_REFUSED = {
    "a key repeated deep in a payload": _line(_ABSTRACT, id={"k": 1}).replace('{"k": 1}', '{"k": 1, "k": 2}'),
    "a key repeated in a content": _line(_ABSTRACT).replace('"process": "other"', '"process": "other", "process": "other"'),
    "white space before a colon": _line(_ABSTRACT).replace('"source":', '"source" :'),
    'a string holding ":': _line(_ABSTRACT).replace('"a"}', '"x\\": y"}'),
    "an unknown key": _line(_ABSTRACT).replace('"process"', '"language": "en", "process"'),
    "a lone surrogate": _line(_ABSTRACT).replace('"a"}', '"\\ud800"}'),
    "NaN": _line(_ABSTRACT, id=0).replace('"id": 0', '"id": NaN'),
    "trailing text": _line(_ABSTRACT) + " x",
    "a byte order mark": "\ufeff" + _line(_ABSTRACT),
    "nested too deep": _line(_ABSTRACT, id=json.loads("[" * 70 + "]" * 70)),
    "a date pydantic writes otherwise": _line(_enhancement({"enhancement_type": "raw", "source_export_date": "2024-01-01 00:00:00", "description": "d", "data": 1})),
    "a URL pydantic writes otherwise": _line(_enhancement({"enhancement_type": "location", "locations": [{"landing_page_url": "https://x.org"}]})),
    "no identifier": json.dumps({"identifiers": []}),
    "not an object": "[1]",
}  # fmt: skip


def test_what_the_fast_way_takes_and_what_it_leaves_to_pydantic() -> None:
    taken = both_ways(list(_TAKEN.values()))
    assert taken.fast_path_lines == len(_TAKEN) and taken.errors.is_empty()
    for name, text in _REFUSED.items():
        assert both_ways([text]).fast_path_lines == 0, name


# -- depth: a line the fast way takes is never nested too deep ----------------------------------


def _nested(levels: int) -> Any:
    """Plain JSON of `levels` containers, one inside the other, the outermost an object."""
    value: Any = 1
    for level in range(levels):
        value = {"n": value} if (levels - level) % 2 else [value]
    return value


def _line_depth(text: str) -> int:
    depth = deepest = 0
    for char in json.dumps(json.loads(text)).replace('"n"', ""):  # no brackets in strings
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    return deepest


def _free_json_depth(node: dict[str, Any], defs: dict[str, Any], seen: frozenset[str]) -> int:
    """The containers of the line model's own (not free JSON) above its deepest free value."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        assert name not in seen, f"{name} is recursive: the fast way's depth rule needs a bound"
        return _free_json_depth(defs[name], defs, seen | {name})
    below = [
        _free_json_depth(child, defs, seen)
        for key in ("anyOf", "oneOf", "allOf")
        for child in node.get(key, [])
    ]
    if "items" in node:
        below.append(1 + _free_json_depth(node["items"], defs, seen))
    if node.get("properties"):
        below += [1 + _free_json_depth(p, defs, seen) for p in node["properties"].values()]
    return max(below, default=0)


def test_the_models_own_nesting_leaves_room_for_the_free_json_the_fast_way_takes() -> None:
    """The fast way takes free JSON (an `Any` field) nested up to `DEEPEST_FREE_JSON` only,
    and the texts it takes are not searched for depth: with the model's own containers above
    it, such a line must never pass `MAX_NESTING_DEPTH`."""
    schema = ReferenceFileInput.model_json_schema()
    own = _free_json_depth(schema, schema.get("$defs", {}), frozenset())
    assert 4 <= own and own + fast_values.DEEPEST_FREE_JSON <= MAX_NESTING_DEPTH


@pytest.mark.parametrize("content", ["annotation", "raw"])
def test_free_json_nested_deep_gets_the_same_verdict_both_ways(content) -> None:
    """Free JSON past the fast way's bound goes the pydantic way, which refuses a line
    nested more than 64 levels and takes one at 64."""

    def line(levels: int) -> str:
        if content == "raw":
            data = {"enhancement_type": "raw", "source_export_date": "2024-01-01T00:00:00",
                    "description": "d", "data": _nested(levels)}  # fmt: skip
        else:
            data = {"enhancement_type": "annotation", "annotations": [{"annotation_type": "boolean", "scheme": "s", "label": "l", "value": True, "data": _nested(levels)}]}  # fmt: skip
        return _line(_enhancement(data))

    shallow = line(fast_values.DEEPEST_FREE_JSON - 1)
    at_limit = next(line(n) for n in range(30, 80) if _line_depth(line(n)) == MAX_NESTING_DEPTH)
    too_deep = next(line(n) for n in range(30, 80) if _line_depth(line(n)) == MAX_NESTING_DEPTH + 1)
    fast = both_ways([shallow, at_limit, too_deep])
    assert fast.fast_path_lines == 1  # the shallow one
    assert fast.lines["line_number"].to_list() == [1, 2, 3]
    assert fast.enhancements["line_number"].to_list() == [1, 2]
    assert fast.errors.select("line_number", "code").rows() == [(3, "InvalidJsonInput")]
    assert "nested more than 64 levels" in fast.errors["message"].item()


def test_rows_stay_in_line_order_when_the_two_ways_interleave() -> None:
    """The fast way's lines are added before the others': each frame still comes out in line
    order, a line's own rows in theirs."""
    taken = list(_TAKEN.values())
    refused = list(_REFUSED.values())
    texts = [text for pair in zip(refused, taken * len(refused), strict=False) for text in pair]
    fast = both_ways(texts)
    assert 0 < fast.fast_path_lines < len(texts)
    for name in ("lines", "identifiers", "enhancements", "errors"):
        numbers = getattr(fast, name)["line_number"].to_list()
        assert numbers == sorted(numbers), name
    positions = fast.identifiers.group_by("line_number", maintain_order=True).agg("position")
    assert all(p == sorted(p) for p in positions["position"].to_list())


# -- the two differences a prototype met -------------------------------------------------------

_LARGE_FLOATS = [
    _enhancement({"enhancement_type": "annotation", "annotations": [{"annotation_type": "score", "scheme": "s", "label": "l", "score": 1e16}]}),
    _enhancement({"enhancement_type": "annotation", "annotations": [{"annotation_type": "boolean", "scheme": "s", "label": "l", "value": True, "data": {"n": [1.5e17]}}]}),
    _enhancement({"enhancement_type": "raw", "source_export_date": "2024-01-01T00:00:00", "description": "d", "data": {"x": -2e300}}),
    _enhancement({"enhancement_type": "location", "locations": [{"extra": {"size": 1e21}}]}),
]  # fmt: skip


def test_a_float_at_or_above_1e16_goes_the_pydantic_way() -> None:
    """msgspec writes 1e16 as `1e16`, pydantic as `1e+16`: a content holding one is stored as
    pydantic writes it, which only the pydantic way does."""
    texts = [_line(enhancement) for enhancement in _LARGE_FLOATS]
    texts.append(_line(_enhancement({**_LARGE_FLOATS[0]["content"], "annotations": [{**_LARGE_FLOATS[0]["content"]["annotations"][0], "score": 9999999999999998.0}]})))  # fmt: skip
    fast = both_ways(texts)
    assert fast.fast_path_lines == 1  # the float just below 1e16 only
    contents = fast.enhancements["content"].to_list()
    assert ["1e+16" in contents[0], "1.5e+17" in contents[1], "-2e+300" in contents[2]] == [
        True
    ] * 3
    assert '"score":9999999999999998.0' in contents[4]


def test_an_integer_pm_id_in_an_association_is_stored_as_its_normalised_string() -> None:
    target = {"identifier_type": "pm_id", "identifier": 5}
    content = {"enhancement_type": "reference_association", "association_type": "cites"}
    texts = [
        _line(_enhancement({**content, "associated_reference_ids": [target]})),
        _line(_enhancement({**content, "associated_reference_ids": [{**target, "identifier": "PMID: 0012"}, "AB0C6A1E-0000-4000-8000-000000000001"]})),
    ]  # fmt: skip
    fast = both_ways(texts)
    assert fast.fast_path_lines == 2
    stored = [json.loads(c)["associated_reference_ids"] for c in fast.enhancements["content"]]
    assert stored[0] == [{"identifier_type": "pm_id", "identifier": "5"}]
    assert stored[1][1] == "ab0c6a1e-0000-4000-8000-000000000001"
    assert fast.associations.select("target_type", "target").rows() == [
        ("pm_id", "5"), ("pm_id", "12"), ("reference_id", "ab0c6a1e-0000-4000-8000-000000000001")
    ]  # fmt: skip


def test_the_comparison_catches_both_differences_in_a_fast_way_without_its_guards(
    monkeypatch,
) -> None:
    """Mutants: without its float bound, or storing an identifier as sent, the fast way's
    frames differ from pydantic's, and `both_ways` fails."""
    large = [_line(enhancement) for enhancement in _LARGE_FLOATS]
    monkeypatch.setattr(fast_values, "LARGEST_FLOAT", float("inf"))
    with pytest.raises(AssertionError):
        both_ways(
            large, LineModel(ReferenceFileInput, line_model().lenient, derive(ReferenceFileInput))
        )
    monkeypatch.undo()
    real = fast_schema._validators

    def as_sent(model: type[BaseModel], name: str, info: Any) -> Any:
        return (None, None) if name == "identifier" else real(model, name, info)

    monkeypatch.setattr(fast_schema, "_validators", as_sent)
    unguarded = LineModel(ReferenceFileInput, line_model().lenient, derive(ReferenceFileInput))
    target = {"identifier_type": "pm_id", "identifier": 5}
    content = {"enhancement_type": "reference_association", "association_type": "cites"}
    # It stores 5, not "5" (and its association's target is no string: polars refuses it).
    with pytest.raises((AssertionError, TypeError)):
        both_ways(
            [_line(_enhancement({**content, "associated_reference_ids": [target]}))], unguarded
        )


# -- values kept as sent: each form the fast way keeps is pydantic's own -------------------------

_STRICT = ConfigDict(strict=True)


def _pydantic_dump(annotation: Any, value: Any) -> bytes | None:
    """pydantic's dump of a JSON value validated as `annotation`, or None if it refuses it."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=_STRICT)
    try:
        return adapter.dump_json(adapter.validate_json(json.dumps(value)))
    except ValueError:
        return None


def _kept(check: Callable[[str], str], value: str) -> str | None:
    try:
        return check(value)
    except (fast_values.Refused, ValueError):
        return None


_digits = st.text("0123456789", min_size=1, max_size=5)
_dates = st.one_of(
    st.dates().map(date.isoformat),
    st.tuples(_digits, _digits, _digits).map("-".join),
    st.sampled_from(["2024-02-30", "0000-01-01", "2024-1-01", "20240101", "2024-01-01T00:00:00"]),
)
_times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="milliseconds")),
    st.tuples(st.dates(), _digits, _digits, _digits, st.sampled_from(["", ".5", ".000000", ".123456", "Z", "+00:00", "-00:00", "+05:30", "+24:00", "z"])).map(
        lambda t: f"{t[0].isoformat()}T{t[1]}:{t[2]}:{t[3]}{t[4]}"
    ),
)  # fmt: skip
_GOOD_HOSTS = ["x.org", "doi.org", "a.b.c", "x_y.org", "ab--c.org", "-x.org", "a" * 70 + ".org"]
_BAD_HOSTS = ["X.org", "1.2.3", "x.123", "xn--abc.org", "xn--bcher-kva.example", "a..b", "x.org.", "0x7f.org", "[::1]", "10.0.0.1", "é.org"]  # fmt: skip
_GOOD_PARTS = ["a", "b/", "/", "x=1", "-", "_", "~", "!", "$", "&", "(", ")", "*", "+", ",", ";", "=", ":", "@", "%41", "%7e", "'", "?", "#", "//", ".x", "a."]  # fmt: skip
_BAD_PARTS = ["./", "../", ".", "/.", "%2e", "%2E/", "%4", "%", " ", "ä", "|", "^", "[", "]", "`", "{", "}", "\\", '"', "<", ">", "\t"]  # fmt: skip
_urls = st.tuples(
    st.sampled_from(["https"] * 4 + ["http"] * 2 + ["HTTPS", "ftp", "mailto"]),
    st.sampled_from(["", "", "", "", "user@"]),
    st.sampled_from(_GOOD_HOSTS * 3 + _BAD_HOSTS),
    st.sampled_from([""] * 8 + [":443", ":80", ":8080", ":"]),
    st.sampled_from(["/"] * 6 + ["", "?", "#"]),
    st.lists(st.sampled_from(_GOOD_PARTS * 4 + _BAD_PARTS), max_size=8).map("".join),
).map(lambda parts: f"{parts[0]}://{''.join(parts[1:])}")
_uuids = st.uuids().flatmap(
    lambda u: st.sampled_from([str(u), str(u).upper(), u.hex, "{" + str(u) + "}", "urn:uuid:" + str(u), str(u)[:-1] + "g"])
)  # fmt: skip


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _dates.map(lambda v: (date, fast_values.date_as_sent, v)),
        _times.map(lambda v: (datetime, fast_values.datetime_as_sent, v)),
        _urls.map(lambda v: (HttpUrl, fast_values.as_sent_checks()[HttpUrl], v)),
        _uuids.map(lambda v: (uuid.UUID, fast_values.uuid_lowered, v)),
    )
)
def test_a_value_kept_is_one_pydantic_accepts_and_writes_as_kept(case) -> None:
    annotation, check, value = case
    kept = _kept(check, value)
    if kept is not None:
        assert _pydantic_dump(annotation, value) == json.dumps(kept).encode(), value


def test_the_forms_kept_include_those_of_real_files() -> None:
    url = fast_values.as_sent_checks()[HttpUrl]
    kept = [
        fast_values.date_as_sent("2025-06-26"), fast_values.datetime_as_sent("2023-12-02T16:30:00Z"),
        url("https://www.mdpi.com/2079-9721/11/4/157/pdf?version=1698904287"),
        url("https://doi.org/10.31814/stce.huce2025-19(2)-11"), url("https://x.org/a#top"),
        fast_values.uuid_lowered("AB0C6A1E-0000-4000-8000-000000000001"),
    ]  # fmt: skip
    assert len(kept) == 6
    for refused in [
        "https://x.org",
        "https://x.org:443/a",
        "https://X.org/",
        "https://x.org/a/../b",
    ]:
        assert _kept(url, refused) is None


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.text()))
def test_a_number_or_string_kept_is_written_alike(value) -> None:
    if type(value) is float and _kept(fast_values.small_float, value) is None:
        assert abs(value) >= 1e16
        return
    assert msgspec.json.encode(value) == TypeAdapter(Any).dump_json(value)


# -- lines generated from the line's JSON Schema, and mutations of the real lines ----------------


_PERCENT = st.integers(0, 99)


@functools.cache
def _index(size: int) -> st.SearchStrategy[int]:
    return st.integers(0, size - 1)


class Chooser:
    """The choices a generator makes, from a seeded `random.Random` or from hypothesis (which
    then shrinks a failing batch)."""

    def __init__(self, pick: Callable[[Sequence[Any]], Any], chance: Callable[[float], bool]):
        self.pick, self.chance = pick, chance

    @classmethod
    def seeded(cls, seed: int) -> Chooser:
        rng = random.Random(seed)
        return cls(lambda options: options[rng.randrange(len(options))], lambda p: rng.random() < p)

    @classmethod
    def drawn(cls, data: Any) -> Chooser:
        return cls(
            lambda options: options[data.draw(_index(len(options)))],
            lambda p: data.draw(_PERCENT) < p * 100,
        )


_TEXTS = ["", " ", "a", "Zeynep Sungur", "é", "😀", "\u2028", "\x00", "\x1f", "\x7f", '"', "\\", '":', 'a":b', "/", "a/b", "\u00a0x\u00a0", "\ufeff", "ß" * 40, "\u0130", "\ud7ff"]  # fmt: skip
_FLOATS = [0.0, -0.0, 0.5, 1.0, 1e-7, 2.5e-10, 123.456, 1e15, 9999999999999998.0, 1e16, 1.5e16, 1e300, -1e22]  # fmt: skip
_INTEGERS = [0, 1, -1, 7, 2025, 2**53 + 1, 2**63, 2**64 + 1, 10**30]
#: Identifiers in forms the model normalises, and in forms it refuses.
_IDENTIFIERS: dict[str, list[Any]] = {
    "doi": ["10.1000/abc", "10.1000/ABC", "https://doi.org/10.1000/X", "doi:10.1000/x", " 10.1000/x ", "10.1000/x\u00a0", "10.1000/a\u2010b", "DOI: 10.1000/Q", "10.1000/e\u0301"],
    "pm_id": [5, 10**20, "5", "PMID:5", "pmid: 7", "https://pubmed.ncbi.nlm.nih.gov/5/", "005"],
    "open_alex": ["W123", "w123", "https://openalex.org/W123", "works/W1"],
    "eric": ["ED123", "ej5", "https://eric.ed.gov/?id=ED1"],
    "pro_quest": ["123", "https://www.proquest.com/docview/123", "docview/9"],
    "other": ["anything", " padded ", "isbn:1", "\u00e9"],
}  # fmt: skip
_REFUSED_IDENTIFIERS: list[Any] = ["10.12/x", "10.1000/ a", 0, -1, "abc", 5.0, True, "X1", "EX1", "", "\u00a0"]  # fmt: skip
_NAMES = ["isbn", " isbn ", "isbn\u3000", "entry key"] * 3 + ["", " ", "\u3000"]
_ODD: list[Any] = [None, True, 0, 1.5, 1e16, "", "x", [], [1], {}, {"k": 1}, {"k": {"k": 2.0}}]


class LineMaker:
    """Batch lines drawn from the JSON Schema of the line, values mostly valid (to exercise
    the fast way) and sometimes not (to exercise the pydantic way), written in the styles of
    real files; and real lines mutated."""

    def __init__(self, choose: Chooser, schema: dict[str, Any] | None = None) -> None:
        self.choose = choose
        self.schema = schema or LINE_SCHEMA
        self.defs = self.schema.get("$defs", {})

    def line(self) -> str:
        return self.written(self.value(self.schema))

    def mutated(self) -> str:
        document = json.loads(self.choose.pick(REAL_LINES))
        for _ in range(self.choose.pick([1, 1, 2, 3])):
            self.mutate(document)
        return self.written(document)

    def written(self, document: Any) -> str:
        c = self.choose
        text = json.dumps(
            document,
            ensure_ascii=c.chance(0.3),
            separators=c.pick([(",", ":"), (", ", ": "), (", ", ": ")]),
        )
        if c.chance(0.05):  # a key repeated, or written before white space
            at = text.find('"', c.pick(range(max(1, len(text) // 2))))
            end = text.find('":', at)
            if at >= 0 and end > 0 and text[at - 1] in "{ ,":
                key = text[at : end + 2]
                text = text[:at] + c.pick([key + "0, ", key[:-1] + " :"]) + text[at + len(key) :]
        return text

    def value(self, node: dict[str, Any], name: str = "") -> Any:
        c = self.choose
        if c.chance(0.01):
            return c.pick(_ODD)
        if "$ref" in node:
            return self.value(self.defs[node["$ref"].rsplit("/", 1)[-1]], name)
        if "const" in node or "enum" in node:
            return node["const"] if "const" in node else c.pick(node["enum"])
        for key in ("oneOf", "anyOf"):
            if key in node:
                return self.value(c.pick(node[key]), name)
        kind = node.get("type")
        if kind == "object":
            return self.object(node)
        if kind == "array":
            low = node.get("minItems", 0)
            return [self.value(node["items"], name) for _ in range(c.pick(range(low, low + 3)))]
        return self.scalar(node, kind, name)

    def object(self, node: dict[str, Any]) -> dict[str, Any]:
        c, found = self.choose, {}
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            if name in required or c.chance(0.5):
                found[name] = self.value(prop, name)
        kind = found.get("identifier_type")
        if "identifier" in found and isinstance(kind, str) and kind in _IDENTIFIERS:
            found["identifier"] = self.identifier(kind)
        if "other_identifier_name" in found:
            found["other_identifier_name"] = c.pick(_NAMES)
        if (node.get("additionalProperties") is True and c.chance(0.5)) or c.chance(0.01):
            found[c.pick(["k", "extra", "@context"])] = self.any_json(2)
        if required and c.chance(0.02):
            found.pop(c.pick(sorted(required)), None)
        return found

    def scalar(self, node: dict[str, Any], kind: str | None, name: str) -> Any:
        c = self.choose
        text = {
            "date": lambda: c.pick(["2025-06-26", "2024-02-29", "2023-02-29", "0999-01-01", "2024-1-01", "2024-01-01T00:00:00"]),
            "date-time": lambda: c.pick(["2023-12-02T16:30:00", "2023-12-02T16:30:00Z", "2023-12-02T16:30:00+00:00", "2023-12-02T16:30:00.123456+05:30", "2023-12-02T16:30:00.5", "2023-12-02 16:30:00", "2023-12-02T24:00:00"]),
            "uri": lambda: c.pick(["https://doi.org/10.1000/x", "https://x.org/a?b=c#d", "https://x.org", "HTTPS://X.org/a", "https://x.org/a b", "ftp://x.org/", "https://x.org/./a", "https://x.org/ä", "https://v.org/c"]),
            "uuid": lambda: c.pick([str(uuid.UUID(int=7)), str(uuid.UUID(int=7)).upper(), uuid.UUID(int=9).hex, "not-a-uuid"]),
        }  # fmt: skip
        if node.get("format") in text:
            return text[node["format"]]()
        if kind == "string":
            return c.pick(_TEXTS + ["ok", "openalex:topic", "score"] * 3)
        if kind == "integer":
            return c.pick(_INTEGERS)
        if kind == "number":
            return c.pick(_FLOATS + _INTEGERS[:3])
        if kind == "boolean":
            return c.pick([True, False])
        if kind == "null":
            return None
        return self.any_json(3)  # a field of any value

    def any_json(self, depth: int) -> Any:
        c = self.choose
        kind = c.pick(
            ["text", "number", "integer", "other", "list", "object"][: 4 + 2 * (depth > 0)]
        )
        if kind == "list":
            return [self.any_json(depth - 1) for _ in range(c.pick([0, 1, 2]))]
        if kind == "object":
            return {
                c.pick(_TEXTS + ["a", "b"]): self.any_json(depth - 1)
                for _ in range(c.pick([0, 1, 2]))
            }
        return {"text": lambda: c.pick(_TEXTS), "number": lambda: c.pick(_FLOATS), "integer": lambda: c.pick(_INTEGERS), "other": lambda: c.pick([None, True, False])}[kind]()  # fmt: skip

    def identifier(self, kind: str) -> Any:
        c = self.choose
        return c.pick(_REFUSED_IDENTIFIERS if c.chance(0.1) else _IDENTIFIERS.get(kind, [1]))

    def mutate(self, document: Any) -> None:
        """One change at a random place: a value of the same kind (most), an identifier in
        another form, another value, a key dropped, an unknown key added."""
        c = self.choose
        places: list[tuple[Any, Any]] = []
        _places(document, places)
        parent, key = c.pick(places)
        change = c.pick(["alike"] * 5 + ["identifier"] * 2 + ["odd", "drop", "add"])
        if change == "identifier":
            targets = [(p, k) for p, k in places if k == "identifier" and isinstance(p, dict)]
            parent, key = c.pick(targets) if targets else (parent, key)
        value = parent[key]
        if change == "drop" and isinstance(parent, dict):
            parent.pop(key)
        elif change == "add" and isinstance(parent, dict):
            parent[c.pick(["extra", "k", "id"])] = self.any_json(1)
        elif change == "identifier" and key == "identifier":
            parent[key] = self.identifier(str(parent.get("identifier_type")))
        elif change == "alike" and type(value) in _ALIKE:
            parent[key] = c.pick(_ALIKE[type(value)])
        else:
            parent[key] = c.pick(_ODD)


_ALIKE: dict[type, list[Any]] = {
    str: _TEXTS + ["2025-06-26", "2025-13-01", "https://x.org/a", "https://x.org", "public", "openalex:topic", "a/b"],
    float: _FLOATS,
    int: _INTEGERS,
    bool: [True, False],
}  # fmt: skip


def _places(value: Any, out: list[tuple[Any, Any]]) -> None:
    """Every (container, key or index) in a parsed line."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        out.append((value, key))
        _places(item, out)


@SETTINGS
@given(st.data())
def test_lines_from_the_json_schema_give_the_same_frames_both_ways(data) -> None:
    maker = LineMaker(Chooser.drawn(data))
    both_ways([maker.line() for _ in range(data.draw(st.integers(1, 6)))])


@SETTINGS
@given(st.data())
def test_mutated_real_lines_give_the_same_frames_both_ways(data) -> None:
    maker = LineMaker(Chooser.drawn(data))
    both_ways([maker.mutated() for _ in range(data.draw(st.integers(1, 4)))])


def test_many_lines_give_the_same_frames_both_ways_and_most_clean_ones_go_fast() -> None:
    """Seeded: 600 generated and 400 mutated lines in one chunk, with every real line."""
    maker = LineMaker(Chooser.seeded(32))
    texts = [maker.line() for _ in range(600)] + [maker.mutated() for _ in range(400)]
    fast = both_ways(texts + REAL_LINES)
    clean = len(texts + REAL_LINES) - fast.errors["line_number"].n_unique()
    assert fast.fast_path_lines > 0.7 * clean and clean > 300, (fast.fast_path_lines, clean)


def test_every_real_line_and_benchmark_line_goes_fast() -> None:
    from benchmarks.generate import DEFECTS, batch_lines

    assert both_ways(REAL_LINES).fast_path_lines == len(REAL_LINES)
    lines = list(batch_lines(200))
    assert both_ways(lines).fast_path_lines == 200
    defective = [json.dumps(defect(json.loads(text))) for text in lines[:40] for defect in DEFECTS.values() if isinstance(defect(json.loads(text)), dict)]  # fmt: skip
    both_ways(defective)
