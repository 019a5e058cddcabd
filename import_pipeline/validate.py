"""Validate: loaded lines → valid identifiers, enhancements and associations, and errors, per line.

Pydantic decides every line with one `validate_json` call against `LINE_MODEL`, the batch-line
model (`models.ReferenceFileInput`) with each identifier and enhancement allowed to come back
as its raw JSON value when it does not validate. A clean line costs that one call and the
dump of its enhancements' contents; a line with a bad part is explained part by part (the
model says what is wrong and where), so that the part fails alone and the rest is kept. Two
rules sit on top of the model: JSON nested deeper than `MAX_NESTING_DEPTH` is refused, and a
key repeated in the line, an identifier, an enhancement or its content is refused (JSON
parsers keep the last value silently; which one did the sender mean?).

The stored content of an enhancement is the model's dump of what was sent: normalised
(identifiers, URLs, blank pagination), with the DESTINY SDK's defaults filled in, and without
the keys the model dropped.
"""

from __future__ import annotations

import gc
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

import polars as pl
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from import_pipeline.identifiers import IdentifierType
from import_pipeline.load import NOT_UTF8, TOO_LONG
from import_pipeline.models import (
    EnhancementFileInput,
    ErrorCode,
    ExternalIdentifier,
    ReferenceFileInput,
)

#: One row per error: a line may have several.
ERRORS_SCHEMA = {
    "line_number": pl.Int64,
    "code": pl.String,
    "field": pl.String,
    "message": pl.String,
    "fatal": pl.Boolean,  # the whole line fails (otherwise only the part named by `field`)
}
#: One row per line that was read: its visibility when the line is usable.
LINES_SCHEMA = {"line_number": pl.Int64, "visibility": pl.String}
IDENTIFIERS_SCHEMA = {
    "line_number": pl.Int64,
    "position": pl.Int64,
    "identifier_type": pl.String,
    "identifier": pl.String,  # normalised
    "other_identifier_name": pl.String,
}
ENHANCEMENTS_SCHEMA = {
    "line_number": pl.Int64,
    "position": pl.Int64,
    "enhancement_type": pl.String,
    "source": pl.String,
    "visibility": pl.String,
    "robot_version": pl.String,
    "processor_version": pl.String,
    "content": pl.String,  # the content object as JSON
    "content_hash": pl.String,  # identity of an exact duplicate: the whole enhancement
}
#: One row per target of a valid reference_association enhancement.
ASSOCIATIONS_SCHEMA = {
    "line_number": pl.Int64,
    "association_type": pl.String,
    "target_type": pl.String,  # an identifier type, or "reference_id" for a reference UUID
    "target": pl.String,  # normalised
    "target_other_name": pl.String,
}

#: Deeper JSON is refused (InvalidJsonInput): pydantic's parser stops near 255 levels and
#: Python's near 1,000; real records nest fewer than 10.
MAX_NESTING_DEPTH = 64
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
#: How a key ends in compact JSON; counted to prove that no key was repeated (see `_keys_seen`).
_KEY_END = '":'


def _item_or_raw(item: Any) -> Any:
    # Left to right: the item's model first; only what it refuses falls through to `Any`
    # (converted to Python), so a clean item costs nothing extra.
    return Annotated[item | Any, Field(union_mode="left_to_right")]


def _lenient(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with the items of its list fields kept raw where they do not validate."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            annotation = list[_item_or_raw(item)]  # type: ignore[misc]
        fields[name] = (annotation, info)
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"Lenient{model.__name__}", __config__=model.model_config, **fields
    )


_OTHER = IdentifierType.OTHER.value

#: The line model that decides every line.
LINE_MODEL = _lenient(ReferenceFileInput)
_IDENTIFIER_ADAPTER: TypeAdapter[Any] = TypeAdapter(ExternalIdentifier)
_ENHANCEMENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(EnhancementFileInput)
_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


