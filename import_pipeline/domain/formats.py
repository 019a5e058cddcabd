"""The formats a batch file may be in (contract section 10), as data: the name `record.json`'s
"format" and `convert --format` use, the extensions that tell it, and for `.txt` files the
first lines that tell it from the content."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchFormat:
    name: str
    title: str  # as a sentence names it
    extensions: tuple[str, ...]
    #: A `.txt` file is this format when its first non-blank line matches (in `SNIFF_ORDER`).
    sniff: str | None = None


FORMATS: dict[str, BatchFormat] = {
    f.name: f
    for f in (
        BatchFormat("jsonl", "DESTINY JSONL", (".jsonl",)),
        BatchFormat("ris", "RIS", (".ris",), sniff=r"^TY {1,2}- "),
        BatchFormat("medline", "PubMed/MEDLINE", (".nbib", ".medline"), sniff=r"^[A-Z]{2,4} ?- \S"),
        BatchFormat("bibtex", "BibTeX", (".bib",)),
        BatchFormat("endnote", "EndNote tagged", (".enw", ".enl"), sniff=r"^%[0-9A-Z] "),
        # A Web of Science "savedrecs.txt" is tab-delimited under its tags or their names.
        BatchFormat("csv", "CSV", (".csv", ".tsv"), sniff=r"^(?:PT|Publication Type)\t"),
        BatchFormat("eppi_json", "EPPI-Reviewer JSON", (".json",)),
        BatchFormat("wos", "Web of Science tagged", (), sniff=r"^(?:FN |VR |PT [A-Z]$)"),
    )
}

#: The order in which a `.txt` file's first line is tried: the stricter patterns first.
SNIFF_ORDER = ("ris", "csv", "wos", "endnote", "medline")
#: Extensions whose format is read from the content.
SNIFFED_EXTENSIONS = (".txt",)
GZIP_SUFFIX = ".gz"

#: The `other` identifier an entry with no trusted identifier is imported under. Unlike other
#: `other` identifiers it is matched (contract section 10: the same entry dropped again is the
#: same reference), so its name is reserved.
ENTRY_KEY_NAME = "import_pipeline.entry"


def batch_extensions() -> tuple[str, ...]:
    """Every file name ending a batch may have, gzipped ones included."""
    plain = [ext for f in FORMATS.values() for ext in f.extensions] + list(SNIFFED_EXTENSIONS)
    return tuple(plain + [ext + GZIP_SUFFIX for ext in plain])


def format_of_name(name: str) -> str | None:
    """The format a batch's name tells, None for `.txt` (read from its content) or unknown."""
    bare = name.lower().removesuffix(GZIP_SUFFIX)
    for batch_format in FORMATS.values():
        if bare.endswith(batch_format.extensions):
            return batch_format.name
    return None


#: Lines before the first record that tell nothing of the format (JSTOR's and ProQuest's RIS).
_HEADER_LINE = re.compile(r"(?i)^(?:provider|database|content):")


def sniff(head: str) -> str | None:
    """The format the first non-blank lines of a text tell, or None."""
    lines = [
        line
        for line in head.lstrip("\ufeff").splitlines()[:40]
        if line.strip() and not _HEADER_LINE.match(line)
    ]
    if not lines:
        return None
    for name in SNIFF_ORDER:
        pattern = FORMATS[name].sniff
        if pattern is not None and re.match(pattern, lines[0]):
            return name
    return None
