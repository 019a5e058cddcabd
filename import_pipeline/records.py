"""Record folders: reading `record.json` and deciding which batches still need importing."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from import_pipeline.landing import BatchFile, LandingZone, RecordFolder
from import_pipeline.models import ImportRecordInput


@dataclass(frozen=True)
class RecordReading:
    """`record.json` read and validated, or the one-line reason it blocks the record."""

    record: ImportRecordInput | None
    problem: str | None


def read_record(landing: LandingZone, folder: RecordFolder) -> RecordReading:
    if folder.record_path is None:
        return RecordReading(None, f"record {folder.key!r} has no record.json: its batches wait")
    try:
        text = landing.read_text(folder.record_path)
    except FileNotFoundError:
        return RecordReading(None, f"record {folder.key!r}: record.json disappeared")
    except UnicodeDecodeError:
        return RecordReading(None, f"record {folder.key!r}: record.json is not UTF-8")
    try:
        json.loads(text)
    except ValueError as exc:
        return RecordReading(None, f"record {folder.key!r}: record.json is not valid JSON ({exc})")
    try:
        return RecordReading(ImportRecordInput.model_validate_json(text), None)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        return RecordReading(None, f"record {folder.key!r}: record.json is invalid ({reasons})")


def pending_batches(
    landing: LandingZone,
    folder: RecordFolder,
    imported: dict[str, str],
    only: set[str] | None = None,
    known: dict[str, str] | None = None,
) -> list[tuple[BatchFile, str]]:
    """The batches of `folder` whose current content has not been imported yet, with the
    checksum of that content.

    Args:
        imported: batch name → checksum of the version already imported.
        only: restrict to these batch names. Their current content is imported even if it
            changed since the sensor saw it; a later tick sees the change and finds it done.
        known: checksums already read by the caller; the other batches are hashed here. The
            load stage records the checksum of the bytes it actually imports either way.
    """
    pending = []
    for batch in folder.batches:
        if only is not None and batch.name not in only:
            continue
        checksum = (known or {}).get(batch.name)
        if not checksum:
            try:
                checksum = landing.checksum(batch.path)
            except FileNotFoundError:
                continue
        if imported.get(batch.name) != checksum:
            pending.append((batch, checksum))
    return pending
