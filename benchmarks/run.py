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


def import_benchmark(root: Path, lines: int, store_size: int, defects: float = 0.0) -> dict:
    home = root / ("import" if not defects else f"import-defects-{defects}")
    _write_record(home / "landing" / "bench")
    batch = home / "landing" / "bench" / "batch.jsonl"
    started = time.perf_counter()
    size = write_batch(batch, lines, store_size, defects)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    if store_size:
        preload_store(home / "references.duckdb", store_size)
    preloaded = time.perf_counter() - started
    floor = duckdb_floor_seconds(batch)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_once", str(home), "bench"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    wall = measured["wall_seconds"]
    return {
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
    }


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


def daemon_benchmark(root: Path, files: int, lines: int, records: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.generate import batch_lines
    from import_pipeline.landing import LandingZone
    from tests.dagster_dev import dagster_dev

    staged = root / "daemon-files"
    staged.mkdir()
    payload = "\n".join(batch_lines(lines)) + "\n"
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
        deadline = time.monotonic() + 3600
        done = 0
        while time.monotonic() < deadline:
            # One small reader process per poll (not one CLI per record): the daemon has the CPUs.
            out = subprocess.run(
                [sys.executable, "-c", _COUNT_FINISHED_BATCHES, str(server.home)],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if out.returncode == 0:
                done = int(out.stdout.strip() or 0)
            if done >= files:
                break
            time.sleep(10)
        wall = time.perf_counter() - started
        # The batches are stored; the runs still check and summarise: let them end.
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = [run for r in range(records) for run in server.runs(f"bench-{r:02d}")]
            if all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
                break
            time.sleep(2)
        runs_ended = time.perf_counter() - started
    return {
        "files": files,
        "lines_per_file": lines,
        "records": records,
        "imported": done,
        "wall_minutes": round(wall / 60, 2),
        "runs_ended_minutes": round(runs_ended / 60, 2),
        "runs": {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="0 skips the import")
    parser.add_argument("--store", type=int, default=1_000_000, help="references preloaded")
    parser.add_argument("--sensor-files", type=int, default=10_000)
    parser.add_argument(
        "--s3", action="store_true", help="also time the sensor over an s3:// landing zone (moto)"
    )
    parser.add_argument("--daemon", action="store_true", help="also run files through dagster dev")
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
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"written to {out}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
