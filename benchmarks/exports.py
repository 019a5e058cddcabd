"""Exports against JSONL, A/B in one run (issue 30's target: a RIS file of N works imports at
least half as many lines a second as the JSONL file of the same works).

    python -m benchmarks.exports                    # 1M works
    python -m benchmarks.exports --works 100000 --formats ris medline bibtex csv
    python -m benchmarks.exports --import-only      # 1M works, without duplicate detection

It writes N realistic works (titles, authors, journal, volume, issue, pages, a DOI on most, a
PubMed id on some, an abstract: the shapes of the shared Scopus and PubMed exports) as each
export format, converts the RIS file with `convert` into the JSONL those works become, then
imports each file cold through the real job (`benchmarks.import_once`) into a store of its own,
one after another, and prints one JSON of figures: seconds, entries a second, peak memory, and
each format's rate as a share of the JSONL rate measured in the same run.
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.run import RECORD
from import_pipeline.pipeline.exports import convert_file

_JOURNALS = ("Psychoneuroendocrinology", "The Lancet", "BMJ Open", "Journal of Affective Disorders")
_ABSTRACT = (
    "Background: stress and the brain-gut axis interact in functional and chronic-inflammatory "
    "gastrointestinal diseases. Methods: a systematic review of prospective cohorts. Results: "
    "associations were consistent across designs. Conclusions: a transdisciplinary challenge."
)


#: Syllables of made-up words: every work's title and authors are their own (64,000 words of
#: three syllables), so that duplicate detection, a step of the same job, sees as few candidate
#: pairs as in a real search, not a million near twins.
_SYLLABLES = (
    "ka lo mi ne su ta ri po ve da bu gi fe ho ja ly mo nu pe qua ro si tu vi wa xe "
    "ze an el in on ur ba de fi go"
).split()


def _word(value: int) -> str:
    count = len(_SYLLABLES)
    return "".join(_SYLLABLES[value // count**i % count] for i in range(3))


def _mixed(n: int, salt: int) -> int:
    return (n * 2654435761 + salt * 40503) % 2**32


def _title(n: int) -> str:
    words = [_word(_mixed(n, i)) for i in range(8)]
    return " ".join(words).capitalize()


def _work(n: int) -> dict:
    return {
        "n": n,
        "title": _title(n),
        "authors": [
            f"{_word(_mixed(n, 10 + i)).capitalize()}, {initials}"
            for i, initials in enumerate(("A.", "B. C.", "D."))
        ],
        "year": 1990 + n % 35,
        "journal": _JOURNALS[n % len(_JOURNALS)],
        "volume": str(n % 300 + 1),
        "issue": str(n % 12 + 1),
        "pages": (str(100 + n % 900), str(110 + n % 900)),
        "doi": f"10.5555/export.{n}" if n % 5 else None,
        "pmid": str(20_000_000 + n) if n % 3 == 0 else None,
        "abstract": _ABSTRACT,
    }


def ris(work: dict) -> str:
    lines = ["TY  - JOUR", f"TI  - {work['title']}", *(f"AU  - {a}" for a in work["authors"])]
    lines += [f"PY  - {work['year']}", f"T2  - {work['journal']}", f"VL  - {work['volume']}"]
    lines += [f"IS  - {work['issue']}", f"SP  - {work['pages'][0]}", f"EP  - {work['pages'][1]}"]
    if work["doi"]:
        lines.append(f"DO  - {work['doi']}")
    if work["pmid"]:
        lines.append(f"UR  - https://pubmed.ncbi.nlm.nih.gov/{work['pmid']}/")
    lines += [f"AB  - {work['abstract']}", "ER  - ", ""]
    return "\n".join(lines) + "\n"


def medline(work: dict) -> str:
    lines = [f"PMID- {work['pmid'] or 90_000_000 + work['n']}", f"TI  - {work['title']}"]
    lines += [f"AU  - {a}" for a in work["authors"]]
    lines += [f"DP  - {work['year']}", f"JT  - {work['journal']}", f"VI  - {work['volume']}"]
    lines += [f"IP  - {work['issue']}", f"PG  - {work['pages'][0]}-{work['pages'][1]}"]
    if work["doi"]:
        lines.append(f"AID - {work['doi']} [doi]")
    lines += [f"AB  - {work['abstract']}", ""]
    return "\n".join(lines) + "\n"


def bibtex(work: dict) -> str:
    fields = {
        "title": work["title"],
        "author": " and ".join(work["authors"]),
        "year": work["year"],
        "journal": work["journal"],
        "volume": work["volume"],
        "number": work["issue"],
        "pages": f"{work['pages'][0]}--{work['pages'][1]}",
        "doi": work["doi"],
        "abstract": work["abstract"],
    }
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
    return f"@article{{work{work['n']},\n{body}\n}}\n\n"


def csv_row(work: dict) -> str:
    values = [work["title"], "; ".join(work["authors"]), str(work["year"]), work["journal"]]
    values += [work["volume"], work["issue"], *work["pages"], work["doi"] or "", work["abstract"]]
    return ",".join('"' + v.replace('"', '""') + '"' for v in values) + "\n"


_CSV_HEADER = "Title,Authors,Year,Source title,Volume,Issue,Page start,Page end,DOI,Abstract\n"
WRITERS: dict[str, tuple[str, Callable[[dict], str], str]] = {
    "ris": (".ris", ris, ""),
    "medline": (".nbib", medline, ""),
    "bibtex": (".bib", bibtex, ""),
    "csv": (".csv", csv_row, _CSV_HEADER),
}


def _works(count: int) -> Iterator[dict]:
    return (_work(n) for n in range(count))


def write_export(path: Path, format_name: str, count: int) -> None:
    _, writer, header = WRITERS[format_name]
    with path.open("w", encoding="utf-8") as handle:
        handle.write(header)
        for work in _works(count):
            handle.write(writer(work))


def import_cold(home: Path, name: str, source: Path, *, import_only: bool = False) -> dict:
    """One cold import of `source` as batch `name` into a store of its own."""
    folder = home / "landing" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    source.rename(folder / name)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_once", str(home), "bench", "",
         "import-only" if import_only else ""],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


_IMPORT_STEPS = (
    "find_pending_batches",
    "load_batches",
    "validate_batches",
    "cluster_batches",
    "resolve_batches",
    "summarise_record",
)


def _import_seconds(measured: dict) -> float:
    return sum(measured["step_seconds"].get(step, 0.0) for step in _IMPORT_STEPS)


def _measured(home: Path, path: Path, works: int, import_only: bool) -> dict:
    size = path.stat().st_size
    started = time.perf_counter()
    measured = import_cold(home, path.name, path, import_only=import_only)
    wall = time.perf_counter() - started
    return {
        "file_mb": round(size / 1e6, 1),
        "import_wall_seconds": round(measured["wall_seconds"], 2),
        "process_seconds": round(wall, 2),
        "entries_per_second": round(works / measured["wall_seconds"]),
        # The import itself (load to summary), without duplicate detection and checks.
        "import_steps_seconds": round(_import_seconds(measured), 2),
        "import_entries_per_second": round(works / _import_seconds(measured)),
        "peak_rss_with_workers_mb": measured["peak_rss_with_workers_mb"],
        "stage_seconds": {k: round(v, 2) for k, v in measured["step_seconds"].items()},
        "counts": measured["counts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["ris"], choices=sorted(WRITERS))
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="run the import's own steps only, without duplicate detection and its checks "
        "(at 1M works detection takes longer than the import, and it is the same for every "
        "format: it reads the store, not the file)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="import each file this many times, alternating "
        "the order; each format's rate is its median round",
    )
    parser.add_argument(
        "--exports-first",
        action="store_true",
        help="import the exports before the JSONL file in the first round (the machine "
        "quieter at the end of the run, a measure against the exports)",
    )
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as scratch:
        root = Path(scratch)
        files: dict[str, Path] = {}
        for format_name in args.formats:
            files[format_name] = root / f"works{WRITERS[format_name][0]}"
            write_export(files[format_name], format_name, args.works)
        jsonl = root / "works.jsonl"
        write_export(root / "for_jsonl.ris", "ris", args.works)
        with jsonl.open("w", encoding="utf-8") as handle:
            for entry in convert_file(root / "for_jsonl.ris", "ris", None, "benchmark"):
                handle.write(f"{entry.line}\n")
        sources = [("jsonl", jsonl), *files.items()]
        for round_number in range(args.rounds):
            # Alternated: each format runs first in some round, so a machine that slows down
            # or speeds up during the run weighs on every format alike.
            ordered = sources if (round_number + args.exports_first) % 2 == 0 else sources[::-1]
            for format_name, path in ordered:
                copy = root / f"round{round_number}" / path.name
                copy.parent.mkdir(exist_ok=True)
                os.link(path, copy)
                home = root / f"home-{format_name}-{round_number}"
                figure = _measured(home, copy, args.works, args.import_only)
                figures.setdefault(format_name, {"rounds": []})["rounds"].append(figure)
                shutil.rmtree(home)
    for figure in figures.values():
        rates = [r["import_entries_per_second"] for r in figure["rounds"]]
        figure["import_entries_per_second"] = round(statistics.median(rates))
    base = figures["jsonl"]["import_entries_per_second"]
    for figure in figures.values():
        figure["share_of_jsonl_rate"] = round(figure["import_entries_per_second"] / base, 2)
    print(json.dumps({"works": args.works, "formats": figures}, indent=2))


if __name__ == "__main__":
    main()
