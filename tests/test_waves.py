"""Batches stored together (in waves) end exactly as stored one after another: the same
references with the same identifiers, enhancements and visibility, the same results and
associations, under every strategy — on random batches that share works, identifiers and
stored references in every way the resolver has to notice."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from import_pipeline import store
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing import LandingZone
from import_pipeline.pipeline import resolve
from import_pipeline.settings import Settings

from .conftest import import_directly, write_batch, write_record

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _identifiers(rng: random.Random, work: int, works: int) -> list[dict]:
    """Some of the work's identifiers; now and then a second DOI or PMID of the same type
    (a conflict the strategies settle differently), or an untrusted `other` one."""
    known = [
        {"identifier_type": "doi", "identifier": f"10.1000/w{work}"},
        {"identifier_type": "pm_id", "identifier": 1000 + work},
        {"identifier_type": "open_alex", "identifier": f"W{5000 + work}"},
    ]
    chosen = rng.sample(known, rng.randint(1, 3))
    if rng.random() < 0.15:
        chosen.append(
            {"identifier_type": "doi", "identifier": f"10.1000/w{work}-v{rng.randint(1, 2)}"}
        )
    if rng.random() < 0.1:
        chosen.append({"identifier_type": "pm_id", "identifier": 1000 + (work + 1) % works})
    if rng.random() < 0.1:
        chosen.append(
            {
                "identifier_type": "other",
                "identifier": f"isbn-{work % 5}",
                "other_identifier_name": "isbn",
            }
        )
    return chosen


def _enhancements(rng: random.Random, work: int, works: int) -> list[dict]:
    enhancements = [
        {
            "source": rng.choice(["openalex", "pubmed"]),
            "visibility": "public",
            "content": {
                "enhancement_type": "abstract",
                "process": "other",
                "abstract": f"work {work}, version {rng.randint(0, 2)}",
            },
        }
        for _ in range(rng.randint(0, 2))
    ]
    if rng.random() < 0.12:
        enhancements.append(
            {
                "source": "citations",
                "visibility": "public",
                "content": {
                    "enhancement_type": "reference_association",
                    "association_type": "cites",
                    "associated_reference_ids": [
                        {
                            "identifier_type": "doi",
                            "identifier": f"10.1000/w{rng.randrange(works + 6)}",
                        }
                    ],
                },
            }
        )
    return enhancements


def _line(rng: random.Random, works: int) -> str:
    if rng.random() < 0.04:
        return '{"identifiers": [{"identifier_type": "doi"'  # broken JSON: fails alone
    work = rng.randrange(works)
    return json.dumps(
        {
            "visibility": rng.choice(["public", "public", "restricted"]),
            "identifiers": _identifiers(rng, work, works),
            "enhancements": _enhancements(rng, work, works),
        }
    )


def _write_batches(
    landing: LandingZone, key: str, rng: random.Random, batches: int, works: int
) -> None:
    for index in range(batches):
        lines = [_line(rng, works) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.25:  # a file that repeats an earlier one's lines
            lines = lines[: rng.randint(1, len(lines))]
        write_batch(landing, key, f"b{index:03d}.jsonl", "\n".join(lines) + "\n")


def canonical(settings: Settings) -> dict:
    """The store as content: each reference named by the first result that names it (batch,
    line), so generated ids drop out."""
    with store.connect(settings.store, read_only=True) as conn:

        def rows(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        first_named = dict(
            rows(
                """
                SELECT r.reference_id::VARCHAR, min(b.name || ':' || lpad(r.line_number::VARCHAR, 6, '0'))
                FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
                WHERE r.reference_id IS NOT NULL GROUP BY 1
                """
            )
        )

        def name(reference_id: object) -> str:
            return first_named.get(str(reference_id), "?") if reference_id else ""

        def named(text: str) -> str:  # the references an error names (in the order of ids)
            names = sorted(name(found) for found in UUID.findall(text))
            return UUID.sub("<reference>", text) + " " + ", ".join(names)

        return {
            "references": sorted(
                (name(r), v) for r, v in rows("SELECT id, visibility FROM reference")
            ),
            "identifiers": sorted(
                (name(r), t, i, o or "")
                for r, t, i, o in rows(
                    "SELECT reference_id, identifier_type, identifier, other_identifier_name "
                    "FROM reference_identifier"
                )
            ),
            "enhancements": sorted(
                (name(r), t, s, h)
                for r, t, s, h in rows(
                    "SELECT reference_id, enhancement_type, source, content_hash "
                    "FROM reference_enhancement"
                )
            ),
            "results": sorted(
                (b, line, s, name(r), named(e), named(u))
                for b, line, s, r, e, u in rows(
                    """
                    SELECT b.name, r.line_number, r.status, r.reference_id, r.errors::VARCHAR,
                        r.unresolved_references::VARCHAR
                    FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
                    """
                )
            ),
            "associations": sorted(
                (name(r), b, line, t, name(linked), expired is not None)
                for r, b, line, t, linked, expired in rows(
                    """
                    SELECT a.reference_id, b.name, a.line_number, a.target,
                        a.target_reference_id, a.expired_at
                    FROM reference_association a JOIN import_batches b ON b.id = a.import_batch_id
                    """
                )
            ),
            "batches": sorted(rows("SELECT name, status, checksum FROM import_batches")),
        }


def _assert_together_ends_as_one_by_one(
    settings: Settings,
    one_by_one: Settings,
    landing: LandingZone,
    strategy: CollisionStrategy,
    seed: int,
    works: int,
) -> None:
    """Imports the same random batches into `settings`' store as one group and into
    `one_by_one`'s a batch at a time; the stores and the batches' outcomes must be equal."""
    rng = random.Random(f"{strategy.value}-{seed}")
    write_record(landing, "rec")
    _write_batches(landing, "rec", rng, 10, works)
    alone = import_directly(one_by_one, landing, "rec", strategy=strategy, now=NOW)
    grouped = import_directly(settings, landing, "rec", strategy=strategy, now=NOW, together=True)
    assert canonical(settings) == canonical(one_by_one)
    assert [
        (b.name, b.status, b.counts, b.references_created, b.references_merged) for b in grouped
    ] == [(b.name, b.status, b.counts, b.references_created, b.references_merged) for b in alone]


@pytest.mark.parametrize("strategy", list(CollisionStrategy))
#: Few works: batches depend on each other at every turn; many: most waves are long.
@pytest.mark.parametrize(("seed", "works"), [(1, 24), (3, 300)])
def test_batches_stored_together_end_as_stored_one_after_another(
    settings: Settings,
    landing: LandingZone,
    tmp_path: Path,
    strategy: CollisionStrategy,
    seed: int,
    works: int,
) -> None:
    one_by_one = dataclasses.replace(
        settings, duckdb_path=tmp_path / "alone.duckdb", store_url=None
    )
    _assert_together_ends_as_one_by_one(settings, one_by_one, landing, strategy, seed, works)


@pytest.mark.parametrize("strategy", [CollisionStrategy.MERGE_DEFENSIVE, CollisionStrategy.APPEND])
def test_on_postgresql_too(
    settings: Settings, landing: LandingZone, store_database: str, strategy: CollisionStrategy
) -> None:
    """The waves' SQL runs through DuckDB over the attached database: the same outcome."""
    on_postgres = dataclasses.replace(settings, store_url=store_database)
    _assert_together_ends_as_one_by_one(on_postgres, settings, landing, strategy, 3, 300)


