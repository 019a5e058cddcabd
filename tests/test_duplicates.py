"""Duplicates without a shared identifier (issue 17): the normalised keys, the
blocking, the rules and vetoes, and stars — over real DuckDB, through the SQL the detection
runs."""

from __future__ import annotations

import itertools
import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from rapidfuzz.distance import JaroWinkler, Levenshtein

from import_pipeline.detection import keys as bibliographic
from import_pipeline.detection.pairs import Pair, find_pairs
from import_pipeline.detection.similarity import count_characters
from import_pipeline.detection.stars import assign
from import_pipeline.domain.duplicates import (
    MATCH_RULES,
    MAYBE_RULE,
    TITLE_CHARACTERS_FLOOR,
    TITLE_JARO_WINKLER_FLOOR,
    Decision,
    Rule,
)


def _keys(**content: object) -> dict:
    conn = duckdb.connect()
    bibliographic.install_macros(conn)
    conn.execute("CREATE TABLE e (reference_id VARCHAR, enhancement_type VARCHAR, content JSON)")
    conn.execute(
        "INSERT INTO e VALUES ('r', 'bibliographic', ?)",
        [json.dumps({"enhancement_type": "bibliographic", **content})],
    )
    row = conn.execute(bibliographic.keys_sql("e")).fetchone()
    assert row is not None
    names = [d[0] for d in conn.description]
    return dict(zip(names, row, strict=True))


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("Efficacy of batroxobin. [Chinese]", "efficacy of batroxobin"),
        ("Efficacy of batroxobin (German).", "efficacy of batroxobin"),
        (
            "[Efficacy of batroxobin in vascular impairment].",
            "efficacy of batroxobin in vascular impairment",
        ),
        ("<i>Helicobacter</i> pylori &amp; ulcers", "helicobacter pylori and ulcers"),
        ("Why IT matters [Research Note]", "why it matters"),
        # A note's words inside a title are the title's ("…: an update in asthma", MEDLINE's
        # notes come after a bracket or a full stop).
        (
            "Systematic review update in asthma therapy",
            "systematic review update in asthma therapy",
        ),
        ("A comment in reply to critics of triage", "a comment in reply to critics of triage"),
        ("Eculizumab for aHUS. Erratum in: N Engl J Med 2009", "eculizumab for ahus"),
        ("Why IT matters - Research Commentary", "why it matters"),
        ("Why IT matters (Editorial).", "why it matters"),
        ("Q&A for nurses", "q and a for nurses"),
        ("Évaluation des résultats", "evaluation des resultats"),
        (
            "Eculizumab for aHUS [erratum appears in N Engl J Med 2009;360:2487]",
            "eculizumab for ahus",
        ),
        ("Stroke: a RANDOMISED trial!", "stroke a randomised trial"),
        ("Bleomycin versus interferon alfa [abstract no: 134]", "bleomycin versus interferon alfa"),
        ("Abstract reasoning after stroke (abstract)", "abstract reasoning after stroke"),
    ],
)
def test_titles_are_normalised(title: str, key: str) -> None:
    assert _keys(title=title)["title"] == key


@pytest.mark.parametrize(
    ("names", "families"),
    [
        (["Zhai, Q. J.", "Yue, X. Y."], "zhai yue"),
        (["Maya Yutsis", "Thomas Bergquist"], "yutsis bergquist"),
        (["Müller, K."], "muller"),
    ],
)
def test_authors_become_family_names_in_order(names: list[str], families: str) -> None:
    authorship = [{"display_name": n, "position": "middle"} for n in names]
    keys = _keys(title="t", authorship=authorship)
    assert keys["authors"] == families
    assert keys["first_author"] == families.split()[0]


@pytest.mark.parametrize(
    ("first", "last", "expected", "first_key"),
    [("73", "6", "76", "73"), ("1297", "1306", "1306", "1297"), ("e123", None, None, "e123"),
     ("S12", "S19", "s19", "s12"), ("iii", "xii", "xii", "iii"), ("c1804", None, None, "c1804")],
)  # fmt: skip
def test_a_short_last_page_is_written_out(
    first: str, last: str | None, expected: str | None, first_key: str
) -> None:
    keys = _keys(title="t", pagination={"first_page": first, "last_page": last, "volume": "Vol. 7"})
    assert keys["last_page"] == expected
    assert keys["first_page"] == first_key  # an article number keeps its letter, a roman page
    assert keys["volume"] == "7"


