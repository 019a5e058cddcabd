"""Duplicate detection on the failure classes of tests/data/dedup_classes (one labelled set per
class, composed from real patterns: see each folder's README.md): each set imported through
the real data path (`benchmarks.dedup`: an `other` identifier with the record's ID, a `doi`
identifier, bibliographic and abstract enhancements), detection over the store, and on these
small sets nothing short of exact: no false duplicate pair, every labelled pair found (a few,
listed in `MAYBE_PAIRS`, are by design only a `maybe`), and every star tight around its
canonical (no two members more than a year apart, none with differing DOIs)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks import dedup
from import_pipeline.domain.identifiers import normalise_identifier

#: Labelled pairs that the records cannot settle: detection must show them to a person (a
#: `maybe` between the two, or better a duplicate), not leave them distinct.
MAYBE_PAIRS: dict[str, set[tuple[str, str]]] = {
    # A PDF-extracted record with nothing but its title and authors (no year, venue, volume,
    # issue or pages) against the clean record of the paper.
    "poor_records": {("pr_015", "pr_016"), ("pr_031", "pr_032"), ("pr_037", "pr_038")},
    # Published online first (2023, pages 1-17 of its own, no volume) and then in an issue
    # (2024, pages 566-582): other pages under the same title are a maybe, as a conference
    # abstract and its article are (no rule tells the two apart from the fields alone).
    "doi_conflict": {("dc_057", "dc_058")},
}


@pytest.fixture(scope="module")
def detections(tmp_path_factory: pytest.TempPathFactory):
    """Each class imported and detected once for the module."""
    done: dict[str, dedup.Detected] = {}

    def detected(name: str) -> dedup.Detected:
        if name not in done:
            done[name] = dedup.run_detection(name, tmp_path_factory.mktemp(name))
        return done[name]

    return detected


def _records(name: str) -> dict[str, dict[str, str]]:
    path = dedup.CLASSES_DATA / name / "records_pre_merged.csv"
    with Path(path).open(newline="") as rows:
        return {row["ID"]: row for row in csv.DictReader(rows)}


def _describe(name: str, pairs: set[tuple[str, str]]) -> str:
    records = _records(name)
    return "\n".join(
        f"  {a} / {b}: {records[a]['title']!r} ({records[a]['year']}) | "
        f"{records[b]['title']!r} ({records[b]['year']})"
        for a, b in sorted(pairs)
    )


def _is_maybe(detected: dedup.Detected, a: str, b: str) -> bool:
    """Whether the references of IDs `a` and `b` are put before a person as a pair."""
    ref_of = {i: ref for ref, ids in detected.ids.items() for i in ids}
    ra, rb = ref_of[a], ref_of[b]
    return detected.decisions.get(ra) == ("maybe", rb) or detected.decisions.get(rb) == (
        "maybe",
        ra,
    )


@pytest.mark.parametrize("name", dedup.CLASSES)
def test_no_false_duplicate_pair(name: str, detections) -> None:
    false = detections(name).predicted_pairs() - dedup.truth_pairs(name)
    assert not false, f"{len(false)} false duplicate pairs in {name}:\n{_describe(name, false)}"


@pytest.mark.parametrize("name", dedup.CLASSES)
def test_every_labelled_pair_found(name: str, detections) -> None:
    detected = detections(name)
    maybe = MAYBE_PAIRS.get(name, set())
    missed = dedup.truth_pairs(name) - detected.predicted_pairs()
    unshown = {pair for pair in missed & maybe if not _is_maybe(detected, *pair)}
    missed -= maybe
    assert not missed and not unshown, (
        f"{len(missed)} labelled pairs missed in {name}:\n{_describe(name, missed)}\n"
        f"{len(unshown)} pairs neither duplicate nor maybe:\n{_describe(name, unshown)}"
    )


@pytest.mark.parametrize("name", dedup.CLASSES)
def test_every_star_member_matches_its_canonical(name: str, detections) -> None:
    """No two members of one star more than a year apart, nor with differing DOIs: a star
    made of a chain of pairs would have them."""
    detected, records = detections(name), _records(name)
    loose = []
    for members in detected.stars.values():
        rows = [records[i] for ref in members for i in detected.ids[ref]]
        years = {int(r["year"]) for r in rows if r["year"].isdigit()}
        dois = {normalise_identifier("doi", r["doi"]) for r in rows if r["doi"]}
        if (years and max(years) - min(years) > 1) or len(dois - {None}) > 1:
            ids = sorted(r["ID"] for r in rows)
            loose.append(f"  {ids}: years {sorted(years)}, DOIs {sorted(dois - {None})}")
    assert not loose, f"{len(loose)} stars of {name} not tight:\n" + "\n".join(loose)


def test_the_classes_are_well_formed() -> None:
    """Each class: 30-200 records, a README, groups of its own IDs with each ID in one group,
    and its `MAYBE_PAIRS` among its labelled pairs."""
    for name in dedup.CLASSES:
        records = _records(name)
        assert 30 <= len(records) <= 200, name
        assert (dedup.CLASSES_DATA / name / "README.md").read_text().strip()
        with (dedup.CLASSES_DATA / name / "merged_record_ids.csv").open(newline="") as rows:
            grouped = [i for row in csv.DictReader(rows) for i in row["merged_ids"].split(";")]
        assert len(grouped) == len(set(grouped)) and set(grouped) <= set(records), name
        assert MAYBE_PAIRS.get(name, set()) <= dedup.truth_pairs(name), name
