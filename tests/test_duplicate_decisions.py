"""Duplicate decisions in the store (contract section 8), through the real data path and the
commands: detection after an import, stars, a person's decision final, re-import changes
nothing, `duplicates` paging and `decide` refusing chains and cycles."""

from __future__ import annotations

import csv
import json

import pytest

from import_pipeline import store
from import_pipeline.cli import main
from import_pipeline.detection import stars as detection
from import_pipeline.detection.stars import detect
from import_pipeline.detection.stored_keys import KEYS_VERSION

from .conftest import import_directly, write_batch, write_record

TITLE = "Diabetes, comorbidities and increased long-term mortality in older patients"
PLACE = {"volume": "38", "issue": "2", "first_page": "149", "last_page": "155"}


def _line(ident: str, title: str, year: int = 2012, place: dict | None = None) -> str:
    content = {
        "enhancement_type": "bibliographic",
        "title": title,
        "publication_year": year,
        "authorship": [{"display_name": "Zekry, D.", "position": "first"}],
        "pagination": place or PLACE,
        "publication_venue": {"display_name": "Diabetes & Metabolism"},
    }
    return json.dumps({
        "identifiers": [{"identifier_type": "other", "identifier": ident, "other_identifier_name": "export"}],
        "enhancements": [{"source": "export", "visibility": "public", "content": content}],
    })  # fmt: skip


LINES = [
    _line("a", TITLE),
    _line("b", TITLE.upper() + "."),  # the same work again
    _line("c", TITLE + " [Chinese]"),  # and again
    _line("d", "An unrelated trial of something else entirely", 2001, {"first_page": "9"}),
]


@pytest.fixture(autouse=True)
def _commands_use_this_store(settings, monkeypatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(settings.home))


def _detect_all(settings) -> None:
    with store.connect(settings.store) as conn, store.transaction(conn):
        detect(conn, "(SELECT id AS reference_id FROM reference)")


def _decisions(settings) -> dict[str, tuple[str, str | None, str]]:
    """`other` identifier → (decision, the identifier of duplicate_of, decided_by)."""
    with store.connect(settings.store, read_only=True) as conn:
        return _decisions_in(conn)


def _decisions_in(conn) -> dict[str, tuple[str, str | None, str]]:
    rows = conn.execute(
        """
        SELECT i.identifier, d.decision, o.identifier, d.decided_by
        FROM duplicate_decisions d
        JOIN reference_identifier i ON i.reference_id = d.reference_id
        LEFT JOIN reference_identifier o ON o.reference_id = d.duplicate_of
        """
    ).fetchall()
    return {ident: (decision, of, by) for ident, decision, of, by in rows}


def _ref(settings, ident: str) -> str:
    with store.connect(settings.store, read_only=True) as conn:
        row = conn.execute(
            "SELECT reference_id::VARCHAR FROM reference_identifier WHERE identifier = ?", [ident]
        ).fetchone()
    assert row is not None
    return row[0]