def _records(conn: duckdb.DuckDBPyConnection, records: dict[str, dict]) -> None:
    conn.execute("CREATE TABLE e (reference_id VARCHAR, enhancement_type VARCHAR, content JSON)")
    for ref, content in records.items():
        conn.execute(
            "INSERT INTO e VALUES (?, 'bibliographic', ?)",
            [ref, json.dumps({"enhancement_type": "bibliographic", **content})],
        )


def _pairs(records: dict[str, dict]) -> dict[tuple[str, str], Pair]:
    conn = duckdb.connect()
    _records(conn, records)
    found = find_pairs(conn, "e", "(SELECT DISTINCT reference_id FROM e)")
    return {(p.a, p.b): p for p in found}


TITLE = "Diabetes, comorbidities and increased long-term mortality in older patients"
AUTHORS = [
    {"display_name": "Zekry, D.", "position": "first"},
    {"display_name": "Graf, C.", "position": "last"},
]
PLACE = {"volume": "38", "issue": "2", "first_page": "149", "last_page": "155"}


def test_the_same_work_written_twice_is_a_duplicate_with_its_evidence() -> None:
    work = {"title": TITLE, "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE,
            "publication_venue": {"display_name": "Diabetes & metabolism"}}  # fmt: skip
    other = {
        **work,
        "title": TITLE.upper() + ".",
        "publication_venue": {"display_name": "Diabetes & Metabolism"},
    }
    pair = _pairs({"a": work, "b": other})[("a", "b")]
    assert pair.decision is Decision.DUPLICATE
    assert "title" in pair.evidence and pair.score >= 0.98


