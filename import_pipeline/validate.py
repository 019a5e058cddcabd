"""Validate: loaded lines → valid identifiers and enhancements, and errors, per line.

Vectorised checks decide: DuckDB's JSON functions shred each chunk, the rules compiled from
the pydantic models (`screen.py`) and the identifier expressions (`identifiers.py`) accept
what is certainly valid. Only what they cannot accept goes to pydantic, one line at a time,
which gives the final verdict and the precise messages. Bad parts fail alone: an invalid
identifier or enhancement is dropped with an error and the rest of its line is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import duckdb
import polars as pl
from pydantic import TypeAdapter, ValidationError

from import_pipeline.identifiers import IdentifierType, normalised_identifier
from import_pipeline.load import NOT_UTF8, TOO_LONG
from import_pipeline.models import (
    EnhancementFileInput,
    ErrorCode,
    ExternalIdentifier,
    ReferenceFileInput,
    Visibility,
)
from import_pipeline.screen import CompiledScreen, compile_screen, screen_items

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

_TOP_LEVEL_KEYS = [name for name in ReferenceFileInput.model_fields]
_IDENTIFIER_KEYS = ["identifier_type", "identifier"]
_OTHER_IDENTIFIER_KEYS = [*_IDENTIFIER_KEYS, "other_identifier_name"]
_VISIBILITIES = [v.value for v in Visibility]
#: Deeper JSON is refused (InvalidJsonInput): pydantic's parser stops near 255 levels and
#: Python's near 1,000; real records nest fewer than 10.
MAX_NESTING_DEPTH = 64
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'

# DuckDB accepts trailing commas; strict JSON does not. A line that might hold one is left to
# the strict parser (a comma before a closing bracket inside a string merely costs that line
# the slow path).
_MAYBE_TRAILING_COMMA = r",\s*[\]}]"


@dataclass
class ValidatedChunk:
    lines: pl.DataFrame
    identifiers: pl.DataFrame
    enhancements: pl.DataFrame
    associations: pl.DataFrame
    errors: pl.DataFrame
    slow_path_lines: int


@cache
def _enhancement_screen() -> CompiledScreen:
    return compile_screen(EnhancementFileInput)


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


@contextmanager
def _registered(
    engine: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame
) -> Iterator[None]:
    """`frame` visible to `engine`'s SQL as `name` for the body's duration."""
    engine.register(name, frame)
    try:
        yield
    finally:
        engine.unregister(name)


def _items_of(column: str) -> str:
    """A CTE `items`: one row per element of the JSON array `column`, with its position."""
    return f"""
        items AS (
            SELECT line_number, unnest(json_extract({column}, '$[*]')) AS item,
                generate_subscripts(json_extract({column}, '$[*]'), 1) - 1 AS position
            FROM shredded WHERE {column} IS NOT NULL
        )"""


def new_json_engine() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB used only for its JSON functions (never the store)."""
    engine = duckdb.connect(":memory:")
    engine.execute("SET enable_progress_bar = false")
    # Bounded memory whatever the batch size: chunks are processed one at a time.
    engine.execute("SET memory_limit = '1GB'")
    return engine


def _shred_lines(engine: duckdb.DuckDBPyConnection, chunk: pl.DataFrame) -> pl.DataFrame:
    """One row per readable line: is it a JSON object, its keys and its three parts."""
    readable = chunk.filter(pl.col("problem").is_null()).select("line_number", "text")
    with _registered(engine, "chunk", readable):
        return engine.sql(
            f"""
            WITH parsed AS (
                SELECT line_number, text, json_valid(text) AS is_json FROM chunk
            ), typed AS (
                SELECT *, CASE WHEN is_json THEN json_type(text) END AS doc_type FROM parsed
            ), split AS (
                SELECT line_number, is_json, doc_type,
                    is_json AND NOT regexp_matches(text, '{_MAYBE_TRAILING_COMMA}') AS strict_json,
                    CASE WHEN doc_type = 'OBJECT' THEN json_keys(text) END AS keys,
                    CASE WHEN doc_type = 'OBJECT' THEN json_extract(
                        text, ['$.visibility', '$.identifiers', '$.enhancements']) END AS parts
                FROM typed
            )
            SELECT line_number, is_json, doc_type, strict_json,
                keys IS NOT NULL
                    AND len(keys) = len(list_distinct(keys))
                    AND list_has_all({_sql_list(_TOP_LEVEL_KEYS)}, keys)
                    AND list_contains(keys, 'identifiers')
                    AND (parts[1] IS NULL OR (json_type(parts[1]) = 'VARCHAR'
                         AND json_extract_string(parts[1], '$') IN ({", ".join(f"'{v}'" for v in _VISIBILITIES)})))
                    AND json_type(parts[2]) = 'ARRAY' AND json_array_length(parts[2]) >= 1
                    AND (parts[3] IS NULL OR json_type(parts[3]) = 'ARRAY')
                    AS top_ok,
                COALESCE(json_extract_string(parts[1], '$'), 'public') AS visibility,
                CASE WHEN json_type(parts[2]) = 'ARRAY' THEN parts[2] END AS identifiers,
                CASE WHEN json_type(parts[3]) = 'ARRAY' THEN parts[3] END AS enhancements
            FROM split
            """
        ).pl()


