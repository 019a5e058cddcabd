"""Identifier normalisation: accepted and refused forms for every type (contract section 3)."""

import csv
import random
from pathlib import Path

import polars as pl
import pytest

from import_pipeline.domain.identifiers import IdentifierType, normalise_identifier
from import_pipeline.pipeline.identifier_columns import normalised_identifier

ACCEPTED = [
    # doi: prefixes in any case, URL forms, NFC, U+2010, trimmed, lower-cased
    ("doi", "10.1016/j.eclinm.2024.102524", "10.1016/j.eclinm.2024.102524"),
    ("doi", "10.1016/J.ECLINM.2024.102524", "10.1016/j.eclinm.2024.102524"),
    ("doi", "doi:10.1000/xyz", "10.1000/xyz"),
    ("doi", "DOI:10.1000/XYZ", "10.1000/xyz"),
    ("doi", "https://doi.org/10.1161/01.hyp.33.2.719", "10.1161/01.hyp.33.2.719"),
    ("doi", "http://doi.org/10.1000/a", "10.1000/a"),
    ("doi", "https://dx.doi.org/10.1000/a", "10.1000/a"),
    ("doi", "HTTPS://DOI.ORG/10.1000/A", "10.1000/a"),
    ("doi", "  10.1000/padded  ", "10.1000/padded"),
    ("doi", "10.1000/a\u2010b", "10.1000/a-b"),
    ("doi", "10.1000/e\u0301", "10.1000/\u00e9"),  # NFC: e + combining acute → é
    ("doi", "10.123456789/long-registrant", "10.123456789/long-registrant"),
    ("doi", "doi.org/10.1000/xyz123", "10.1000/xyz123"),  # the DESTINY SDK's forms
    ("doi", "dx.doi.org/10.1000/XYZ123", "10.1000/xyz123"),
    ("doi", "https://doi.org/doi:10.1000/a", "10.1000/a"),
    ("doi", "\u00a010.1000/nbsp\u00a0", "10.1000/nbsp"),
    # pm_id: integers, digit strings, URLs, PMID: prefix
    ("pm_id", 26067812, "26067812"),
    ("pm_id", "26067812", "26067812"),
    ("pm_id", "00123", "123"),
    ("pm_id", "https://pubmed.ncbi.nlm.nih.gov/26067812", "26067812"),
    ("pm_id", "https://pubmed.ncbi.nlm.nih.gov/26067812/", "26067812"),
    ("pm_id", "http://pubmed.ncbi.nlm.nih.gov/7/", "7"),
    ("pm_id", "PMID:31879129", "31879129"),
    ("pm_id", "pmid: 31879129", "31879129"),
    # open_alex
    ("open_alex", "W4411634280", "W4411634280"),
    ("open_alex", "w4411634280", "W4411634280"),
    ("open_alex", "https://openalex.org/W573755264", "W573755264"),
    ("open_alex", "https://openalex.org/works/W573755264", "W573755264"),
    ("open_alex", "works/w1", "W1"),
    ("open_alex", "https://explore.openalex.org/works/W123456789", "W123456789"),
    ("open_alex", "openalex.org/W7", "W7"),
    # eric
    ("eric", "ED123456", "ED123456"),
    ("eric", "ej654321", "EJ654321"),
    ("eric", "https://eric.ed.gov/?id=ED123456", "ED123456"),
    ("eric", "https://files.eric.ed.gov/fulltext/ED123456.pdf", "ED123456"),
    # pro_quest
    ("pro_quest", "1234567890", "1234567890"),
    ("pro_quest", "https://www.proquest.com/docview/1234567890", "1234567890"),
    ("pro_quest", "https://www.proquest.com/scholarly-journals/docview/42/", "42"),
    ("pro_quest", "docview/1299989139", "1299989139"),
    ("eric", "eric.ed.gov/?id=EJ1", "EJ1"),
    # other
    ("other", "  isbn 978-3-16  ", "isbn 978-3-16"),
]