def test_blocking_finds_a_pair_that_shares_one_field_only() -> None:
    # The second record has the same title and nothing else in common (no authors, year or
    # pages): the title blocks find it, and it is scored (a `maybe` at least).
    pairs = _pairs({
        "a": {"title": TITLE, "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE},
        "b": {"title": TITLE, "publication_venue": {"display_name": "Elsewhere"}},
    })  # fmt: skip
    assert ("a", "b") in pairs
    # Only the volume and pages in common, the title garbled: the page blocks find it.
    pairs = _pairs({
        "a": {"title": TITLE, "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE},
        "b": {"title": "Mortalite a long terme chez les patients ages diabetiques",
              "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE},
    })  # fmt: skip
    assert pairs[("a", "b")].decision is Decision.DUPLICATE


def test_the_same_pages_and_a_retitled_translation_without_authors_is_a_duplicate_in_one_issue() -> (
    None
):
    # Respiratory's labelled pair: one database's English title of a German paper, the other's
    # translation of it, no authors in one: the year, volume and page range decide.
    work = {"title": "Postoperative immunostimulation in non-small-cell bronchial carcinoma",
            "authorship": [{"display_name": "Toomes, H.", "position": "first"}],
            "publication_year": 1984, "pagination": {**PLACE, "issue": "24"}}  # fmt: skip
    other = {"title": "Postoperative local immunostimulation in non-oatcell bronchial carcinoma",
             "publication_year": 1984, "pagination": {**PLACE, "issue": "28"}}  # fmt: skip
    # (Respiratory's "number" is an accession number, 1347 and 1351: no issue, not compared.)
    accession = {**other, "pagination": {**PLACE, "issue": "1351"}}
    work_accession = {**work, "pagination": {**PLACE, "issue": "1347"}}
    pair = _pairs({"a": work_accession, "b": accession})[("a", "b")]
    assert pair.decision is Decision.DUPLICATE
    # In two issues of one volume, titles that are not close are two papers of one author on
    # the same pages: at most a maybe.
    assert _pairs({"a": work, "b": other})[("a", "b")].decision is Decision.MAYBE
    # With the other pages it is not.
    moved = {**other, "pagination": {**PLACE, "first_page": "301", "last_page": "309"}}
    assert ("a", "b") not in _pairs({"a": work, "b": moved}) or (
        _pairs({"a": work, "b": moved})[("a", "b")].decision is not Decision.DUPLICATE
    )


@pytest.mark.parametrize(
    "change",
    [
        {"publication_year": 2016},  # the same title four years on: another work
        {
            "pagination": {**PLACE, "first_page": "301", "last_page": "309"},
            "publication_venue": {"display_name": "Other journal"},
        },
    ],
)
def test_vetoes_keep_the_same_title_apart(change: dict) -> None:
    work = {"title": TITLE, "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE,
            "publication_venue": {"display_name": "Diabetes & metabolism"}}  # fmt: skip
    pairs = _pairs({"a": work, "b": {**work, **change}})
    assert ("a", "b") not in pairs or pairs[("a", "b")].decision is not Decision.DUPLICATE


def test_a_third_record_matching_a_duplicate_points_to_the_canonical() -> None:
    pairs = [
        Pair("a", "b", Decision.DUPLICATE, 1.0, ("title",)),
        Pair("b", "c", Decision.DUPLICATE, 1.0, ("title",)),
        Pair("c", "d", Decision.MAYBE, 0.9, ("title",)),
    ]
    decided = {
        d.reference_id: d
        for d in assign(pairs, ["a", "b", "c", "d"], {}, {"a": 2, "b": 1, "c": 3, "d": 4})
    }
    canonicals = [ref for ref, d in decided.items() if d.decision is Decision.CANONICAL]
    duplicates = sorted(ref for ref, d in decided.items() if d.decision is Decision.DUPLICATE)
    assert (canonicals, duplicates) == (["b"], ["a", "c"])
    assert {decided[ref].duplicate_of for ref in duplicates} == {"b"}
    assert (decided["d"].decision, decided["d"].duplicate_of) == (Decision.MAYBE, "c")


@pytest.mark.parametrize("rule", [*MATCH_RULES, MAYBE_RULE], ids=lambda rule: rule.name)
def test_no_rule_holds_for_titles_below_the_floor(rule: Rule) -> None:
    # Detection drops pairs under the floor before the other similarities: that is only
    # right while no rule can hold there, whatever else agrees.
    features = {
        "title_jaro_winkler": TITLE_JARO_WINKLER_FLOOR - 0.01, "title_similarity": 0.0,
        "title_variant": False, "doi_same": False, "author_similarity": 1.0, "venue_similarity": 1.0,
        "first_author_same": True, "year_same": True, "volume_same": True, "issue_same": True,
        "first_page_same": True, "page_range_same": True, "pages_conflict": False,
        "volume_conflict": False, "year_gap": 0,
    }  # fmt: skip
    columns = ", ".join(f"{value!r} AS {name}" for name, value in features.items())
    held = duckdb.sql(f"SELECT ({rule.sql}) FROM (SELECT {columns})").fetchall()[0][0]
    assert held is False
    above = {**features, "title_jaro_winkler": 0.99, "title_similarity": 0.99, "doi_same": True,
             "title_variant": True}  # fmt: skip
    columns = ", ".join(f"{value!r} AS {name}" for name, value in above.items())
    assert duckdb.sql(f"SELECT ({rule.sql}) FROM (SELECT {columns})").fetchall()[0][0] is True


_PLACE_FIELDS = ("year_same", "volume_same", "first_page_same", "page_range_same")


@pytest.mark.parametrize("rule", [*MATCH_RULES, MAYBE_RULE], ids=lambda rule: rule.name)
@pytest.mark.parametrize("elsewhere", _PLACE_FIELDS)
def test_no_rule_holds_for_titles_below_the_character_floor_outside_the_same_place(
    rule: Rule, elsewhere: str
) -> None:
    # Detection drops the pairs whose titles share too few characters (unless they start
    # alike or are in the same place) before any similarity: right only while no rule holds
    # below 0.85 of title similarity and 0.97 of Jaro-Winkler there.
    features = {
        "title_jaro_winkler": 0.9699, "title_similarity": TITLE_CHARACTERS_FLOOR - 0.0001,
        "title_variant": False, "doi_same": False, "author_similarity": 1.0, "venue_similarity": 1.0,
        "first_author_same": True, "year_same": True, "volume_same": True, "issue_same": True,
        "first_page_same": True, "page_range_same": True, "pages_conflict": False,
        "volume_conflict": False, elsewhere: False,
    }  # fmt: skip
    columns = ", ".join(f"{value!r} AS {name}" for name, value in features.items())
    assert duckdb.sql(f"SELECT ({rule.sql}) FROM (SELECT {columns})").fetchall()[0][0] is False


def _shared_share(a: str, b: str) -> float:
    counts = count_characters(pa.array([a, b], type=pa.large_string()))
    return np.minimum(counts[0], counts[1]).sum() / max(len(a), len(b))


def test_the_character_bound_keeps_every_pair_a_title_rule_could_pass() -> None:
    # Titles made from one another by random edits, transpositions and cuts: wherever the
    # edit-distance similarity reaches 0.85 or Jaro-Winkler 0.97, the counts' bound holds.
    rng = np.random.default_rng(17)
    letters = np.array(list("abcdefghij klmnopqrst 0123"))
    reached = 0
    for _ in range(3000):
        a = "".join(rng.choice(letters, size=int(rng.integers(10, 120))))
        b = list(a)
        for _ in range(int(rng.integers(0, 12))):
            at = int(rng.integers(0, len(b)))
            kind = rng.integers(0, 4)
            if kind == 0:
                b[at] = str(rng.choice(letters))
            elif kind == 1:
                del b[at]
            elif kind == 2:
                b.insert(at, str(rng.choice(letters)))
            elif at + 1 < len(b):
                b[at], b[at + 1] = b[at + 1], b[at]
        other = "".join(b) or "x"
        if (
            Levenshtein.normalized_similarity(a, other) >= 0.85
            or JaroWinkler.similarity(a, other) >= 0.97
        ):
            reached += 1
            assert _shared_share(a, other) >= TITLE_CHARACTERS_FLOOR, (a, other)
    assert reached > 1000  # the property was tested on many pairs past the thresholds


def test_the_character_counts_are_each_titles_own() -> None:
    counts = count_characters(pa.array(["abc a", "", "zz 9"], type=pa.large_string()))
    assert counts.shape == (3, 38)
    assert (counts[0][:3].tolist(), counts[0][36], counts[0].sum()) == ([2, 1, 1], 1, 5)
    assert counts[1].sum() == 0
    assert (counts[2][25], counts[2][35], counts[2][36]) == (2, 1, 1)


def _decided(pairs: list[Pair], refs: list[str], apart: set | None = None) -> dict:
    order = {ref: (0, ref) for ref in refs}
    return {
        d.reference_id: (d.decision, d.duplicate_of)
        for d in assign(pairs, refs, {}, order, apart or set())
    }


@pytest.mark.parametrize("ids", ["abcd", "dcba", "cadb", "bdac"])
def test_a_star_is_centred_on_the_member_every_other_matches(ids: str) -> None:
    # Respiratory's four records of one paper: "w" matches all three others; "y" (its pages
    # listed in another order) matches only "w". Whatever order the ids sort in, the star is
    # centred on "w".
    w, x, y, z = ids

    def pair(p: str, q: str, decision: Decision, agreement: int) -> Pair:  # noqa: E306
        a, b = sorted((p, q))
        return Pair(a, b, decision, 1.0, (), agreement, 2.0)

    pairs = [pair(w, x, Decision.DUPLICATE, 3), pair(w, y, Decision.DUPLICATE, 4),
             pair(w, z, Decision.DUPLICATE, 3), pair(x, z, Decision.DUPLICATE, 4),
             pair(x, y, Decision.MAYBE, 0), pair(y, z, Decision.MAYBE, 0)]  # fmt: skip
    decided = _decided(pairs, sorted(ids))
    assert decided[w] == (Decision.CANONICAL, None)
    assert {decided[r] for r in (x, y, z)} == {(Decision.DUPLICATE, w)}


def test_neighbouring_years_never_chain_into_one_star() -> None:
    # 2010 ~ 2011 ~ 2012 ~ 2013, each pair a duplicate, the records two years apart vetoed.
    years = ["r2010", "r2011", "r2012", "r2013"]
    pairs = [Pair(a, b, Decision.DUPLICATE, 0.99, ()) for a, b in itertools.pairwise(years)]
    apart = {(a, b) for i, a in enumerate(years) for b in years[i + 2 :]}
    decided = _decided(pairs, years, apart)
    stars: dict[str, set[str]] = {}
    for ref, (decision, of) in decided.items():
        if decision is Decision.DUPLICATE:
            stars.setdefault(of, {of}).add(ref)
    assert stars and all(
        (a, b) not in apart for members in stars.values() for a in members for b in members
    )
    assert all(len(members) == 2 for members in stars.values())


def test_an_article_number_and_a_printed_page_do_not_conflict() -> None:
    # The BMJ's online article number (c1804) and its printed page (1014) of one paper (no
    # authors: only the title and the place decide).
    work = {"title": TITLE, "publication_year": 2010,
            "pagination": {"volume": "340", "first_page": "c1804"},
            "publication_venue": {"display_name": "BMJ"}}  # fmt: skip
    printed = {**work, "pagination": {"volume": "340", "first_page": "1014"}}
    other_number = {**work, "pagination": {"volume": "340", "first_page": "c1805"}}
    assert _pairs({"a": work, "b": printed})[("a", "b")].decision is Decision.DUPLICATE
    found = _pairs({"a": work, "b": other_number})
    assert ("a", "b") not in found or found[("a", "b")].decision is not Decision.DUPLICATE


@pytest.mark.parametrize(
    ("venue", "other", "together"),
    [
        ("Americas Conference on Information Systems", "Journal of Global IT Management", False),
        ("J Thromb Haemost. Conference: 23rd Congress of the ISTH", "Journal of Thrombosis", True),
        ("23rd Congress of the ISTH", "Journal of Thrombosis. Conference: 23rd Congress", True),
        ("Proceedings of the National Academy of Sciences", "PNAS", True),
    ],
)
def test_a_conference_paper_and_its_journal_version_are_two_works(
    venue: str, other: str, together: bool
) -> None:
    work = {"title": TITLE, "authorship": AUTHORS, "publication_year": 2011,
            "publication_venue": {"display_name": venue}}  # fmt: skip
    found = _pairs({"a": work, "b": {**work, "publication_venue": {"display_name": other}}})
    assert (found[("a", "b")].decision is Decision.DUPLICATE) is together


def test_the_same_title_at_a_conference_a_year_later_is_the_next_years_paper() -> None:
    work = {
        "title": "The impact of cognitive load on responses to security alerts",
        "authorship": AUTHORS,
        "publication_year": 2024,
        "publication_venue": {"display_name": "Americas Conference on Information Systems"},
    }
    later = {**work, "publication_year": 2025}  # fmt: skip
    found = _pairs({"a": work, "b": later})
    assert ("a", "b") not in found or found[("a", "b")].decision is Decision.MAYBE
    assert _pairs({"a": work, "b": dict(work)})[("a", "b")].decision is Decision.DUPLICATE


def test_a_new_member_of_a_persons_star_is_checked_against_every_member() -> None:
    # x is a person's duplicate of c, and is among the batch's subjects (re-imported): a new
    # reference n that matches c must still be checked against x.
    from import_pipeline.detection.stars import _pairs_to_check
    from import_pipeline.domain.duplicates import DecidedBy
    from import_pipeline.store.duplicates import StoredDecision

    stored = {
        "c": StoredDecision("c", Decision.CANONICAL, None, None, DecidedBy.PERSON, ()),
        "x": StoredDecision("x", Decision.DUPLICATE, "c", None, DecidedBy.PERSON, ()),
    }
    pairs = [Pair("c", "n", Decision.DUPLICATE, 1.0, ())]
    assert set(_pairs_to_check(pairs, ["n", "x"], stored)) == {("c", "n"), ("n", "x")}


def test_a_duplicates_evidence_is_that_of_its_pair_with_its_canonical() -> None:
    pairs = [Pair("c", "n", Decision.DUPLICATE, 0.95, ("title", "year"), 2),
             Pair("m", "n", Decision.DUPLICATE, 1.0, ("doi", "title"), 6),
             Pair("c", "m", Decision.DUPLICATE, 0.97, ("title", "volume"), 3)]  # fmt: skip
    order = {"c": (0, "c"), "m": (1, "m"), "n": (2, "n")}
    decided = {d.reference_id: d for d in assign(pairs, ["c", "m", "n"], {}, order, set())}
    assert decided["c"].decision is Decision.CANONICAL
    assert (decided["n"].duplicate_of, decided["n"].evidence, decided["n"].score) == (
        "c", ("title", "year"), 0.95
    )  # fmt: skip
    assert decided["m"].evidence == ("title", "volume")


@pytest.mark.parametrize(
    ("title", "other", "together"),
    [
        ("Cervical neoplasia among 10 000 women", "Cervical neoplasia among 10000 women", True),
        ("Integrin alpha(v)beta(3) in stage IV melanoma", "Integrin alphavbeta3 in stage IV melanoma", True),
        ("Heart disease and stroke statistics: part I", "Heart disease and stroke statistics: part II", False),
        ("Heart disease and stroke statistics 2012 update", "Heart disease and stroke statistics 2013 update", False),
    ],
)  # fmt: skip
def test_titles_whose_numbers_differ_are_two_works(title: str, other: str, together: bool) -> None:
    work = {"title": title, "authorship": AUTHORS, "publication_year": 2012, "pagination": PLACE}
    found = _pairs({"a": work, "b": {**work, "title": other}})
    assert (("a", "b") in found and found[("a", "b")].decision is Decision.DUPLICATE) is together
