"""The Dagster wiring, one module per concern, assembled by `build_defs`."""

import dagster as dg

from import_pipeline.defs.assets import import_results, landing_zone, reference_store
from import_pipeline.defs.checks import import_results_checks
from import_pipeline.defs.jobs import import_record_job, resolve_associations
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.schedules import hourly_association_resolution, scheduled_ingestion
from import_pipeline.defs.sensors import landing_zone_sensor, mark_batches_of_failed_runs
from import_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    """Everything Dagster loads, pointed at the landing zone and store of `settings`."""
    return dg.Definitions(
        assets=[landing_zone, import_results, reference_store],
        asset_checks=import_results_checks,
        jobs=[import_record_job, resolve_associations],
        sensors=[landing_zone_sensor, mark_batches_of_failed_runs],
        schedules=[scheduled_ingestion, hourly_association_resolution],
        resources={"pipeline": ImportPipelineResource.from_settings(settings)},
        # One process per run: ops hand each other small handles, and DuckDB is opened by one
        # op at a time anyway, so per-op processes would only add start-up time.
        executor=dg.in_process_executor,
    )
