"""Duplicate detection on the shared labelled datasets (../shared/data/dedup, from bib-dedupe):
each dataset imported through the real data path (its records as lines with an `other`
identifier holding the dataset's ID and a bibliographic enhancement built from the CSV), then
detection over the store, scored pairwise against `merged_record_ids.csv`.

    python -m benchmarks.dedup                 # every dataset; a table and benchmarks/out/dedup.json
    python -m benchmarks.dedup stroke          # one

Pairs are those within each star (the canonical and its duplicates); `maybe` pairs are not
counted as duplicates.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from import_pipeline import store
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import stages
from import_pipeline.pipeline.detection import detect
from import_pipeline.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dedup"
DATASETS = ("respiratory", "stroke", "haematology", "cytology_screening")
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


def line_of(dataset: str, row: dict[str, str]) -> str:
    """A batch line for one CSV record: its ID as an `other` identifier, the rest as a
    bibliographic enhancement."""
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
    if row.get("journal"):
        content["publication_venue"] = {"display_name": row["journal"]}
    return json.dumps(
        {
            "identifiers": [
                {
                    "identifier_type": "other",
                    "identifier": row["ID"],
                    "other_identifier_name": f"bib-dedupe:{dataset}",
                }
            ],
            "enhancements": [{"source": "bib-dedupe", "visibility": "public", "content": content}],
        }
    )


def import_dataset(dataset: str, home: Path) -> Settings:
    """The dataset as one batch through load → validate → cluster → resolve → store."""
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    landing = LandingZone(settings.landing)
    folder = Path(settings.landing) / dataset.replace("_", "-")
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    with (DATA / dataset / "records_pre_merged.csv").open(newline="") as rows:
        lines = [line_of(dataset, row) for row in csv.DictReader(rows)]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")
    key = folder.name
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


def truth_pairs(dataset: str) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    with (DATA / dataset / "merged_record_ids.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            pairs |= set(itertools.combinations(sorted(row["merged_ids"].split(";")), 2))
    return pairs


def evaluate(dataset: str, root: Path) -> dict:
    settings = import_dataset(dataset, root / dataset)
    with store.connect(settings.store) as conn:
        ids = dict(conn.execute(
            "SELECT reference_id::VARCHAR, identifier FROM reference_identifier "
            "WHERE identifier_type = 'other'"
        ).fetchall())  # fmt: skip
        started = time.perf_counter()
        with store.transaction(conn):
            outcome = detect(conn, "(SELECT id AS reference_id FROM reference)")
        seconds = time.perf_counter() - started
        decided = conn.execute(
            "SELECT reference_id::VARCHAR, decision, duplicate_of::VARCHAR FROM duplicate_decisions"
        ).fetchall()
    stars: dict[str, list[str]] = {}
    for ref, decision, of in decided:
        if decision == "duplicate":
            stars.setdefault(of, [of]).append(ref)
    predicted: set[tuple[str, str]] = set()
    for members in stars.values():
        predicted |= set(itertools.combinations(sorted(ids[ref] for ref in members), 2))
    truth = truth_pairs(dataset)
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth)
    return {
        "dataset": dataset,
        "records": len(ids),
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "false_positives": len(predicted - truth),
        "false_negatives": len(truth - predicted),
        "maybe": outcome.counts.get("maybe", 0),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if hits else 0.0,
        "detection_seconds": round(seconds, 3),
        "records_per_second": round(len(ids) / seconds),
    }


def main() -> None:
    datasets = sys.argv[1:] or list(DATASETS)
    with tempfile.TemporaryDirectory(prefix="import-pipeline-dedup-") as root:
        figures = [evaluate(dataset, Path(root)) for dataset in datasets]
    true = sum(f["true_pairs"] for f in figures)
    tp = sum(f["true_pairs"] - f["false_negatives"] for f in figures)
    predicted = sum(f["predicted_pairs"] for f in figures)
    precision, recall = tp / max(predicted, 1), tp / max(true, 1)
    overall = {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4),
        "records_per_second": round(
            sum(f["records"] for f in figures) / sum(f["detection_seconds"] for f in figures)
        ),
    }
    print("| dataset | records | pairs | precision | recall | F1 | FP | FN | maybe | records/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        print(f"| {f['dataset']} | {f['records']} | {f['true_pairs']} | {f['precision']} | "
              f"{f['recall']} | {f['f1']} | {f['false_positives']} | {f['false_negatives']} | "
              f"{f['maybe']} | {f['records_per_second']} |")  # fmt: skip
    print(f"| all | | {true} | {overall['precision']} | {overall['recall']} | {overall['f1']} "
          f"| | | | {overall['records_per_second']} |")  # fmt: skip
    out = Path("benchmarks/out/dedup.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"datasets": figures, "overall": overall}, indent=2))


if __name__ == "__main__":
    main()
