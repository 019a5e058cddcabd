"""The benchmark: one command, one JSON of figures (see README, "Performance").

    python -m benchmarks.run                      # 1M lines into a 1M-reference store
    python -m benchmarks.run --lines 200000 --store 200000 --sensor-files 10000
    python -m benchmarks.run --lines 100000 --store 100000 --sensor-files 0 --defects

It generates a realistic batch and a preloaded store (half the lines match a stored work),
measures DuckDB's own full parse of the file (the floor), imports the batch through the real
job in a cold process, and times sensor ticks over many files; with --daemon it also drops
files into a running `dagster dev` and waits for all of them to be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.generate import duckdb_floor_seconds, preload_store, write_batch
from import_pipeline.settings import Settings

RECORD = {
    "source_name": "benchmark",
    "processor_name": "benchmarks.run",
    "processor_version": "1",
    "expected_reference_count": -1,
}


def _write_record(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(RECORD))


def import_benchmark(
    root: Path, lines: int, store_size: int, defects: float = 0.0, store_url: str = ""
) -> dict:
    """`lines` into a store of `store_size` references: the DuckDB file, or the PostgreSQL
    database of `store_url`."""
    home = root / ("import" if not defects else f"import-defects-{defects}")
    if store_url:
        home = root / "import-postgres"
    _write_record(home / "landing" / "bench")
    batch = home / "landing" / "bench" / "batch.jsonl"
    started = time.perf_counter()
    size = write_batch(batch, lines, store_size, defects)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    if store_size:
        preload_store(store_url or home / "references.duckdb", store_size)
    preloaded = time.perf_counter() - started
    floor = duckdb_floor_seconds(batch)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_once", str(home), "bench", store_url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    wall = measured["wall_seconds"]
    readers = reader_seconds(store_url or home / "references.duckdb")
    return {
        "store": "postgresql" if store_url else "duckdb file",
        "lines": lines,
        "defects": defects,
        "store_references": store_size,
        "file_mb": round(size / 1e6, 1),
        "generate_seconds": round(generated, 1),
        "preload_seconds": round(preloaded, 1),
        "duckdb_floor_seconds": round(floor, 2),
        "import_wall_seconds": round(wall, 2),
        "lines_per_second": round(lines / wall),
        "ratio_to_floor": round(wall / floor, 1),
        "peak_rss_mb": round(measured["peak_rss_mb"]),
        "peak_rss_with_workers_mb": measured["peak_rss_with_workers_mb"],
        "stage_seconds": {k: round(v, 2) for k, v in measured["step_seconds"].items()},
        "stage_peak_rss_mb": measured["step_peak_rss_mb"],
        "counts": measured["counts"],
        "references_created": measured["references_created"],
        "references_merged": measured["references_merged"],
        "reader_seconds": readers,
    }


def reader_seconds(location: Path | str) -> dict[str, float]:
    """The CLI's questions after the import, each on a connection of its own (as a command
    opens one): `summary`, the first page of `results`, `reference` by DOI."""
    from import_pipeline import store

    questions = {
        "summary": lambda conn: store.record_summary(conn, "bench"),
        "results_first_page": lambda conn: store.list_results(conn, "bench", limit=20),
        "reference_by_doi": lambda conn: store.find_reference(
            conn, identifier_type="doi", identifier="10.5555/bench.7"
        ),
    }
    timings = {}
    for name, ask in questions.items():
        started = time.perf_counter()
        with store.connect(location, read_only=True) as conn:
            ask(conn)
        timings[name] = round(time.perf_counter() - started, 3)
    return timings


def postgres_import_benchmark(root: Path, lines: int, store_size: int) -> dict:
    """The import benchmark with the store on a PostgreSQL 15 started for it (the suite's)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.postgres import new_database, postgres_server

    with postgres_server() as server:
        return import_benchmark(
            root, lines, store_size, store_url=new_database(server, "references")
        )


_SENSOR_LINE = '{"identifiers": [{"identifier_type": "doi", "identifier": "10.5555/s%d"}]}\n'
_SENSOR_FILES_PER_RECORD = 100


def _sensor_files(files: int) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of the sensor benchmark's landing zone: 100 batches a record."""
    record = json.dumps(RECORD).encode()
    for index in range(files):
        folder = f"rec-{index // _SENSOR_FILES_PER_RECORD:04d}"
        if index % _SENSOR_FILES_PER_RECORD == 0:
            yield f"{folder}/record.json", record
        yield (
            f"{folder}/b{index % _SENSOR_FILES_PER_RECORD:03d}.jsonl",
            (_SENSOR_LINE % index).encode(),
        )


def _time_ticks(settings: Settings) -> list[dict]:
    """Three sensor ticks over the landing zone of `settings`, carrying the cursor."""
    import dagster as dg

    from import_pipeline.defs.resources import ImportPipelineResource
    from import_pipeline.defs.sensors import build_landing_zone_sensor

    landing_zone_sensor = build_landing_zone_sensor(5)
    resource = ImportPipelineResource.from_settings(settings)
    ticks = []
    with dg.instance_for_test() as instance:
        cursor = None
        for _ in range(3):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"pipeline": resource}
            )
            started = time.perf_counter()
            result = landing_zone_sensor(context)
            ticks.append(
                {
                    "ms": round((time.perf_counter() - started) * 1000),
                    "run_requests": len(result.run_requests),
                }
            )
            cursor = result.cursor
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
    return ticks


