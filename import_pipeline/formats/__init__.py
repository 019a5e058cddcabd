"""Export formats (contract section 10): one reader per format, each in a module of its own
behind `base.Reader`; `convert.py` runs any of them over a text. The formats themselves (names,
extensions, how a `.txt` is told) are data in `domain/formats.py`."""

from __future__ import annotations

import importlib

from import_pipeline.formats.base import Reader

#: The module of each format's reader (imported when first used: a JSONL import needs none).
_MODULES = {
    "ris": "import_pipeline.formats.ris",
    "wos": "import_pipeline.formats.wos",
    "medline": "import_pipeline.formats.medline",
    "endnote": "import_pipeline.formats.endnote",
    "bibtex": "import_pipeline.formats.bibtex",
    "csv": "import_pipeline.formats.delimited",
    "eppi_json": "import_pipeline.formats.eppi",
}


def reader(name: str) -> Reader:
    """The reader of a format named in `domain.formats.FORMATS` (not `jsonl`)."""
    module = importlib.import_module(_MODULES[name])
    found: Reader = module.READER
    return found


__all__ = ["Reader", "reader"]
