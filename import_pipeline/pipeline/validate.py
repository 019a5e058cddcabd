"""Validate: loaded lines → valid identifiers, enhancements and associations, and errors, per line.

Pydantic decides every line with one `validate_json` call against the line model
(`domain.lines.ReferenceFileInput`, or any model derived from it) with each identifier and
enhancement allowed to come back as its raw JSON value when it does not validate. A clean
line costs that one call and the dump of its enhancements' contents; a line with a bad part
is explained part by part (`explain.py`), so that the part fails alone and the rest is kept.
Before it, the fast way (`fast_lines.py`, msgspec on Structs derived from the same model)
takes the lines whose rows it can prove are the ones pydantic would give, at about half the
cost; every other line goes the pydantic way (`validate_chunk(..., fast=False)`: all of them).
Two rules sit on top of the model: JSON nested deeper than `MAX_NESTING_DEPTH` is refused,
and a key repeated in the line, an identifier, an enhancement or its content is refused (JSON
parsers keep the last value silently; which one did the sender mean?).

The stored content of an enhancement is the model's dump of what was sent: normalised
(identifiers, URLs, blank pagination), with the DESTINY SDK's defaults filled in, and without
the keys the model dropped.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

import polars as pl
from pydantic import BaseModel, Field, ValidationError, create_model

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.pipeline.explain import explain_line_level, explain_parts
from import_pipeline.pipeline.fast_lines import FastLines, derive
from import_pipeline.pipeline.frames import ENTRY_PROBLEM, ENTRY_TOO_LONG, NOT_UTF8, TOO_LONG
from import_pipeline.pipeline.line_parts import (
    KEY_END,
    ChunkColumns,
    LineParts,
    add_accepted,
    enhancements_frame,
    error_row,
)

#: Deeper JSON is refused (InvalidJsonInput): pydantic's parser stops near 255 levels and
#: Python's near 1,000; real records nest fewer than 10.
MAX_NESTING_DEPTH = 64


_JSON_STRING = r'"(?:[^"\\]|\\.)*"'


def _item_or_raw(item: Any) -> Any:
    # Left to right: the item's model first; only what it refuses falls through to `Any`
    # (converted to Python), so a clean item costs nothing extra.
    return Annotated[item | Any, Field(union_mode="left_to_right")]


def _lenient(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with the items of its list fields kept raw where they do not validate."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            annotation = list[_item_or_raw(item)]  # type: ignore[misc]
        fields[name] = (annotation, info)
    lenient: type[BaseModel] = create_model(
        f"Lenient{model.__name__}", __config__=model.model_config, **fields
    )
    return lenient


@dataclass(frozen=True)
class LineModel:
    """A batch-line model and its lenient form, which decides every line: the rules of a
    line are the model's, whatever fields it has."""

    strict: type[BaseModel]
    lenient: type[BaseModel]
    fast: FastLines | None = None  # its fast way, if the model has one

    def validate_json(self, text: str) -> Any:
        """The lenient model's verdict on `text` (its validator called directly: the model's
        own `model_validate_json` only wraps it)."""
        return self.lenient.__pydantic_validator__.validate_json(text)


@functools.cache
def line_model(model: type[BaseModel] = ReferenceFileInput) -> LineModel:
    """The `LineModel` of `model` (built once per model)."""
    return LineModel(strict=model, lenient=_lenient(model), fast=derive(model))


@dataclass
class ValidatedChunk:
    lines: pl.DataFrame
    identifiers: pl.DataFrame
    enhancements: pl.DataFrame
    associations: pl.DataFrame
    errors: pl.DataFrame
    slow_path: pl.DataFrame  # the line numbers explained part by part
    fast_path_lines: int = 0  # the lines the fast way took

    @property
    def slow_path_lines(self) -> int:
        return self.slow_path.height