REFUSED = [
    ("doi", "not-a-doi"),
    ("doi", "10.231/JIM.0b013e318240c940"),  # a real SYNERGY row: registrant too short
    ("doi", "10.1000/has space"),
    ("doi", "10.1000/has\u00a0nbsp"),
    ("doi", "https://example.org/10.1000/a"),
    ("doi", "11.1000/a"),
    ("doi", "10.\u0661\u0662\u0663\u0664/arabic-digits"),
    ("doi", ""),
    ("doi", 101000),  # a number is not a DOI
    ("pm_id", 0),
    ("pm_id", -5),
    ("pm_id", "0"),
    ("pm_id", "12a"),
    ("pm_id", "https://pubmed.ncbi.nlm.nih.gov/DARE-12010005228"),  # a real SYNERGY row
    ("pm_id", "https://example.org/123"),
    ("pm_id", ""),
    ("pm_id", 12.0),
    ("pm_id", True),
    ("open_alex", "A123"),
    ("open_alex", "W"),
    ("open_alex", "https://openalex.org/authors/A1"),
    ("open_alex", 123),
    ("eric", "EX123"),
    ("eric", "ED"),
    ("eric", "https://example.org/?id=ED1"),
    ("pro_quest", "abc"),
    ("pro_quest", "https://example.org/docview/1"),
    ("other", "   "),
    # Only ASCII letters are folded: a dotless i or a long s is not an i or an s.
    ("doi", "do\u0131:10.1234/x"),
    ("pm_id", "pm\u0131d:12"),
    ("eric", "https://er\u0131c.ed.gov/?id=ED1"),
    ("pro_quest", "https://www.proque\u017ft.com/docview/1"),
    ("isbn", "978-3-16"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), ACCEPTED)
def test_accepted_forms_normalise(kind: str, value: object, expected: str) -> None:
    assert normalise_identifier(kind, value) == expected


@pytest.mark.parametrize(("kind", "value"), REFUSED)
def test_refused_forms(kind: str, value: object) -> None:
    assert normalise_identifier(kind, value) is None


def _synergy_identifiers() -> list[tuple[str, object]]:
    columns = {"doi": "doi", "pmid": "pm_id", "openalex_id": "open_alex"}
    out = []
    for path in sorted(
        (Path(__file__).parents[1] / "import_pipeline/demo_data/synergy").glob("*.csv")
    ):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                out += [(kind, row[column]) for column, kind in columns.items() if row.get(column)]
    return out


def _mutations(values: list[tuple[str, object]], count: int) -> list[tuple[str, object]]:
    """Real and test values cut, joined, re-cased, padded and sprinkled with odd characters."""
    odd = [" ", "\u00a0", "\u2010", "\u2028", "\x1c", "\t", "/", ":", ".", "0", "W", "e\u0301", "\u0130", "\u0131", "\u017f", "\u03a3", "K", "\u0661", "%", "?id="]  # fmt: skip
    rng = random.Random(14)
    texts = [(k, v) for k, v in values if isinstance(v, str)]
    out = []
    for _ in range(count):
        kind, value = rng.choice(texts)
        at = rng.randrange(len(value) + 1)
        change = rng.randrange(5)
        if change == 0:
            value = value[:at] + rng.choice(odd) + value[at:]
        elif change == 1:
            value = value[:at]
        elif change == 2:
            value = value.upper() if rng.random() < 0.5 else value.lower()
        elif change == 3:
            value = rng.choice(odd) + value + rng.choice(odd)
        else:
            value = value[:at] + rng.choice(texts)[1][at:]
        out.append((rng.choice(list(IdentifierType)).value if rng.random() < 0.2 else kind, value))
    return out


def test_the_polars_and_python_executions_agree() -> None:
    """One set of rules, two executions: the same verdict and form for every tested form, every
    SYNERGY identifier and 100,000 mutations of them."""
    cases = [(k, v) for k, v, _ in ACCEPTED] + REFUSED
    cases += _synergy_identifiers()
    cases += _mutations(cases, 100_000)
    frame = pl.DataFrame(
        {
            "identifier_type": [str(k) for k, _ in cases],
            "identifier": [str(v) for _, v in cases],
            "identifier_is_integer": [
                isinstance(v, int) and not isinstance(v, bool) for _, v in cases
            ],
        }
    )
    vectorised = frame.select(normalised_identifier()).to_series().to_list()
    single = [normalise_identifier(k, v) for k, v in cases]
    # A JSON float or boolean never reaches the column as an integer; as text it is refused.
    disagree = [
        (k, v, a, b) for (k, v), a, b in zip(cases, vectorised, single, strict=True)
        if a != b and not isinstance(v, (bool, float))
    ]  # fmt: skip
    assert disagree == []
    assert len(cases) > 115_000 and sum(v is not None for v in single) > 20_000
