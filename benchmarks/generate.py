"""Realistic DESTINY-shaped batches and a preloaded store, for the benchmark.

Shapes come from the real files in `import_pipeline/demo_data/destiny`: each line has an
OpenAlex id, a DOI and (for most) a PubMed id; a bibliographic enhancement with authors, an
abstract, a location and one or two annotations, taken in turn from the real OpenAlex lines
(trimmed to about 1 KB). Identifiers are made unique per work number, so a store preloaded
with works 0..M-1 matches the batch lines whose work number is below M.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from import_pipeline import store
from import_pipeline.demo import DESTINY


def _templates() -> list[list[dict]]:
    """Enhancement lists from the real OpenAlex lines, trimmed to realistic sizes."""
    templates = []
    for text in (DESTINY / "openalex_references.jsonl").read_text(encoding="utf-8").splitlines():
        enhancements = []
        for enhancement in json.loads(text)["enhancements"]:
            content = dict(enhancement["content"])
            kind = content["enhancement_type"]
            if kind == "abstract":
                content["abstract"] = content["abstract"][:120]
            elif kind == "bibliographic":
                content["authorship"] = (content.get("authorship") or [])[:2]
                content["title"] = (content.get("title") or "")[:60]
            elif kind == "location":
                content["locations"] = [
                    {k: v for k, v in loc.items() if k in ("is_oa", "version", "landing_page_url")}
                    for loc in content["locations"][:1]
                ]
            elif kind == "annotation":
                if sum(e["content"]["enhancement_type"] == "annotation" for e in enhancements):
                    continue  # one annotation enhancement a line
                content["annotations"] = [{**a, "data": {}} for a in content["annotations"][:1]]
            enhancements.append({**enhancement, "content": content})
        templates.append(enhancements)
    return templates


def work_identifiers(work: int) -> list[dict]:
    identifiers = [
        {"identifier_type": "open_alex", "identifier": f"W{4_000_000_000 + work}"},
        {"identifier_type": "doi", "identifier": f"10.5555/bench.{work}"},
    ]
    if work % 4:
        identifiers.append({"identifier_type": "pm_id", "identifier": 30_000_000 + work})
    return identifiers


def batch_lines(count: int, *, matching_every: int = 2, store_size: int = 0) -> Iterator[str]:
    """`count` lines; every `matching_every`-th line is a work already in the store."""
    templates = _templates()
    for line in range(count):
        if store_size and line % matching_every == 0:
            work = (line * 7919) % store_size  # a stored work, by one of its identifiers
            identifiers = [work_identifiers(work)[line % 2]]
        else:
            work = store_size + line
            identifiers = work_identifiers(work)
        yield json.dumps(
            {"identifiers": identifiers, "enhancements": templates[line % len(templates)]},
            ensure_ascii=False,
        )


def write_batch(path: Path, count: int, store_size: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text in batch_lines(count, store_size=store_size):
            handle.write(text + "\n")
    return path.stat().st_size


def preload_store(path: Path, works: int) -> None:
    """A store holding `works` references with their identifiers and one enhancement each."""
    with store.connect(path) as conn:
        # Setup, not measured: writing 10M references (and their key index) in one transaction
        # needs more memory than an import's connection is given.
        conn.execute("SET memory_limit = '4GB'")
        conn.execute(
            "CREATE TEMP TABLE w AS SELECT range AS work, uuid() AS id FROM range(?)", [works]
        )
        conn.execute(
            """
            INSERT INTO reference (id, visibility) SELECT id, 'public' FROM w;
            INSERT INTO reference_identifier (reference_id, identifier_type, identifier)
                SELECT id, 'open_alex', 'W' || (4000000000 + work) FROM w
                UNION ALL SELECT id, 'doi', '10.5555/bench.' || work FROM w
                UNION ALL SELECT id, 'pm_id', (30000000 + work)::VARCHAR FROM w WHERE work % 4 <> 0;
            INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
                    visibility, content, content_hash)
                SELECT uuid(), id, 'annotation', 'preload', 'public',
                    '{"enhancement_type":"annotation","annotations":[]}', md5(work::VARCHAR) FROM w;
            """
        )


def duckdb_floor_seconds(path: Path) -> float:
    """DuckDB's own full parse of the file: the floor an import cannot beat."""
    import time

    conn = duckdb.connect()
    started = time.perf_counter()
    conn.execute(
        "CREATE TEMP TABLE parsed AS SELECT * FROM read_json(?, format = 'newline_delimited', "
        "maximum_object_size = 67108864)",
        [str(path)],
    )
    seconds = time.perf_counter() - started
    conn.close()
    return seconds
