"""Record folders: reading `record.json`, deciding which batch versions still need importing,
and planning a record's runs (the one function the sensor and the schedule share)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pydantic import ValidationError

from import_pipeline.domain.records import ImportRecordInput
from import_pipeline.errors import LandingError
from import_pipeline.landing.zone import BatchFile, LandingZone, RecordFolder, record_key_problem


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


def folder_refusal(landing: LandingZone, key: str) -> str | None:
    """Why the landing zone refuses the folder named `key` as a record — its name, a link
    out of the zone, its `record.json` (as `read_record` says) — or None when there is no
    such folder, or when it is a valid record."""
    if not key or "/" in key or key in (".", ".."):
        return None
    if not landing.fs.isdir(landing.path_of(key)):
        return None
    if problem := record_key_problem(key):
        return problem
    try:
        return read_record(landing, landing.record_folder(key)).problem
    except LandingError as exc:  # a link that leads out of the zone
        return str(exc)


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
        only: restrict to these batch names.
        known: checksums already read by the caller; the other batches are hashed here. The
            run imports a batch only if the bytes its load reads have this checksum: a file
            that changed meanwhile is left to the run of its new version.
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


@dataclass(frozen=True)
class BatchVersion:
    """A batch file at one content: the identity of what is imported (contract section 2).
    `checksum` is empty when the caller has not read the file (the run reads it)."""

    name: str
    checksum: str = ""


@dataclass(frozen=True)
class RecordPlan:
    """The batch versions of one record to import in one run."""

    record_key: str
    batches: tuple[BatchVersion, ...]

    @property
    def identity(self) -> str:
        """A digest of the batch versions: the same content, the same identity."""
        text = "\n".join(
            f"{b.name}:{b.checksum}" for b in sorted(self.batches, key=lambda b: b.name)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PlannedRecord:
    """A record folder as planning saw it: `record.json` read, and the run it needs (if any)."""

    folder: RecordFolder
    reading: RecordReading
    plan: RecordPlan | None


#: `record.json` files read at once (from object storage each read waits on the network).
_READERS = 16


def plan_record_runs(
    landing: LandingZone,
    folders: Iterable[RecordFolder],
    select: Callable[[list[RecordFolder]], dict[str, list[BatchVersion]]],
) -> list[PlannedRecord]:
    """For each record folder, its `record.json` and, when that is valid, a plan of the batch
    versions `select` picks for it (`select` gets every valid folder at once, so that it can
    read their files together; none picked: no plan). A record whose `record.json` is missing
    or invalid is never planned: its batches wait (contract section 2)."""
    folders = list(folders)
    with ThreadPoolExecutor(_READERS) as pool:
        readings = list(pool.map(lambda folder: read_record(landing, folder), folders))
    valid = [f for f, r in zip(folders, readings, strict=True) if r.record is not None]
    chosen = select(valid)
    planned = []
    for folder, reading in zip(folders, readings, strict=True):
        versions = sorted(chosen.get(folder.key, []), key=lambda b: b.name)
        plan = RecordPlan(folder.key, tuple(versions)) if versions else None
        planned.append(PlannedRecord(folder, reading, plan))
    return planned
