"""What one line contributes once validated: its identifiers, enhancements, associations and
errors as rows of the staged frames (`frames`), and how an accepted part becomes those rows
(the stored content of an enhancement, its identity hash, the SDK's defaults)."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.identifiers import IdentifierType
from import_pipeline.domain.lines import EnhancementFileInput
from import_pipeline.pipeline.frames import ASSOCIATIONS, ENHANCEMENTS, ERRORS, IDENTIFIERS, LINES

#: How a key ends in compact JSON; counted to prove that no key was repeated (see `_keys_seen`).
KEY_END = '":'
_KEY_END = KEY_END.encode()


OTHER = IdentifierType.OTHER.value
#: The content type whose targets are association rows, and the target type of a reference id.
ASSOCIATION = "reference_association"
REFERENCE_ID = "reference_id"


@dataclass
class LineParts:
    """What one line contributes, kept until its verdict is known: rows of `frames.IDENTIFIERS`
    and `STAGED_ENHANCEMENTS` (position second), and associations by enhancement position."""

    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    enhancements: list[tuple[Any, ...]] = field(default_factory=list)
    associations: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)  # rows of frames.ERRORS
    keys: int = 0  # the keys the models saw (see `_validate_line`)


def error_row(
    line: int, code: ErrorCode, message: str, field: str | None, fatal: bool
) -> tuple[Any, ...]:
    """A row of `frames.ERRORS`."""
    return (line, code.value, field, message, fatal)


def add_accepted(parts: LineParts, line: int, name: str, items: list[Any]) -> bool:
    """Adds the items of the line's list `name` the model accepted and counts the keys of those
    it refused (they come back raw); whether it accepted them all."""
    add = ADD_PART[name]
    clean = True
    for position, item in enumerate(items):
        if isinstance(item, BaseModel):
            add(parts, line, position, item)
        else:
            clean = False
            parts.keys += keys_in(item)
    return clean


def keys_in(value: Any) -> int:
    """The keys of a part the model refused (it comes back as plain JSON values)."""
    if isinstance(value, dict):
        return len(value) + sum(keys_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(keys_in(item) for item in value)
    return 0


def _add_identifier(parts: LineParts, line: int, position: int, identifier: BaseModel) -> None:
    parts.keys += len(identifier.__pydantic_fields_set__)
    kind = identifier.identifier_type  # type: ignore[attr-defined]
    name = identifier.other_identifier_name if kind == OTHER else None  # type: ignore[attr-defined]
    parts.identifiers.append((line, position, kind, identifier.identifier, name))  # type: ignore[attr-defined]


def _add_enhancement(
    parts: LineParts, line: int, position: int, enhancement: EnhancementFileInput
) -> None:
    content = enhancement.content
    kind = content.enhancement_type
    defaults = fill_defaults(content, FILLED_DEFAULTS.get(kind))
    # `model_dump_json` is this call and a decode, behind a Python wrapper; the hash reads
    # the bytes.
    dumped: bytes = content.__pydantic_serializer__.to_json(content, exclude_unset=True)
    # The keys of the content and below it, as sent: the dump holds each key once, plus the
    # defaults just filled in.
    parts.keys += len(enhancement.__pydantic_fields_set__) + dumped.count(_KEY_END) - defaults
    visibility: str = enhancement.visibility  # its value: `use_enum_values`
    parts.enhancements.append(
        enhancement_row(
            line,
            position,
            kind,
            enhancement.source,
            visibility,
            enhancement.robot_version,
            enhancement.processor_version,
            dumped,
        )
    )
    if kind == ASSOCIATION:
        for target in content.associated_reference_ids:  # type: ignore[union-attr]
            row: tuple[str, str, str | None]
            if isinstance(target, uuid.UUID):
                row = (REFERENCE_ID, str(target), None)
            else:
                name = getattr(target, "other_identifier_name", None)
                row = (target.identifier_type, str(target.identifier), name)
            parts.associations.append((position, (line, content.association_type, *row)))  # type: ignore[union-attr]


def enhancement_row(
    line: int,
    position: int,
    kind: str,
    source: str,
    visibility: str,
    robot_version: str | None,
    processor_version: str | None,
    content_json: bytes,
) -> tuple[Any, ...]:
    """A row of `STAGED_ENHANCEMENTS`: the enhancement and its stored content (the dump of
    what was sent, `content_json`); its hash is added to a chunk's rows at once
    (`enhancements_frame`)."""
    return (
        line, position, kind, source, visibility, robot_version, processor_version, content_json
    )  # fmt: skip


#: The enhancements of a chunk as they are gathered: `frames.ENHANCEMENTS` with the content
#: as the bytes of its dump, and without its hash (both are made for the whole chunk).
STAGED_ENHANCEMENTS: dict[str, Any] = {
    **{name: kind for name, kind in ENHANCEMENTS.items() if name != "content_hash"},
    "content": pl.Binary,
}


class Columns:
    """The rows of one staged frame, gathered column by column (a list per column of
    `schema`): the fast way appends each value to its column, with no tuple per row."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.columns: tuple[list[Any], ...] = tuple([] for _ in schema)

    def __len__(self) -> int:
        return len(self.columns[0])

    def add_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for row in rows:
            for column, value in zip(self.columns, row, strict=True):
                column.append(value)

    def truncate(self, length: int) -> None:
        """Takes back every row after the first `length`."""
        for column in self.columns:
            del column[length:]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(dict(zip(self.schema, self.columns, strict=True)), schema=self.schema)


