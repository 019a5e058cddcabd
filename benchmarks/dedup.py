"""Duplicate detection on labelled datasets in bib-dedupe's CSV format: the shared ones
(../shared/data/dedup, from bib-dedupe), then the failure classes of
tests/data/dedup_classes (one folder each, see their README.md). Each dataset is imported
through the real data path (its records as lines with an `other` identifier holding the
dataset's ID, a `doi` identifier when the record has a valid DOI, a bibliographic enhancement
built from the CSV — `booktitle` as the venue when `journal` is empty — and an `abstract`
enhancement when it has one), then detection over the store, scored pairwise against
`merged_record_ids.csv`.

    python -m benchmarks.dedup                 # every dataset; a table and benchmarks/out/dedup.json
    python -m benchmarks.dedup stroke          # one (shared or class), by name
    python -m benchmarks.dedup --data DIR      # every subfolder of DIR holding records_pre_merged.csv
    python -m benchmarks.dedup --scale 100000 1000000   # detection for a batch into a big store

Pairs are those within each star (the canonical and its duplicates), and those of records
that identifier resolution merged into one reference (two lines with one DOI): both are
found. `maybe` pairs are not counted as duplicates. The json lists each dataset's false and
missed pairs by ID.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from import_pipeline import store
from import_pipeline.detection.stars import detect
from import_pipeline.domain.identifiers import normalise_identifier
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import stages
from import_pipeline.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dedup"
DATASETS = ("respiratory", "stroke", "haematology", "cytology_screening")
#: The failure classes (labelled sets composed from real patterns), run after the shared ones.
CLASSES_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "dedup_classes"
CLASSES = ("stars_chain", "recurring_column", "poor_records", "title_variants", "doi_conflict")
RECORD = {
    "source_name": "bib-dedupe benchmark",
    "processor_name": "benchmarks.dedup",
    "processor_version": "1",
    "expected_reference_count": -1,
}


def _authorship(authors: str) -> list[dict]:
    names = [name.strip() for name in authors.split(" and ") if name.strip()]
    return [
        {
            "display_name": name,
            "position": "first" if i == 0 else "last" if i == len(names) - 1 else "middle",
        }
        for i, name in enumerate(names)
    ]


def _bibliographic(row: dict[str, str]) -> dict:
    first, _, last = (row.get("pages") or "").partition("-")
    content: dict = {"enhancement_type": "bibliographic"}
    if row.get("title"):
        content["title"] = row["title"]
    if row.get("author"):
        content["authorship"] = _authorship(row["author"])
    if (row.get("year") or "").strip().isdigit():
        content["publication_year"] = int(row["year"])
    pagination = {
        "volume": row.get("volume") or None,
        "issue": row.get("number") or None,
        "first_page": first.strip() or None,
        "last_page": last.strip() or None,
    }
    if any(pagination.values()):
        content["pagination"] = pagination
    venue = row.get("journal") or row.get("booktitle")
    if venue:
        content["publication_venue"] = {"display_name": venue}
    return content


def line_of(dataset: str, row: dict[str, str]) -> str:
    """A batch line for one CSV record: its ID as an `other` identifier, its DOI (when valid)
    as a `doi` identifier, the rest as a bibliographic and an abstract enhancement."""
    identifiers: list[dict] = [
        {"identifier_type": "other", "identifier": row["ID"],
         "other_identifier_name": f"bib-dedupe:{dataset}"}
    ]  # fmt: skip
    if row.get("doi") and normalise_identifier("doi", row["doi"]):
        identifiers.append({"identifier_type": "doi", "identifier": row["doi"]})
    enhancements = [
        {"source": "bib-dedupe", "visibility": "public", "content": _bibliographic(row)}
    ]
    if (row.get("abstract") or "").strip():
        enhancements.append({"source": "bib-dedupe", "visibility": "public", "content": {
            "enhancement_type": "abstract", "process": "other", "abstract": row["abstract"]}})  # fmt: skip
    return json.dumps({"identifiers": identifiers, "enhancements": enhancements})


def folder_of(dataset: str) -> Path:
    """A dataset's folder, by name: a shared set, else a class."""
    return DATA / dataset if (DATA / dataset).is_dir() else CLASSES_DATA / dataset


