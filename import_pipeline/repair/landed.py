"""A record's batch files in the landing zone, read for their entries: the version the
results are of, and the form the import read it in."""

from __future__ import annotations

from import_pipeline.errors import ImportPipelineError
from import_pipeline.landing import LandingZone
from import_pipeline.landing.records import read_record
from import_pipeline.landing.zone import BatchFile, escaped
from import_pipeline.repair.batches import BatchForm, form_of, head_of, texts
from import_pipeline.repair.entries import spans_of


class NotRepairable(ImportPipelineError):
    """A batch whose entries cannot be read or replaced as asked (missing, or changed)."""


def batch_file(landing: LandingZone, key: str, name: str) -> BatchFile:
    found = [b for b in landing.record_folder(key).batches if b.name == name]
    if not found:
        raise NotRepairable(f"record {key} has no batch {escaped(name)} in the landing zone")
    return found[0]


def batch_form(landing: LandingZone, key: str, batch: BatchFile) -> BatchForm:
    """The form the import reads `batch` in: record.json's format and encoding, its name, or
    (a `.txt`) its first bytes."""
    record = read_record(landing, landing.record_folder(key)).record
    with landing.open_binary(batch.path) as handle, head_of(handle, batch.name) as head:
        return form_of(
            batch.name,
            record.format if record else None,
            record.encoding if record else None,
            head,
        )


def checked_version(landing: LandingZone, key: str, name: str, checksum: str) -> BatchFile:
    """The batch file in the zone, which must still hold the version `checksum`."""
    batch = batch_file(landing, key, name)
    if landing.checksum(batch.path) != checksum:
        raise NotRepairable(
            f"batch {escaped(name)} of record {key} has changed since its results were made "
            f"(its content is no longer {checksum[:12]}…): import it, then ask again"
        )
    return batch


def entry_texts(
    landing: LandingZone,
    key: str,
    name: str,
    checksum: str,
    starts: list[tuple[int, int | None]],
) -> dict[int, str]:
    """The text of each entry of batch `name` at version `checksum` starting at `starts`'
    lines (each with the line the next entry starts on, None for the last), by line."""
    batch = checked_version(landing, key, name, checksum)
    form = batch_form(landing, key, batch)
    spans = spans_of(starts, form.one_line_entries)
    with landing.open_binary(batch.path) as handle:
        found = dict(texts(handle, form, spans))
    if missing := [start for start, _ in starts if start not in found]:
        raise NotRepairable(f"batch {escaped(name)} holds no line {missing[0]}")
    return found
