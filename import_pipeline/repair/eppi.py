"""Where each reference of an EPPI-Reviewer JSON report is, by the number its result has.

A report is one JSON document, often on one line, so its references are not lines: the EPPI
reader finds them as the import does (the same pieces, the same numbering: a reference that
starts on the line of the one before takes the next number), and each is then found in the
document's text, in order, as the characters it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass

from import_pipeline.formats import reader as reader_of
from import_pipeline.formats.convert import ConvertedEntry, numbered, pieces

FORMAT = "eppi_json"


@dataclass(frozen=True)
class Located:
    """A reference's number and its characters in the document (`start` is -1 when its text
    is not the document's own: a reference too long to hold, or one the reader rewrote)."""

    number: int
    start: int
    end: int
    text: str


def locate(document: str) -> dict[int, Located]:
    """Every reference of the report's text, by number."""
    reader = reader_of(FORMAT)
    found: dict[int, Located] = {}
    last, cursor = 0, 0
    for header, piece in pieces(FORMAT, [document]):
        if piece.problem is not None:
            # A reference that is no JSON comes as a piece of its own, its text kept.
            read = [ConvertedEntry(piece.first_line, None, piece.problem, piece.text)]
        else:
            read = [
                ConvertedEntry(e.line_number, None, e.problem, e.text)
                for e in reader.entries(piece, header)
            ]
        for entry in numbered(read, last):
            last = entry.line_number
            start = document.find(entry.text, cursor) if entry.text else -1
            if start < 0:
                found[last] = Located(last, -1, -1, entry.text)
                continue
            cursor = start + len(entry.text)
            found[last] = Located(last, start, cursor, entry.text)
    return found
