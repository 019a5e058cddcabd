"""Resolution: intra-batch clusters, matching across batches, idempotent re-import."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from import_pipeline import store
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing.zone import LandingZone

from .conftest import cluster_lines, import_directly, results_of, write_batch, write_record


def ids(*pairs: tuple[str, object]) -> str:
    return json.dumps({"identifiers": [{"identifier_type": t, "identifier": v} for t, v in pairs]})


def test_cluster_chains_collapse_to_the_smallest_line() -> None:
    identifiers = pl.DataFrame(
        {
            "line_number": [1, 2, 2, 3, 4, 5, 6, 6],
            "identifier_type": [
                "doi",
                "doi",
                "pm_id",
                "pm_id",
                "other",
                "open_alex",
                "open_alex",
                "eric",
            ],
            "identifier": ["a", "a", "1", "1", "a", "W1", "W2", "ED1"],
        }
    )
    clusters = cluster_lines(identifiers, pl.Series([1, 2, 3, 4, 5, 6, 7]))
    assert dict(clusters.iter_rows()) == {1: 1, 2: 1, 3: 1, 4: 4, 5: 5, 6: 6, 7: 7}


def test_long_chain_is_one_cluster() -> None:
    n = 2000  # line i shares an identifier with line i+1
    rows = [(i, "doi", f"10.1000/{i}") for i in range(1, n + 1)] + [
        (i + 1, "doi", f"10.1000/{i}") for i in range(1, n)
    ]
    identifiers = pl.DataFrame(
        rows, schema=["line_number", "identifier_type", "identifier"], orient="row"
    )
    clusters = cluster_lines(identifiers, pl.Series(range(1, n + 1)))
    assert clusters["cluster"].unique().to_list() == [1]


def test_chain_in_a_batch_ends_as_one_reference(settings, landing) -> None:
    write_record(landing, "rec")
    lines = [
        ids(("doi", "10.1000/a")),
        ids(("doi", "https://doi.org/10.1000/A"), ("pm_id", 7)),
        ids(("pm_id", "PMID:7"), ("open_alex", "W9")),
        ids(("other", "x")).replace(
            '"other", "identifier": "x"',
            '"other", "identifier": "x", "other_identifier_name": "isbn"',
        ),
    ]
    write_batch(landing, "rec", "b.jsonl", "\n".join(lines) + "\n")
    (stored,) = import_directly(settings, landing, "rec")
    assert stored.references_created == 2
    results = results_of(settings, "rec")
    assert len({r["reference_id"] for r in results[:3]}) == 1
    with store.connect(settings.store, read_only=True) as conn:
        ref = store.find_reference(conn, identifier_type="open_alex", identifier="W9")
    assert sorted((i["identifier_type"], i["identifier"]) for i in ref["identifiers"]) == [
        ("doi", "10.1000/a"), ("open_alex", "W9"), ("pm_id", "7"),
    ]  # fmt: skip


def test_copies_of_an_enhancement_in_a_batch_are_stored_once_per_reference(
    settings, landing
) -> None:
    abstract = {
        "source": "s",
        "visibility": "public",
        "content": {"enhancement_type": "abstract", "process": "other", "abstract": "A."},
    }
    other = {**abstract, "content": {**abstract["content"], "abstract": "B."}}

    def line(doi: str, *enhancements: dict) -> str:
        identifiers = [{"identifier_type": "doi", "identifier": doi}]
        return json.dumps({"identifiers": identifiers, "enhancements": list(enhancements)})

    write_record(landing, "rec")
    lines = [
        line("10.1000/one", abstract, abstract, other),  # a copy in the same line
        line("10.1000/two", abstract),  # the same content on another reference: kept
        line("10.1000/one", other, abstract),  # copies on another line of the same cluster
    ]
    write_batch(landing, "rec", "b.jsonl", "\n".join(lines) + "\n")
    (stored,) = import_directly(settings, landing, "rec")
    assert stored.status == "completed" and stored.references_created == 2
    with store.connect(settings.store, read_only=True) as conn:
        kept = conn.execute(
            """
            SELECT ri.identifier, re.content->>'$.abstract' AS abstract
            FROM reference_enhancement re
            JOIN reference_identifier ri USING (reference_id)
            ORDER BY ALL
            """
        ).fetchall()
    assert kept == [("10.1000/one", "A."), ("10.1000/one", "B."), ("10.1000/two", "A.")]


def _snapshot(settings) -> dict:
    with store.connect(settings.store, read_only=True) as conn:
        return {
            "counts": store.table_counts(conn),
            "identifiers": conn.execute(
                "SELECT reference_id, identifier_type, identifier FROM reference_identifier ORDER BY ALL"
            ).fetchall(),
            "enhancements": conn.execute(
                "SELECT reference_id, content_hash FROM reference_enhancement ORDER BY ALL"
            ).fetchall(),
            "results": conn.execute(
                "SELECT import_batch_id, line_number, status, reference_id FROM import_results ORDER BY ALL"
            ).fetchall(),
        }


def test_reimporting_the_same_lines_changes_nothing(settings, landing, destiny) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "oa.jsonl", (destiny / "openalex_references.jsonl").read_bytes())
    import_directly(settings, landing, "rec")
    before = _snapshot(settings)
    import_directly(settings, landing, "rec")
    assert _snapshot(settings) == before


def test_the_same_lines_under_another_name_add_no_reference(settings, landing, destiny) -> None:
    write_record(landing, "rec")
    content = (destiny / "eppi_import.jsonl").read_bytes()
    write_batch(landing, "rec", "one.jsonl", content)
    write_batch(landing, "rec", "two.jsonl", content)
    first, second = import_directly(settings, landing, "rec")
    assert (first.references_created, second.references_created) == (4, 0)
    assert second.references_merged == 4
    with store.connect(settings.store, read_only=True) as conn:
        counts = store.table_counts(conn)
    assert counts["reference"] == 4 and counts["reference_enhancement"] == 8
    assert counts["import_results"] == 8


def test_a_changed_file_replaces_its_results(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(
        landing, "rec", "b.jsonl", ids(("doi", "10.1000/a")) + "\n" + ids(("doi", "bad")) + "\n"
    )
    import_directly(settings, landing, "rec")
    assert [r["status"] for r in results_of(settings, "rec")] == ["completed", "failed"]
    write_batch(
        landing,
        "rec",
        "b.jsonl",
        ids(("doi", "10.1000/a")) + "\n\n" + ids(("doi", "10.1000/b")) + "\n",
    )
    import_directly(settings, landing, "rec")
    results = results_of(settings, "rec")
    assert [(r["line_number"], r["status"]) for r in results] == [
        (1, "completed"),
        (3, "completed"),
    ]


def test_small_work_runs_on_one_duckdb_thread_and_the_engine_keeps_its_own_count() -> None:
    engine = store.scratch_engine()
    try:
        engine.execute("SET threads = 2")

        def threads() -> int:
            row = engine.execute("SELECT current_setting('threads')").fetchone()
            assert row is not None
            return int(row[0])

        with store.threads_for(engine, 33_000):
            assert threads() == 1
        assert threads() == 2
        with store.threads_for(engine, 1_000_000):
            assert threads() == 2  # never more than it has
    finally:
        engine.close()


def test_an_entry_key_links_lines_but_another_other_identifier_does_not() -> None:
    identifiers = pl.DataFrame(
        {
            "line_number": [1, 2, 3, 4],
            "identifier_type": ["other"] * 4,
            "identifier": ["src:abc", "src:abc", "EID-1", "EID-1"],
            "other_identifier_name": [
                "import_pipeline.entry",
                "import_pipeline.entry",
                "Scopus EID",
                "Scopus EID",
            ],
        }
    )
    clusters = cluster_lines(identifiers, pl.Series([1, 2, 3, 4]))
    assert dict(clusters.iter_rows()) == {1: 1, 2: 1, 3: 3, 4: 4}


def _line(*pairs: tuple[str, object], enhancements: list | None = None) -> str:
    identifiers = [{"identifier_type": t, "identifier": v} for t, v in pairs]
    return json.dumps({"identifiers": identifiers, "enhancements": enhancements or []})


def _abstract(text: str, **fields: object) -> dict:
    return {"source": "s", "visibility": "public",
            "content": {"enhancement_type": "abstract", "process": "other", "abstract": text},
            **fields}  # fmt: skip


_STORED_FIRST = [
    _line(("doi", "10.1000/a1")),
    _line(("doi", "10.1000/a2")),
    _line(("doi", "10.1000/a3"), ("open_alex", "W3")),
]
_EVERY_KIND_OF_LINE = [
    _line(("doi", "10.1000/b1"), enhancements=[_abstract("new")]),  # new
    _line(("doi", "10.1000/a1"), enhancements=[_abstract("again")]),  # matches one stored
    _line(("doi", "10.1000/a2"), ("open_alex", "W3")),  # matches two: a collision
    _line(("doi", "10.1000/b2"), enhancements=[{"source": "s", "content": {}}]),  # part fails
    _line(("doi", "10.1000/a1"), enhancements=[_abstract("x", robot_version=5)]),  # both
    '{"identifiers": [',  # fails whole
    _line(("doi", "not a doi")),  # no identifier left
    _line(("doi", "10.1000/b3")),  # a cluster of two lines
    _line(("doi", "10.1000/B3"), ("pm_id", 33)),
    _line(("doi", "10.1000/b4"), enhancements=[{"source": "s", "visibility": "public", "content": {
        "enhancement_type": "reference_association", "association_type": "cites",
        "associated_reference_ids": [{"identifier_type": "doi", "identifier": "10.1000/b1"}]}}]),
    _line(("doi", "10.1000/b5"), enhancements=[{"source": "s", "visibility": "public", "content": {
        "enhancement_type": "reference_association", "association_type": "cites",
        "associated_reference_ids": [{"identifier_type": "doi", "identifier": "10.1000/none"}]}}]),
]  # fmt: skip


def _results_by_rule(tmp_path, strategy, plain: bool, monkeypatch) -> tuple[list, list[int]]:
    """The record's results, each reference named by its identifiers; and how many lines each
    window decided in Polars."""
    from import_pipeline.pipeline import results
    from import_pipeline.settings import Settings

    home = tmp_path / ("plain" if plain else "polars")
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(home)})
    landing = LandingZone(settings.landing)
    write_record(landing, "rec", collision_strategy=strategy.value)
    write_batch(landing, "rec", "a.jsonl", "\n".join(_STORED_FIRST) + "\n")
    write_batch(landing, "rec", "b.jsonl", "\n".join(_EVERY_KIND_OF_LINE) + "\n")
    decided: list[int] = []
    line_results = results.line_results

    def counted(inputs, rule):
        decided.append(inputs.lines.height)
        return line_results(inputs, rule)

    with monkeypatch.context() as patch:
        patch.setattr(results, "line_results", counted)
        if not plain:  # every line through Polars, as before plain lines were written in SQL
            sql = results.plain_lines_sql
            patch.setattr(results, "plain_lines_sql", lambda *a: f"{sql(*a)} AND FALSE")
        import_directly(settings, landing, "rec", names=["a.jsonl"])
        import_directly(settings, landing, "rec", names=["b.jsonl"])
    with store.connect(settings.store, read_only=True) as conn:
        names = dict(conn.execute(
            "SELECT reference_id::VARCHAR, min(identifier) FROM reference_identifier GROUP BY 1"
        ).fetchall())  # fmt: skip

    def named(text: object) -> str:
        """Each reference id by its smallest identifier (ids are random), the references a
        collision lists in the order of those names (it lists them by id)."""
        found = re.sub(_UUID, lambda m: names[m[0]], str(text))
        return re.sub(
            r"(?<=references: )[^\"]+", lambda m: ", ".join(sorted(m[0].split(", "))), found
        )

    rows = [
        (result["batch"], result["line_number"], result["status"], named(result["reference_id"]),
         named(result["errors"]), named(result["failure_details"]), result["unresolved_references"])
        for result in results_of(settings, "rec")
    ]  # fmt: skip
    return rows, decided


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.mark.parametrize("strategy", list(CollisionStrategy), ids=lambda s: s.value)
def test_plain_lines_written_in_sql_get_the_results_the_rules_in_polars_give(
    tmp_path, strategy, monkeypatch
) -> None:
    """The plain lines' results (one statement in the store) are exactly those the rules in
    Polars give every line, under every strategy, beside lines that are not plain: new,
    matched, colliding, partly or wholly failing, clustered, associated."""
    plain, decided_plain = _results_by_rule(tmp_path, strategy, True, monkeypatch)
    alone, decided_alone = _results_by_rule(tmp_path, strategy, False, monkeypatch)
    assert plain == alone
    assert len(plain) == len(_STORED_FIRST) + len(_EVERY_KIND_OF_LINE)
    assert sum(decided_alone) == len(plain)
    assert sum(decided_plain) < sum(decided_alone) - 3  # most lines were plain
    assert {row[2] for row in plain} >= {"completed", "failed", "partially_failed"}
    assert "retrying" in {row[2] for row in plain} or strategy is CollisionStrategy.DISCARD
