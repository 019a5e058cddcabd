"""Maybe pairs reviewed in bulk (contract section 8): `duplicates --decision maybe --export`
writes every pair as CSV a spreadsheet opens safely, and `decide --from` applies the filled
decision column as a person's, all rows or none, naming every row it refuses; `decide` takes
any LOOKUP."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from import_pipeline import store
from import_pipeline.cli import main
from import_pipeline.errors import DecisionRefused
from import_pipeline.store.review import COLUMNS, protect, read_review, unprotect

from .conftest import import_directly, write_batch, write_record
from .test_duplicate_decisions import _decisions, _detect_all, _ref

#: Titles a spreadsheet would run as formulas, and one that begins with the escape itself.
HOSTILE = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1:A9)", "'quoted' title", "\tTabbed"]


def _work(ident: str, title: str, doi: str | None = None, year: int = 2000) -> str:
    content = {
        "enhancement_type": "bibliographic",
        "title": title,
        "publication_year": year,
        "authorship": [
            {"display_name": "Moreau, A.", "position": "first"},
            {"display_name": "Ngata, T.", "position": "last"},
        ],
        "pagination": {
            "volume": "7",
            "issue": "3",
            "first_page": str(year % 97),
            "last_page": "99",
        },
        "publication_venue": {"display_name": "Journal, of Things"},
    }
    identifiers = [{"identifier_type": "other", "identifier": ident, "other_identifier_name": "x"}]
    if doi:
        identifiers.append({"identifier_type": "doi", "identifier": doi})
    return json.dumps({"identifiers": identifiers,
                       "enhancements": [{"source": "x", "visibility": "public", "content": content}]})  # fmt: skip


#: Unrelated works (detection finds them distinct); the tests make the maybe pairs.
TITLES = {
    "p1": "Sleep and memory in adolescents",
    "p2": "Soil microbes under drought",
    "p3": "Quantum dots in photovoltaics",
    "p4": "Glacier retreat in the southern Andes",
    "p5": "Medieval trade routes of the Baltic",
    "p6": "Bilingual toddlers and vocabulary growth",
}


@pytest.fixture(autouse=True)
def _commands_use_this_store(settings, monkeypatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINE_HOME", str(settings.home))


def _maybe(settings, pairs: dict[str, tuple[str, float]]) -> None:
    """Makes each reference a system `maybe` of the other (identifier → (identifier, score))."""
    updates = [[_ref(settings, other), score, _ref(settings, ident)]
               for ident, (other, score) in pairs.items()]  # fmt: skip
    with store.connect(settings.store) as conn:
        for update in updates:
            conn.execute(
                "UPDATE duplicate_decisions SET decision = 'maybe', duplicate_of = ?, score = ? "
                "WHERE reference_id = ?",
                update,
            )


@pytest.fixture
def reviewable(settings, landing) -> dict[str, str]:
    """Six works in three maybe pairs (p2 of p1, p4 of p3, p6 of p5), p1 with a DOI; the
    other identifier → reference id."""
    write_record(landing, "rec")
    lines = [_work(i, t, "10.1234/P1.X" if i == "p1" else None, 2000 + n)
             for n, (i, t) in enumerate(TITLES.items())]  # fmt: skip
    write_batch(landing, "rec", "works.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    _maybe(settings, {"p2": ("p1", 0.91), "p4": ("p3", 0.88), "p6": ("p5", 0.7)})
    return {i: _ref(settings, i) for i in TITLES}


def _export(tmp_path: Path, capsys, *extra: str) -> tuple[Path, list[dict[str, str]]]:
    path = tmp_path / "maybe.csv"
    assert main(["duplicates", "--decision", "maybe", "--export", str(path), "--json", *extra]) == 0
    summary = json.loads(capsys.readouterr().out)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert summary == {"path": str(path), "pairs": len(rows)}
    return path, rows


def _write(path: Path, rows: list[dict[str, str]], **fmt) -> None:
    with path.open("w", encoding=fmt.pop("encoding", "utf-8-sig"), newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fmt.pop("columns", COLUMNS), **fmt)
        writer.writeheader()
        writer.writerows(rows)


def _table(settings) -> list[tuple]:
    with store.connect(settings.store, read_only=True) as conn:
        return conn.execute(
            "SELECT reference_id, decision, duplicate_of, score, decided_by, evidence::VARCHAR, "
            "decided_at FROM duplicate_decisions ORDER BY 1"
        ).fetchall()


def test_every_maybe_pair_is_exported_with_both_sides(
    settings, reviewable, tmp_path, capsys
) -> None:
    path, rows = _export(tmp_path, capsys)
    with path.open("rb") as f:
        assert f.read(3) == b"\xef\xbb\xbf"  # a BOM: Excel reads the file as UTF-8
    assert path.read_bytes().count(b"\r\n") == 4  # RFC 4180 line ends
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["reference_id"], r["candidate_id"], r["score"]) for r in rows] == [
        (reviewable["p2"], reviewable["p1"], "0.91"),
        (reviewable["p4"], reviewable["p3"], "0.88"),
        (reviewable["p6"], reviewable["p5"], "0.7"),
    ]  # best score first
    first = rows[0]
    assert {k: first[k] for k in first if k.startswith("candidate_") and k != "candidate_id"} == {
        "candidate_title": TITLES["p1"], "candidate_authors": "Moreau, A.; Ngata, T.",
        "candidate_year": "2000", "candidate_venue": "Journal, of Things",
        "candidate_volume": "7", "candidate_issue": "3", "candidate_pages": "60-99",
        "candidate_doi": "10.1234/p1.x",
    }  # fmt: skip
    assert (first["reference_title"], first["reference_doi"], first["decision"]) == (
        TITLES["p2"], "", ""
    )  # fmt: skip
    # --record: only the record's references; an unknown record is not found.
    assert len(_export(tmp_path, capsys, "--record", "rec")[1]) == 3
    assert main(["duplicates", "--decision", "maybe", "--record", "nope", "--export",
                 str(tmp_path / "none.csv")]) == 1  # fmt: skip
    assert not (tmp_path / "none.csv").exists() and not (tmp_path / "none.csv.part").exists()
    assert main(["duplicates", "--export", str(tmp_path / "all.csv")]) == 2  # maybe only


def test_an_export_filled_in_is_applied_as_a_persons_decisions(
    settings, reviewable, tmp_path, capsys
) -> None:
    path, rows = _export(tmp_path, capsys)
    rows[0]["decision"] = "duplicate"  # p2 of p1
    rows[1]["decision"] = "distinct"  # p4
    _write(path, rows)  # p6 left empty: still the system's maybe
    assert main(["decide", "--from", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "path": str(path), "rows": 3, "skipped": 1, "duplicate": 1, "distinct": 1,
        "made_canonical": 1,
    }  # fmt: skip
    decided = _decisions(settings)
    assert decided["p2"] == ("duplicate", "p1", "person")
    assert decided["p1"] == ("canonical", None, "person")
    assert decided["p4"] == ("distinct", None, "person")
    assert decided["p6"] == ("maybe", "p5", "system")
    assert main(["duplicates", "--history", reviewable["p2"], "--json"]) == 0
    newest = json.loads(capsys.readouterr().out)["history"][0]
    assert (newest["decided_by"], newest["trigger"], newest["active"]) == ("person", "manual", True)
    _detect_all(settings)  # final: detection changes none of a person's
    assert {k: v for k, v in _decisions(settings).items() if v[2] == "person"} == {
        k: v for k, v in decided.items() if v[2] == "person"
    }
    # The same file again decides nothing new and adds no history.
    assert main(["decide", "--from", str(path), "--json"]) == 0
    capsys.readouterr()
    assert main(["duplicates", "--history", reviewable["p2"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][0]["decided_at"] == newest["decided_at"]


def test_a_duplicate_points_to_the_candidates_canonical(
    settings, reviewable, tmp_path, capsys
) -> None:
    # p3 is a duplicate of p5: a row deciding p4 a duplicate of p3 makes it p5's.
    assert main(["decide", reviewable["p3"], "--duplicate-of", reviewable["p5"]]) == 0
    capsys.readouterr()
    path, rows = _export(tmp_path, capsys)
    (row,) = [r for r in rows if r["reference_id"] == reviewable["p4"]]
    row["decision"] = "duplicate"
    _write(path, [row])
    assert main(["decide", "--from", str(path)]) == 0
    assert "1 duplicate" in capsys.readouterr().out
    assert _decisions(settings)["p4"] == ("duplicate", "p5", "person")


def test_chains_unknown_references_and_words_are_refused_all_of_them_nothing_applied(
    settings, reviewable, tmp_path, capsys
) -> None:
    ids = reviewable
    assert main(["decide", ids["p6"], "--duplicate-of", ids["p5"]]) == 0  # a person's star
    before = _table(settings)
    unknown = "00000000-0000-0000-0000-000000000000"
    rows = [
        {"reference_id": ids["p2"], "candidate_id": ids["p1"], "decision": "duplicate"},  # fine
        {"reference_id": ids["p3"], "candidate_id": ids["p4"], "decision": "duplicate"},
        {"reference_id": ids["p4"], "candidate_id": ids["p1"], "decision": "duplicate"},  # 3-4
        {"reference_id": unknown, "candidate_id": ids["p1"], "decision": "distinct"},
        {"reference_id": ids["p2"], "candidate_id": ids["p1"], "decision": "dupe"},
        {"reference_id": ids["p5"], "candidate_id": ids["p6"], "decision": "duplicate"},
        {"reference_id": ids["p1"], "candidate_id": ids["p3"], "decision": ""},  # skipped
    ]
    path = tmp_path / "filled.csv"
    _write(path, rows, columns=["reference_id", "candidate_id", "decision"])
    assert main(["decide", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert "5 row(s) refused, nothing applied" in err
    refused = {int(line.split(":")[0].split()[-1]) for line in err.splitlines()[1:]}
    assert refused == {3, 4, 5, 6, 7}  # every bad line (the header is line 1), not line 2
    chain = f"line 3 makes {ids['p3']} a duplicate of {ids['p4']}, which line 4 makes"
    assert f"line 3: {chain}" in err and f"line 4: {chain}" in err
    assert f"line 5: no reference {unknown}" in err
    assert "line 6: unknown decision 'dupe'" in err
    # p6 is p5's duplicate: p5 would point to itself, and its duplicate would be left behind.
    assert f"line 7: reference {ids['p5']} would be a duplicate of itself (a cycle)" in err
    assert f"line 7: reference {ids['p5']} is the canonical of 1 duplicate(s)" in err
    assert _table(settings) == before  # all or none: not even line 2


def test_a_canonical_may_leave_its_star_when_the_file_moves_its_duplicates_too(
    settings, reviewable, tmp_path, capsys
) -> None:
    ids = reviewable
    assert main(["decide", ids["p6"], "--duplicate-of", ids["p5"]]) == 0
    rows = [{"reference_id": ids["p5"], "candidate_id": "", "decision": "distinct"}]
    path = tmp_path / "filled.csv"
    _write(path, rows, columns=["reference_id", "candidate_id", "decision"])
    assert main(["decide", "--from", str(path)]) == 2
    assert "is the canonical of 1 duplicate(s)" in capsys.readouterr().err
    rows.append({"reference_id": ids["p6"], "candidate_id": ids["p1"], "decision": "duplicate"})
    _write(path, rows, columns=["reference_id", "candidate_id", "decision"])
    assert main(["decide", "--from", str(path)]) == 0
    decided = _decisions(settings)
    assert (decided["p5"], decided["p6"]) == (("distinct", None, "person"),
                                              ("duplicate", "p1", "person"))  # fmt: skip


def test_two_rows_pointing_at_each_other_and_one_reference_decided_twice(
    settings, reviewable, tmp_path, capsys
) -> None:
    ids = reviewable
    rows = [
        {"reference_id": ids["p1"], "candidate_id": ids["p2"], "decision": "duplicate"},
        {"reference_id": ids["p2"], "candidate_id": ids["p1"], "decision": "duplicate"},
        {"reference_id": ids["p3"], "candidate_id": ids["p4"], "decision": "duplicate"},
        {"reference_id": ids["p3"], "candidate_id": ids["p4"], "decision": "distinct"},
    ]
    path = tmp_path / "filled.csv"
    _write(path, rows, columns=["reference_id", "candidate_id", "decision"])
    assert main(["decide", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"lines 2 and 3 make {ids['p1']} and {ids['p2']} duplicates of each other" in err
    assert f"line 4: reference {ids['p3']} is decided differently on lines 4, 5" in err
    assert "line 5: " in err


def test_hostile_cells_are_written_safely_and_read_back_exactly(
    settings, landing, tmp_path, capsys
) -> None:
    write_record(landing, "rec")
    lines = [_work(f"h{n}", title, year=1990 + n) for n, title in enumerate(HOSTILE)]
    write_batch(landing, "rec", "works.jsonl", "\n".join(lines) + "\n")
    import_directly(settings, landing, "rec")
    _detect_all(settings)
    _maybe(settings, {f"h{n}": (f"h{n + 1}", 0.5) for n in range(0, len(HOSTILE), 2)})
    path, _ = _export(tmp_path, capsys)
    with path.open(encoding="utf-8-sig", newline="") as f:
        written = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in written if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=cmd|' /C calc'!A0" in written and "''quoted' title" in written
    with path.open(encoding="utf-8-sig", newline="") as f:
        read = [(r["reference_title"], r["candidate_title"]) for r in read_review(f)]
    assert sorted(t for pair in read for t in pair) == sorted(HOSTILE)  # exactly as stored
    for text in ["", "'", "''", "=1", "a'b", "-", "@", " =x"]:
        assert unprotect(protect(text)) == text


def test_a_file_a_spreadsheet_saved_is_read(settings, reviewable, tmp_path, capsys) -> None:
    _, rows = _export(tmp_path, capsys)
    # Columns reordered, one more, the header's case and spaces changed, Windows line ends,
    # a BOM, the decision word as a person typed it, and a blank row at the end.
    text = "\ufeffNotes, Decision ,candidate_id,REFERENCE_ID\r\n"
    text += f'"looked twice", Duplicate ,{rows[0]["candidate_id"]},{rows[0]["reference_id"]}\r\n'
    text += f'"",DISTINCT,{rows[1]["candidate_id"]},{rows[1]["reference_id"]}\r\n,,,\r\n'
    saved = tmp_path / "saved.csv"
    saved.write_bytes(text.encode("utf-8"))
    assert main(["decide", "--from", str(saved)]) == 0
    decided = _decisions(settings)
    assert (decided["p2"], decided["p4"]) == (("duplicate", "p1", "person"),
                                              ("distinct", None, "person"))  # fmt: skip
    # Saved in a locale that separates cells with `;`, in the spreadsheet's own code page.
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_bytes(
        f"reference_id;candidate_id;reference_title;decision\r\n"
        f"{rows[2]['reference_id']};{rows[2]['candidate_id']};Médiéval;distinct\r\n".encode(
            "cp1252"
        )
    )
    assert main(["decide", "--from", str(semicolons)]) == 0
    assert _decisions(settings)["p6"] == ("distinct", None, "person")


def test_a_file_that_is_not_a_review_file_is_refused(
    settings, reviewable, tmp_path, capsys
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("id,decision\n1,duplicate\n", encoding="utf-8")
    assert main(["decide", "--from", str(other)]) == 2
    assert "no column reference_id, candidate_id" in capsys.readouterr().err
    assert main(["decide", "--from", str(tmp_path / "missing.csv")]) == 2
    assert main(["decide", "--from", str(other), reviewable["p1"]]) == 2
    with pytest.raises(SystemExit):  # --from and --distinct together
        main(["decide", "--from", str(other), "--distinct"])
    with pytest.raises(DecisionRefused):
        list(read_review(io.StringIO("")))


def test_decide_takes_any_lookup(settings, reviewable, capsys) -> None:
    assert main(["decide", "other:x:p2", "--duplicate-of", "doi:https://doi.org/10.1234/p1.x"]) == 0
    assert _decisions(settings)["p2"] == ("duplicate", "p1", "person")
    capsys.readouterr()
    assert main(["decide", reviewable["p4"].upper(), "--distinct", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_id"] == reviewable["p4"]
    assert main(["decide", "doi:10.9999/nothing", "--distinct"]) == 1  # not found
    assert main(["decide", "other:x:p2", "--duplicate-of", "other:x:nope"]) == 1
    assert main(["decide", "isbn:123", "--distinct"]) == 2  # not a lookup
