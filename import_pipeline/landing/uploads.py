"""Uploads into the landing zone (`import-pipeline ingest`): what a record folder or one batch
file puts where, and the rules that keep two uploads of one name from replacing each other.

A batch is named by (record, file name): a second upload of the same name is a new version
that replaces the first. So while an upload of a name is under way (copied, not yet imported),
another upload of that name on this machine is refused (`exclusive`, a lock file per name).
An upload that would replace content someone dropped into the zone that is not imported yet
is refused too (`replaced_unimported`). Across machines, the checksum the upload copied is the
version its run imports: a file replaced in between is not imported as the upload's, and the
upload says so.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from import_pipeline.errors import LandingError
from import_pipeline.landing.zone import (
    FINALISED_MARKER,
    RECORD_FILE,
    LandingZone,
    batch_name_problem,
    escaped,
    record_key_problem,
)

_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """What an upload copies into record `record_key`: its record.json (if it brings one),
    its batch files as (local file, batch name), and the `_finalised` marker (if it has one)."""

    record_key: str
    record_file: Path | None
    batches: tuple[tuple[Path, str], ...]
    finalised: Path | None = None

    @property
    def names(self) -> list[str]:
        return [name for _, name in self.batches]


def plan_upload(path: Path, record: str | None, landing: LandingZone) -> Upload:
    """What uploading `path` (a record folder, or one batch file) into record `record` (its
    folder's name unless given) copies; refuses what cannot be uploaded (`LandingError`)."""
    if not path.exists():
        raise LandingError(f"{path} does not exist")
    if path.is_dir():
        return _folder_upload(path, record)
    return _file_upload(path, record, landing)


def _checked_key(key: str) -> str:
    if problem := record_key_problem(key):
        raise LandingError(problem)
    return key


def _folder_upload(path: Path, record: str | None) -> Upload:
    key = _checked_key(record or path.name)
    if not (path / RECORD_FILE).is_file():
        raise LandingError(f"{path} has no {RECORD_FILE}: a record folder needs one")
    batches = tuple(
        (item, item.name)
        for item in sorted(path.iterdir())
        if item.is_file()
        and item.name not in (RECORD_FILE, FINALISED_MARKER)
        and not batch_name_problem(item.name)
    )
    marker = path / FINALISED_MARKER
    return Upload(key, path / RECORD_FILE, batches, marker if marker.exists() else None)


def _file_upload(path: Path, record: str | None, landing: LandingZone) -> Upload:
    if not path.is_file():  # a FIFO would make reading it wait for ever
        raise LandingError(f"{path} is not a regular file")
    if problem := batch_name_problem(path.name):
        raise LandingError(
            problem if problem != "in progress" else f"{path.name} is not a batch name"
        )
    beside = path.parent / RECORD_FILE
    if record is None and beside.is_file():
        return Upload(_checked_key(path.parent.name), beside, ((path, path.name),))
    if record is None:
        raise LandingError(
            f"which record is {path.name} for? pass --record KEY (or keep it beside its record.json)"
        )
    key = _checked_key(record)
    if landing.record_folder(key).record_path is None:
        raise LandingError(
            f"record {key!r} has no record.json in the landing zone; ingest its folder"
        )
    return Upload(key, None, ((path, path.name),))


def local_checksum(path: Path) -> str:
    """SHA-256 of a local file's bytes: the batch version an upload of it imports."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def exclusive(upload: Upload, landing: LandingZone, locks: Path) -> Iterator[None]:
    """Holds, until the block ends, one lock per batch name of `upload` (files in `locks`, on
    this machine); refuses the upload if another upload holds one of them."""
    locks.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        for name in sorted(upload.names):
            # One name however its accents are composed (the zone refuses both otherwise).
            place = f"{landing.url}\0{upload.record_key}\0{unicodedata.normalize('NFC', name)}"
            path = locks / f"ingest-{hashlib.sha256(place.encode()).hexdigest()[:32]}.lock"
            handle = held.enter_context(path.open("a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise LandingError(
                    f"another ingest of {escaped(name)} into record {upload.record_key} is "
                    f"under way ({holder}); this one would replace it: wait for it to end, "
                    f"or give this file another name"
                ) from None
            handle.truncate(0)
            handle.write(f"pid {os.getpid()}")
            handle.flush()
        yield


def replaced_unimported(
    upload: Upload, checksums: dict[str, str], landing: LandingZone, imported: dict[str, str]
) -> list[str]:
    """Why `upload` would lose content: for each of its batches whose name already holds other
    content in the zone that is not imported yet (`imported`: name → checksum of the version
    the store has)."""
    nfc = functools.partial(unicodedata.normalize, "NFC")
    in_zone = {nfc(b.name): b.path for b in landing.record_folder(upload.record_key).batches}
    problems = []
    for name in upload.names:
        if nfc(name) not in in_zone:
            continue
        current = landing.checksum(in_zone[nfc(name)])
        if current not in (checksums[name], imported.get(name)):
            problems.append(
                f"{escaped(name)} in record {upload.record_key} holds other content that is "
                f"not imported yet (content {current[:12]}…, dropped by someone else?): "
                f"replacing it would lose it; wait until it is imported, or give this file "
                f"another name"
            )
    return problems


def put(upload: Upload, landing: LandingZone) -> None:
    """Copies the upload in: record.json first, the marker last (each file under a temporary
    name, then renamed: never seen half-written)."""
    key = upload.record_key
    if upload.record_file is not None:
        landing.put_file(str(upload.record_file), key, RECORD_FILE)
    for path, name in upload.batches:
        landing.put_file(str(path), key, name)
    if upload.finalised is not None:
        landing.put_file(str(upload.finalised), key, FINALISED_MARKER)
