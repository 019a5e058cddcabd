"""The job the sensor, the schedule, the UI and the CLI all run: one record partition."""

import dagster as dg

from import_pipeline.defs.assets import import_results
from import_pipeline.defs.ops import resolve_waiting_associations
from import_pipeline.defs.partitions import import_records

import_record_job = dg.define_asset_job(
    "import_record",
    selection=[import_results],
    partitions_def=import_records,
    description="Imports the new or changed batches of one import record.",
)


@dg.job(description="Links waiting reference associations and expires those past the TTL.")
def resolve_associations() -> None:
    resolve_waiting_associations()


def run_config_for(batch_names: list[str], checksums: dict[str, str] | None = None) -> dict:
    """Run config restricting a run to some batches (empty: every pending batch).

    `checksums` are what the caller already read (the sensor hashes every batch it launches),
    so the run does not read those files an extra time to decide they are pending.
    """
    names = sorted(batch_names)
    known = checksums or {}
    config = {"batches": names, "checksums": [known.get(name, "") for name in names]}
    return {"ops": {"import_results": {"ops": {"find_pending_batches": {"config": config}}}}}
