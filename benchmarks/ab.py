"""This code against an earlier commit, end to end, in one run: the same batch imported cold
through each commit's own job into a copy of the same store, the two alternated.

    python -m benchmarks.ab --base f43abd5                         # 1M lines into the 1M store
    python -m benchmarks.ab --base f43abd5 --lines 0 --openalex 100000
    python -m benchmarks.ab --base f43abd5 --lines 200000 --store 200000 --rounds 3
    python -m benchmarks.ab --base f43abd5 --lines 200000 --store 200000 --defects 200000

Each commit runs from a `git worktree` of it with this project's `.venv` (its own
`benchmarks/import_once.py` and its own code first on `PYTHONPATH`); the store is preloaded by
the earlier commit's code, so the newer one also opens it as users do after an upgrade. A
round imports each batch once with each commit, in the opposite order in the next round, and
the figure is each commit's median wall time and its ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from itertools import cycle, islice
from pathlib import Path

from benchmarks.generate import duckdb_floor_seconds, write_batch

ROOT = Path(__file__).resolve().parents[1]
OPENALEX = ROOT / "import_pipeline" / "demo_data" / "destiny" / "openalex_references.jsonl"
RECORD = {
    "source_name": "benchmark",
    "processor_name": "benchmarks.ab",
    "processor_version": "1",
    "expected_reference_count": -1,
}


def write_openalex(path: Path, count: int) -> int:
    """`count` lines of the real OpenAlex lines (authors, abstract, locations, annotations;
    ~18 KB each), each given identifiers of its own so every line is a work of its own."""
    real = [json.loads(text) for text in OPENALEX.read_text(encoding="utf-8").splitlines()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for index, line in enumerate(islice(cycle(real), count)):
            line["identifiers"] = [
                {"identifier_type": "open_alex", "identifier": f"W{7_000_000_000 + index}"},
                {"identifier_type": "doi", "identifier": f"10.5555/openalex.{index}"},
            ]
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path.stat().st_size


def _python_env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code)}


def preload(code: Path, store_file: Path, works: int) -> None:
    """The store, written by `code`'s own preload."""
    script = (
        "import sys; from benchmarks.generate import preload_store; "
        "preload_store(sys.argv[1], int(sys.argv[2]))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(store_file), str(works)],
        cwd=code, env=_python_env(code), check=True,
    )  # fmt: skip


def import_once(code: Path, home: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_once", str(home), "bench"],
        cwd=code, env=_python_env(code), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_home(root: Path, batch: Path, store_file: Path | None) -> Path:
    home = root / "home"
    shutil.rmtree(home, ignore_errors=True)
    (home / "landing" / "bench").mkdir(parents=True)
    (home / "landing" / "bench" / "record.json").write_text(json.dumps(RECORD))
    os.link(batch, home / "landing" / "bench" / "batch.jsonl")
    if store_file is not None:
        shutil.copyfile(store_file, home / "references.duckdb")
    return home


def compare(root: Path, codes: dict[str, Path], batch: Path, store_file: Path | None,
            rounds: int, lines: int) -> dict:  # fmt: skip
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    floors = []
    order = list(codes)
    for round_index in range(rounds):
        floors.append(duckdb_floor_seconds(batch))  # the load step's yardstick, this round
        for name in order if round_index % 2 == 0 else order[::-1]:
            measured = import_once(codes[name], fresh_home(root, batch, store_file))
            if not measured["success"]:
                raise SystemExit(f"{name}: the import failed")
            runs[name].append(measured)
            print(name, round(measured["wall_seconds"], 1), measured["step_seconds"],
                  file=sys.stderr, flush=True)  # fmt: skip
    figures: dict[str, object] = {}
    for name, measured in runs.items():
        wall = statistics.median(m["wall_seconds"] for m in measured)
        figures[name] = {
            "wall_seconds": [round(m["wall_seconds"], 1) for m in measured],
            "median_wall_seconds": round(wall, 1),
            "lines_per_second": round(lines / wall),
            "step_seconds": [
                {k: round(v, 1) for k, v in m["step_seconds"].items()} for m in measured
            ],
            "peak_rss_with_workers_mb": [m["peak_rss_with_workers_mb"] for m in measured],
            "counts": measured[0]["counts"],
        }
    head, base = list(codes)
    figures["duckdb_floor_seconds"] = [round(floor, 2) for floor in floors]
    figures["speedup"] = round(
        figures[base]["median_wall_seconds"] / figures[head]["median_wall_seconds"], 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="f43abd5", help="the earlier commit")
    parser.add_argument("--head", default="HEAD", help="the commit measured against it")
    parser.add_argument("--lines", type=int, default=1_000_000, help="benchmark lines; 0 skips")
    parser.add_argument("--store", type=int, default=1_000_000, help="references preloaded")
    parser.add_argument("--openalex", type=int, default=0, help="OpenAlex-shaped lines; 0 skips")
    parser.add_argument(
        "--defects", type=int, default=0, help="benchmark lines each with one defect; 0 skips"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/ab.json")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="import-pipeline-ab-"))
    # Both from worktrees of their commits, so editing the clone meanwhile changes neither.
    codes = {args.head: root / "head-code", args.base: root / "base-code"}
    for commit, code in codes.items():
        subprocess.run(["git", "worktree", "add", "--detach", str(code), commit],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    base_code = codes[args.base]
    try:
        store_file = None
        if args.store:
            store_file = root / "preloaded.duckdb"
            preload(base_code, store_file, args.store)
        figures: dict[str, object] = {"base": args.base, "store_references": args.store}
        if args.lines:
            batch = root / "batch.jsonl"
            write_batch(batch, args.lines, args.store)
            figures["benchmark_lines"] = {
                "lines": args.lines,
                **compare(root, codes, batch, store_file, args.rounds, args.lines),
            }
            batch.unlink()
        if args.defects:
            # The defects of `benchmarks.generate.DEFECTS` in turn, one a line.
            batch = root / "defects.jsonl"
            write_batch(batch, args.defects, args.store, defects=1.0)
            figures["defective_lines"] = {
                "lines": args.defects,
                **compare(root, codes, batch, store_file, args.rounds, args.defects),
            }
            batch.unlink()
        if args.openalex:
            batch = root / "openalex.jsonl"
            size = write_openalex(batch, args.openalex)
            figures["openalex_lines"] = {
                "lines": args.openalex,
                "file_mb": round(size / 1e6),
                **compare(root, codes, batch, store_file, args.rounds, args.openalex),
            }
        print(json.dumps(figures, indent=1))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=1))
    finally:
        for code in codes.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(code)],
                           cwd=ROOT, check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