def sensor_benchmark(root: Path, files: int) -> dict:
    """Sensor ticks over `files` batch files in a local landing zone."""
    home = root / "sensor"
    for relative, content in _sensor_files(files):
        path = home / "landing" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    return {
        "files": files,
        "ticks": _time_ticks(settings),
        "note": "tick 1 sees, tick 2 hashes and launches, tick 3 is quiet",
    }


def s3_sensor_benchmark(root: Path, files: int) -> dict:
    """Sensor ticks over `files` objects of an s3:// landing zone on moto in server mode."""
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import s3  # the suite's moto server (a test dependency)

    with s3.moto_server() as endpoint:
        saved = s3.set_environment(endpoint)
        try:
            bucket = s3.new_bucket(endpoint)
            client = s3.client(endpoint)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(
                    lambda item: client.put_object(Bucket=bucket, Key=f"landing/{item[0]}", Body=item[1]),
                    _sensor_files(files),
                ))  # fmt: skip
            settings = Settings.from_env(
                {"IMPORT_PIPELINE_HOME": str(root / "s3-sensor"),
                 "IMPORT_PIPELINE_LANDING": f"s3://{bucket}/landing"}
            )  # fmt: skip
            ticks = _time_ticks(settings)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return {
        "files": files,
        "landing": "s3 (moto server on 127.0.0.1)",
        "ticks": ticks,
        "note": "tick 1 sees, tick 2 hashes and launches, tick 3 is quiet",
    }


_COUNT_FINISHED_BATCHES = """
import sys
from import_pipeline import store
from import_pipeline.settings import Settings
settings = Settings.from_env({"IMPORT_PIPELINE_HOME": sys.argv[1]})
with store.connect(settings.store, read_only=True, wait_seconds=240) as conn:
    print(conn.execute(
        "SELECT count(*) FROM import_batches WHERE record_key LIKE 'bench-%' "
        "AND status NOT IN ('created', 'started')").fetchall()[0][0])
"""


_JOB_RUNS = """
query JobRuns { runsOrError(filter: {pipelineName: "import_record"}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } } } }
"""


def _record_of(run: dict) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == "import_pipeline/record"), None)


def _finished_batches(home: Path) -> int:
    """The benchmark's batches in a terminal state, read once the runs have ended."""
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_FINISHED_BATCHES, str(home)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return int(out.stdout.strip() or 0)


_RUN_STATS = """
query RunStats($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId status creationTime startTime endTime
      stepStats { stepKey startTime endTime } } }
  }
}
"""


