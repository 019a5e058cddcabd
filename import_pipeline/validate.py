"""Validate: loaded lines → valid identifiers and enhancements, and errors, per line.

Vectorised checks decide: the screen compiled from the pydantic models (`screen.py`) checks
whole lines in DuckDB, one `json_transform` per line, and the identifier expressions
(`identifiers.py`) normalise. Only lines the screen cannot accept go to pydantic, one at a
time, which gives the final verdict and the precise messages. Every line is also shredded
(from its own text) into identifiers and enhancements, so that the parts of a failing line
pydantic does not name are kept: an invalid identifier or enhancement fails alone.
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
from import_pipeline.screen import (
    KEY_END,
    NULL_STAND_IN,
    NULL_VALUE,
    CompiledScreen,
    compile_screen,
    sql_literal,
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
    slow_path: pl.DataFrame  # the line numbers pydantic explained

    @property
    def slow_path_lines(self) -> int:
        return self.slow_path.height


#: Identifier values are normalised by `identifiers.py` after the screen (its twin of the
#: models' validator), so the screen leaves them to the caller.
_CALLER_CHECKED = {"$.identifiers[*].identifier"}


@cache
def _line_screen() -> CompiledScreen:
    return compile_screen(ReferenceFileInput, _CALLER_CHECKED)


#: What every line is shredded into (from its own text, whatever the screen says).
_PARTS_STRUCTURE = json.dumps(
    {
        "visibility": "JSON",
        "identifiers": [{k: "JSON" for k in _OTHER_IDENTIFIER_KEYS}],
        "enhancements": [
            {k: "JSON" for k in ("source", "visibility", "robot_version", "processor_version")}
            | {"content": "JSON"}
        ],
    }
)


def _string(leaf: str) -> str:
    """SQL: the string a JSON leaf holds (NULL unless it is a JSON string)."""
    leaf = f"({leaf})::VARCHAR"
    return (
        f"CASE WHEN NOT starts_with({leaf}, '\"') THEN NULL "
        f"WHEN contains({leaf}, '\\') THEN json_extract_string({leaf}, '$') "
        f"ELSE substr({leaf}, 2, length({leaf}) - 2) END"
    )


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


def _screen_and_shred(engine: duckdb.DuckDBPyConnection, chunk: pl.DataFrame) -> pl.DataFrame:
    """Per readable line: whether the screen accepts it, and its parts (see `_PARTS_STRUCTURE`)."""
    screen = _line_screen()
    text = pl.col("text")
    readable = chunk.filter(pl.col("problem").is_null()).select(
        "line_number",
        "text",
        key_ends=text.str.count_matches(KEY_END),
        # Texts DuckDB reads but strict JSON refuses, or that hold the null stand-in, are left
        # to pydantic (a trailing comma in a string merely costs its line the slow path).
        screenable=~text.str.contains(_MAYBE_TRAILING_COMMA)
        & ~text.str.contains(NULL_STAND_IN, literal=True),
        substituted=text.str.replace_all(NULL_VALUE, ":${1}" + NULL_STAND_IN),
    )
    with _registered(engine, "chunk", readable):
        # Straight from the registered frame, no copy of the texts in DuckDB. `json_valid`
        # first (a fraction of a transform's cost): json_transform raises on text that is not
        # JSON.
        engine.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE screen_lines AS
            SELECT line_number, key_ends,
                json_transform(substituted, {sql_literal(screen.structure)}) AS s
            FROM chunk WHERE screenable AND json_valid(substituted)
            """
        )
        # The parts stay in DuckDB (`screen_parts`) for `_identifiers` and `_enhancements`.
        engine.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE screen_parts AS
            SELECT line_number, json_transform(text, {sql_literal(_PARTS_STRUCTURE)}) AS p
            FROM chunk WHERE json_valid(text)
            """
        )
        try:
            return engine.sql(
                f"""
                WITH judged AS ({screen.verdicts_sql("screen_lines")})
                SELECT chunk.line_number,
                    COALESCE(judged.ok AND judged.keys = l.key_ends, FALSE) AS screened,
                    COALESCE({_string("p.visibility")}, 'public') AS visibility
                FROM chunk
                LEFT JOIN judged USING (line_number)
                LEFT JOIN screen_lines l USING (line_number)
                LEFT JOIN screen_parts USING (line_number)
                ORDER BY chunk.line_number
                """
            ).pl()
        finally:
            engine.execute("DROP TABLE screen_lines")


def screened_lines(engine: duckdb.DuckDBPyConnection, texts: list[str]) -> list[bool]:
    """For each text, whether the screen alone accepts it as a valid line (no pydantic)."""
    chunk = pl.DataFrame(
        {"line_number": range(1, len(texts) + 1), "text": texts, "problem": None},
        schema={"line_number": pl.Int64, "text": pl.String, "problem": pl.String},
    )
    return _screen(engine, chunk)[0]["screened"].to_list()


#: Text screened per DuckDB pass: the transformed structs are several times the text's size.
SCREEN_SLICE_BYTES = 32 * 1024 * 1024


def _screen(
    engine: duckdb.DuckDBPyConnection, chunk: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The readable lines (`screened`: accepted without pydantic), their identifiers and their
    enhancements, a slice of at most `SCREEN_SLICE_BYTES` of text at a time."""
    deep = chunk.filter(nested_too_deep(chunk["text"].fill_null("")))["line_number"]
    slice_of = (pl.col("text").str.len_bytes().fill_null(0).cum_sum() // SCREEN_SLICE_BYTES).alias(
        "slice"
    )
    lines, identifiers, enhancements = [], [], []
    for part in chunk.with_columns(slice_of).partition_by("slice", include_key=False):
        lines.append(_screen_and_shred(engine, part))
        identifiers.append(_identifiers(engine))
        enhancements.append(_enhancements(engine))
        engine.execute("DROP TABLE screen_parts")
    identifier_frame = pl.concat(identifiers).with_columns(normalised=normalised_identifier())
    # The identifiers' validator has its twin here: an accepted line's identifiers normalise.
    refused = pl.concat(
        [deep, identifier_frame.filter(pl.col("normalised").is_null())["line_number"]]
    ).implode()
    line_frame = pl.concat(lines).with_columns(
        screened=pl.col("screened") & ~pl.col("line_number").is_in(refused)
    )
    return line_frame, identifier_frame, pl.concat(enhancements)