@dataclass
class _ChunkRows(ChunkColumns):
    """The staged frames a chunk produces, gathered column by column. The parts of a clean
    line go straight into them; only a line with a refused part or a repeated key is held in
    a `LineParts` of its own until its verdict is known."""

    slow: list[int] = field(default_factory=list)
    fast: int = 0

    def take_clean(self, line_number: int, line: Any, keys_sent: int) -> LineParts | None:
        """Adds the parts of a validated line that is clean (every part accepted, and the
        line's `keys_sent` all seen once: no key repeated): None. Any other line's accepted
        parts are returned, with the keys the models saw, to be explained."""
        parts = LineParts(keys=len(line.__pydantic_fields_set__))
        identifiers_clean = add_accepted(parts, line_number, "identifiers", line.identifiers)
        enhancements_clean = add_accepted(parts, line_number, "enhancements", line.enhancements)
        # A line needs an identifier left (a derived model may allow none).
        if not (
            identifiers_clean
            and enhancements_clean
            and parts.identifiers
            and parts.keys == keys_sent
        ):
            return parts
        self.lines.add_rows([(line_number, line.visibility)])
        self.add_parts(parts)
        return None

    def commit(self, line_number: int, visibility: str | None, parts: LineParts) -> None:
        """Adds a line and its parts, unless it failed; a line left with no identifier fails."""
        self.lines.add_rows([(line_number, visibility)])
        if parts.errors:
            self.errors.add_rows(parts.errors)
            if any(error[-1] for error in parts.errors):  # fatal
                return
        if not parts.identifiers:
            message = "no valid identifier is left: the line cannot be imported"
            self.errors.add_rows(
                [error_row(line_number, ErrorCode.INVALID_FIELD, message, "identifiers", True)]
            )
            return
        self.add_parts(parts)

    def chunk(self) -> ValidatedChunk:
        # In line order (the fast way's lines were added before the others'); a line's own
        # rows keep theirs.
        def in_line_order(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.sort("line_number", maintain_order=True)

        return ValidatedChunk(
            lines=in_line_order(self.lines.frame()),
            identifiers=in_line_order(self.identifiers.frame()),
            enhancements=in_line_order(enhancements_frame(self.enhancements)),
            associations=in_line_order(self.associations.frame()).unique(maintain_order=True),
            errors=in_line_order(self.errors.frame()),
            slow_path=pl.DataFrame(
                {"line_number": sorted(self.slow)}, schema={"line_number": pl.Int64}
            ),
            fast_path_lines=self.fast,
        )


def _keys_sent(texts: pl.Series) -> list[int]:
    """How many keys each text writes, counted as `":`; -1 for a text that writes a key's
    colon after white space, or spells a quote or a colon as `\u0022` / `\u003a` (which the
    dumps spell `\"` and `:`): such a line is always checked for repeated keys."""
    counted = (
        pl.when(texts.str.contains(r'(?i)"[ \t\r\n]+:|\\u00(?:22|3a)'))
        .then(-1)
        .otherwise(texts.str.count_matches(KEY_END, literal=True))
    )
    return pl.select(counted).to_series().to_list()


def validate_chunk(
    chunk: pl.DataFrame, model: LineModel | None = None, *, fast: bool = True
) -> ValidatedChunk:
    """Validates one loaded chunk (`frames.LOADED_LINES`) against the line model (the
    project's `ReferenceFileInput` unless another is given). `fast`: lines go the fast way
    first (the staged frames are the same either way); False: every line goes pydantic's."""
    model = model or line_model()
    fast_lines = model.fast if fast else None
    rows = _ChunkRows()
    readable = chunk.filter(pl.col("problem").is_null())
    texts = readable["text"]
    with _collector_paused():
        # The fast way first: a line it takes is never nested too deep (`fast_values`), so
        # only the others' texts are searched for depth, which costs more than validating.
        left: list[tuple[int, int, str, int]] = []
        for row, ((line_number, text), keys_sent) in enumerate(
            zip(readable.select("line_number", "text").iter_rows(), _keys_sent(texts), strict=True)
        ):
            if fast_lines is not None and fast_lines.add(line_number, text, keys_sent, rows):
                rows.fast += 1
            else:
                left.append((row, line_number, text, keys_sent))
        deep = nested_too_deep(texts.gather([row for row, *_ in left])).to_list() if left else []
        deep_message = f"JSON nested more than {MAX_NESTING_DEPTH} levels deep"
        for (_, line_number, text, keys_sent), too_deep in zip(left, deep, strict=True):
            if too_deep:
                error = error_row(
                    line_number, ErrorCode.INVALID_JSON_INPUT, deep_message, None, True
                )
                rows.slow.append(line_number)
                rows.commit(line_number, None, LineParts(errors=[error]))
                continue
            _validate_line(model, line_number, text, keys_sent, rows)
    unreadable = chunk.filter(pl.col("problem").is_not_null()).select("line_number", "problem")
    for line_number, problem in unreadable.iter_rows():
        code, message = _problem_error(problem)
        rows.commit(
            line_number, None, LineParts(errors=[error_row(line_number, code, message, None, True)])
        )
    return rows.chunk()


def _problem_error(problem: str) -> tuple[ErrorCode, str]:
    """The error of a line (or export entry) that could not be read."""
    if problem.startswith(ENTRY_TOO_LONG):
        return ErrorCode.LINE_TOO_LONG, problem.removeprefix(ENTRY_TOO_LONG)
    if problem.startswith(ENTRY_PROBLEM):
        return ErrorCode.INVALID_INPUT, problem.removeprefix(ENTRY_PROBLEM)
    return _PROBLEMS.get(problem, (ErrorCode.INVALID_INPUT, "the line cannot be read"))


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


def _validate_line(
    model: LineModel, line_number: int, text: str, keys_sent: int, rows: _ChunkRows
) -> None:
    """Adds the line to `rows`: a clean one straight away, any other explained (part by part
    where the model accepted the line)."""
    try:
        line = model.validate_json(text)
    except ValidationError as exc:
        errors = explain_line_level(line_number, text, exc, model.strict)
        rows.slow.append(line_number)
        rows.commit(line_number, None, LineParts(errors=errors))
        return
    accepted = rows.take_clean(line_number, line, keys_sent)
    if accepted is None:
        return
    # Every key of the text was seen once: none was repeated.
    unrepeated = accepted.keys == keys_sent
    explained = explain_parts(
        line_number, text, accepted, line.identifiers, line.enhancements, unrepeated=unrepeated
    )
    rows.slow.append(line_number)
    rows.commit(line_number, line.visibility, explained)


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
