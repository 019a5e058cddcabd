"""Scheduled ingestion, for deployments that prefer a schedule to the sensor.

Dagster's `build_schedule_from_partitioned_job` refuses dynamic partitions, so this schedule
is written by hand: on each tick it requests a run for every valid record that has batches
whose current content is not imported yet.
"""

import hashlib
import os

import dagster as dg

from import_pipeline import store
from import_pipeline.defs.jobs import import_record_job, resolve_associations, run_config_for
from import_pipeline.defs.partitions import import_records
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.errors import NotFound, StoreBusy
from import_pipeline.records import pending_batches, read_record

INGEST_CRON = os.environ.get("IMPORT_PIPELINE_INGEST_CRON", "0 2 * * *")
RESOLVE_CRON = os.environ.get("IMPORT_PIPELINE_RESOLVE_CRON", "0 * * * *")


@dg.schedule(
    job=resolve_associations,
    cron_schedule=RESOLVE_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: links associations whose targets arrived and expires those older than "
    "IMPORT_PIPELINE_UNRESOLVED_TTL (their results become partially_failed).",
)
def hourly_association_resolution(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"resolve:{context.scheduled_execution_time:%Y%m%dT%H%M}")


@dg.schedule(
    job=import_record_job,
    cron_schedule=INGEST_CRON,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Imports every record's new or changed batches (cron: IMPORT_PIPELINE_INGEST_CRON).",
)
def scheduled_ingestion(context: dg.ScheduleEvaluationContext, pipeline: ImportPipelineResource):
    landing = pipeline.landing_zone()
    try:
        with pipeline.store(read_only=True, wait_seconds=10) as conn:
            imported = {
                folder.key: store.imported_checksums(conn, folder.key)
                for folder in landing.scan().records
            }
    except NotFound:
        imported = {}
    except StoreBusy as exc:
        return dg.SkipReason(str(exc))
    known = set(import_records.get_partition_keys(dynamic_partitions_store=context.instance))
    requests = []
    for folder in landing.scan().records:
        if read_record(landing, folder).record is None:
            continue
        pending = pending_batches(landing, folder, imported.get(folder.key, {}))
        if not pending:
            continue
        if folder.key not in known:
            context.instance.add_dynamic_partitions(import_records.name, [folder.key])
        names = sorted(batch.name for batch, _ in pending)
        state = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"scheduled:{folder.key}:{context.scheduled_execution_time:%Y%m%dT%H%M}:{state}",
                partition_key=folder.key,
                run_config=run_config_for(names, {b.name: c for b, c in pending}),
                tags={
                    "import_pipeline/record": folder.key,
                    "import_pipeline/batches": ",".join(names)[:4000],
                },
            )
        )
    return requests or dg.SkipReason("no record has batches waiting to be imported")
