"""Fixing what failed (contract section 11): a record's failing entries read out of their
batch files exactly as the files hold them, and a batch written again with some entries
replaced and every other byte unchanged. Beside the data path: it reads the landing zone and
the results, never the import's stages."""

from import_pipeline.repair.batches import (
    BatchForm,
    EntryNotReplaceable,
    form_of,
    head_of,
    texts,
    write_patched,
)
from import_pipeline.repair.entries import Span, spans_of
from import_pipeline.repair.landed import (
    NotRepairable,
    batch_form,
    checked_version,
    entry_texts,
)
from import_pipeline.repair.text import json_text

__all__ = [
    "BatchForm",
    "EntryNotReplaceable",
    "NotRepairable",
    "Span",
    "batch_form",
    "checked_version",
    "entry_texts",
    "form_of",
    "head_of",
    "json_text",
    "spans_of",
    "texts",
    "write_patched",
]
