"""One cold import of the benchmark batch through the real job; prints its measurements."""

from __future__ import annotations

import json
import resource
import sys
import time

import dagster as dg

from import_pipeline.defs import build_defs
from import_pipeline.settings import Settings

STEPS = (
    "find_pending_batches",
    "load_batches",
    "validate_batches",
    "cluster_batches",
    "resolve_and_store_batches",
    "summarise_record",
)


def main(home: str, record: str) -> None:
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": home})
    job = build_defs(settings).resolve_job_def("import_record")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("import_records", [record])
        started = time.perf_counter()
        result = job.execute_in_process(partition_key=record, instance=instance)
        wall = time.perf_counter() - started
    steps: dict[str, float] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            name = next((s for s in STEPS if s in (event.step_key or "")), None)
            if name:
                steps[name] = steps.get(name, 0.0) + event.event_specific_data.duration_ms / 1000
    metadata = next(
        {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.asset_key.to_user_string() == "import_results"
    )
    print(
        json.dumps(
            {
                "success": result.success,
                "wall_seconds": wall,
                "step_seconds": steps,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "counts": {
                    k: metadata[k] for k in ("completed", "partially_failed", "failed", "retrying")
                },
                "references_created": metadata["references_created"],
                "references_merged": metadata["references_merged"],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