def test_independent_batches_are_stored_in_one_wave(
    settings: Settings, landing: LandingZone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of different works (the common case of a big export split into small files) are
    one transaction; a file that merges into what an earlier one created waits for the next."""
    write_record(landing, "rec")
    for index in range(6):
        write_batch(landing, "rec", f"b{index}.jsonl", "\n".join(
            json.dumps({"identifiers": [{"identifier_type": "doi", "identifier": f"10.1000/{index}.{line}"}]})
            for line in range(5)
        ) + "\n")  # fmt: skip
    write_batch(landing, "rec", "b6.jsonl", json.dumps(
        {"identifiers": [{"identifier_type": "doi", "identifier": "10.1000/2.0"},
                         {"identifier_type": "pm_id", "identifier": 77}]}) + "\n")  # fmt: skip
    waves: list[int] = []
    real_store_wave = resolve._store_wave

    def counting(conn, wave, *args, **kwargs):  # type: ignore[no-untyped-def]
        outcomes = real_store_wave(conn, wave, *args, **kwargs)
        waves.append(len(outcomes))
        return outcomes

    monkeypatch.setattr(resolve, "_store_wave", counting)
    resolved = import_directly(settings, landing, "rec", together=True)
    assert waves == [6, 1]
    assert [b.references_created for b in resolved] == [5] * 6 + [0]
    assert resolved[-1].references_merged == 1