@dataclass
class ValidatedChunk:
    lines: pl.DataFrame
    identifiers: pl.DataFrame
    enhancements: pl.DataFrame
    associations: pl.DataFrame
    errors: pl.DataFrame
    slow_path: pl.DataFrame  # the line numbers explained part by part

    @property
    def slow_path_lines(self) -> int:
        return self.slow_path.height


@dataclass
class _Rows:
    """Rows of one frame (tuples in `schema`'s order), turned into columns once."""

    schema: dict[str, Any]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=self.schema, orient="row")


@dataclass
class _LineParts:
    """What one line contributes, kept until its verdict is known: rows of `IDENTIFIERS_SCHEMA`
    and `ENHANCEMENTS_SCHEMA` (position second), and associations by enhancement position."""

    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    enhancements: list[tuple[Any, ...]] = field(default_factory=list)
    associations: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)  # rows of ERRORS_SCHEMA
    keys: int = 0  # the keys the models saw (see `_validate_line`)


def _error(
    line: int, code: ErrorCode, message: str, field: str | None, fatal: bool
) -> tuple[Any, ...]:
    """A row of `ERRORS_SCHEMA`."""
    return (line, code.value, field, message, fatal)


# ---------------------------------------------------------------------------------------------
# A chunk
# ---------------------------------------------------------------------------------------------