def _shred_identifiers(engine: duckdb.DuckDBPyConnection, lines: pl.DataFrame) -> pl.DataFrame:
    with _registered(engine, "shredded", lines.select("line_number", "identifiers")):
        return engine.sql(
            f"""
            WITH {_items_of("identifiers")}, parts AS (
                SELECT line_number, position, json_type(item) = 'OBJECT' AS is_object,
                    CASE WHEN json_type(item) = 'OBJECT' THEN json_keys(item) END AS keys,
                    CASE WHEN json_type(item) = 'OBJECT' THEN json_extract(item,
                        ['$.identifier_type', '$.identifier', '$.other_identifier_name']) END AS v
                FROM items
            )
            SELECT line_number, position,
                json_extract_string(v[1], '$') AS identifier_type,
                json_extract_string(v[2], '$') AS identifier,
                json_type(v[2]) IN ('UBIGINT', 'BIGINT') AS identifier_is_integer,
                trim(json_extract_string(v[3], '$')) AS other_identifier_name,
                is_object
                    AND len(keys) = len(list_distinct(keys))
                    AND json_type(v[1]) = 'VARCHAR'
                    AND json_type(v[2]) IN ('VARCHAR', 'UBIGINT', 'BIGINT')
                    AND CASE WHEN json_extract_string(v[1], '$') = 'other'
                        THEN list_has_all({_sql_list(_OTHER_IDENTIFIER_KEYS)}, keys)
                            AND json_type(v[3]) = 'VARCHAR'
                            AND trim(json_extract_string(v[3], '$')) <> ''
                        ELSE list_has_all({_sql_list(_IDENTIFIER_KEYS)}, keys) END
                    AS shape_ok
            FROM parts
            """
        ).pl()


def _shred_enhancements(engine: duckdb.DuckDBPyConnection, lines: pl.DataFrame) -> pl.DataFrame:
    with _registered(engine, "shredded", lines.select("line_number", "enhancements")):
        return engine.sql(
            f"""
            WITH {_items_of("enhancements")}, parts AS (
                SELECT line_number, position, item,
                    CASE WHEN json_type(item) = 'OBJECT' THEN json_extract(item,
                        ['$.source', '$.visibility', '$.robot_version', '$.processor_version',
                         '$.content']) END AS v,
                    CASE WHEN json_type(item) = 'OBJECT' THEN json_keys(item) END AS keys
                FROM items
            )
            SELECT line_number, position,
                json_extract_string(v[5], '$.enhancement_type') AS enhancement_type,
                json_extract_string(v[1], '$') AS source,
                COALESCE(json_extract_string(v[2], '$'), 'public') AS visibility,
                json_extract_string(v[3], '$') AS robot_version,
                json_extract_string(v[4], '$') AS processor_version,
                v[5]::VARCHAR AS content,
                sha256(concat_ws(chr(31), json_extract_string(v[5], '$.enhancement_type'),
                    json_extract_string(v[1], '$'), COALESCE(json_extract_string(v[2], '$'), 'public'),
                    COALESCE(json_extract_string(v[3], '$'), ''),
                    COALESCE(json_extract_string(v[4], '$'), ''), v[5]::VARCHAR)) AS content_hash,
                item::VARCHAR AS item
            FROM parts
            """
        ).pl()


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


