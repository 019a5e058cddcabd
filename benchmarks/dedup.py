"""Duplicate detection on the shared labelled datasets (../shared/data/dedup, from bib-dedupe):
each dataset imported through the real data path (its records as lines with an `other`
identifier holding the dataset's ID and a bibliographic enhancement built from the CSV), then
detection over the store, scored pairwise against `merged_record_ids.csv`.

    python -m benchmarks.dedup                 # every dataset; a table and benchmarks/out/dedup.json
    python -m benchmarks.dedup stroke          # one
    python -m benchmarks.dedup --scale 100000 1000000   # detection for a batch into a big store

Pairs are those within each star (the canonical and its duplicates); `maybe` pairs are not
counted as duplicates.
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
from pathlib import Path

from import_pipeline import store
from import_pipeline.detection.stars import detect
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import stages
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
    if sys.argv[1:2] == ["--scale"]:
        lines, stored = (int(v) for v in (sys.argv[2:4] or ["100000", "1000000"]))
        figures = scale(lines, stored)
        print(json.dumps(figures, indent=2))
        return
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
    from import_pipeline.detection.pairs import refresh_keys

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
