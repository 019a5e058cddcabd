"""The tags every record run carries, so the Runs page finds it by record, batch and checksum
however it was launched (the sensor, the schedule, the CLI, the UI)."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from import_pipeline.landing.records import BatchVersion


class RunTags:
    """The tags every record run carries, so the Runs page finds it by record, batch and
    checksum however it was launched."""

    RECORD = "import_pipeline/record"
    BATCHES = "import_pipeline/batches"
    CHECKSUMS = "import_pipeline/checksums"
    SOURCE = "import_pipeline/source"
    #: Set as a run ends: the record's failed and partially failed lines after it.
    FAILED_LINES = "import_pipeline/failed_lines"
    #: On a retry (`defs/recovery.py`): every run it retries, the first first.
    RETRIED_RUNS = "import_pipeline/retried_runs"
    #: Dagster refuses longer tag values.
    LIMIT = 4000


def run_tags(
    record_key: str, batches: Iterable[BatchVersion], source: str | None = None
) -> dict[str, str]:
    """The tags of a run of `record_key` importing `batches` (`source`: who launched it)."""
    versions = sorted(batches, key=lambda b: b.name)
    tags = {
        RunTags.RECORD: record_key,
        RunTags.BATCHES: ",".join(b.name for b in versions)[: RunTags.LIMIT] or "-",
        # A launcher that did not read the files has no checksums: the run adds them.
        RunTags.CHECKSUMS: ",".join(b.checksum[:12] for b in versions if b.checksum)[
            : RunTags.LIMIT
        ]
        or "-",
    }
    if source is not None:
        tags[RunTags.SOURCE] = source
    return tags


def retried_runs(run: dg.DagsterRun) -> list[str]:
    """The runs `run` retries (none unless it is a retry), the first first."""
    return [r for r in run.tags.get(RunTags.RETRIED_RUNS, "").split(",") if r]