@dataclass
class ChunkColumns:
    """The staged frames of one chunk as they are gathered, column by column."""

    lines: Columns = field(default_factory=lambda: Columns(LINES))
    identifiers: Columns = field(default_factory=lambda: Columns(IDENTIFIERS))
    enhancements: Columns = field(default_factory=lambda: Columns(STAGED_ENHANCEMENTS))
    associations: Columns = field(default_factory=lambda: Columns(ASSOCIATIONS))
    errors: Columns = field(default_factory=lambda: Columns(ERRORS))

    def marks(self) -> tuple[int, int, int, int]:
        """Where each frame a line adds to ends now (`take_back`)."""
        return (len(self.lines), len(self.identifiers), len(self.enhancements),
                len(self.associations))  # fmt: skip

    def take_back(self, marks: tuple[int, int, int, int]) -> None:
        """Takes back every row added since `marks`."""
        for columns, length in zip(
            (self.lines, self.identifiers, self.enhancements, self.associations), marks, strict=True
        ):
            columns.truncate(length)

    def add_parts(self, parts: LineParts) -> None:
        """Adds a line's identifiers, enhancements and associations."""
        self.identifiers.add_rows(parts.identifiers)
        self.enhancements.add_rows(parts.enhancements)
        self.associations.add_rows(row for _, row in parts.associations)


def enhancements_frame(staged: Columns) -> pl.DataFrame:
    """The chunk's `frames.ENHANCEMENTS` from its `STAGED_ENHANCEMENTS`: each content as text
    and the hash that makes two enhancements exact duplicates (SHA-256, hex, of the fields
    before the content and the content, joined by U+001F). Python's `hashlib` here, not
    DuckDB's `sha256` over the column, which was slower (3.2 against 2.0 µs an enhancement)."""
    _, _, kinds, sources, visibilities, robots, processors, contents = staged.columns
    sha256 = hashlib.sha256
    hashes = [
        sha256(
            f"{kind}\x1f{source}\x1f{visibility}\x1f{robot or ''}\x1f{processor or ''}\x1f".encode()
            + content
        ).hexdigest()
        for kind, source, visibility, robot, processor, content in zip(
            kinds, sources, visibilities, robots, processors, contents, strict=True
        )
    ]
    return (
        staged.frame()
        .with_columns(
            pl.col("content").cast(pl.String), content_hash=pl.Series(hashes, dtype=pl.String)
        )
        .select(list(ENHANCEMENTS))
    )


#: How an accepted item of each of the line's lists is added to its parts.
ADD_PART: dict[str, Callable[[LineParts, int, int, Any], None]] = {
    "identifiers": _add_identifier,
    "enhancements": _add_enhancement,
}


#: The DESTINY SDK's non-null defaults, by content type: the path (fields, through lists) of
#: the field set to its default where the line left it out, so that the stored content
#: carries it (a dump of what was sent does not). Read by both ways a line is validated.
FILLED_DEFAULTS: dict[str, tuple[str, ...]] = {
    "full_text": ("mime_type",),
    "raw": ("metadata",),
    "annotation": ("annotations", "data"),
}


def parents_at(node: Any, path: tuple[str, ...], is_node: Callable[[Any], bool]) -> list[Any]:
    """The nodes holding the last field of `path` below `node`: each step's value, or each
    item of a list value, that `is_node` (a model, a Struct) — for pydantic models and the fast
    way's Structs alike."""
    nodes = [node]
    for step in path[:-1]:
        values = [getattr(parent, step) for parent in nodes]
        nodes = [
            item
            for value in values
            for item in (value if isinstance(value, list) else [value])
            if is_node(item)
        ]
    return nodes


def fill_defaults(node: Any, path: tuple[str, ...] | None) -> int:
    """Sets the field at `path` below the model `node` to its default wherever the line left
    it out; returns how many it set."""
    if not path:
        return 0
    nodes = parents_at(node, path, lambda item: item is not None)
    name, filled = path[-1], 0
    model: Any = None
    default: Callable[[], Any] = dict
    for parent in nodes:
        if name not in parent.__pydantic_fields_set__:
            if type(parent) is not model:  # a list's items are mostly of one model
                model = type(parent)
                default = default_of(model, name)
            setattr(parent, name, default())
            filled += 1
    return filled


@functools.cache
def default_of(model: type[BaseModel], name: str) -> Callable[[], Any]:
    """What gives the default of a model's field, as pydantic's `get_default` does (which
    looks at the factory's signature on every call: a tenth of the time of a long line)."""
    info = model.model_fields[name]
    if info.default_factory is not None and not info.default_factory_takes_validated_data:
        return info.default_factory  # type: ignore[return-value]
    return functools.partial(info.get_default, call_default_factory=True)
