"""What one line contributes once validated: its identifiers, enhancements, associations and
errors as rows of the staged frames (`frames`), and how an accepted part becomes those rows
(the stored content of an enhancement, its identity hash, the SDK's defaults)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.identifiers import IdentifierType
from import_pipeline.domain.lines import EnhancementFileInput

#: How a key ends in compact JSON; counted to prove that no key was repeated (see `_keys_seen`).
KEY_END = '":'
_KEY_END = KEY_END.encode()


_OTHER = IdentifierType.OTHER.value


@dataclass
class LineParts:
    """What one line contributes, kept until its verdict is known: rows of `frames.IDENTIFIERS`
    and `frames.ENHANCEMENTS` (position second), and associations by enhancement position."""

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
            parts.keys += _keys_in(item)
    return clean


def _keys_in(value: Any) -> int:
    """The keys of a part the model refused (it comes back as plain JSON values)."""
    if isinstance(value, dict):
        return len(value) + sum(_keys_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(_keys_in(item) for item in value)
    return 0


def _add_identifier(parts: LineParts, line: int, position: int, identifier: BaseModel) -> None:
    parts.keys += len(identifier.__pydantic_fields_set__)
    kind = identifier.identifier_type  # type: ignore[attr-defined]
    name = identifier.other_identifier_name if kind == _OTHER else None  # type: ignore[attr-defined]
    parts.identifiers.append((line, position, kind, identifier.identifier, name))  # type: ignore[attr-defined]


def _add_enhancement(
    parts: LineParts, line: int, position: int, enhancement: EnhancementFileInput
) -> None:
    content = enhancement.content
    kind = content.enhancement_type
    fill = _FILL_DEFAULTS.get(kind)
    defaults = fill(content) if fill else 0
    # `model_dump_json` is this call and a decode, behind a Python wrapper; the hash reads
    # the bytes.
    dumped: bytes = content.__pydantic_serializer__.to_json(content, exclude_unset=True)
    content_json = dumped.decode()
    # The keys of the content and below it, as sent: the dump holds each key once, plus the
    # defaults just filled in.
    parts.keys += len(enhancement.__pydantic_fields_set__) + dumped.count(_KEY_END) - defaults
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
            _identity_hash(kind, enhancement, visibility, dumped),
        )
    )
    if kind == "reference_association":
        for target in content.associated_reference_ids:  # type: ignore[union-attr]
            row: tuple[str, str, str | None]
            if isinstance(target, uuid.UUID):
                row = ("reference_id", str(target), None)
            else:
                name = getattr(target, "other_identifier_name", None)
                row = (target.identifier_type, str(target.identifier), name)
            parts.associations.append((position, (line, content.association_type, *row)))  # type: ignore[union-attr]


def _identity_hash(
    kind: str, enhancement: EnhancementFileInput, visibility: str, content_json: bytes
) -> str:
    """What makes two enhancements exact duplicates, hashed (SHA-256, hex): the fields below
    and the stored content, joined by U+001F."""
    head = (
        f"{kind}\x1f{enhancement.source}\x1f{visibility}\x1f"
        f"{enhancement.robot_version or ''}\x1f{enhancement.processor_version or ''}\x1f"
    )
    digest = hashlib.sha256(head.encode())
    digest.update(content_json)
    return digest.hexdigest()


#: How an accepted item of each of the line's lists is added to its parts.
ADD_PART: dict[str, Callable[[LineParts, int, int, Any], None]] = {
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
