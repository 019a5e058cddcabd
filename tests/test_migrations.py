"""The store outlives releases (contract section 1): a store made by the previous release
(commit f43abd5, schema version 1; `scripts/make-old-store` made the fixtures in tests/data)
is upgraded in place by the first writer and keeps everything; a newer one is refused; an
interrupted upgrade leaves it as it was. And the history of duplicate decisions (contract
section 8) that version 2 keeps: what made each decision, one active per reference."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import psycopg2
import pytest

from import_pipeline import store
from import_pipeline.cli import main
from import_pipeline.detection.stars import detect
from import_pipeline.detection.stored_keys import RULES_VERSION, rules_version
from import_pipeline.domain.duplicates import DecidedBy, Decision, Trigger
from import_pipeline.errors import StoreNeedsUpgrade, StoreTooNew
from import_pipeline.store import migrations
from import_pipeline.store.decision_history import (
    decision_history,
    references_without_one_active_decision,
)
from import_pipeline.store.duplicates import (
    Provenance,
    StoredDecision,
    _upsert_all,
    decisions_of,
    record_proposals,
)

from .conftest import bibliographic_line, import_directly, write_batch, write_record
from .postgres import BIN, _as_postgres

pytestmark = pytest.mark.parametrize("store_kind", ["duckdb", "postgres"], indirect=True)

DATA = Path(__file__).parent / "data"
#: Every table the previous release had, and the columns it had.
OLD_TABLES = (
    *store.ALL_TABLES,
    "reference_bibliographic_keys",
    "reference_blocks",
    "store_meta",
)
OLD_DECISION_COLUMNS = (
    "reference_id, decision, duplicate_of, score, decided_by, evidence, decided_at"
)
HISTORY_KEYS = ["decision", "duplicate_of", "score", "evidence", "decided_by", "trigger",
                "run_id", "decided_at", "rules_version", "active"]  # fmt: skip


@pytest.fixture(autouse=True)
def _commands_use_this_store(settings, monkeypatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(settings.home))


@pytest.fixture
def old_store(settings) -> Path | str:
    """The previous release's store, where `settings` puts the store."""
    location = settings.store
    if isinstance(location, Path):
        location.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(DATA / "store-f43abd5.duckdb.gz") as packed, location.open("wb") as out:
            shutil.copyfileobj(packed, out)
        return location
    subprocess.run(
        _as_postgres(str(BIN / "psql"), "--quiet", "-v", "ON_ERROR_STOP=1", "-d", location),
        input=(DATA / "store-f43abd5.sql").read_bytes(), capture_output=True, check=True,
        timeout=120,
    )  # fmt: skip
    return location


def _rows(conn: duckdb.DuckDBPyConnection, table: str, columns: str = "*") -> list[tuple]:
    return sorted(map(str, conn.execute(f"SELECT {columns} FROM {table}").fetchall()))


def _old_content(location: Path | str) -> dict[str, list]:
    """Every row of the previous release's tables, read as a reader (which never upgrades)."""
    with store.connect(location, read_only=True) as conn:
        content = {table: _rows(conn, table) for table in OLD_TABLES if table != "store_meta"}
        content["duplicate_decisions"] = _rows(conn, "duplicate_decisions", OLD_DECISION_COLUMNS)
    return content


def _everything(location: Path | str) -> dict[str, list]:
    with store.connect(location, read_only=True) as conn:
        return {
            t: _rows(conn, t)
            for t in (*OLD_TABLES, "duplicate_decisions", "duplicate_decision_history")
        }


def _raw_execute(location: Path | str, sql: str) -> None:
    """`sql` run on the store without this code's connection (which would check or upgrade)."""
    if isinstance(location, Path):
        conn = duckdb.connect(str(location))
        try:
            conn.execute(sql)
        finally:
            conn.close()
        return
    conn = psycopg2.connect(location)
    try:
        with conn, conn.cursor() as cursor:  # committed
            cursor.execute(sql)
    finally:
        conn.close()


def _version(location: Path | str) -> int | None:
    with store.connect(location, read_only=True) as conn:
        return migrations.stored_version(conn)


