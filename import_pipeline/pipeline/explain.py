"""The explanation of a line that is not clean: why it is refused as a whole, or which of its
parts are refused, each alone, with the model's own words and the path of the field; unknown
keys inside a part are dropped alone and reported (contract section 3)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.lines import EnhancementFileInput, ExternalIdentifier
from import_pipeline.pipeline.line_parts import ADD_PART, LineParts, error_row

_IDENTIFIER_ADAPTER: TypeAdapter[Any] = TypeAdapter(ExternalIdentifier)


_ENHANCEMENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(EnhancementFileInput)


_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


class _JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers which of its keys were repeated."""

    duplicates: list[str]


def _remember_duplicates(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    obj.duplicates = []
    if len(obj) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        obj.duplicates = sorted(key for key, count in counts.items() if count > 1)
    return obj


def _duplicates(value: Any) -> list[str]:
    # Not `getattr(value, ...)`: on a model that is pydantic's `__getattr__` raising, which
    # cost a seventh of a defective line's validation.
    return list(value.duplicates) if isinstance(value, _JsonObject) else []


def _parse(line: int, text: str, *, read_by_pydantic: bool) -> tuple[Any, list[tuple[Any, ...]]]:
    """The line as parsed JSON that remembers repeated keys, or the fatal errors that stop it.
    `read_by_pydantic`: the line model has read the text as a JSON object already."""
    try:
        document = json.loads(text, object_pairs_hook=_remember_duplicates)
    except (ValueError, RecursionError) as exc:
        message = f"invalid JSON: {exc}"
        return None, [error_row(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    if not read_by_pydantic:
        try:
            # Python's json accepts what pydantic's parser does not (lone surrogates): ask it.
            _ANY_ADAPTER.validate_json(text)
        except ValidationError as exc:
            return None, _pydantic_errors(line, "", exc.errors(include_url=False), True, None)
        if not isinstance(document, dict):
            kind = type(document).__name__.replace("dict", "object").replace("list", "array")
            message = f"a line must be a JSON object, not {kind}"
            return None, [error_row(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    if repeated := _duplicates(document):
        message = f"duplicate key {repeated[0]!r}"
        return None, [error_row(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    return document, []


def explain_line_level(
    line: int, text: str, exc: ValidationError, model: type[BaseModel]
) -> list[tuple[Any, ...]]:
    """Why the line as a whole is refused: its JSON, or a rule of the line model's own fields."""
    _, errors = _parse(line, text, read_by_pydantic=False)
    if errors:
        return errors
    return [_line_field_error(line, error, model) for error in exc.errors(include_url=False)]


def _line_field_error(line: int, error: Any, model: type[BaseModel]) -> tuple[Any, ...]:
    """One error of a line-level field, said in the field's terms."""
    kind, name = error["type"], str(error["loc"][0]) if error["loc"] else ""
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return error_row(line, ErrorCode.UNKNOWN_FIELD, f"unknown field {name!r}", name, True)
    if kind == "missing":
        return error_row(line, ErrorCode.REQUIRED_FIELD, f"{name} is required", name, True)
    if kind == "list_type":
        return error_row(line, ErrorCode.INVALID_FIELD, f"{name} must be a list", name, True)
    if kind == "too_short":
        needed = "one" if ctx.get("min_length") == 1 else str(ctx.get("min_length"))
        message = f"at least {needed} {name.removesuffix('s')} is required"
        return error_row(line, ErrorCode.INVALID_FIELD, message, name, True)
    if kind == "enum":
        annotation = model.model_fields[name].annotation
        allowed = [member.value for member in annotation]  # type: ignore[union-attr]
        return error_row(
            line, ErrorCode.INVALID_FIELD, f"{name} must be one of {allowed}", name, True
        )
    field = ".".join(str(part) for part in error["loc"]) or None
    message = error["msg"].removeprefix("Value error, ")
    return error_row(line, ErrorCode.INVALID_FIELD, message, field, True)


def explain_parts(
    line: int,
    text: str,
    valid: LineParts,
    identifiers: list[Any],
    enhancements: list[Any],
    *,
    unrepeated: bool,
) -> LineParts:
    """A line the model accepted, but with parts it refused or keys that may be repeated:
    each part is kept (`valid` holds those the model accepted), explained or dropped alone.
    `unrepeated`: no key is repeated, and the refused parts as the model returned them will do;
    otherwise the text is parsed again, remembering repeated keys."""
    parts = LineParts()
    if unrepeated:
        raw_identifiers, raw_enhancements = identifiers, enhancements
    else:
        document, parts.errors = _parse(line, text, read_by_pydantic=True)
        if parts.errors:
            return parts
        raw_identifiers, raw_enhancements = (
            document["identifiers"],
            document.get("enhancements", []),
        )
    dropped = {
        "identifiers": _explain_list(
            line, parts, "identifiers", raw_identifiers, identifiers, _IDENTIFIER_ADAPTER
        ),
        "enhancements": _explain_list(
            line, parts, "enhancements", raw_enhancements, enhancements, _ENHANCEMENT_ADAPTER
        ),
    }
    parts.identifiers = sorted(
        [r for r in valid.identifiers if r[1] not in dropped["identifiers"]] + parts.identifiers,
        key=lambda row: row[1],
    )
    parts.enhancements = sorted(
        [r for r in valid.enhancements if r[1] not in dropped["enhancements"]] + parts.enhancements,
        key=lambda row: row[1],
    )
    # An association belongs to its enhancement's position.
    parts.associations = [
        a for a in valid.associations if a[0] not in dropped["enhancements"]
    ] + parts.associations
    return parts


def _explain_list(
    line: int,
    parts: LineParts,
    name: str,
    raws: list[Any],
    models: list[Any],
    adapter: TypeAdapter[Any],
) -> set[int]:
    """Explains the items of the line's list `name` the model refused, adding those that
    pass alone to `parts`; returns the positions dropped for a repeated key."""
    add = ADD_PART[name]
    dropped = set()
    for position, (raw, model) in enumerate(zip(raws, models, strict=True)):
        prefix = f"{name}[{position}]"
        content = raw.get("content") if name == "enhancements" and isinstance(raw, dict) else None
        if repeated := _duplicates(raw) or _duplicates(content):
            parts.errors.append(_duplicate_error(line, prefix, repeated[0]))
            dropped.add(position)
        elif not isinstance(model, BaseModel):
            model, item_errors = _validate_part(line, prefix, adapter, raw)
            parts.errors.extend(item_errors)
            if model is not None:
                add(parts, line, position, model)
    return dropped


def _duplicate_error(line: int, field: str, key: str) -> tuple[Any, ...]:
    return error_row(line, ErrorCode.INVALID_JSON_INPUT, f"duplicate key {key!r}", field, False)


def _validate_part(
    line: int, prefix: str, adapter: TypeAdapter[Any], raw: Any
) -> tuple[Any, list[tuple[Any, ...]]]:
    """An identifier or enhancement on its own: its model, or None and why. Unknown keys alone
    do not refuse it: they are dropped, each reported (contract section 3)."""
    try:
        return adapter.validate_json(json.dumps(raw), strict=True), []
    except ValidationError as exc:
        # The errors, not the exception: it would hold this frame in a cycle with its traceback
        # (garbage only a collection frees, and collections are paused for the chunk).
        errors = exc.errors(include_url=False)
    if any(error["type"] != "extra_forbidden" for error in errors):
        return None, _pydantic_errors(line, prefix, errors, False, raw)
    kept = json.loads(json.dumps(raw))
    unknown = []
    for error in errors:
        unknown.append(_field_path(prefix, tuple(error["loc"]), raw, error["type"]))
        _drop_key(kept, tuple(error["loc"]))
    try:
        model = adapter.validate_json(json.dumps(kept), strict=True)
    except ValidationError:  # a key that could not be dropped: the part is refused as it was
        return None, _pydantic_errors(line, prefix, errors, False, raw)
    return model, [
        error_row(
            line,
            ErrorCode.UNKNOWN_FIELD,
            f"unknown field {path.rsplit('.', 1)[-1]!r} was dropped",
            path,
            False,
        )  # fmt: skip
        for path in unknown
    ]


_DISCRIMINATORS = ("enhancement_type", "annotation_type", "identifier_type")


def _tags_of(node: dict[str, Any]) -> list[Any]:
    # A list, not a set: a tag key may hold any JSON value, a list or an object too.
    return [node.get(key) for key in _DISCRIMINATORS if key in node]


def _walk(loc: tuple[Any, ...], item: Any) -> Iterator[tuple[Any, Any, bool]]:
    """The steps of an error's location through the item itself: (part, node it is applied
    to, whether it is a key or index of that node). Union-member tags and validator names
    pydantic adds are not."""
    node = item
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and not last and part in _tags_of(node):
            yield part, node, False  # a union member's tag, even where a field has its name
        elif isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            yield part, node, True
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or last):
            yield part, node, True
            node = node.get(part)
        else:
            yield part, node, False


def _field_path(prefix: str, loc: tuple[Any, ...], item: Any, kind: str) -> str:
    """The error's path in the document, without the union-member names pydantic adds."""
    path = prefix
    steps = list(_walk(loc, item))
    for index, (part, _, real) in enumerate(steps):
        last = index == len(steps) - 1
        if real and isinstance(part, int):
            path = f"{path}[{part}]"
        elif real or (last and kind in ("missing", "extra_forbidden")):
            path = f"{path}.{part}" if path else str(part)
    return path


def _drop_key(item: Any, loc: tuple[Any, ...]) -> None:
    """Removes the key an `extra_forbidden` error names."""
    *_, (part, node, real) = _walk(loc, item)
    if real and isinstance(node, dict):
        node.pop(part, None)


def _pydantic_errors(
    line: int, prefix: str, errors: list[Any], fatal: bool, item: Any
) -> list[tuple[Any, ...]]:
    """Pydantic's errors of a part (`item`, at `prefix`) as rows of `frames.ERRORS`."""
    out = []
    for error in errors:
        kind = error["type"]
        code = {
            "missing": ErrorCode.REQUIRED_FIELD,
            "extra_forbidden": ErrorCode.UNKNOWN_FIELD,
            "json_invalid": ErrorCode.INVALID_JSON_INPUT,
            "union_tag_not_found": ErrorCode.REQUIRED_FIELD,
        }.get(kind, ErrorCode.INVALID_FIELD)
        field = _field_path(prefix, tuple(error["loc"]), item, kind)
        if kind in ("union_tag_not_found", "union_tag_invalid"):
            field = f"{field}.{str(error.get('ctx', {}).get('discriminator', '')).strip(chr(39))}"
        message = error["msg"].removeprefix("Value error, ")
        out.append(error_row(line, code, message, field or None, fatal))
    return out