def _imported(settings, landing):
    write_record(landing, "rec")
    write_batch(landing, "rec", "works.jsonl", "\n".join(LINES) + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    return _decisions(settings)


def test_three_copies_make_one_star_and_the_fourth_is_distinct(settings, landing) -> None:
    decided = _imported(settings, landing)
    (canonical,) = [i for i, (d, _, _) in decided.items() if d == "canonical"]
    duplicates = {i: of for i, (d, of, _) in decided.items() if d == "duplicate"}
    assert set(duplicates) | {canonical} == {"a", "b", "c"}
    assert set(duplicates.values()) == {canonical}  # a star: every one points at the canonical
    assert decided["d"] == ("distinct", None, "system")


def test_a_maybe_pair_is_one_row_of_the_export_and_shows_both_sides(
    settings, landing, tmp_path, capsys
) -> None:
    # Two records close enough to look at and no more (another word in the title, other
    # pages): each is the other's maybe, and the export shows the pair once.
    write_record(landing, "rec")
    short_term = TITLE.replace("long-term", "short-term")
    lines = [_line("m1", TITLE), _line("m2", short_term, place={**PLACE, "first_page": "301"})]
    write_batch(landing, "rec", "works.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    assert {d for d, _, _ in _decisions(settings).values()} == {"maybe"}
    path = tmp_path / "maybe.csv"
    assert main(["duplicates", "--decision", "maybe", "--export", str(path)]) == 0
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 1
    (row,) = rows
    assert {row["reference_title"], row["candidate_title"]} == {TITLE, short_term}
    assert {row["reference_pages"], row["candidate_pages"]} == {"149-155", "301-155"}
    assert row["reference_authors"] == row["candidate_authors"] == "Zekry, D."


def test_detection_again_and_a_reimport_change_no_decision(settings, landing) -> None:
    before = _imported(settings, landing)
    _detect_all(settings)
    import_directly(settings, landing, "rec")  # nothing new: the same content
    _detect_all(settings)
    assert _decisions(settings) == before


def test_a_store_keyed_with_other_definitions_is_keyed_again_at_its_next_detection(
    settings, landing
) -> None:
    # A store keyed with other definitions (here: from before the blocks table, so its
    # references have keys but no blocks). A new batch's retyped copy of one of them is found
    # only if detection computes every reference's keys and blocks again.
    write_record(landing, "rec")
    write_batch(landing, "rec", "a.jsonl", LINES[0] + "\n" + LINES[3] + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    with store.connect(settings.store) as conn:
        conn.execute("DELETE FROM reference_blocks")
        conn.execute("UPDATE store_meta SET value = 'older' WHERE key = ?", [KEYS_VERSION])
    write_batch(landing, "rec", "b.jsonl", LINES[1] + "\n")
    import_directly(settings, landing, "rec")
    subject = _ref(settings, "b")
    with store.connect(settings.store) as conn, store.transaction(conn):
        detect(conn, f"(SELECT '{subject}'::UUID AS reference_id)")
    assert _decisions(settings)["b"] == ("duplicate", "a", "system")
    with store.connect(settings.store, read_only=True) as conn:
        blocked = conn.execute("SELECT count(DISTINCT reference_id) FROM reference_blocks")
        assert blocked.fetchall()[0][0] == 3  # every keyed reference, not only the subject


def test_subjects_decided_alone_in_sql_get_what_the_stars_give_them(
    settings, landing, monkeypatch
) -> None:
    # Detection decides the subjects in no pair and no star in SQL (`_ALONE`). Every subject
    # through the stars instead must give the same decisions and outcome, from a store holding
    # a star, a person's decision, an undecided reference, a system `maybe` with no pair left
    # and the system's plain `distinct`s.
    write_record(landing, "rec")
    titles = ["Soil microbes under drought", "Quantum dots in photovoltaics",
              "Medieval trade routes of the Baltic", "Sleep and memory in adolescents"]  # fmt: skip
    others = [
        _line(f"x{n}", title, 1990 + n, {"first_page": str(n)}) for n, title in enumerate(titles)
    ]
    write_batch(landing, "rec", "works.jsonl", "\n".join(LINES + others) + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    assert main(["decide", _ref(settings, "x0"), "--distinct"]) == 0  # a person's
    undecided, was_maybe, first = (_ref(settings, x) for x in ("x1", "x2", "a"))
    subjects = "(SELECT id AS reference_id FROM reference)"
    with store.connect(settings.store) as conn:
        conn.execute(
            "DELETE FROM duplicate_decisions WHERE reference_id IN (?, ?)", [undecided, was_maybe]
        )
        # Inserted, not updated: the PostgreSQL store's engine cannot UPDATE a JSON column.
        conn.execute(
            "INSERT INTO duplicate_decisions (reference_id, decision, duplicate_of, score, "
            "decided_by, evidence, decided_at) "
            "VALUES (?, 'maybe', ?, 0.7, 'system', '[\"title\"]'::JSON, now())",
            [was_maybe, first],
        )
        conn.execute("CREATE TEMP TABLE before AS SELECT * FROM duplicate_decisions")
        with store.transaction(conn):
            alone = detect(conn, subjects)
        decided_alone = _decisions_in(conn)
        with store.transaction(conn):
            conn.execute("DELETE FROM duplicate_decisions")
            conn.execute("INSERT INTO duplicate_decisions SELECT * FROM before")
        monkeypatch.setattr(
            detection, "_ALONE", "SELECT reference_id, false AS stored FROM {subjects} WHERE false"
        )
        with store.transaction(conn):
            starred = detect(conn, subjects)
    assert _decisions(settings) == decided_alone
    assert starred == alone
    assert alone.changed == 2  # x1 decided again, x2's maybe gone; the rest as they were
    assert decided_alone["x0"] == ("distinct", None, "person")
    assert {decided_alone[x] for x in ("x1", "x2", "x3", "d")} == {("distinct", None, "system")}


def test_a_persons_decision_is_final(settings, landing, capsys) -> None:
    decided = _imported(settings, landing)
    duplicate = next(i for i, (d, _, _) in decided.items() if d == "duplicate")
    assert main(["decide", _ref(settings, duplicate), "--distinct", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "distinct"
    _detect_all(settings)
    assert _decisions(settings)[duplicate] == ("distinct", None, "person")
    # The system's own view (a duplicate, its decision before the person's) stays beside it,
    # inactive, and is not written again by each detection.
    _detect_all(settings)
    assert _history(settings, duplicate, capsys) == [
        ("distinct", "person", True), ("duplicate", "system", False),
    ]  # fmt: skip


def _history(settings, ident: str, capsys) -> list[tuple[str, str, bool]]:
    assert main(["duplicates", "--history", _ref(settings, ident), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    return [(h["decision"], h["decided_by"], h["active"]) for h in history]


def test_the_systems_view_of_a_persons_reference_is_kept_inactive(
    settings, landing, capsys
) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "first.jsonl", LINES[0] + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    assert main(["decide", _ref(settings, "a"), "--distinct"]) == 0
    capsys.readouterr()
    # A second copy of the work arrives: the person's "distinct" stands (no star for "a"),
    # and what the system would have made of "a", a canonical, is history beside it.
    write_batch(landing, "rec", "second.jsonl", LINES[1] + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    assert _decisions(settings)["a"] == ("distinct", None, "person")
    assert _history(settings, "a", capsys) == [
        ("canonical", "system", False), ("distinct", "person", True),
        ("distinct", "system", False),
    ]  # fmt: skip
    _detect_all(settings)
    assert len(_history(settings, "a", capsys)) == 3


def test_decide_refuses_chains_and_cycles_with_exit_2(settings, landing, capsys) -> None:
    decided = _imported(settings, landing)
    canonical = next(i for i, (d, _, _) in decided.items() if d == "canonical")
    duplicate = next(i for i, (d, _, _) in decided.items() if d == "duplicate")
    other = _ref(settings, "d")
    # d pointing at a duplicate would be a chain; the canonical pointing anywhere too.
    assert main(["decide", other, "--duplicate-of", _ref(settings, duplicate)]) == 2
    assert "no chains" in capsys.readouterr().err
    assert main(["decide", _ref(settings, canonical), "--duplicate-of", other]) == 2
    assert main(["decide", other, "--duplicate-of", other]) == 2
    assert "cycle" in capsys.readouterr().err
    assert main(["decide", "00000000-0000-0000-0000-000000000000", "--distinct"]) == 1
    assert main(["decide", other, "--duplicate-of", _ref(settings, canonical)]) == 0
    assert _decisions(settings)["d"] == ("duplicate", canonical, "person")


def test_duplicates_pages_and_filters(settings, landing, capsys) -> None:
    _imported(settings, landing)
    assert main(["duplicates", "--json", "--limit", "2"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert (page["limit"], page["offset"], page["count"], page["total"]) == (2, 0, 2, 4)
    assert set(page["results"][0]) == {"reference_id", "title", "decision", "duplicate_of",
                                       "duplicate_of_title", "score", "decided_by",
                                       "evidence"}  # fmt: skip
    assert main(["duplicates", "--json", "--decision", "duplicate", "--record", "rec"]) == 0
    duplicates = json.loads(capsys.readouterr().out)
    assert duplicates["total"] == 2 and all("title" in r["evidence"] for r in duplicates["results"])
    assert main(["duplicates", "--json", "--offset", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    with pytest.raises(SystemExit) as refused:  # argparse refuses an unknown decision
        main(["duplicates", "--decision", "nonsense"])
    assert refused.value.code == 2


def test_reference_shows_its_duplicates(settings, landing, capsys) -> None:
    decided = _imported(settings, landing)
    canonical = next(i for i, (d, _, _) in decided.items() if d == "canonical")
    assert main(["reference", _ref(settings, canonical), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["duplicate_decision"] == "canonical" and len(doc["duplicates"]) == 2
    assert main(["reference", doc["duplicates"][0]]) == 0
    shown = capsys.readouterr().out
    assert f"duplicate decision: duplicate of {doc['id']}" in shown
    assert main(["reference", doc["id"]]) == 0
    shown = capsys.readouterr().out
    assert "duplicate decision: canonical" in shown
    assert all(f"  duplicate: {ref}" in shown for ref in doc["duplicates"])
