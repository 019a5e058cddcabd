"""A reader run over text: pieces of whole entries → one batch line (or a problem) per entry.

`convert_piece` is what a worker process does with one piece; `convert_text` runs a whole
text in this process (the `convert` command, the tests)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from import_pipeline.formats import reader as reader_of
from import_pipeline.formats.base import Entry, Header, Piece, too_long
from import_pipeline.formats.lines import FileContext, line_text

#: Text a splitter gathers before it cuts a piece, about.
PIECE_CHARS = 16 * 1024 * 1024
#: The longest entry read, by default (a longer one fails alone, its text skipped).
MAX_ENTRY_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True)
class ConvertedEntry:
    """One entry: the batch line it becomes, or why it cannot be read (then `line` is None)."""

    line_number: int
    line: str | None
    problem: str | None
    text: str  # the entry as the file holds it


def convert_piece(
    format_name: str,
    piece: Piece,
    header: Header,
    context: FileContext,
    max_entry_chars: int = MAX_ENTRY_CHARS,
) -> list[ConvertedEntry]:
    """Every entry of a piece as a batch line; an entry that cannot be read, is longer than
    `max_entry_chars`, or whose reading raises, fails alone with its problem."""
    if piece.problem is not None:
        return [ConvertedEntry(piece.first_line, None, piece.problem, piece.text)]
    reader = reader_of(format_name)
    if context.database is None and header.database:
        context = replace(context, database=header.database)  # the file names its database
    converted: list[ConvertedEntry] = []
    for entry in _guarded(reader.entries(piece, header), piece, converted):
        problem = entry.problem
        if problem is None and len(entry.text) > max_entry_chars:
            problem = too_long(max_entry_chars)
        if problem is not None:
            converted.append(ConvertedEntry(entry.line_number, None, problem, entry.text))
            continue
        try:
            work = reader.work(entry, header)
            line = line_text(entry, work, context)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
            problem = f"the entry cannot be read: {exc}"
            converted.append(ConvertedEntry(entry.line_number, None, problem, entry.text))
            continue
        converted.append(ConvertedEntry(entry.line_number, line, None, entry.text))
    return numbered(converted)


def _guarded(
    entries: Iterator[Entry], piece: Piece, converted: list[ConvertedEntry]
) -> Iterator[Entry]:
    """A reader's entries; should reading raise (a reader's bug on some input), the rest of
    the piece fails as one entry instead of the whole batch."""
    try:
        yield from entries
    except Exception as exc:  # noqa: BLE001 - any error of a reader fails its input alone
        line = converted[-1].line_number + 1 if converted else piece.first_line
        yield Entry(line, "", problem=f"the rest of this part of the file cannot be read: {exc!r}")


def numbered(entries: list[ConvertedEntry], after: int = 0) -> list[ConvertedEntry]:
    """The entries with line numbers that increase, each above `after`: an entry that starts on
    the line of the one before (a one-line EPPI report holds every reference on line 1) takes
    the next number, so that every entry keeps one result of its own."""
    renumbered = []
    for entry in entries:
        number = max(entry.line_number, after + 1)
        renumbered.append(
            entry if number == entry.line_number else replace(entry, line_number=number)
        )
        after = number
    return renumbered


def pieces(
    format_name: str,
    texts: Iterable[str],
    *,
    max_entry_chars: int = MAX_ENTRY_CHARS,
    piece_chars: int = PIECE_CHARS,
) -> Iterator[tuple[Header, Piece]]:
    """The pieces of whole entries of a stream of decoded text, with the file's header (read
    from the start of the stream)."""
    reader = reader_of(format_name)
    splitter = None
    header = Header()
    held = ""
    for text in texts:
        if splitter is None:
            held += text
            if len(held) < 65536:
                continue
            header = reader.header(held)
            splitter = reader.splitter(header, max_entry_chars, piece_chars)
            text, held = held, ""
        for piece in splitter.feed(text):
            yield header, piece
    if splitter is None:
        header = reader.header(held)
        splitter = reader.splitter(header, max_entry_chars, piece_chars)
        yield from ((header, piece) for piece in splitter.feed(held))
    yield from ((header, piece) for piece in splitter.finish())


def convert_text(
    format_name: str, text: str, context: FileContext, **limits: int
) -> list[ConvertedEntry]:
    """Every entry of a whole text (line ends ``\\n``), in order."""
    max_entry_chars = limits.get("max_entry_chars", MAX_ENTRY_CHARS)
    converted: list[ConvertedEntry] = []
    for header, piece in pieces(format_name, [text], **limits):
        entries = convert_piece(format_name, piece, header, context, max_entry_chars)
        converted += numbered(entries, converted[-1].line_number if converted else 0)
    return converted