def validate_chunk(chunk: pl.DataFrame) -> ValidatedChunk:
    """Validates one loaded chunk (see `load.LINES_SCHEMA`)."""
    lines = _Rows(LINES_SCHEMA)
    identifiers = _Rows(IDENTIFIERS_SCHEMA)
    enhancements = _Rows(ENHANCEMENTS_SCHEMA)
    associations = _Rows(ASSOCIATIONS_SCHEMA)
    errors = _Rows(ERRORS_SCHEMA)
    slow: list[int] = []
    readable = chunk.filter(pl.col("problem").is_null())
    texts = readable["text"]
    deep = set(readable.filter(nested_too_deep(texts))["line_number"].to_list())
    # Keys are counted as `":`: a line that writes a key's colon after white space, or spells a
    # quote or a colon as `\u0022` / `\u003a` (which the dumps spell `\"` and `:`), is always
    # checked for repeated keys.
    key_ends = (
        pl.when(texts.str.contains(r'(?i)"[ \t\r\n]+:|\\u00(?:22|3a)'))
        .then(-1)
        .otherwise(texts.str.count_matches(_KEY_END, literal=True))
    )
    key_ends = pl.select(key_ends).to_series().to_list()
    with _collector_paused():
        for (line_number, text), keys_sent in zip(
            readable.select("line_number", "text").iter_rows(), key_ends, strict=True
        ):
            if line_number in deep:
                message = f"JSON nested more than {MAX_NESTING_DEPTH} levels deep"
                parts = _LineParts(
                    errors=[_error(line_number, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
                )
                visibility = None
                slow.append(line_number)
            else:
                visibility, parts, explained = _validate_line(line_number, text, keys_sent)
                if explained:
                    slow.append(line_number)
            lines.rows.append((line_number, visibility))
            _commit(line_number, parts, identifiers, enhancements, associations, errors)
    for line_number, problem in (
        chunk.filter(pl.col("problem").is_not_null()).select("line_number", "problem").iter_rows()
    ):
        code, message = _PROBLEMS.get(problem, (ErrorCode.INVALID_INPUT, "the line cannot be read"))
        lines.rows.append((line_number, None))
        errors.rows.append(_error(line_number, code, message, None, True))
    return ValidatedChunk(
        lines=lines.frame().sort("line_number"),
        identifiers=identifiers.frame(),
        enhancements=enhancements.frame(),
        associations=associations.frame().unique(maintain_order=True),
        errors=errors.frame(),
        slow_path=pl.DataFrame({"line_number": slow}, schema={"line_number": pl.Int64}),
    )


_PROBLEMS = {
    TOO_LONG: (ErrorCode.LINE_TOO_LONG, "the line is longer than the maximum line size"),
    NOT_UTF8: (ErrorCode.INVALID_INPUT, "the line is not valid UTF-8"),
}


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A chunk's models are freed by reference counting; the cyclic collector would only walk
    # them again and again (a third of the time of a large chunk).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _commit(
    line_number: int,
    parts: _LineParts,
    identifiers: _Rows,
    enhancements: _Rows,
    associations: _Rows,
    errors: _Rows,
) -> None:
    """Writes a line's parts, unless it failed; a line left with no identifier fails."""
    if parts.errors:
        errors.rows.extend(parts.errors)
        if any(error[-1] for error in parts.errors):  # fatal
            return
    if not parts.identifiers:
        message = "no valid identifier is left: the line cannot be imported"
        errors.rows.append(
            _error(line_number, ErrorCode.INVALID_FIELD, message, "identifiers", True)
        )
        return
    identifiers.rows.extend(parts.identifiers)
    enhancements.rows.extend(parts.enhancements)
    associations.rows.extend(row for _, row in parts.associations)


# ---------------------------------------------------------------------------------------------
# A line
# ---------------------------------------------------------------------------------------------


def _validate_line(
    line_number: int, text: str, keys_sent: int
) -> tuple[str | None, _LineParts, bool]:
    """The line's visibility, its parts and errors, and whether it was explained part by part."""
    try:
        line = LINE_MODEL.model_validate_json(text)
    except ValidationError as exc:
        return None, _LineParts(errors=_explain_line_level(line_number, text, exc)), True
    parts = _LineParts(keys=len(line.__pydantic_fields_set__))
    identifiers: list[Any] = line.identifiers  # type: ignore[attr-defined]
    enhancements: list[Any] = line.enhancements  # type: ignore[attr-defined]
    identifiers_clean = _add_accepted(parts, line_number, "identifiers", identifiers)
    enhancements_clean = _add_accepted(parts, line_number, "enhancements", enhancements)
    clean = identifiers_clean and enhancements_clean
    visibility = line.visibility  # type: ignore[attr-defined]
    # Every key of the text was seen once: none was repeated.
    unrepeated = parts.keys == keys_sent
    if clean and unrepeated:
        return visibility, parts, False
    explained = _explain_parts(
        line_number, text, parts, identifiers, enhancements, unrepeated=unrepeated
    )
    return visibility, explained, True


def _add_accepted(parts: _LineParts, line: int, name: str, items: list[Any]) -> bool:
    """Adds the items of the line's list `name` the model accepted and counts the keys of those
    it refused (they come back raw); whether it accepted them all."""
    add = _ADD[name]
    clean = True
    for position, item in enumerate(items):
        if isinstance(item, BaseModel):
            add(parts, line, position, item)
        else:
            clean = False
            parts.keys += _keys_in(item)
    return clean


def _keys_in(value: Any) -> int:
    """The keys of a part the model refused (it comes back as plain JSON values)."""
    if isinstance(value, dict):
        return len(value) + sum(_keys_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(_keys_in(item) for item in value)
    return 0


def _add_identifier(parts: _LineParts, line: int, position: int, identifier: BaseModel) -> None:
    parts.keys += len(identifier.__pydantic_fields_set__)
    kind = identifier.identifier_type  # type: ignore[attr-defined]
    name = identifier.other_identifier_name if kind == _OTHER else None  # type: ignore[attr-defined]
    parts.identifiers.append((line, position, kind, identifier.identifier, name))  # type: ignore[attr-defined]


def _add_enhancement(
    parts: _LineParts, line: int, position: int, enhancement: EnhancementFileInput
) -> None:
    content = enhancement.content
    kind = content.enhancement_type
    fill = _FILL_DEFAULTS.get(kind)
    defaults = fill(content) if fill else 0
    content_json = content.model_dump_json(exclude_unset=True)
    # The keys of the content and below it, as sent: the dump holds each key once, plus the
    # defaults just filled in.
    parts.keys += len(enhancement.__pydantic_fields_set__) + content_json.count(_KEY_END) - defaults
    visibility: str = enhancement.visibility  # its value: `use_enum_values`
    parts.enhancements.append(
        (
            line,
            position,
            kind,
            enhancement.source,
            visibility,
            enhancement.robot_version,
            enhancement.processor_version,
            content_json,
            _identity_hash(kind, enhancement, visibility, content_json),
        )
    )
    if kind == "reference_association":
        for target in content.associated_reference_ids:  # type: ignore[union-attr]
            if isinstance(target, uuid.UUID):
                row = ("reference_id", str(target), None)
            else:
                name = getattr(target, "other_identifier_name", None)
                row = (target.identifier_type, target.identifier, name)
            parts.associations.append((position, (line, content.association_type, *row)))  # type: ignore[union-attr]


def _identity_hash(
    kind: str, enhancement: EnhancementFileInput, visibility: str, content_json: str
) -> str:
    """What makes two enhancements exact duplicates, hashed (SHA-256, hex)."""
    identity = "\x1f".join(
        (
            kind,
            enhancement.source,
            visibility,
            enhancement.robot_version or "",
            enhancement.processor_version or "",
            content_json,
        )
    )
    return hashlib.sha256(identity.encode()).hexdigest()


#: How an accepted item of each of the line's lists is added to its parts.
_ADD: dict[str, Callable[[_LineParts, int, int, Any], None]] = {
    "identifiers": _add_identifier,
    "enhancements": _add_enhancement,
}


def _fill_mime_type(content: Any) -> int:
    if "mime_type" in content.__pydantic_fields_set__:
        return 0
    content.mime_type = content.mime_type
    return 1


def _fill_metadata(content: Any) -> int:
    if "metadata" in content.__pydantic_fields_set__:
        return 0
    content.metadata = {}
    return 1


def _fill_annotation_data(content: Any) -> int:
    filled = 0
    for annotation in content.annotations:
        if "data" not in annotation.__pydantic_fields_set__:
            annotation.data = {}
            filled += 1
    return filled


#: The DESTINY SDK's non-null defaults, by content type: set where the line left them out, so
#: that the stored content carries them (a dump of what was sent does not). Each returns how
#: many it set.
_FILL_DEFAULTS: dict[str, Callable[[Any], int]] = {
    "full_text": _fill_mime_type,
    "raw": _fill_metadata,
    "annotation": _fill_annotation_data,
}


# ---------------------------------------------------------------------------------------------
# The explanation of a line that is not clean
# ---------------------------------------------------------------------------------------------


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
    return list(getattr(value, "duplicates", []))


def _parse(line: int, text: str, *, read_by_pydantic: bool) -> tuple[Any, list[tuple[Any, ...]]]:
    """The line as parsed JSON that remembers repeated keys, or the fatal errors that stop it.
    `read_by_pydantic`: the line model has read the text as a JSON object already."""
    try:
        document = json.loads(text, object_pairs_hook=_remember_duplicates)
    except (ValueError, RecursionError) as exc:
        message = f"invalid JSON: {exc}"
        return None, [_error(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    if not read_by_pydantic:
        try:
            # Python's json accepts what pydantic's parser does not (lone surrogates): ask it.
            _ANY_ADAPTER.validate_json(text)
        except ValidationError as exc:
            return None, _pydantic_errors(line, "", exc.errors(include_url=False), True, None)
        if not isinstance(document, dict):
            kind = type(document).__name__.replace("dict", "object").replace("list", "array")
            message = f"a line must be a JSON object, not {kind}"
            return None, [_error(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    if repeated := _duplicates(document):
        message = f"duplicate key {repeated[0]!r}"
        return None, [_error(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    return document, []


def _explain_line_level(line: int, text: str, exc: ValidationError) -> list[tuple[Any, ...]]:
    """Why the line as a whole is refused: its JSON, or a rule of the line model's own fields."""
    _, errors = _parse(line, text, read_by_pydantic=False)
    if errors:
        return errors
    return [_line_field_error(line, error) for error in exc.errors(include_url=False)]


def _line_field_error(line: int, error: Any) -> tuple[Any, ...]:
    """One error of a line-level field, said in the field's terms."""
    kind, name = error["type"], str(error["loc"][0]) if error["loc"] else ""
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _error(line, ErrorCode.UNKNOWN_FIELD, f"unknown field {name!r}", name, True)
    if kind == "missing":
        return _error(line, ErrorCode.REQUIRED_FIELD, f"{name} is required", name, True)
    if kind == "list_type":
        return _error(line, ErrorCode.INVALID_FIELD, f"{name} must be a list", name, True)
    if kind == "too_short":
        needed = "one" if ctx.get("min_length") == 1 else str(ctx.get("min_length"))
        message = f"at least {needed} {name.removesuffix('s')} is required"
        return _error(line, ErrorCode.INVALID_FIELD, message, name, True)
    if kind == "enum":
        annotation = ReferenceFileInput.model_fields[name].annotation
        allowed = [member.value for member in annotation]  # type: ignore[union-attr]
        return _error(line, ErrorCode.INVALID_FIELD, f"{name} must be one of {allowed}", name, True)
    field = ".".join(str(part) for part in error["loc"]) or None
    message = error["msg"].removeprefix("Value error, ")
    return _error(line, ErrorCode.INVALID_FIELD, message, field, True)


def _explain_parts(
    line: int,
    text: str,
    valid: _LineParts,
    identifiers: list[Any],
    enhancements: list[Any],
    *,
    unrepeated: bool,
) -> _LineParts:
    """A line the model accepted, but with parts it refused or keys that may be repeated:
    each part is kept (`valid` holds those the model accepted), explained or dropped alone.
    `unrepeated`: no key is repeated, and the refused parts as the model returned them will do;
    otherwise the text is parsed again, remembering repeated keys."""
    parts = _LineParts()
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
    parts: _LineParts,
    name: str,
    raws: list[Any],
    models: list[Any],
    adapter: TypeAdapter[Any],
) -> set[int]:
    """Explains the items of the line's list `name` the model refused, adding those that
    pass alone to `parts`; returns the positions dropped for a repeated key."""
    add = _ADD[name]
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
    return _error(line, ErrorCode.INVALID_JSON_INPUT, f"duplicate key {key!r}", field, False)


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
        _error(
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
    """Pydantic's errors of a part (`item`, at `prefix`) as rows of `ERRORS_SCHEMA`."""
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
        out.append(_error(line, code, message, field or None, fatal))
    return out


def explain_line(line: int, text: str) -> list[dict[str, Any]]:
    """The verdict on one line, as an import gives it: its errors (empty if it is clean)."""
    chunk = pl.DataFrame(
        {"line_number": [line], "text": [text], "problem": [None]},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )
    return validate_chunk(chunk).errors.to_dicts()


def nested_too_deep(texts: pl.Series, limit: int = MAX_NESTING_DEPTH) -> pl.Series:
    """Whether each text nests brackets more than `limit` levels deep (strings ignored).

    Only texts with more than `limit` brackets can be that deep; for those, strings are cut
    out and innermost `{}`/`[]` pairs removed pass after pass: what is left after `limit`
    passes was deeper.
    """
    frame = pl.DataFrame({"row": pl.int_range(0, texts.len(), eager=True), "text": texts})
    left = frame.filter(pl.col("text").str.count_matches(r"[\[{]") > limit).select(
        "row",
        text=pl.col("text").str.replace_all(_JSON_STRING, "").str.replace_all(r"[^\[\]{}]", ""),
    )
    for _ in range(limit):
        if left.is_empty():
            break
        left = left.with_columns(pl.col("text").str.replace_all(r"\{\}|\[\]", "")).filter(
            pl.col("text") != ""
        )
    return frame["row"].is_in(left["row"].implode())
