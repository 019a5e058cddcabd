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


def run_config_for(batch_names: list[str]) -> dict:
    """Run config restricting a run to some batches (empty: every pending batch)."""
    return {
        "ops": {
            "import_results": {
                "ops": {"find_pending_batches": {"config": {"batches": sorted(batch_names)}}}
            }
        }
    }