def _items_of(parts_list: str, alias: str) -> str:
    """A CTE `items`: one row per element (`alias`) of a list of `screen_parts`, with its position."""
    return f"""
        items AS (
            SELECT line_number, unnest(p.{parts_list}) AS {alias},
                generate_subscripts(p.{parts_list}, 1) - 1 AS position
            FROM screen_parts WHERE p.{parts_list} IS NOT NULL
        )"""


def _identifiers(engine: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per identifier of the lines in `screen_parts`."""
    return engine.sql(
        f"""
            WITH {_items_of("identifiers", "i")}
            SELECT line_number, position,
                {_string("i.identifier_type")} AS identifier_type,
                COALESCE({_string("i.identifier")}, i.identifier::VARCHAR) AS identifier,
                regexp_full_match(i.identifier::VARCHAR, '-?[0-9]+') AS identifier_is_integer,
                trim({_string("i.other_identifier_name")}) AS other_identifier_name
            FROM items
            """
    ).pl()


def _enhancements(engine: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per enhancement of the lines in `screen_parts`."""
    return engine.sql(
        f"""
            WITH {_items_of("enhancements", "e")}, parts AS (
                SELECT line_number, position,
                    json_extract_string(e.content, '$.enhancement_type') AS enhancement_type,
                    {_string("e.source")} AS source,
                    COALESCE({_string("e.visibility")}, 'public') AS visibility,
                    {_string("e.robot_version")} AS robot_version,
                    {_string("e.processor_version")} AS processor_version,
                    e.content::VARCHAR AS content
                FROM items
            )
            SELECT *, sha256(concat_ws(chr(31), enhancement_type, source, visibility,
                    COALESCE(robot_version, ''), COALESCE(processor_version, ''), content))
                AS content_hash
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
    lines, identifiers, enhancements = _screen(engine, chunk)
    screened_out = lines.filter(~pl.col("screened")).select("line_number")
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
        lines.join(fatal_lines, on="line_number", how="anti")
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
        slow_path=texts.select("line_number"),
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