def import_dataset(dataset: str, home: Path, folder: Path | None = None) -> Settings:
    """The dataset (in `folder`, else found by name) as one batch through load → validate →
    cluster → resolve → store."""
    source = folder or folder_of(dataset)
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    landing = LandingZone(settings.landing)
    record = Path(settings.landing) / dataset.replace("_", "-")
    record.mkdir(parents=True)
    (record / "record.json").write_text(json.dumps(RECORD))
    with (source / "records_pre_merged.csv").open(newline="") as rows:
        lines = [line_of(dataset, row) for row in csv.DictReader(rows)]
    (record / "records.jsonl").write_text("\n".join(lines) + "\n")
    key = record.name
    run_id = uuid.uuid4().hex[:12]
    started = stages.start_record(
        lambda: store.connect(settings.store), landing, key, [BatchVersion("records.jsonl")], run_id
    )
    item = started.batches[0]
    loaded = stages.load_batch(
        landing, item.batch, batch_id=item.batch_id,
        staging=stages.staging_dir(settings, run_id, key, item.batch.name), settings=settings,
    )  # fmt: skip
    clustered = stages.cluster_batch(stages.validate_batches([loaded])[0])
    with store.connect(settings.store) as conn:
        stages.resolve_once(conn, clustered, CollisionStrategy.MERGE_DEFENSIVE,
                            ttl=settings.unresolved_ttl)  # fmt: skip
    return settings


