"""The schedules: association resolution (hourly, on by default), and scheduled ingestion for
deployments that prefer a schedule to the sensor (off by default).

Dagster's `build_schedule_from_partitioned_job` refuses dynamic partitions, so scheduled
ingestion is written by hand: on each tick it plans, with the sensor's planning function, a
run for every valid record that has batches whose current content is not imported yet.
"""

from __future__ import annotations

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.jobs import import_record_job, resolve_associations, run_request
from import_pipeline.defs.partitions import IMPORT_RECORDS, import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.landing import RecordFolder
from import_pipeline.landing.records import BatchVersion, pending_batches, plan_record_runs


def build_association_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="hourly_association_resolution",
        job=resolve_associations,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Links associations whose targets arrived and expires those older than "
        "IMPORT_PIPELINE_UNRESOLVED_TTL (their results become partially_failed) "
        "(cron: IMPORT_PIPELINE_RESOLVE_CRON).",
    )
    def hourly_association_resolution(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"resolve:{context.scheduled_execution_time:%Y%m%dT%H%M}")

    return hourly_association_resolution


def _scheduled_runs(
    context: dg.ScheduleEvaluationContext, pipeline: ImportPipelineResource
) -> list[dg.RunRequest] | dg.SkipReason:
    landing = pipeline.landing_zone()
    folders = landing.scan().records
    try:
        with pipeline.store(read_only=True, wait_seconds=10) as conn:
            imported = {
                folder.key: store.imported_checksums(conn, folder.key) for folder in folders
            }
    except NotFound:
        imported = {}
    except StoreBusy as exc:
        return dg.SkipReason(str(exc))

    def pending(folders: list[RecordFolder]) -> dict[str, list[BatchVersion]]:
        return {
            folder.key: [
                BatchVersion(batch.name, checksum)
                for batch, checksum in pending_batches(
                    landing, folder, imported.get(folder.key, {})
                )
            ]
            for folder in folders
        }

    plans = [p.plan for p in plan_record_runs(landing, folders, pending) if p.plan is not None]
    known = set(import_records.get_partition_keys(dynamic_partitions_store=context.instance))
    new = [plan.record_key for plan in plans if plan.record_key not in known]
    if new:
        context.instance.add_dynamic_partitions(IMPORT_RECORDS, new)
    tick = f"{context.scheduled_execution_time:%Y%m%dT%H%M}"
    requests = [
        run_request(plan, run_key=f"scheduled:{plan.record_key}:{tick}:{plan.identity[:16]}",
                    source="schedule")
        for plan in plans
    ]  # fmt: skip
    return requests or dg.SkipReason("no record has batches waiting to be imported")


def build_ingestion_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="scheduled_ingestion",
        job=import_record_job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Imports every record's new or changed batches "
        "(cron: IMPORT_PIPELINE_INGEST_CRON).",
    )
    def scheduled_ingestion(
        context: dg.ScheduleEvaluationContext, pipeline: ImportPipelineResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        return _scheduled_runs(context, pipeline)

    return scheduled_ingestion