def test_the_previous_releases_store_is_upgraded_in_place_and_keeps_everything(
    old_store,
) -> None:
    before = _old_content(old_store)
    assert _version(old_store) == 1
    assert len(before["reference"]) == 4 and len(before["import_results"]) == 5
    assert len(before["import_batches"]) == 2 and len(before["duplicate_decisions"]) == 4

    with store.connect(old_store):
        pass

    assert _version(old_store) == store.SCHEMA_VERSION == 3
    assert _old_content(old_store) == before
    with store.connect(old_store, read_only=True) as conn:
        decisions = conn.execute(
            "SELECT reference_id, decision, duplicate_of, score, decided_by, evidence::VARCHAR, "
            "decided_at, trigger, run_id, rules_version FROM duplicate_decisions"
        ).fetchall()
        history = conn.execute(
            "SELECT reference_id, decision, duplicate_of, score, decided_by, evidence::VARCHAR, "
            "decided_at, trigger, run_id, rules_version, active FROM duplicate_decision_history"
        ).fetchall()
        assert references_without_one_active_decision(conn) == []
    # Each decision is its reference's first history row, active; what made it as it was.
    assert sorted(map(str, history)) == sorted(str((*d, True)) for d in decisions)
    made = {(row[4], row[7], row[8], row[9]) for row in decisions}
    assert made == {("system", "import", None, migrations.BEFORE_HISTORY),
                    ("person", "manual", None, None)}  # fmt: skip


def test_a_second_open_changes_nothing(old_store) -> None:
    with store.connect(old_store):
        pass
    once = _everything(old_store)
    with store.connect(old_store):
        pass
    assert _everything(old_store) == once


def test_a_store_newer_than_the_code_is_refused_by_writers_and_readers(old_store, capsys) -> None:
    with store.connect(old_store):
        pass
    newer = store.SCHEMA_VERSION + 1
    _raw_execute(old_store, f"UPDATE store_meta SET value = '{newer}' WHERE key = 'schema_version'")
    for read_only in (False, True):
        with pytest.raises(StoreTooNew, match=f"schema version {newer}, newer than this release"):
            with store.connect(old_store, read_only=read_only):
                pass
    assert main(["summary", "first"]) == 2
    assert "written by a later release" in capsys.readouterr().err


def test_an_interrupted_upgrade_leaves_the_store_at_its_old_version(old_store, monkeypatch) -> None:
    before = _old_content(old_store)
    history = migrations.MIGRATIONS[0]
    halfway = len(history.statements) // 2
    broken = migrations.Migration(
        history.version,
        history.name,
        (*history.statements[:halfway], "SELECT error('the machine went down')",
         *history.statements[halfway:]),
    )  # fmt: skip
    with monkeypatch.context() as patch, pytest.raises(duckdb.Error, match="went down"):
        patch.setattr(migrations, "MIGRATIONS", (broken,))
        with store.connect(old_store):
            pass
    assert _version(old_store) == 1
    assert _old_content(old_store) == before
    with store.connect(old_store, read_only=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name IN "
            "('duplicate_decisions', 'duplicate_decision_history')"
        ).fetchall()
        assert sorted(c for _, c in columns) == sorted(OLD_DECISION_COLUMNS.split(", "))
    with store.connect(old_store):
        pass
    assert _version(old_store) == store.SCHEMA_VERSION and _old_content(old_store) == before


