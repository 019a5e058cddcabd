"""The fast way a line is validated (issue 32): msgspec decodes it into the Structs derived
from the line model (`fast_schema.py`), and the line is taken only where its rows are
provably those the pydantic way (`validate.py`) would give, at about half the cost. Any
other line goes the pydantic way, which stays the only source of verdicts, errors and
messages: the fast way only ever says "this one is clean, and these are its rows".

A line goes the pydantic way where msgspec refuses it (bad JSON, an unknown key, a wrong
type or tag, a constraint), where a check of its values fails (a model's validator, a value
not in the form pydantic writes back: `fast_values.py`), where a key may be repeated (the
keys decoded, each once, must add up to the keys the text writes as `validate.py` counts
them; a string holding `":` is not counted apart), or where no identifier is left. The rows
are built as `line_parts.py` builds them: identifiers normalised by the model's validators
(`domain/identifiers.py`), the dump of each content with the same defaults filled in, its
hash (made for the whole chunk: `line_parts.enhancements_frame`), its associations, the
line's visibility — each value appended to its column (`line_parts.ChunkColumns`).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import msgspec
from pydantic import BaseModel

from import_pipeline.pipeline.fast_schema import UNSET, Derived, Unsupported
from import_pipeline.pipeline.line_parts import (
    ASSOCIATION,
    FILLED_DEFAULTS,
    KEY_END,
    OTHER,
    REFERENCE_ID,
    ChunkColumns,
    parents_at,
)

_KEY_END = KEY_END.encode()
_ESCAPED_KEY_END = b"\\" + _KEY_END


class FastLines:
    """The fast way of one line model: `add` a line's rows, or leave it to the pydantic way."""

    def __init__(self, derived: Derived) -> None:
        self._tags = derived.tags
        self._defaults = derived.defaults
        self._decode = msgspec.json.Decoder(derived.line).decode
        self._encode = msgspec.json.Encoder().encode
        self._check = derived.checks.get(derived.line, lambda line: line)
        default = derived.defaults[derived.line].get("visibility")
        visibility = default() if default is not None else None  # None: it is required
        self._visibility = visibility.value if isinstance(visibility, Enum) else visibility

    def add(self, line_number: int, text: str, keys_sent: int, into: ChunkColumns) -> bool:
        """Adds the rows of the line `text`, which writes `keys_sent` keys (-1: unsure), to
        the chunk's columns `into`; False (nothing added): the line goes the pydantic way."""
        if keys_sent < 0:
            return False
        marks = into.marks()
        try:
            if self._add(line_number, text, keys_sent, into):
                return True
        except Exception:  # whatever the fast way is not sure of goes the pydantic way
            pass
        into.take_back(marks)
        return False

    def _add(self, line_number: int, text: str, keys_sent: int, into: ChunkColumns) -> bool:
        line = self._decode(text)
        # The keys decoded are each in the dump of what was decoded once (a repeated key
        # once, its last value): the text writes more where a key is repeated, or where a
        # string holds `":` (`\":` in the dump, and then its count is not the keys').
        decoded = self._encode(line)
        if decoded.count(_KEY_END) != keys_sent or _ESCAPED_KEY_END in decoded:
            return False
        line = self._check(line)
        if not line.identifiers:
            return False
        # Each value straight into its column: no tuple per row.
        numbers, positions, kinds, values, names = into.identifiers.columns
        for position, identifier in enumerate(line.identifiers):
            kind = self._tags[type(identifier)]
            numbers.append(line_number)
            positions.append(position)
            kinds.append(kind)
            values.append(identifier.identifier)
            names.append(identifier.other_identifier_name if kind == OTHER else None)
        if line.enhancements is not UNSET:
            for position, enhancement in enumerate(line.enhancements):
                self._enhancement(line_number, position, enhancement, into)
        numbers, visibilities = into.lines.columns
        numbers.append(line_number)
        visibilities.append(self._visibility if line.visibility is UNSET else line.visibility)
        return True

    def _enhancement(self, line: int, position: int, enhancement: Any, into: ChunkColumns) -> None:
        """Adds an enhancement's row and its associations (as `line_parts` adds them)."""
        content = enhancement.content
        kind = self._tags[type(content)]
        path = FILLED_DEFAULTS.get(kind)
        if path:
            self._fill(content, path)
        robot, processor = enhancement.robot_version, enhancement.processor_version
        numbers, positions, kinds, sources, visibilities, robots, processors, contents = (
            into.enhancements.columns
        )
        numbers.append(line)
        positions.append(position)
        kinds.append(kind)
        sources.append(enhancement.source)
        visibilities.append(enhancement.visibility)
        robots.append(None if robot is UNSET else robot)
        processors.append(None if processor is UNSET else processor)
        contents.append(self._encode(content))
        if kind == ASSOCIATION:
            rows = []
            for target in content.associated_reference_ids:
                if type(target) is str:
                    row: tuple[Any, ...] = (REFERENCE_ID, target, None)
                else:
                    name = getattr(target, "other_identifier_name", None)
                    row = (self._tags[type(target)], target.identifier, name)
                rows.append((line, content.association_type, *row))
            into.associations.add_rows(rows)

    def _fill(self, node: Any, path: tuple[str, ...]) -> None:
        """`line_parts.fill_defaults`, on Structs."""
        name = path[-1]
        for parent in parents_at(node, path, _is_struct):
            if getattr(parent, name) is UNSET:
                setattr(parent, name, self._defaults[type(parent)][name]())


def _is_struct(item: Any) -> bool:
    return isinstance(item, msgspec.Struct)


def derive(model: type[BaseModel]) -> FastLines | None:
    """The fast way of a line model, or None where the model has anything its derivation
    does not translate (`fast_schema.Unsupported`)."""
    try:
        return FastLines(Derived(model))
    except (Unsupported, TypeError, ValueError):  # msgspec's or inspect's refusals too
        return None
