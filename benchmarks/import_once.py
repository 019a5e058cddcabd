"""One cold import of the benchmark batch through the real job; prints its measurements."""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time

import dagster as dg

from import_pipeline.defs import build_defs
from import_pipeline.defs.assets import import_results, reference_store, summarise_record
from import_pipeline.defs.duplicates import duplicate_decisions
from import_pipeline.defs.jobs import import_record_job
from import_pipeline.defs.ops import (
    cluster_batches,
    find_pending_batches,
    load_batches,
    resolve_batches,
    validate_batches,
)
from import_pipeline.settings import Settings

STEPS = tuple(
    op.name
    for op in (
        find_pending_batches,
        load_batches,
        validate_batches,
        cluster_batches,
        resolve_batches,
        summarise_record,
    )
) + (reference_store.op.name, duplicate_decisions.op.name)
#: The asset checks' step keys start with their asset's name.
_CHECKS = ("import_results_", "duplicate_decisions_")
_PAGE = resource.getpagesize()


def _resident_bytes() -> int:
    """This process's resident memory and that of its descendants (the fork server and the
    validation workers it starts): what the import holds of the machine."""
    total = 0
    for pid in [os.getpid(), *_descendants(os.getpid())]:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * _PAGE
        except OSError:  # it ended meanwhile
            continue
    return total


def _descendants(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            direct = [int(child) for child in children.read().split()]
    except OSError:
        return []
    return direct + [grandchild for child in direct for grandchild in _descendants(child)]


def _peak_resident_mb() -> float:
    """This process's own peak (VmHWM). Not `getrusage`'s ru_maxrss: on Linux that keeps the
    peak of the parent it was forked from, which here is the benchmark that just generated and
    parsed the whole file."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


class _RssSampler(threading.Thread):
    """Samples the process's resident memory, so each step's peak can be told apart."""

    def __init__(self, every_seconds: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.every_seconds = every_seconds
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.time(), _resident_bytes()))
            time.sleep(self.every_seconds)

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def _step_name(step_key: str | None) -> str | None:
    if (step_key or "").startswith(_CHECKS):
        return "asset_checks"
    return next((s for s in STEPS if s in (step_key or "")), None)


def main(home: str, record: str, store_url: str = "", import_only: str = "") -> None:
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": home, "IMPORT_PIPELINE_STORE": store_url})
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    if import_only:  # the import's own steps, without duplicate detection and its checks
        job = job.get_subset(asset_selection={import_results.key, reference_store.key})
    sampler = _RssSampler()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("import_records", [record])
        sampler.start()
        started = time.perf_counter()
        result = job.execute_in_process(partition_key=record, instance=instance)
        wall = time.perf_counter() - started
        sampler.stopped.set()
        logs = instance.all_logs(result.run_id)
    steps: dict[str, float] = {}
    step_peaks: dict[str, int] = {}
    step_started: dict[str, float] = {}
    for entry in logs:
        event = entry.dagster_event
        name = _step_name(event.step_key) if event else None
        if name is None:
            continue
        if event.event_type_value == "STEP_START":
            step_started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            steps[name] = steps.get(name, 0.0) + event.event_specific_data.duration_ms / 1000
            peak = sampler.peak_between(step_started[event.step_key], entry.timestamp)
            step_peaks[name] = max(step_peaks.get(name, 0), peak)
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
                "step_peak_rss_mb": {k: round(v / 2**20) for k, v in step_peaks.items()},
                "peak_rss_mb": _peak_resident_mb(),
                # With the validation workers (sampled every 0.1 s, so a lower bound).
                "peak_rss_with_workers_mb": round(sampler.peak_between(0, time.time()) / 2**20),
                "counts": {
                    k: metadata[k] for k in ("completed", "partially_failed", "failed", "retrying")
                },
                "references_created": metadata["references_created"],
                "references_merged": metadata["references_merged"],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