def validate_chunk(engine: duckdb.DuckDBPyConnection, chunk: pl.DataFrame) -> ValidatedChunk:
    """Validates one loaded chunk (see `load.LINES_SCHEMA`)."""
    deep = chunk.filter(nested_too_deep(chunk["text"].fill_null("")))["line_number"]
    lines = _shred_lines(engine, chunk).with_columns(
        strict_json=pl.col("strict_json") & ~pl.col("line_number").is_in(deep.implode())
    )
    identifiers = _shred_identifiers(engine, lines.filter("top_ok"))
    enhancements = _shred_enhancements(engine, lines.filter("top_ok"))
    enhancements = enhancements.with_columns(
        screen_ok=screen_items(engine, _enhancement_screen(), enhancements.select("item"))
    ).drop("item")

    identifiers = identifiers.with_columns(normalised=normalised_identifier()).with_columns(
        screen_ok=pl.col("shape_ok").fill_null(False)
        & pl.col("identifier_type").is_in([t.value for t in IdentifierType])
        & pl.col("normalised").is_not_null()
    )
    screened_out = pl.concat(
        [
            lines.filter(
                ~pl.col("top_ok").fill_null(False) | ~pl.col("strict_json").fill_null(False)
            ).select("line_number"),
            identifiers.filter(~pl.col("screen_ok")).select("line_number"),
            enhancements.filter(~pl.col("screen_ok").fill_null(False)).select("line_number"),
        ]
    ).unique()

    texts = chunk.join(screened_out, on="line_number", how="semi").filter(
        pl.col("problem").is_null()
    )
    verdicts = [explain_line(n, t) for n, t in texts.select("line_number", "text").iter_rows()]
    errors = _errors_frame(chunk, verdicts)
    fatal_lines = errors.filter("fatal").select("line_number").unique()
    dropped = errors.filter(~pl.col("fatal")).select("line_number", "field").unique()

    def keep(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
        # A part is kept unless its line failed or pydantic named that very part.
        field = pl.format(prefix + "[{}]", pl.col("position"))
        named = dropped.filter(pl.col("field").str.starts_with(prefix + "[")).with_columns(
            pl.col("field").str.extract(r"^(\w+\[\d+\])")
        )
        return (
            frame.join(fatal_lines, on="line_number", how="anti")
            .with_columns(field=field)
            .join(named, on=["line_number", "field"], how="anti")
        )

    kept_identifiers = keep(identifiers, "identifiers").select(
        "line_number",
        "position",
        "identifier_type",
        identifier="normalised",
        other_identifier_name=pl.when(pl.col("identifier_type") == IdentifierType.OTHER).then(
            "other_identifier_name"
        ),
    )
    # A line left with no valid identifier fails as a whole.
    no_identifier = (
        lines.filter("top_ok")
        .join(fatal_lines, on="line_number", how="anti")
        .join(kept_identifiers, on="line_number", how="anti")
        .select("line_number")
    )
    if no_identifier.height:
        errors = pl.concat(
            [
                errors,
                no_identifier.with_columns(
                    code=pl.lit(ErrorCode.INVALID_FIELD.value),
                    field=pl.lit("identifiers"),
                    message=pl.lit("no valid identifier is left: the line cannot be imported"),
                    fatal=pl.lit(True),
                ),
            ]
        )
        kept_identifiers = kept_identifiers.join(no_identifier, on="line_number", how="anti")
    failed = errors.filter("fatal").select("line_number").unique()
    kept_enhancements = keep(enhancements, "enhancements").join(
        failed, on="line_number", how="anti"
    )
    associations = association_targets(
        engine, kept_enhancements.filter(pl.col("enhancement_type") == "reference_association")
    )
    return ValidatedChunk(
        lines=chunk.select("line_number")
        .join(lines.select("line_number", "visibility"), on="line_number", how="left")
        .cast(LINES_SCHEMA),  # type: ignore[arg-type]
        identifiers=kept_identifiers.cast(IDENTIFIERS_SCHEMA),  # type: ignore[arg-type]
        enhancements=kept_enhancements.select(ENHANCEMENTS_SCHEMA.keys()).cast(ENHANCEMENTS_SCHEMA),  # type: ignore[arg-type]
        associations=associations,
        errors=errors.select(ERRORS_SCHEMA.keys()).cast(ERRORS_SCHEMA),  # type: ignore[arg-type]
        slow_path_lines=texts.height,
    )


def association_targets(
    engine: duckdb.DuckDBPyConnection, enhancements: pl.DataFrame
) -> pl.DataFrame:
    """One row per target of each valid `reference_association` enhancement, normalised.

    A target is a reference UUID (`target_type` "reference_id") or an external identifier.
    """
    with _registered(engine, "associations", enhancements.select("line_number", "content")):
        targets = engine.sql(
            """
            WITH items AS (
                SELECT line_number,
                    json_extract_string(content, '$.association_type') AS association_type,
                    unnest(json_extract(content, '$.associated_reference_ids[*]')) AS item
                FROM associations
            )
            SELECT DISTINCT line_number, association_type,
                CASE WHEN json_type(item) = 'VARCHAR' THEN 'reference_id'
                    ELSE json_extract_string(item, '$.identifier_type') END AS identifier_type,
                CASE WHEN json_type(item) = 'VARCHAR'
                    THEN TRY_CAST(json_extract_string(item, '$') AS UUID)::VARCHAR
                    ELSE json_extract_string(item, '$.identifier') END AS identifier,
                COALESCE(json_type(json_extract(item, '$.identifier')) IN ('UBIGINT', 'BIGINT'),
                    FALSE) AS identifier_is_integer,
                trim(json_extract_string(item, '$.other_identifier_name')) AS other_identifier_name
            FROM items
            """
        ).pl()
    return (
        targets.with_columns(
            target=pl.when(pl.col("identifier_type") == "reference_id")
            .then(pl.col("identifier"))
            .otherwise(normalised_identifier())
        )
        .select(
            "line_number",
            "association_type",
            target_type="identifier_type",
            target="target",
            target_other_name="other_identifier_name",
        )
        .unique()
        .cast(ASSOCIATIONS_SCHEMA)  # type: ignore[arg-type]
    )


def _errors_frame(chunk: pl.DataFrame, verdicts: list[list[dict[str, Any]]]) -> pl.DataFrame:
    problems = chunk.filter(pl.col("problem").is_not_null()).select(
        "line_number",
        code=pl.when(pl.col("problem") == TOO_LONG)
        .then(pl.lit(ErrorCode.LINE_TOO_LONG.value))
        .otherwise(pl.lit(ErrorCode.INVALID_INPUT.value)),
        field=pl.lit(None, pl.String),
        message=pl.when(pl.col("problem") == TOO_LONG)
        .then(pl.lit("the line is longer than the maximum line size"))
        .when(pl.col("problem") == NOT_UTF8)
        .then(pl.lit("the line is not valid UTF-8"))
        .otherwise(pl.lit("the line cannot be read")),
        fatal=pl.lit(True),
    )
    explained = pl.DataFrame(
        [error for errors in verdicts for error in errors], schema=ERRORS_SCHEMA
    )
    return pl.concat([problems.cast(ERRORS_SCHEMA), explained])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The slow path: pydantic explains the lines the screen could not accept.
# ---------------------------------------------------------------------------------------------

_IDENTIFIER_ADAPTER: TypeAdapter[Any] = TypeAdapter(ExternalIdentifier)
_ENHANCEMENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(EnhancementFileInput)
_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


class _JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers which of its keys were repeated."""

    duplicates: list[str]


def _remember_duplicates(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    obj.duplicates = sorted({k for k, _ in pairs if sum(1 for j, _ in pairs if j == k) > 1})
    return obj


def _duplicates(value: Any) -> list[str]:
    return list(getattr(value, "duplicates", []))


def _error(
    line: int, code: ErrorCode, message: str, field: str | None, fatal: bool
) -> dict[str, Any]:
    return {
        "line_number": line,
        "code": code.value,
        "field": field,
        "message": message,
        "fatal": fatal,
    }


_DISCRIMINATORS = ("enhancement_type", "annotation_type", "identifier_type")


def _tags_of(node: dict[str, Any]) -> set[Any]:
    return {node.get(key) for key in _DISCRIMINATORS if key in node}


def _field_path(prefix: str, loc: tuple[Any, ...], item: Any, kind: str) -> str:
    """The error's path in the document, without the union-member names pydantic adds.

    The location is walked through the item itself: a part that is not a key or index of the
    value at that point is a union tag or validator name, and is left out.
    """
    path, node = prefix, item
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and not last and part in _tags_of(node):
            continue  # a union member's tag, even where a field has the same name ("abstract")
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            path, node = f"{path}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or last):
            path = f"{path}.{part}" if path else part
            node = node.get(part)
        elif last and kind in ("missing", "extra_forbidden"):
            path = f"{path}.{part}" if path else str(part)
    return path


def _pydantic_errors(
    line: int, prefix: str, exc: ValidationError, fatal: bool, item: Any
) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors(include_url=False):
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


def _duplicate_error(line: int, field: str, key: str) -> dict[str, Any]:
    return _error(line, ErrorCode.INVALID_JSON_INPUT, f"duplicate key {key!r}", field, False)


def explain_line(line: int, text: str) -> list[dict[str, Any]]:
    """Pydantic's verdict on one line: its errors (empty if the line is valid as it stands)."""
    if nested_too_deep(pl.Series([text])).item():
        message = f"JSON nested more than {MAX_NESTING_DEPTH} levels deep"
        return [_error(line, ErrorCode.INVALID_JSON_INPUT, message, None, True)]
    try:
        document = json.loads(text, object_pairs_hook=_remember_duplicates)
    except (ValueError, RecursionError) as exc:
        return [_error(line, ErrorCode.INVALID_JSON_INPUT, f"invalid JSON: {exc}", None, True)]
    try:
        # Python's json accepts NaN; so does pydantic, but trailing commas it refuses: ask it.
        _ANY_ADAPTER.validate_json(text)
    except ValidationError as exc:
        return _pydantic_errors(line, "", exc, True, None)
    if not isinstance(document, dict):
        kind = type(document).__name__.replace("dict", "object").replace("list", "array")
        return [
            _error(
                line,
                ErrorCode.INVALID_JSON_INPUT,
                f"a line must be a JSON object, not {kind}",
                None,
                True,
            )
        ]
    # Repeated keys are ambiguous (which value did the sender mean?): refused where the format
    # has a schema — the line, each identifier, each enhancement and its content.
    if repeated := _duplicates(document):
        return [
            _error(line, ErrorCode.INVALID_JSON_INPUT, f"duplicate key {repeated[0]!r}", None, True)
        ]
    errors: list[dict[str, Any]] = []
    for key in document:
        if key not in ReferenceFileInput.model_fields:
            errors.append(
                _error(line, ErrorCode.UNKNOWN_FIELD, f"unknown field {key!r}", key, True)
            )
    if "visibility" in document and document["visibility"] not in _VISIBILITIES:
        errors.append(
            _error(
                line,
                ErrorCode.INVALID_FIELD,
                f"visibility must be one of {_VISIBILITIES}",
                "visibility",
                True,
            )
        )
    identifiers = document.get("identifiers")
    if "identifiers" not in document:
        errors.append(
            _error(line, ErrorCode.REQUIRED_FIELD, "identifiers is required", "identifiers", True)
        )
    elif not isinstance(identifiers, list):
        errors.append(
            _error(line, ErrorCode.INVALID_FIELD, "identifiers must be a list", "identifiers", True)
        )
    elif not identifiers:
        errors.append(
            _error(
                line,
                ErrorCode.INVALID_FIELD,
                "at least one identifier is required",
                "identifiers",
                True,
            )
        )
    enhancements = document.get("enhancements", [])
    if not isinstance(enhancements, list):
        errors.append(
            _error(
                line, ErrorCode.INVALID_FIELD, "enhancements must be a list", "enhancements", True
            )
        )
    if errors:
        return errors
    for position, item in enumerate(identifiers):  # type: ignore[arg-type]
        if repeated := _duplicates(item):
            errors.append(_duplicate_error(line, f"identifiers[{position}]", repeated[0]))
            continue
        try:
            _IDENTIFIER_ADAPTER.validate_json(json.dumps(item), strict=True)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(line, f"identifiers[{position}]", exc, False, item))
    for position, item in enumerate(enhancements):
        content = item.get("content") if isinstance(item, dict) else None
        if repeated := _duplicates(item) or _duplicates(content):
            errors.append(_duplicate_error(line, f"enhancements[{position}]", repeated[0]))
            continue
        try:
            _ENHANCEMENT_ADAPTER.validate_json(json.dumps(item), strict=True)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(line, f"enhancements[{position}]", exc, False, item))
    return errors
