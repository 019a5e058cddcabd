"""Realistic DESTINY-shaped batches and a preloaded store, for the benchmark.

Shapes come from the real files in `import_pipeline/demo_data/destiny`: each line has an
OpenAlex id, a DOI and (for most) a PubMed id; a bibliographic enhancement with authors, an
abstract, a location and one or two annotations, taken in turn from the real OpenAlex lines
(trimmed to about 1 KB). Identifiers are made unique per work number, so a store preloaded
with works 0..M-1 matches the batch lines whose work number is below M.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from import_pipeline import store
from import_pipeline.landing.demo import DESTINY


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


def _with(document: dict, kind: str, value: object) -> dict:
    """The first enhancement of `kind` with `value` merged into its content (a copy)."""
    enhancements = []
    for enhancement in document["enhancements"]:
        if enhancement["content"]["enhancement_type"] == kind and value is not None:
            enhancement = {**enhancement, "content": {**enhancement["content"], **value}}  # type: ignore[dict-item]
            value = None
        enhancements.append(enhancement)
    if value is not None:  # the line had none of that kind: it gets one
        content = {"enhancement_type": kind, **value}  # type: ignore[dict-item]
        enhancements.append({"source": "bench", "visibility": "public", "content": content})
    return {**document, "enhancements": enhancements}


def _without_process(document: dict) -> dict:
    return {
        **document,
        "enhancements": [
            {**e, "content": {k: v for k, v in e["content"].items() if k != "process"}}
            for e in document["enhancements"]
        ],
    }


#: One common defect each, as real exports carry them (issue 14): what it does to a line.
DEFECTS: dict[str, Callable[[dict], dict | str]] = {
    "pm_id written 'PMID 123'": lambda d: {
        **d,
        "identifiers": [
            {**i, "identifier": f"PMID {i['identifier']}"} if i["identifier_type"] == "pm_id" else i
            for i in d["identifiers"]
        ]
        + (
            []
            if any(i["identifier_type"] == "pm_id" for i in d["identifiers"])
            else [{"identifier_type": "pm_id", "identifier": "PMID 1"}]
        ),
    },  # fmt: skip
    "publication_year as a string": lambda d: _with(
        d, "bibliographic", {"publication_year": "2019"}
    ),
    "unknown key in a content": lambda d: _with(d, "abstract", {"language": "en"}),
    "unknown key in an identifier": lambda d: {
        **d,
        "identifiers": [{**d["identifiers"][0], "source": "x"}, *d["identifiers"][1:]],
    },  # fmt: skip
    "abstract without process": _without_process,
    "location version not an enum": lambda d: _with(
        d, "location", {"locations": [{"version": "final"}]}
    ),
    "impossible date": lambda d: _with(d, "bibliographic", {"publication_date": "2024-02-30"}),
    "bad URL": lambda d: _with(d, "location", {"locations": [{"landing_page_url": "not a url"}]}),
    "enhancement without visibility": lambda d: {
        **d,
        "enhancements": [
            {k: v for k, v in d["enhancements"][0].items() if k != "visibility"},
            *d["enhancements"][1:],
        ],
    },  # fmt: skip
    "invalid JSON (trailing comma)": lambda d: json.dumps(d, ensure_ascii=False)[:-1] + ", }",
}


def defective(text: str, index: int) -> str:
    """The line with one defect, the `index`-th of `DEFECTS` in turn."""
    defect = list(DEFECTS.values())[index % len(DEFECTS)]
    changed = defect(json.loads(text))
    return changed if isinstance(changed, str) else json.dumps(changed, ensure_ascii=False)


def write_batch(path: Path, count: int, store_size: int, defects: float = 0.0) -> int:
    """Writes `count` lines; a share `defects` of them (spread evenly) carry one defect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for index, text in enumerate(batch_lines(count, store_size=store_size)):
            if defects and int((index + 1) * defects) > int(index * defects):
                text = defective(text, index)
            handle.write(text + "\n")
    return path.stat().st_size


def preload_store(location: Path | str, works: int) -> None:
    """A store (a DuckDB file, or a PostgreSQL URL) holding `works` references with their
    identifiers and one enhancement each."""
    with store.connect(location) as conn:
        # Setup, not measured: writing 10M references (and their key index) in one transaction
        # needs more memory than an import's connection is given.
        conn.execute("SET memory_limit = '4GB'")
        conn.execute(
            "CREATE TEMP TABLE w AS SELECT range AS work, uuid() AS id FROM range(?)", [works]
        )
        conn.execute(
            """
            INSERT INTO reference (id, visibility, created_at, updated_at)
                SELECT id, 'public', now(), now() FROM w;
            INSERT INTO reference_identifier (reference_id, identifier_type, identifier, created_at)
                SELECT id, 'open_alex', 'W' || (4000000000 + work), now() FROM w
                UNION ALL SELECT id, 'doi', '10.5555/bench.' || work, now() FROM w
                UNION ALL SELECT id, 'pm_id', (30000000 + work)::VARCHAR, now() FROM w
                    WHERE work % 4 <> 0;
            INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
                    visibility, content, content_hash, created_at)
                SELECT uuid(), id, 'annotation', 'preload', 'public',
                    '{"enhancement_type":"annotation","annotations":[]}', md5(work::VARCHAR),
                    now() FROM w;
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
