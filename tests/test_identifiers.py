"""Identifier normalisation: accepted and refused forms for every type (contract section 3)."""

import pytest

from import_pipeline.identifiers import normalise_identifier

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
    # eric
    ("eric", "ED123456", "ED123456"),
    ("eric", "ej654321", "EJ654321"),
    ("eric", "https://eric.ed.gov/?id=ED123456", "ED123456"),
    ("eric", "https://files.eric.ed.gov/fulltext/ED123456.pdf", "ED123456"),
    # pro_quest
    ("pro_quest", "1234567890", "1234567890"),
    ("pro_quest", "https://www.proquest.com/docview/1234567890", "1234567890"),
    ("pro_quest", "https://www.proquest.com/scholarly-journals/docview/42/", "42"),
    # other
    ("other", "  isbn 978-3-16  ", "isbn 978-3-16"),
]

REFUSED = [
    ("doi", "not-a-doi"),
    ("doi", "10.231/JIM.0b013e318240c940"),  # a real SYNERGY row: registrant too short
    ("doi", "10.1000/has space"),
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
    ("isbn", "978-3-16"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), ACCEPTED)
def test_accepted_forms_normalise(kind: str, value: object, expected: str) -> None:
    assert normalise_identifier(kind, value) == expected


@pytest.mark.parametrize(("kind", "value"), REFUSED)
def test_refused_forms(kind: str, value: object) -> None:
    assert normalise_identifier(kind, value) is None
