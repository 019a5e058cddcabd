"""The Dagster wiring, one module per concern, assembled by `build_defs`."""

from __future__ import annotations

import dagster as dg

from import_pipeline.defs import dagster_fixes
from import_pipeline.defs.assets import import_results, landing_zone, reference_store
from import_pipeline.defs.checks import import_results_checks
from import_pipeline.defs.duplicates import (
    duplicate_decisions,
    every_duplicate_points_to_a_canonical,
    every_reference_has_one_active_decision,
)
from import_pipeline.defs.jobs import import_record_job, resolve_associations
from import_pipeline.defs.recovery import (
    build_run_recovery_sensor,
    settle_canceled_runs,
    settle_failed_runs,
)
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.defs.schedules import build_association_schedule, build_ingestion_schedule
from import_pipeline.defs.sensors import build_landing_zone_sensor
from import_pipeline.settings import Settings

# Every process that runs the jobs (a run worker, the CLI's `ingest`) loads this package.
dagster_fixes.apply()


def build_defs(
    settings: Settings, resource: ImportPipelineResource | None = None
) -> dg.Definitions:
    """Everything Dagster loads. `settings` shape the definitions (the sensor's interval, the
    crons); the resource says where the landing zone and the store are — by default the
    values of `settings` themselves (tests, the CLI), and for the code location
    `ImportPipelineResource.from_environment()` (read when each run starts)."""
    pipeline = resource or ImportPipelineResource.from_settings(settings)
    return dg.Definitions(
        assets=[landing_zone, import_results, reference_store, duplicate_decisions],
        asset_checks=[
            *import_results_checks,
            every_duplicate_points_to_a_canonical,
            every_reference_has_one_active_decision,
        ],
        jobs=[import_record_job, resolve_associations],
        sensors=[
            build_landing_zone_sensor(settings.sensor_interval_seconds),
            build_run_recovery_sensor(),
            settle_failed_runs,
            settle_canceled_runs,
        ],
        schedules=[
            build_ingestion_schedule(settings.ingest_cron),
            build_association_schedule(settings.resolve_cron),
        ],
        resources={"pipeline": pipeline},
        # One process per run: ops hand each other small handles, and DuckDB is opened by one
        # op at a time anyway, so per-op processes would only add start-up time.
        executor=dg.in_process_executor,
    )
