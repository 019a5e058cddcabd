"""A/B of validation in one run: the pydantic way alone against the fast way (issue 32).

    python -m benchmarks.validate_ab                        # 10,000 + 1,000 lines, 5 rounds
    python -m benchmarks.validate_ab --lines 20000 --real-lines 2000 --rounds 7

Two sets of lines: the import benchmark's (`benchmarks.generate.batch_lines`, the lines
`benchmarks.run` writes, ~1.5 KB each) and the real OpenAlex lines
(`import_pipeline/demo_data/destiny/openalex_references.jsonl`, ~18 KB each, repeated to
`--real-lines`). Each set is one chunk, validated by `validate_chunk` as a validation pass
does, with `fast=False` (A: every line the pydantic way) and `fast=True` (B: the fast way
first). A and B alternate within each round, and which goes first alternates from round to
round, so that a machine whose speed drifts favours neither. Reported per set and way, in
µs per line: the median and the best over the rounds, of CPU time (this process alone: the
machine may be loaded) and of wall time; with the share of lines the fast way took, and a
check that the staged frames of both ways are equal. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from itertools import cycle, islice

import msgspec
import polars as pl
import pydantic

from benchmarks.generate import batch_lines
from import_pipeline.landing.demo import DESTINY
from import_pipeline.pipeline.frames import LOADED_LINES, VALIDATED_PARTS
from import_pipeline.pipeline.validate import line_model, validate_chunk

WAYS = {"pydantic_only": False, "fast": True}


def _chunk(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"line_number": range(1, len(texts) + 1), "text": texts, "problem": [None] * len(texts)},
        schema=LOADED_LINES,
    )


def line_sets(lines: int, real_lines: int) -> dict[str, pl.DataFrame]:
    real = (DESTINY / "openalex_references.jsonl").read_text(encoding="utf-8").splitlines()
    return {
        "benchmark_lines": _chunk(list(batch_lines(lines))),
        "openalex_lines": _chunk(list(islice(cycle(real), real_lines))),
    }


def _timed(chunk: pl.DataFrame, fast: bool) -> tuple[float, float, int]:
    """CPU and wall seconds of one validation of `chunk`, and the lines the fast way took."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = validate_chunk(chunk, fast=fast)
    return time.process_time() - cpu, time.perf_counter() - wall, result.fast_path_lines


def _same_frames(chunk: pl.DataFrame) -> bool:
    fast, alone = validate_chunk(chunk, fast=True), validate_chunk(chunk, fast=False)
    return all(getattr(fast, name).equals(getattr(alone, name)) for name in VALIDATED_PARTS)


def _figures(seconds: list[float], lines: int) -> dict[str, float]:
    per_line = [s / lines * 1e6 for s in seconds]
    return {"median": round(statistics.median(per_line), 1), "best": round(min(per_line), 1)}


def ab(sets: dict[str, pl.DataFrame], rounds: int) -> dict[str, dict]:
    """Each set validated both ways `rounds` times, alternately."""
    line_model()  # the models and the fast way's Structs, built once, outside the timings
    timings = {(name, way): ([], []) for name in sets for way in WAYS}
    taken: dict[str, int] = {}
    for round_ in range(rounds):
        for offset, (name, chunk) in enumerate(sets.items()):
            ways = list(WAYS.items())
            for way, fast in ways if (round_ + offset) % 2 == 0 else ways[::-1]:
                cpu, wall, fast_lines = _timed(chunk, fast)
                timings[name, way][0].append(cpu)
                timings[name, way][1].append(wall)
                if fast:
                    taken[name] = fast_lines
    report = {}
    for name, chunk in sets.items():
        ways = {
            way: {
                "cpu_us_per_line": _figures(timings[name, way][0], chunk.height),
                "wall_us_per_line": _figures(timings[name, way][1], chunk.height),
            }
            for way in WAYS
        }
        cpu = {way: ways[way]["cpu_us_per_line"]["median"] for way in WAYS}
        report[name] = {
            "lines": chunk.height,
            "bytes_per_line": round(chunk["text"].str.len_bytes().mean() or 0),
            **ways,
            "fast_over_pydantic_cpu": round(cpu["fast"] / cpu["pydantic_only"], 3),
            "lines_taken_fast": taken[name],
            "same_staged_frames": _same_frames(chunk),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000, help="benchmark lines")
    parser.add_argument("--real-lines", type=int, default=1_000, help="OpenAlex lines")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sets = line_sets(args.lines, args.real_lines)
    started = time.perf_counter()
    report = ab(sets, args.rounds)
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "seconds": round(time.perf_counter() - started, 1),
                "machine": {
                    "python": platform.python_version(),
                    "pydantic": pydantic.VERSION,
                    "msgspec": msgspec.__version__,
                    "cpus": os.cpu_count(),
                    "load_average": [round(x, 1) for x in os.getloadavg()],
                },
                **report,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