def truth_pairs(dataset: str, folder: Path | None = None) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    with ((folder or folder_of(dataset)) / "merged_record_ids.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            pairs |= set(itertools.combinations(sorted(row["merged_ids"].split(";")), 2))
    return pairs


@dataclass(frozen=True)
class Detected:
    """What detection decided for one imported dataset: each reference's CSV IDs (several
    when identifier resolution merged their lines), each decided reference's (decision,
    duplicate_of), the stars (canonical → members, itself first), and the seconds it took."""

    ids: dict[str, list[str]]
    decisions: dict[str, tuple[str, str | None]]
    stars: dict[str, list[str]]
    seconds: float
    maybe: int

    def predicted_pairs(self) -> set[tuple[str, str]]:
        """Pairs of IDs in one star, or merged into one reference."""
        groups = [[i for ref in members for i in self.ids[ref]] for members in self.stars.values()]
        groups += list(self.ids.values())
        return {pair for group in groups for pair in itertools.combinations(sorted(group), 2)}


def run_detection(dataset: str, root: Path, folder: Path | None = None) -> Detected:
    """The dataset imported into a store of its own under `root`, then detection over it."""
    settings = import_dataset(dataset, root / dataset, folder)
    with store.connect(settings.store) as conn:
        rows = conn.execute(
            "SELECT reference_id::VARCHAR, identifier FROM reference_identifier "
            "WHERE identifier_type = 'other' ORDER BY identifier"
        ).fetchall()
        started = time.perf_counter()
        with store.transaction(conn):
            outcome = detect(conn, "(SELECT id AS reference_id FROM reference)")
        seconds = time.perf_counter() - started
        decided = conn.execute(
            "SELECT reference_id::VARCHAR, decision, duplicate_of::VARCHAR FROM duplicate_decisions"
        ).fetchall()
    ids: dict[str, list[str]] = {}
    for ref, identifier in rows:
        ids.setdefault(ref, []).append(identifier)
    stars: dict[str, list[str]] = {}
    for ref, decision, of in decided:
        if decision == "duplicate":
            stars.setdefault(of, [of]).append(ref)
    decisions = {ref: (decision, of) for ref, decision, of in decided}
    return Detected(ids, decisions, stars, seconds, outcome.counts.get("maybe", 0))


def evaluate(dataset: str, root: Path, folder: Path | None = None) -> dict:
    detected = run_detection(dataset, root, folder)
    predicted = detected.predicted_pairs()
    truth = truth_pairs(dataset, folder)
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    records = sum(len(ids) for ids in detected.ids.values())
    return {
        "dataset": dataset,
        "records": records,
        "references": len(detected.ids),
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "false_positives": len(predicted - truth),
        "false_negatives": len(truth - predicted),
        "maybe": detected.maybe,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if hits else 0.0,
        "detection_seconds": round(detected.seconds, 3),
        "records_per_second": round(records / detected.seconds),
        "false_pairs": sorted(predicted - truth),
        "missed_pairs": sorted(truth - predicted),
    }


def _datasets(args: list[str]) -> list[tuple[str, Path]]:
    """(name, folder) of each dataset the arguments ask for: `--data DIR`'s subfolders,
    names, or by default the shared sets then the classes."""
    if args[:1] == ["--data"]:
        root = Path(args[1])
        return [(d.name, d) for d in sorted(root.iterdir())
                if (d / "records_pre_merged.csv").is_file()]  # fmt: skip
    names = args or [*DATASETS, *CLASSES]
    return [(name, folder_of(name)) for name in names]


def _print_table(figures: list[dict], overall: dict) -> None:
    print("| dataset | records | pairs | precision | recall | F1 | false pairs | missed pairs "
          "| maybe | records/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        print(f"| {f['dataset']} | {f['records']} | {f['true_pairs']} | {f['precision']} | "
              f"{f['recall']} | {f['f1']} | {f['false_positives']} | {f['false_negatives']} | "
              f"{f['maybe']} | {f['records_per_second']} |")  # fmt: skip
    print(f"| all | {overall['records']} | {overall['true_pairs']} | {overall['precision']} | "
          f"{overall['recall']} | {overall['f1']} | {overall['false_positives']} | "
          f"{overall['false_negatives']} | | {overall['records_per_second']} |")  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--scale"]:
        lines, stored = (int(v) for v in (sys.argv[2:4] or ["100000", "1000000"]))
        figures = scale(lines, stored)
        print(json.dumps(figures, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="import-pipeline-dedup-") as root:
        figures = [evaluate(name, Path(root), folder) for name, folder in _datasets(sys.argv[1:])]
    true = sum(f["true_pairs"] for f in figures)
    tp = sum(f["true_pairs"] - f["false_negatives"] for f in figures)
    predicted = sum(f["predicted_pairs"] for f in figures)
    precision, recall = tp / max(predicted, 1), tp / max(true, 1)
    overall = {
        "records": sum(f["records"] for f in figures),
        "true_pairs": true,
        "false_positives": sum(f["false_positives"] for f in figures),
        "false_negatives": sum(f["false_negatives"] for f in figures),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4),
        "records_per_second": round(
            sum(f["records"] for f in figures) / sum(f["detection_seconds"] for f in figures)
        ),
    }
    _print_table(figures, overall)
    out = Path("benchmarks/out/dedup.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"datasets": figures, "overall": overall}, indent=2))


# -- the cost of detection at scale ---------------------------------------------------------------

#: Synthetic works: titles of 8-14 words drawn from the words of the shared datasets' real
#: titles (so that two unrelated titles are as alike as real ones: made-up words that share
#: letters would make every pair look close to Jaro-Winkler), authors from their real family
#: names, years, volumes and pages — varied enough that blocks stay small, as real records do.
_WORK_SQL = """
    SELECT w AS work,
        list_transform(range(8 + w % 7),
            k -> $vocabulary[1 + (hash(w, k) % len($vocabulary))::INTEGER]) AS words,
        list_transform(range(1 + w % 5),
            k -> $families[1 + (hash(w, k, 'a') % len($families))::INTEGER]) AS families,
        1980 + (hash(w, 'y') % 45)::INTEGER AS year,
        (1 + hash(w, 'v') % 300)::VARCHAR AS volume,
        (1 + hash(w, 'p') % 2000)::INTEGER AS first_page
    FROM range($first, $last) t(w)
"""


@functools.cache
def vocabularies() -> dict[str, list[str]]:
    """The distinct words (three letters or more) of the shared datasets' titles, and the
    family names of their authors."""
    words: set[str] = set()
    families: set[str] = set()
    for dataset in DATASETS:
        with (DATA / dataset / "records_pre_merged.csv").open(newline="") as rows:
            for row in csv.DictReader(rows):
                words |= {w for w in re.findall(r"[a-z]+", (row.get("title") or "").lower())
                          if len(w) >= 3}  # fmt: skip
                families |= {name.split(",")[0].strip() for name in
                             (row.get("author") or "").split(" and ") if "," in name}  # fmt: skip
    return {"vocabulary": sorted(words), "families": sorted(families - {""})}


_CONTENT_SQL = """
    json_object('enhancement_type', 'bibliographic',
        'title', array_to_string(words, ' '),
        'authorship', list_transform(families, f -> json_object('display_name', f || ', A.', 'position', 'middle')),
        'publication_year', year,
        'pagination', json_object('volume', volume, 'first_page', first_page::VARCHAR,
                                  'last_page', (first_page + 9)::VARCHAR),
        'publication_venue', json_object('display_name', 'Journal ' || (hash(work, 'j') % 500)::VARCHAR))
"""


def _preload_bibliographic_store(location: Path, works: int) -> None:
    """`works` references, each with one synthetic bibliographic enhancement, and their keys."""
    from import_pipeline.detection.stored_keys import refresh_keys

    with store.connect(location) as conn, store.transaction(conn):
        conn.execute("SET memory_limit = '4GB'")
        conn.execute(
            f"CREATE TEMP TABLE w AS SELECT uuid() AS id, {_CONTENT_SQL} AS content "
            f"FROM ({_WORK_SQL})",
            {"first": 0, "last": works, **vocabularies()},
        )
        conn.execute(
            """
            INSERT INTO reference (id, visibility, created_at, updated_at)
                SELECT id, 'public', now(), now() FROM w;
            INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
                    visibility, content, content_hash, created_at)
                SELECT uuid(), id, 'bibliographic', 'preload', 'public', content,
                    md5(content::VARCHAR), now() FROM w;
            """
        )
        refresh_keys(conn, "(SELECT NULL::UUID AS reference_id WHERE false)")


def _scale_batch(path: Path, lines: int, store_size: int) -> None:
    """`lines` lines: one in 20 a stored work written differently (its title in upper case with
    a full stop), the rest new works."""
    import duckdb

    conn = duckdb.connect()
    conn.execute(
        f"CREATE TABLE works AS SELECT *, {_CONTENT_SQL} AS content FROM ({_WORK_SQL})",
        {"first": store_size, "last": store_size + lines, **vocabularies()},
    )
    again = conn.execute(
        f"""
        SELECT json_merge_patch({_CONTENT_SQL},
            json_object('title', upper(array_to_string(words, ' ')) || '.'))::VARCHAR
        FROM ({_WORK_SQL}) WHERE work % {max(store_size // max(lines // 20, 1), 1)} = 0
        LIMIT {lines // 20}
        """,
        {"first": 0, "last": store_size, **vocabularies()},
    ).fetchall()
    new = conn.execute(f"SELECT content::VARCHAR FROM works LIMIT {lines - len(again)}").fetchall()
    with path.open("w") as out:
        for index, (content,) in enumerate([*again, *new]):
            identifier = {"identifier_type": "other", "identifier": f"scale-{index}",
                          "other_identifier_name": "benchmark"}  # fmt: skip
            enhancement = {
                "source": "benchmark",
                "visibility": "public",
                "content": json.loads(content),
            }
            out.write(
                json.dumps({"identifiers": [identifier], "enhancements": [enhancement]}) + "\n"
            )


def scale(lines: int, store_size: int) -> dict:
    """A `lines`-line batch imported into a store of `store_size` references, then detection
    for the batch's references against the whole store: the two timed apart."""
    with tempfile.TemporaryDirectory(prefix="import-pipeline-dedup-scale-") as root:
        home = Path(root)
        settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
        started = time.perf_counter()
        _preload_bibliographic_store(settings.store, store_size)
        preload = time.perf_counter() - started
        folder = Path(settings.landing) / "scale"
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(RECORD))
        _scale_batch(folder / "batch.jsonl", lines, store_size)
        landing = LandingZone(settings.landing)
        started = time.perf_counter()
        run_id = uuid.uuid4().hex[:12]
        begun = stages.start_record(
            lambda: store.connect(settings.store), landing, "scale", [], run_id
        )
        item = begun.batches[0]
        loaded = stages.load_batch(
            landing, item.batch, batch_id=item.batch_id,
            staging=stages.staging_dir(settings, run_id, "scale", item.batch.name),
            settings=settings,
        )  # fmt: skip
        clustered = stages.cluster_batch(stages.validate_batches([loaded])[0])
        with store.connect(settings.store) as conn:
            stages.resolve_once(conn, clustered, CollisionStrategy.MERGE_DEFENSIVE,
                                ttl=settings.unresolved_ttl)  # fmt: skip
        imported = time.perf_counter() - started
        with store.connect(settings.store) as conn:
            started = time.perf_counter()
            with store.transaction(conn):
                outcome = detect(
                    conn,
                    "(SELECT DISTINCT reference_id FROM import_results WHERE reference_id IS NOT NULL)",
                )
            detection = time.perf_counter() - started
    return {
        "lines": lines,
        "store_references": store_size,
        "preload_seconds": round(preload, 1),
        "import_seconds": round(imported, 1),
        "detection_seconds": round(detection, 1),
        "detection_records_per_second": round(lines / detection),
        "pairs_scored": outcome.pairs,
        "decisions": outcome.counts,
    }


if __name__ == "__main__":
    main()
