"""The jobs, and how a run of a record is asked for: its config and tags, the same whoever
launches it (the sensor, the schedule, the CLI, the UI)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg

from import_pipeline.defs.assets import import_results, reference_store
from import_pipeline.defs.duplicates import duplicate_decisions
from import_pipeline.defs.ops import (
    BatchVersionConfig,
    find_pending_batches,
    resolve_waiting_associations,
)
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.tags import run_tags
from import_pipeline.landing.records import BatchVersion, RecordPlan

import_record_job = dg.define_asset_job(
    "import_record",
    selection=[import_results, reference_store, duplicate_decisions],
    partitions_def=import_records,
    description="Imports the new or changed batches of one import record, then decides the "
    "duplicates among the references they created or merged.",
)


@dg.job(description="Links waiting reference associations and expires those past the TTL.")
def resolve_associations() -> None:
    resolve_waiting_associations()


def run_config_for(batches: Iterable[BatchVersion], *, again: bool = False) -> dict[str, Any]:
    """Run config restricting a run to some batch versions (none: every pending batch). A
    checksum the caller already read saves the run reading that file to decide it is pending.
    `again` imports them even where their content is imported already."""
    config: dict[str, Any] = {
        "batches": [
            BatchVersionConfig(name=b.name, checksum=b.checksum).model_dump()
            for b in sorted(batches, key=lambda b: b.name)
        ]
    }
    if again:
        config["again"] = True
    return {
        "ops": {
            import_results.node_def.name: {"ops": {find_pending_batches.name: {"config": config}}}
        }
    }


def run_request(plan: RecordPlan, *, run_key: str, source: str) -> dg.RunRequest:
    """The run that imports `plan`."""
    return dg.RunRequest(
        run_key=run_key,
        partition_key=plan.record_key,
        run_config=run_config_for(plan.batches),
        tags=run_tags(plan.record_key, plan.batches, source),
    )
