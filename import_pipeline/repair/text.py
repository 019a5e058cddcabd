"""A batch's text as its lines, decoded so that encoding them again gives the file's bytes.

A byte the encoding refuses stands as the lone surrogate U+DC00 + byte (as the import reads
it) and is written back as that byte, so a line that failed for its bytes comes out and goes
back exactly. Lines end at ``\\n`` only (the import's count: a lone ``\\r`` ends no line).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, cast

from import_pipeline.domain.formats import GZIP_SUFFIX

_REFUSED = "import_pipeline.repair.refused"
_RESTORED = "import_pipeline.repair.restored"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Bytes of the start of a file its encoding is told from.
HEAD_BYTES = 4096


def _refused_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    refused = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in refused), error.end


def _restored_bytes(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    if any(not 0xDC00 <= ord(char) <= 0xDCFF for char in text):
        raise error
    return bytes(ord(char) - 0xDC00 for char in text), error.end


codecs.register_error(_REFUSED, _refused_bytes)
codecs.register_error(_RESTORED, _restored_bytes)


@dataclass(frozen=True)
class Encoding:
    """How a batch's bytes are its text: a byte order mark kept apart, then a codec."""

    bom: bytes
    codec: str

    def decode(self, data: bytes) -> str:
        return data.decode(self.codec, _REFUSED)

    def encode(self, text: str) -> bytes:
        return text.encode(self.codec, _RESTORED)


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def encoding_of(head: bytes, declared: str | None) -> Encoding:
    """A batch's encoding as the import tells it: a BOM, else `record.json`'s, else UTF-8
    (UTF-16 without a BOM told by its NUL bytes, as the import does)."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return Encoding(bom, codec)
    if declared:
        return Encoding(b"", codecs.lookup(declared).name)
    sample = head[:HEAD_BYTES]
    if len(sample) >= 8 and sample[1::2].count(0) > len(sample) // 4:
        return Encoding(b"", "utf-16-le")
    if len(sample) >= 8 and sample[0::2].count(0) > len(sample) // 4:
        return Encoding(b"", "utf-16-be")
    return Encoding(b"", "utf-8")


def is_gzipped(name: str) -> bool:
    return name.lower().endswith(GZIP_SUFFIX)


@contextmanager
def opened(handle: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    """The batch's bytes, gunzipped when its name ends `.gz`."""
    if not is_gzipped(name):
        yield handle
        return
    with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
        yield cast(IO[bytes], unzipped)


def lines(raw: IO[bytes], encoding: Encoding) -> Generator[str, None, None]:
    """The text's lines after the BOM, each with its ``\\n`` (the last may have none)."""
    raw.read(len(encoding.bom))
    text = io.TextIOWrapper(raw, encoding=encoding.codec, errors=_REFUSED, newline="\n")
    try:
        yield from text
    finally:
        with contextlib.suppress(ValueError):  # already closed by the caller
            text.detach()  # the caller closes the file


def line_end(line: str) -> str:
    """The line's end as the file holds it: ``\\r\\n``, ``\\n`` or none."""
    if line.endswith("\r\n"):
        return "\r\n"
    return "\n" if line.endswith("\n") else ""


def json_text(document: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with each lone surrogate as its
    ``\\udcXX`` escape: printable as UTF-8, and read back by `json.loads` as the same string."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def printable(text: str) -> str:
    """`text` with each byte the encoding refused shown as ``\\xNN``, for a terminal."""
    return _LONE_SURROGATE.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", text)