def _covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """The time inside at least one of the intervals."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def dagster_overhead(server: object, record_keys: list[str]) -> dict:
    """What the runs spent outside the project's code, from Dagster's own run and step
    records: waiting in the queue (created → started), and inside a run the time no step was
    running (starting the run worker and each step's process, the executor's bookkeeping)."""
    runs = [
        run
        for key in record_keys
        for run in server.graphql(  # type: ignore[attr-defined]
            _RUN_STATS, {"tags": [{"key": "import_pipeline/record", "value": key}]}
        )["runsOrError"]["results"]
    ]
    finished = [r for r in runs if r["startTime"] and r["endTime"]]
    steps = [s for r in finished for s in r["stepStats"] if s["startTime"] and s["endTime"]]
    run_seconds = sum(r["endTime"] - r["startTime"] for r in finished)
    in_steps = sum(
        _covered_seconds([(s["startTime"], s["endTime"]) for s in r["stepStats"]
                          if s["startTime"] and s["endTime"]])
        for r in finished
    )  # fmt: skip
    by_op: dict[str, float] = {}
    for step in steps:
        op = step["stepKey"].split("[")[0].rsplit(".", 1)[-1]
        by_op[op] = by_op.get(op, 0.0) + step["endTime"] - step["startTime"]
    return {
        "runs": len(runs),
        "steps": len(steps),
        "step_seconds_by_op": {op: round(s, 1) for op, s in sorted(by_op.items())},
        "queued_seconds_mean": round(
            sum(r["startTime"] - r["creationTime"] for r in finished) / max(len(finished), 1), 1
        ),
        "run_seconds_total": round(run_seconds, 1),
        "step_seconds_total": round(sum(s["endTime"] - s["startTime"] for s in steps), 1),
        "run_seconds_outside_steps": round(run_seconds - in_steps, 1),
        "outside_steps_per_run": round((run_seconds - in_steps) / max(len(finished), 1), 2),
        "first_created_to_last_ended_minutes": round(
            (max(r["endTime"] for r in finished) - min(r["creationTime"] for r in finished)) / 60,
            2,
        ) if finished else None,
    }  # fmt: skip


def daemon_benchmark(root: Path, files: int, lines: int, records: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.generate import batch_lines
    from import_pipeline.landing import LandingZone
    from tests.dagster_dev import dagster_dev

    staged = root / "daemon-files"
    staged.mkdir()
    payload = "\n".join(batch_lines(lines)) + "\n"
    machine = machine_yardsticks(staged, payload, files)
    with dagster_dev(root / "daemon", sensor_interval=5) as server:
        landing = LandingZone(str(server.home / "landing"))
        for record in range(records):
            (staged / "record.json").write_text(json.dumps(RECORD))
            landing.put_file(str(staged / "record.json"), f"bench-{record:02d}", "record.json")
        started = time.perf_counter()
        for index in range(files):
            path = staged / f"b{index:05d}.jsonl"
            path.write_text(payload)
            landing.put_file(str(path), f"bench-{index % records:02d}", path.name)
            path.unlink()
        # Polled through the webserver (one GraphQL query), and the store read only once the
        # runs have ended: a reader process a poll cost ~1 s of CPU and held the DuckDB file
        # the writers wait for.
        deadline = time.monotonic() + 3600
        keys = [f"bench-{r:02d}" for r in range(records)]
        while True:
            runs = _wait_for_runs(server, keys, deadline - time.monotonic())
            wall = time.perf_counter() - started
            done = _finished_batches(server.home)
            if done >= files:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {files} batches were imported in time")
            time.sleep(10)  # a batch whose run was not launched yet when the others had ended
        overhead = dagster_overhead(server, keys)
    return {
        "files": files,
        "lines_per_file": lines,
        "records": records,
        "imported": done,
        # From the first file put to every run ended (its batches stored, checked, summarised).
        "wall_minutes": round(wall / 60, 2),
        "runs": {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}},
        "dagster": overhead,
        "machine": machine,
    }


def machine_yardsticks(folder: Path, payload: str, copies: int) -> dict[str, float]:
    """How fast this machine is right now, measured just before the daemon benchmark: DuckDB's
    full parse of the same bytes (the floor of `import_benchmark`) and pydantic's verdict on
    the same lines on one core. This machine's speed moves by up to 3× from day to day, so a
    wall time is compared with another through these."""
    from import_pipeline.pipeline.validate import _collector_paused, line_model

    whole = folder / "all-files.jsonl"
    with whole.open("w", encoding="utf-8") as handle:
        for _ in range(copies):
            handle.write(payload)
    floor = duckdb_floor_seconds(whole)
    whole.unlink()
    texts = payload.splitlines()
    validate = line_model().validate_json
    best = float("inf")
    with _collector_paused():  # as validation runs
        for _ in range(5):
            started = time.perf_counter()
            for text in texts:
                validate(text)
            best = min(best, time.perf_counter() - started)
    return {
        "duckdb_floor_seconds": round(floor, 2),
        "validate_json_us_per_line": round(best / len(texts) * 1e6, 1),
    }


def _one_run_at_a_time(dagster_home: Path) -> None:
    """A dagster.yaml of the user's own (so the CLI leaves it) that queues runs one by one."""
    from import_pipeline.defs.instance import SHIPPED_MARKER, instance_yaml

    dagster_home.mkdir(parents=True, exist_ok=True)
    shipped = instance_yaml(postgres=False).replace(
        SHIPPED_MARKER, "# benchmark: one run at a time"
    )
    (dagster_home / "dagster.yaml").write_text(
        shipped.replace("max_concurrent_runs: 4", "max_concurrent_runs: 1")
    )


