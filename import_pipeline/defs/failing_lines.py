"""A record's failing lines as the UI shows them: each line's every error — its field, whole
message and the offending value — in a layout that wraps (no table wider than the panel), and
the commands that give all of them and put them right."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import duckdb

from import_pipeline import repair
from import_pipeline.landing import LandingZone
from import_pipeline.repair.offending import shown, value_at
from import_pipeline.store.failures import FailingLine, failing_lines

#: Failing lines the materialization shows; `failures` gives every one.
SHOWN_LINES = 25


def failures_command(record_key: str) -> str:
    return f"import-pipeline failures {record_key} --out fix.jsonl"


def first_failing(conn: duckdb.DuckDBPyConnection, record_key: str) -> list[FailingLine]:
    return list(itertools.islice(failing_lines(conn, record_key), SHOWN_LINES))


def texts_of(
    landing: LandingZone, record_key: str, lines: list[FailingLine]
) -> dict[tuple[str, int], str]:
    """The text of each line, by (batch, line), where the landing zone still holds the
    version the results are of (a batch changed or gone since shows no text)."""
    found: dict[tuple[str, int], str] = {}
    for (batch, checksum), group in itertools.groupby(lines, lambda x: (x.batch, x.checksum)):
        starts = [(line.line_number, line.next_entry) for line in group]
        try:
            texts = repair.entry_texts(landing, record_key, batch, checksum, starts)
        except (repair.NotRepairable, OSError):
            continue
        found.update({(batch, number): text for number, text in texts.items()})
    return found


def markdown(
    record_key: str,
    lines: list[FailingLine],
    texts: dict[tuple[str, int], str],
    total: int,
    results: int,
) -> str:
    if not total:
        return f"All {results} line(s) imported: no failing line."
    head = [
        f"**{total} of {results} line(s) failed** — the record is not clean. "
        + (f"The first {len(lines)}:" if total > len(lines) else "Each of them:"),
    ]
    body = [_line(line, texts.get((line.batch, line.line_number))) for line in lines]
    tail = [
        "**Every failing line, ready to fix:** "
        f"`{failures_command(record_key)}`; edit each line's `text`, then "
        f"`import-pipeline patch {record_key} fix.jsonl`."
    ]
    return "\n\n".join(head + body + tail)


def _line(line: FailingLine, text: str | None) -> str:
    parts = [f"**{_escaped(line.batch)}, line {line.line_number}** ({line.status})"]
    parts += [_error(error, text) for error in line.errors or _NO_ERROR]
    if text is not None:
        parts.append(f"> line: `{_code(shown(text))}`")
    return "\n\n".join(parts)


_NO_ERROR: Iterable[dict[str, Any]] = ({"code": "", "field": None, "message": ""},)


def _error(error: dict[str, Any], text: str | None) -> str:
    field = error.get("field")
    said = f"- `{_code(field or '(the whole line)')}` · **{error['code']}**: "
    said += _escaped(str(error["message"]))
    value = value_at(text, field) if text is not None else None
    if value is not None:
        said += f"  \n  offending value: `{_code(value)}`"
    return said


def _escaped(text: str) -> str:
    """Markdown's own characters shown as themselves."""
    for char in "\\`*_[]<>|#":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _code(text: str) -> str:
    """Text for inside an inline code span (a backtick would end it)."""
    return text.replace("`", "ˋ").replace("\n", "⏎")
