"""Where an entry is in its batch's lines: from the line its result names up to the line the
next entry starts on, without the blank lines before it.

A JSONL line is an entry of one line. An export's entry is found from the results alone (every
entry has one, at the line it starts on), so no reader runs: the text between two entries
(a RIS file's stray line, a BibTeX comment) belongs to the entry before it and is given, and
written back, with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from import_pipeline.repair.text import line_end


@dataclass(frozen=True)
class Span:
    """Lines `start` up to `stop` (exclusive; None: to the end of the file)."""

    start: int
    stop: int | None


@dataclass(frozen=True)
class EntryText:
    """An entry's text as the file holds it, without its last line end (`end`) and the blank
    lines after it (`tail`): text + end + tail are the span's lines."""

    span: Span
    text: str
    end: str
    tail: str


def entry_of(span: Span, lines: list[str]) -> EntryText:
    kept = len(lines)
    while kept > 1 and not lines[kept - 1].strip():
        kept -= 1
    last = lines[kept - 1] if lines else ""
    end = line_end(last)
    text = "".join(lines[: kept - 1]) + last[: len(last) - len(end)]
    return EntryText(span, text, end, "".join(lines[kept:]))


#: What walking a batch's lines gives: a line outside every span, or an entry.
Walked = tuple[str, None] | tuple[None, EntryText]


def walk(lines: Iterator[str], spans: list[Span]) -> Iterator[Walked]:
    """Every line of a batch, the lines of each span (sorted, disjoint) gathered as one
    entry. A span the file does not reach is left out (the caller counts what it got)."""
    numbered = enumerate(lines, start=1)
    for span in spans:
        gathered: list[str] = []
        for number, line in numbered:
            if number < span.start:
                yield line, None
                continue
            gathered.append(line)
            if span.stop is not None and number >= span.stop - 1:
                break
        if gathered:
            yield None, entry_of(span, gathered)
    for _, line in numbered:
        yield line, None


def entries(lines: Iterator[str], spans: list[Span]) -> Iterator[EntryText]:
    """The entries of `spans`, in order; reading stops after the last."""
    last = spans[-1].start if spans else 0
    for _, entry in walk(lines, spans):
        if entry is not None:
            yield entry
            if entry.span.start == last:
                return


def spans_of(starts: list[tuple[int, int | None]], one_line: bool) -> list[Span]:
    """Spans of entries given (start, the next entry's start or None): a JSONL entry is its
    line."""
    return [Span(start, start + 1 if one_line else stop) for start, stop in starts]