def parallel_benchmark(root: Path, records: int, lines: int) -> dict:
    """`records` records of one `lines`-line file each, dropped at once into a running
    `dagster dev`: with the shipped run queue (runs at once), then queued one at a time. The
    wall time is from the first file put to the last run ended."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.generate import batch_lines
    from tests.dagster_dev import dagster_dev

    staged = root / "parallel-files"
    staged.mkdir()
    for record in range(records):
        body = batch_lines(lines, matching_every=lines + 1, store_size=record * lines)
        (staged / f"p{record:02d}.jsonl").write_text("\n".join(body) + "\n")
    figures = {}
    for mode in ("together", "one_at_a_time"):
        folder = root / f"parallel-{mode}"
        if mode == "one_at_a_time":
            _one_run_at_a_time(folder / "home" / "dagster")
        keys = [f"par-{record:02d}" for record in range(records)]
        with dagster_dev(folder, sensor_interval=2) as server:
            landing = server.home / "landing"
            started = time.time()
            for record, key in enumerate(keys):
                _write_record(landing / key)
                shutil.copy(staged / f"p{record:02d}.jsonl", landing / key / "works.jsonl")
            runs = _wait_for_runs(server, keys, timeout=3600)
            overhead = dagster_overhead(server, keys)
        ended = max(run["endTime"] for run in runs)
        figures[mode] = {
            "wall_seconds": round(ended - started, 1),
            "runs": {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}},
            "dagster": overhead,
        }
    figures["speed_up"] = round(
        figures["one_at_a_time"]["wall_seconds"] / figures["together"]["wall_seconds"], 2
    )
    return {"records": records, "lines_per_record": lines, **figures}


def _wait_for_runs(server: object, keys: list[str], timeout: float) -> list[dict]:
    """The runs of the records `keys`, once each has one and all have ended (one query a
    poll, whatever the number of records)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = server.graphql(_JOB_RUNS)["runsOrError"]["results"]  # type: ignore[attr-defined]
        runs = [run for run in results if _record_of(run) in keys]
        launched = {_record_of(run) for run in runs}
        if launched >= set(keys) and all(run["endTime"] for run in runs):
            return runs
        time.sleep(2)
    raise SystemExit("the runs did not end in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="0 skips the import")
    parser.add_argument("--store", type=int, default=1_000_000, help="references preloaded")
    parser.add_argument("--sensor-files", type=int, default=10_000)
    parser.add_argument(
        "--s3", action="store_true", help="also time the sensor over an s3:// landing zone (moto)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also import the same batch into a store on PostgreSQL (a server started here)",
    )
    parser.add_argument("--daemon", action="store_true", help="also run files through dagster dev")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="also time 10 records of 100,000 lines dropped at once, against one run at a time",
    )
    parser.add_argument("--parallel-lines", type=int, default=100_000)
    parser.add_argument("--daemon-files", type=int, default=1000)
    parser.add_argument("--daemon-lines", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/out/results.json")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--defects",
        type=float,
        nargs="?",
        const=1.0,
        default=None,
        help="also import a batch where this share of lines (default 1.0) carry one defect",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="import-pipeline-bench-"))
    try:
        results: dict = {"machine": {"cpus": os.cpu_count()}}
        if args.lines:
            results["import"] = import_benchmark(root, args.lines, args.store)
            print(json.dumps(results["import"], indent=2), flush=True)
        if args.lines and args.postgres:
            results["import_postgres"] = postgres_import_benchmark(root, args.lines, args.store)
            print(json.dumps(results["import_postgres"], indent=2), flush=True)
        if args.lines and args.defects:
            defective = import_benchmark(root, args.lines, args.store, args.defects)
            defective["ratio_to_clean"] = round(
                defective["lines_per_second"] / results["import"]["lines_per_second"], 2
            )
            results["import_defects"] = defective
            print(json.dumps(defective, indent=2), flush=True)
        if args.sensor_files:
            results["sensor"] = sensor_benchmark(root, args.sensor_files)
            print(json.dumps(results["sensor"], indent=2), flush=True)
        if args.sensor_files and args.s3:
            results["sensor_s3"] = s3_sensor_benchmark(root, args.sensor_files)
            print(json.dumps(results["sensor_s3"], indent=2), flush=True)
        if args.daemon:
            results["daemon"] = daemon_benchmark(root, args.daemon_files, args.daemon_lines, 10)
            print(json.dumps(results["daemon"], indent=2), flush=True)
        if args.parallel:
            results["parallel"] = parallel_benchmark(root, 10, args.parallel_lines)
            print(json.dumps(results["parallel"], indent=2), flush=True)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"written to {out}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
