"""The value an error is about, read from the line at the error's field path
(``identifiers[0].identifier``, ``enhancements[1].content.authorship``)."""

from __future__ import annotations

import json
import re
from typing import Any

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
#: What is shown of a value at most; the rest is in `failures`.
SHOWN_CHARS = 300


def value_at(text: str, field: str | None) -> str | None:
    """The JSON of the value at `field` in the line `text` (cut to `SHOWN_CHARS`), or None:
    the line is no JSON object, the error names no field, or the field is not there."""
    if not field:
        return None
    try:
        node: Any = json.loads(text)
    except ValueError:
        return None
    for name, index in _PART.findall(field):
        node = _step(node, name, index)
        if node is _MISSING:
            return None
    return shown(json.dumps(node, ensure_ascii=False))


_MISSING = object()


def _step(node: Any, name: str, index: str) -> Any:
    position = index or (name if name.isdigit() else "")
    if position and isinstance(node, list):
        return node[int(position)] if int(position) < len(node) else _MISSING
    if isinstance(node, dict) and name in node:
        return node[name]
    return _MISSING


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