def test_a_store_made_before_the_titles_view_is_upgraded_and_gets_it(old_store) -> None:
    """A store at version 2 (the history kept, no view yet) upgraded to version 3: the view
    `duplicate_decisions_with_titles` names both references of each decision by title, as
    `duplicates` does (whose reader needs no view: it reads a version 2 store alike)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        with store.connect(old_store):
            pass
    assert _version(old_store) == migrations.HISTORY_VERSION == 2
    before = _everything(old_store)
    del before["store_meta"]  # the version, which changes
    with store.connect(old_store, read_only=True) as conn:
        listed = store.list_decisions(conn)["results"]
    with store.connect(old_store):
        pass
    assert _version(old_store) == migrations.TITLES_VERSION == store.SCHEMA_VERSION == 3
    assert {t: rows for t, rows in _everything(old_store).items() if t != "store_meta"} == before
    with store.connect(old_store, read_only=True) as conn:
        viewed = conn.execute(
            "SELECT reference_id::VARCHAR, title, decision, duplicate_of::VARCHAR, "
            "duplicate_of_title FROM duplicate_decisions_with_titles"
        ).fetchall()
        assert store.list_decisions(conn)["results"] == listed
    assert sorted(viewed) == sorted(
        (d["reference_id"], d["title"], d["decision"], d["duplicate_of"], d["duplicate_of_title"])
        for d in listed
    )
    duplicate_titles = {
        (title, of) for _, title, decision, _, of in viewed if decision == "duplicate"
    }
    assert duplicate_titles == {
        (TITLE.upper() + ".", TITLE),
        ("An unrelated trial of something else entirely",
         "A cohort of another kind altogether in rural clinics"),
    }  # fmt: skip


def test_a_reader_reads_an_old_store_and_asks_a_writer_for_its_history(old_store, capsys) -> None:
    with store.connect(old_store, read_only=True) as conn:
        assert store.list_decisions(conn)["total"] == 4
        with pytest.raises(StoreNeedsUpgrade, match="a writer upgrades it"):
            decision_history(conn, "00000000-0000-0000-0000-000000000000")
    assert main(["duplicates", "--history", "other:export:a", "--json"]) == 2
    assert "schema version 2" in capsys.readouterr().err
    assert _version(old_store) == 1  # a reader never changes it


def test_the_first_detection_after_the_upgrade_decides_the_old_rules_decisions_again(
    old_store, capsys
) -> None:
    with store.connect(old_store) as conn, store.transaction(conn):
        # As if the previous rules had decided b otherwise: the new rules decide it again.
        b = _ref(conn, "b")
        conn.execute(
            "UPDATE duplicate_decisions SET decision = 'maybe' WHERE reference_id = ?", [b]
        )
        conn.execute(
            "UPDATE duplicate_decision_history SET decision = 'maybe' WHERE reference_id = ?", [b]
        )
        person = {r: d for r, d in _all_decisions(conn).items() if d.decided_by is DecidedBy.PERSON}
        detect(conn, "(SELECT id AS reference_id FROM reference WHERE false)", run_id="run-new")
        assert conn.execute("SELECT value FROM store_meta WHERE key = ?", [RULES_VERSION]).fetchall() == [
            (rules_version(),)
        ]  # fmt: skip
        after = _all_decisions(conn)
        assert after[b].decision is Decision.DUPLICATE
        assert {r: after[r] for r in person} == person  # a person's never decided again
        assert references_without_one_active_decision(conn) == []
    assert main(["duplicates", "--history", b, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert [(h["decision"], h["trigger"], h["run_id"], h["rules_version"], h["active"])
            for h in history] == [
        ("duplicate", "import", "run-new", rules_version(), True),
        ("maybe", "import", None, migrations.BEFORE_HISTORY, False),
    ]  # fmt: skip


# --- the history of decisions, on a store made by this release ------------------------------

TITLE = "Diabetes, comorbidities and increased long-term mortality in older patients"


def _ref(conn: duckdb.DuckDBPyConnection, ident: str) -> str:
    row = conn.execute(
        "SELECT reference_id::VARCHAR FROM reference_identifier WHERE identifier = ?", [ident]
    ).fetchone()
    assert row is not None
    return row[0]


def _all_decisions(conn: duckdb.DuckDBPyConnection) -> dict[str, StoredDecision]:
    refs = [r for (r,) in conn.execute("SELECT id::VARCHAR FROM reference").fetchall()]
    return decisions_of(conn, refs)


@pytest.fixture
def detected(settings, landing) -> dict[str, str]:
    """Two copies of a work and another, imported and detected by run `run-1`: ident → id,
    and the copies as `canonical` and `duplicate` (which is which: the first created, and
    PostgreSQL's clock gives one transaction's references the same time)."""
    write_record(landing, "rec")
    lines = [bibliographic_line("a", TITLE), bibliographic_line("b", TITLE.upper() + "."),
             bibliographic_line("c", "An unrelated trial of something else entirely", 2001)]  # fmt: skip
    write_batch(landing, "rec", "works.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, "rec")
    with store.connect(settings.store) as conn, store.transaction(conn):
        detect(conn, "(SELECT id AS reference_id FROM reference)", run_id="run-1")
        refs = {ident: _ref(conn, ident) for ident in "abc"}
        decided = decisions_of(conn, [refs["a"], refs["b"]])
    (duplicate,) = [r for r, d in decided.items() if d.decision is Decision.DUPLICATE]
    (canonical,) = set(decided) - {duplicate}
    return {**refs, "duplicate": duplicate, "canonical": canonical}


def _history(settings, ref: str) -> list[dict]:
    with store.connect(settings.store, read_only=True) as conn:
        return decision_history(conn, ref)["history"]


def test_detection_writes_history_with_the_import_and_its_run(settings, detected) -> None:
    for ident in "abc":
        (only,) = _history(settings, detected[ident])
        assert (only["decided_by"], only["trigger"], only["run_id"], only["active"]) == (
            "system", "import", "run-1", True
        )  # fmt: skip
        assert only["rules_version"] == rules_version()
    assert _history(settings, detected["duplicate"])[0]["duplicate_of"] == detected["canonical"]


def test_a_persons_decide_appends_manual_history_and_the_previous_is_inactive(
    settings, detected, capsys
) -> None:
    duplicate = detected["duplicate"]
    ident = "a" if duplicate == detected["a"] else "b"
    assert main(["decide", duplicate, "--distinct"]) == 0
    capsys.readouterr()
    assert main(["duplicates", "--history", f"other:export:{ident}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["reference_id", "history"] and doc["reference_id"] == duplicate
    assert all(list(entry) == HISTORY_KEYS for entry in doc["history"])
    newest, first = doc["history"]
    assert (newest["decision"], newest["decided_by"], newest["trigger"], newest["run_id"],
            newest["rules_version"], newest["active"]) == (
        "distinct", "person", "manual", None, None, True)  # fmt: skip
    assert (first["decision"], first["trigger"], first["active"]) == ("duplicate", "import", False)
    assert main(["duplicates", "--history", "other:export:nobody"]) == 1
    assert main(["duplicates", "--history", "not-a-lookup"]) == 2


def test_a_proposal_that_differs_from_a_persons_decision_is_kept_inactive_once(
    settings, detected
) -> None:
    a, b = detected["canonical"], detected["duplicate"]
    assert main(["decide", b, "--distinct"]) == 0
    made = Provenance(Trigger.IMPORT, "run-2", rules_version())
    proposal = StoredDecision(b, Decision.DUPLICATE, a, 0.97, DecidedBy.SYSTEM, ("title",))
    with store.connect(settings.store) as conn, store.transaction(conn):
        assert record_proposals(conn, [proposal], made) == 1
        assert record_proposals(conn, [proposal], made) == 0  # the newest proposal already
        same = StoredDecision(b, Decision.DISTINCT, None, None, DecidedBy.SYSTEM, ())
        assert record_proposals(conn, [same], made) == 0  # what the person decided
        undecided = StoredDecision(a, Decision.DISTINCT, None, None, DecidedBy.SYSTEM, ())
        assert record_proposals(conn, [undecided], made) == 0  # no person's decision there
        assert decisions_of(conn, [b])[b].decided_by is DecidedBy.PERSON
        assert references_without_one_active_decision(conn) == []
    proposed, person, system = _history(settings, b)
    assert (proposed["decision"], proposed["score"], proposed["run_id"], proposed["active"]) == (
        "duplicate", 0.97, "run-2", False
    )  # fmt: skip
    assert (person["decided_by"], person["active"]) == ("person", True)
    assert (system["run_id"], system["active"]) == ("run-1", False)


def test_exactly_one_decision_is_active_per_reference(settings, detected) -> None:
    a = detected["a"]
    with store.connect(settings.store) as conn, store.transaction(conn):
        # Rewritten by the system several times: still one active each.
        for score in (0.5, 0.6):
            again = StoredDecision(a, Decision.MAYBE, detected["c"], score, DecidedBy.SYSTEM, ())
            _upsert_all(conn, [again], Provenance(Trigger.IMPORT, "run-x", "r"))
        assert references_without_one_active_decision(conn) == []
        ids = conn.execute(
            "SELECT id FROM duplicate_decision_history WHERE reference_id = ? ORDER BY id", [a]
        ).fetchall()
        assert len(ids) == len({i for (i,) in ids}) == 3
        conn.execute(
            "UPDATE duplicate_decision_history SET active = TRUE WHERE reference_id = ?", [a]
        )
        assert references_without_one_active_decision(conn) == [(a, 3, "several active decisions")]
        # The asset check asks for a record's references only.
        assert references_without_one_active_decision(conn, "rec") == [
            (a, 3, "several active decisions")
        ]
        assert references_without_one_active_decision(conn, "another") == []
