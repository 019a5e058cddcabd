"""The BibTeX reader: the shared BibTeX exports read whole and checked against CoLRev's reading
or by hand, each dialect's quirk (ACM, IEEE, DBLP, Wiley, Taylor & Francis, Scopus, Web of
Science, Zotero/BibLaTeX, JabRef) as a small case of its own, and broken or hostile entries
failing alone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from import_pipeline.domain.lines import ReferenceFileInput
from import_pipeline.formats.base import Entry, Header, Piece
from import_pipeline.formats.bibtex import READER
from import_pipeline.formats.bibtex_latex import author_names, plain_text
from import_pipeline.formats.convert import ConvertedEntry, convert_text, pieces
from import_pipeline.formats.lines import FileContext

COLREV = Path(__file__).resolve().parents[1] / "import_pipeline/demo_data/exports/colrev"
CONTEXT = FileContext("bibtex", "my-source", "2024-05-01T00:00:00Z")


def convert(text: str, **limits: int) -> list[ConvertedEntry]:
    return convert_text("bibtex", text, CONTEXT, **limits)


def read_file(path: Path) -> str:
    # As the import reads a file: decoded, a BOM and the \r of each line end dropped.
    return path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")


def lines_of(text: str) -> list[dict[str, Any]]:
    """The lines a text becomes, each judged by the line model; no entry may fail."""
    converted = convert(text)
    assert [c.problem for c in converted if c.problem] == []
    for entry in converted:
        assert entry.line is not None
        ReferenceFileInput.model_validate_json(entry.line)
    return [json.loads(entry.line) for entry in converted if entry.line is not None]


def one(text: str) -> dict[str, Any]:
    found = lines_of(text)
    assert len(found) == 1
    return found[0]


def content(line: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [e["content"] for e in line["enhancements"] if e["content"]["enhancement_type"] == kind]
    return found[0] if found else {}


def biblio(line: dict[str, Any]) -> dict[str, Any]:
    return content(line, "bibliographic")


def ids(line: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (i["identifier_type"], i["identifier"], i.get("other_identifier_name"))
        for i in line["identifiers"]
    ]


def authors(line: dict[str, Any]) -> list[str]:
    return [a["display_name"] for a in biblio(line).get("authorship", [])]


def raw(line: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = content(line, "raw")["data"]
    return data


def pages(line: dict[str, Any]) -> dict[str, Any]:
    pagination: dict[str, Any] = biblio(line).get("pagination", {})
    return pagination


def venue(line: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = biblio(line).get("publication_venue", {})
    return found


# -- CoLRev's expected readings ------------------------------------------------------------------


def expected_entries(path: Path) -> dict[str, dict[str, str]]:
    """CoLRev's result .bib, by the origin key (`colrev_origin = {file.bib/KEY;}`): each
    field's value as CoLRev wrote it."""
    found: dict[str, dict[str, str]] = {}
    for block in read_file(path).split("\n@")[0:]:
        fields = dict(re.findall(r"^\s+([\w.]+)\s*=\s*\{(.*?)\},?$", block, re.MULTILINE))
        origin = re.search(r"colrev_origin\s*=\s*\{[^/]+/(.*?);", block)
        if origin is not None:
            found[origin.group(1)] = fields
    return found


def by_key(path: Path) -> dict[str, dict[str, Any]]:
    return {raw(line)["ID"]: line for line in lines_of(read_file(path))}


#: Where CoLRev reads a chapter differently: it makes the book's title the title (Scopus's
#: journal, Wiley's booktitle) and keeps the chapter's apart; a DESTINY reference is the
#: chapter, published in the book.
CHAPTERS = {
    "Bookchapterwriter202150": ("booktitle", "title"),
    "doi:https://doi.org/10.1111/1111222233334.ch29": ("chapter", "title"),
}


def check_against_colrev(line: dict[str, Any], key: str, expected: dict[str, str]) -> None:
    found = biblio(line)
    title_field, venue_field = CHAPTERS.get(key, ("title", ""))
    assert found["title"] == expected[title_field]
    venue_name = expected.get(venue_field) or expected.get("journal") or expected["booktitle"]
    assert venue(line)["display_name"] == venue_name
    assert authors(line) == (expected["author"].split(" and ") if "author" in expected else [])
    assert found["publication_year"] == int(expected["year"])
    if "doi" in expected:
        dois = [value.lower() for kind, value, _ in ids(line) if kind == "doi"]
        assert dois == [expected["doi"].lower()]
    for name, key_of_page in (("volume", "volume"), ("number", "issue")):
        if expected.get(name, "UNKNOWN") != "UNKNOWN":
            assert pages(line)[key_of_page] == expected[name]
    if expected.get("publisher", "UNKNOWN") != "UNKNOWN":
        assert found["publisher"] == expected["publisher"]
    if "abstract" in expected:
        assert content(line, "abstract")["abstract"] == expected["abstract"]
    first, _, last = expected.get("pages", "").partition("--")
    article_number = expected.get("colrev.scopus.art_number")
    assert pages(line).get("first_page") == (first or article_number)
    assert pages(line).get("last_page") == (last or None)


@pytest.mark.parametrize("name", ["scopus_bib", "wiley_bib"])
def test_a_shared_export_reads_as_colrev_reads_it(name: str) -> None:
    # CoLRev names an entry by its key with spaces made "_" ("Conference paper2022775").
    read = {key.replace(" ", "_"): line for key, line in by_key(COLREV / f"{name}.bib").items()}
    expected = expected_entries(COLREV / f"{name}_result.bib")
    assert sorted(read) == sorted(expected)
    for key, line in read.items():
        check_against_colrev(line, key, expected[key])


def test_scopus_entries_name_scopus_and_carry_their_eid() -> None:
    read = by_key(COLREV / "scopus_bib.bib")
    assert {e["source"] for line in read.values() for e in line["enhancements"]} == {"Scopus"}
    review = read["Reviewwriter2021"]
    assert ("other", "2-s2.0-85116700878", "Scopus EID") in ids(review)
    # The Scopus link's own percent-encoded DOI is the same DOI, once.
    assert [i for i in ids(review) if i[0] == "doi"] == [
        ("doi", "10.6116/JJJJ.RANDOMDOI.2021.666999", None)
    ]
    assert venue(read["Conference paper2022775"])["venue_type"] == "conference"
    assert venue(read["Firstwriter2022"])["venue_type"] == "journal"
    # No identifier at all: the entry key stands in for one.
    ((kind, _, name),) = ids(read["NoAuthor2013a"])
    assert (kind, name) == ("other", "import_pipeline.entry")
    assert raw(read["Articlewriter2022"])["art_number"] == "333444"


def test_the_wiley_export_takes_dois_from_urls_and_its_entry_starts() -> None:
    converted = convert(read_file(COLREV / "wiley_bib.bib"))
    assert [c.line_number for c in converted] == [2, 17]
    chapter = json.loads(converted[0].line or "")
    assert ids(chapter) == [("doi", "10.1111/1111222233334.ch29", None)]
    assert biblio(chapter)["publisher"] == "John Wiley & Sons, Ltd"
    assert pages(chapter) == {"first_page": "122", "last_page": "134"}
    assert raw(chapter)["ENTRYTYPE"] == "inbook"
    assert raw(chapter)["isbn"] == "1111222233334"
    assert venue(chapter) == {"display_name": "Dummy in Practice"}  # an ISBN is no ISSN


def test_bib_data_by_hand() -> None:
    converted = convert(read_file(COLREV / "bib_data.bib"))
    assert [c.problem for c in converted] == [None] * 6
    assert [c.line_number for c in converted] == [1, 19, 36, 42, 47, 53]
    first, second, mouse, mouse2, proceedings, wos = [json.loads(c.line or "") for c in converted]
    assert biblio(first) == {
        "enhancement_type": "bibliographic",
        "authorship": [{"display_name": "Articlewriter, Laura, III", "position": "first"}],
        "title": "This is a dummy title",
        "publication_year": 2020,
        "pagination": {"volume": "99", "issue": "299", "first_page": "99", "last_page": "123"},
        "publication_venue": {
            "display_name": "Dummy Relations",
            "venue_type": "journal",
            "issn": ["0765-4321"],
        },
    }
    assert content(first, "abstract")["abstract"] == "This is a nice abstract."
    assert ids(first) == [("doi", "10.3333/XYZ.V4444.04", None)]
    # The same key twice is two entries; "07654321a" is no ISSN; a field name with a space.
    assert ids(second) == [("doi", "10.3333/XYZ.V4444.04a", None)]
    assert "issn" not in venue(second)
    assert raw(second)["key words"] == "Dummy, Template, Void, Example"
    assert raw(second)["issn"] == "07654321a"
    assert raw(mouse)["ID"] == "mouse;2015" and raw(mouse)["crossref"] == "ICRC2015"
    assert biblio(mouse2)["title"] == "Mouse stories two"
    assert venue(proceedings) == {
        "display_name": "Proceedings of the 34th International Cosmic Ray Conference",
        "venue_type": "conference",
    }
    assert authors(wos) == ["Andreica, D", "Schmid, H"]
    assert biblio(wos)["title"] == (
        "Magnetic properties and phase transitions of iron boracites, Fe3B7O13X (X = Cl, Br OR I)"
    )
    assert ("other", "WOS:000072095400011", "Web of Science") in ids(wos)
    assert raw(wos)["Author"] == "Andreica, D and Schmid, H"  # names as written, one line


# -- dialects -------------------------------------------------------------------------------------

ACM = """@inproceedings{10.1145/3368089.3409741,
author = {Doe, Jane and Ro\\'{e}, Richard},
title = {Deep Learning for {API} Misuse},
year = {2020},
isbn = {9781450370431},
publisher = {Association for Computing Machinery},
address = {New York, NY, USA},
url = {https://doi.org/10.1145/3368089.3409741},
doi = {10.1145/3368089.3409741},
booktitle = {Proceedings of the 28th ACM Joint Meeting},
pages = {1–12},
numpages = {12},
location = {Virtual Event, USA},
series = {ESEC/FSE 2020}
}

@article{10.1145/3377811,
author = {Doe, Jane},
title = {An Article},
year = {2021},
issue_date = {June 2021},
volume = {30},
number = {4},
issn = {1049-331X},
journal = {ACM Trans. Softw. Eng. Methodol.},
articleno = {42},
numpages = {30}
}
"""


def test_acm_en_dash_pages_article_numbers_and_a_last_field_without_comma() -> None:
    meeting, article = lines_of(ACM)
    assert ids(meeting) == [("doi", "10.1145/3368089.3409741", None)]
    assert authors(meeting) == ["Doe, Jane", "Roé, Richard"]
    assert biblio(meeting)["title"] == "Deep Learning for API Misuse"
    assert pages(meeting) == {"first_page": "1", "last_page": "12"}
    assert venue(meeting) == {
        "display_name": "Proceedings of the 28th ACM Joint Meeting",
        "venue_type": "conference",
    }
    assert raw(meeting)["series"] == "ESEC/FSE 2020"
    assert pages(article) == {"volume": "30", "issue": "4", "first_page": "42"}
    assert venue(article)["issn"] == ["1049-331X"]


IEEE = """@INPROCEEDINGS{9123456,
  author={J. {Doe} and R. {Roe}},
  booktitle={2020 IEEE Conference on Things (CoT)}, 
  title={A $\\alpha$-Stable Model for \\& Beyond}, 
  year={2020},
  volume={},
  number={},
  pages={1-5},
  abstract={We show {\\em that}.},
  keywords={a;b},
  doi={10.1109/CoT.2020.9123456},
  ISSN={2159-3450},
  month={June},}
"""


def test_ieee_upper_case_names_empty_values_and_a_comma_before_the_close() -> None:
    line = one(IEEE)
    assert raw(line)["ENTRYTYPE"] == "INPROCEEDINGS"
    assert raw(line)["volume"] == "" and raw(line)["ISSN"] == "2159-3450"
    assert authors(line) == ["J. Doe", "R. Roe"]
    assert biblio(line)["title"] == "A α-Stable Model for & Beyond"
    assert content(line, "abstract")["abstract"] == "We show that."
    assert pages(line) == {"first_page": "1", "last_page": "5"}
    assert venue(line)["issn"] == ["2159-3450"]
    assert ids(line) == [("doi", "10.1109/CoT.2020.9123456", None)]


DBLP = """@article{DBLP:journals/corr/abs-2101-00001,
  author       = {Jane Doe and
                  Richard Roe},
  title        = {Some Title},
  journal      = {CoRR},
  volume       = {abs/2101.00001},
  year         = {2021},
  url          = {https://arxiv.org/abs/2101.00001},
  eprinttype    = {arXiv},
  eprint       = {2101.00001},
  timestamp    = {Thu, 14 Jan 2021 13:07:31 +0100},
  biburl       = {https://dblp.org/rec/journals/corr/abs-2101-00001.bib},
  bibsource    = {dblp computer science bibliography, https://dblp.org}
}
"""


def test_dblp_names_across_lines_arxiv_eprints_and_its_bibsource() -> None:
    line = one(DBLP)
    assert authors(line) == ["Jane Doe", "Richard Roe"]
    assert ("other", "2101.00001", "arXiv") in ids(line)
    assert {e["source"] for e in line["enhancements"]} == {"DBLP"}
    assert raw(line)["timestamp"] == "Thu, 14 Jan 2021 13:07:31 +0100"


TAYLOR_FRANCIS = """@article{doi:10.1080/01621459.2020.1234567,
author = {Jane Doe and Richard Roe},
title = {Some Title},
journal = {Journal of the American Statistical Association},
volume = {115},
number = {530},
pages = {1--12},
year  = {2020},
publisher = {Taylor & Francis},
doi = {10.1080/01621459.2020.1234567},
URL = { 
        https://doi.org/10.1080/01621459.2020.1234567
},
eprint = { 
        https://doi.org/10.1080/01621459.2020.1234567
}
}
"""


def test_taylor_and_francis_links_on_lines_of_their_own() -> None:
    line = one(TAYLOR_FRANCIS)
    assert ids(line) == [("doi", "10.1080/01621459.2020.1234567", None)]
    assert raw(line)["URL"] == "https://doi.org/10.1080/01621459.2020.1234567"
    assert biblio(line)["publisher"] == "Taylor & Francis"


ZOTERO_BIBLATEX = """@article{smith_uber_2020,
\ttitle = {{\\"U}ber die {Ma{\\ss}e} von \\emph{Caf\\'{e}s}},
\tvolume = {12},
\tissn = {1234-5678},
\turl = {https://pubmed.ncbi.nlm.nih.gov/32000001/},
\tdoi = {10.1000/abc\\_def},
\tlanguage = {de},
\tnumber = {3},
\turldate = {2021-01-01},
\tjournaltitle = {Zeitschrift f{\\"u}r Dinge},
\tauthor = {M{\\"u}ller, J{\\"o}rg and {World Health Organization} and others},
\tdate = {2020-01-02},
\tpages = {e1234},
\tnote = {PMID: 32000001},
\teprinttype = {pmid},
\teprint = {32000001},
}
"""


def test_zotero_biblatex_date_journaltitle_latex_and_pubmed_links() -> None:
    line = one(ZOTERO_BIBLATEX)
    assert biblio(line)["title"] == "Über die Maße von Cafés"
    assert biblio(line)["publication_year"] == 2020
    assert venue(line) == {
        "display_name": "Zeitschrift für Dinge",
        "venue_type": "journal",
        "issn": ["1234-5678"],
    }
    assert authors(line) == ["Müller, Jörg", "World Health Organization"]
    assert pages(line) == {"volume": "12", "issue": "3", "first_page": "e1234"}
    assert ids(line) == [("pm_id", "32000001", None), ("doi", "10.1000/abc_def", None)]
    assert raw(line)["date"] == "2020-01-02" and raw(line)["author"].endswith("and others")


JABREF = """% Encoding: UTF-8

@String{jgr = "Journal of Geophysical Research"}
@STRING(pre = {Pre})

@Article{Doe2020,
  author    = {Jane Doe and Richard Roe},
  journal   = jgr,
  title     = pre # " and " # {Post},
  year      = 2020,
  month     = jan # "~1",
  groups    = {x},
}

@Comment{jabref-meta: databaseType:bibtex;} @misc{after, title = {After a comment}}
@comment{unbalanced {

@preamble{"\\newcommand{\\noopsort}[1]{}"}
@misc{last, title = {Last}}
"""


def test_jabref_strings_concatenation_comments_and_preambles() -> None:
    converted = convert(JABREF)
    assert [(c.line_number, c.problem) for c in converted] == [(6, None), (15, None), (19, None)]
    line = json.loads(converted[0].line or "")
    assert venue(line)["display_name"] == "Journal of Geophysical Research"
    assert biblio(line)["title"] == "Pre and Post"
    assert biblio(line)["publication_year"] == 2020
    # An undefined macro (BibTeX's month names) stays the name it is.
    assert raw(line)["month"] == "jan~1"
    assert raw(line)["journal"] == "Journal of Geophysical Research"


WEB_OF_SCIENCE = """@article{ WOS:000123456700001,
Author = {Doe, Jane and Roe, Richard},
Title = {{Some Title in Braces}},
Journal = {JOURNAL OF THINGS},
Year = {{2020}},
Volume = {{12}},
Number = {{3}},
Pages = {{123-30}},
DOI = {{10.1000/xyz}},
Article-Number = {{e0123}},
ISSN = {{1234-5678}},
EISSN = {{2345-6789}},
Unique-ID = {{WOS:000123456700001}},
}
"""


def test_web_of_science_double_braces_and_its_accession_number() -> None:
    line = one(WEB_OF_SCIENCE)
    assert biblio(line)["title"] == "Some Title in Braces"
    assert biblio(line)["publication_year"] == 2020
    assert pages(line) == {"volume": "12", "issue": "3", "first_page": "123", "last_page": "130"}
    assert venue(line)["issn"] == ["1234-5678", "2345-6789"]
    assert ids(line) == [
        ("other", "WOS:000123456700001", "Web of Science"),
        ("doi", "10.1000/xyz", None),
    ]


def test_google_scholar_and_mendeley_name_arxiv_and_pubmed_in_their_own_fields() -> None:
    scholar, mendeley = lines_of(
        "@article{doe2020title,\n  title={Title},\n  author={Doe, Jane},\n"
        "  journal={arXiv preprint arXiv:2101.00003},\n  year={2020}\n}\n"
        "@article{Doe2021,\nauthor = {Doe, Jane},\narxivId = {2101.00004},\n"
        "pmid = {33000001},\nmendeley-groups = {Review},\ntitle = {{Title}},\nyear = {2021}\n}\n"
    )
    assert ids(scholar)[0] == ("other", "2101.00003", "arXiv")
    assert ids(mendeley) == [("other", "2101.00004", "arXiv"), ("pm_id", "33000001", None)]
    assert raw(mendeley)["mendeley-groups"] == "Review"


def test_parenthesised_entries_quoted_values_and_a_byte_order_mark() -> None:
    text = '\ufeff@article(k1, title = "A {"}quoted{"} M{\\"u}ller (1)", year = "2019")\n'
    line = one(text)
    assert biblio(line)["title"] == 'A "quoted" Müller (1)'
    assert biblio(line)["publication_year"] == 2019


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('{\\v{C}}apek {\\aa}ngstr{\\"o}m na{\\"\\i}ve', "Čapek ångström naïve"),
        ("50\\% \\& more~now -- then --- end", "50% & more now – then — end"),
        ("$\\alpha$-synuclein CO$_2$ $^{13}$C", "α-synuclein CO2 13C"),
        ("\\textit{in vitro} {\\it in vivo} \\LaTeX{} \\url{x}", "in vitro in vivo LaTeX x"),
        ("{\\c{c}}a {\\o}re {\\l}\\'od\\'z {\\ss}", "ça øre łódź ß"),
        ("a \\{b\\} \\$5", "a {b} $5"),
        ("plain-text title", "plain-text title"),
    ],
)
def test_latex_in_values_becomes_text(value: str, text: str) -> None:
    assert plain_text(value) == text


def test_author_lists() -> None:
    assert author_names("{Barnes and Noble} and Smith, J.") == ["Barnes and Noble", "Smith, J."]
    assert author_names("Smith, J. AND Doe, K. and others") == ["Smith, J.", "Doe, K."]
    assert author_names("{\\'E}mile Zola and {{Deep {Nested}}} and ") == [
        "Émile Zola",
        "Deep Nested",
    ]


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("12--19", "12", "19"),
        ("S12--S19", "S12", "S19"),
        ("349-69", "349", "369"),
        ("e1234", "e1234", None),
        ("123+", "123+", None),
        ("pp. 5 - 9", "5", "9"),
    ],
)
def test_pages(value: str, first: str, last: str | None) -> None:
    line = one(f"@article{{k, title = {{T}}, pages = {{{value}}}}}")
    assert pages(line).get("first_page") == first
    assert pages(line).get("last_page") == last


def test_identifiers_from_every_field_that_carries_one() -> None:
    line = one(
        "@misc{k,\n title = {T},\n doi = {https://doi.org/10.1000/A.B},\n"
        " howpublished = {\\url{https://eric.ed.gov/?id=EJ123456}},\n"
        " archivePrefix = {arXiv}, eprint = {2101.00002v2},\n"
        " pmcid = {PMC123}, source = {Journal of Sources}, pubmed_id = {{31000001}}\n}"
    )
    assert ids(line) == [
        ("doi", "10.1000/A.B", None),
        ("eric", "EJ123456", None),
        ("other", "PMC123", "PMCID"),
        ("pm_id", "31000001", None),
        ("other", "2101.00002v2", "arXiv"),
    ]
    # A source that names no database is the record's source.
    assert {e["source"] for e in line["enhancements"]} == {"my-source"}


def test_the_raw_enhancement_holds_every_field_in_order_and_repeats() -> None:
    line = one("@article{k, title = {T}, note = {one}, note = {two}, Keywords = {a; b}}")
    assert list(raw(line).items()) == [
        ("ENTRYTYPE", "article"),
        ("ID", "k"),
        ("title", "T"),
        ("note", ["one", "two"]),
        ("Keywords", "a; b"),
    ]


# -- broken entries fail alone --------------------------------------------------------------------


def outcomes(text: str, **limits: int) -> list[tuple[int, str | None]]:
    return [(c.line_number, c.problem) for c in convert(text, **limits)]


def problems_between_good_entries(broken: str) -> list[tuple[int, str | None]]:
    """The outcome of a broken entry between two good ones (line 1 and after it)."""
    text = f"@article{{good1, title = {{One}}}}\n{broken}\n@article{{good2, title = {{Two}}}}\n"
    found = outcomes(text)
    last_line = text.count("\n")
    assert found[0] == (1, None) and found[-1] == (last_line, None)
    for line, problem in found:  # each line a valid DESTINY line or a problem, never both
        assert (problem is None) == (line in (1, last_line))
    return found[1:-1]


def test_unbalanced_braces_fail_alone() -> None:
    [(line, problem)] = problems_between_good_entries(
        "@article{bad,\n  title = {Unclosed,\n  year = {2020}\n}"
    )
    assert line == 2
    assert problem == "the entry's braces do not balance: no '}' closes the entry (line 6)"


def test_an_entry_that_closes_too_early_fails_alone() -> None:
    [(line, problem)] = problems_between_good_entries(
        "@article{bad, title = {A}},\n  year = {2020}}"
    )
    assert line == 2
    assert problem is not None and problem.startswith(
        "the entry's braces do not balance: it closes on line 2, before text that reads as "
        "more of its fields"
    )


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (
            "@article{bad, title = {A}\n  year = {2020}}",
            "a comma is missing after the field 'title' (line 3)",
        ),
        (
            "@article{bad\n  title = {A}}",
            "the entry key is missing, or the comma after it ('bad' is followed by '=') (line 3)",
        ),
        ("@article{bad, title = , year = {2020}}", "the field 'title' has no value (line 2)"),
        (
            '@article{bad, title = "A {b" }',
            "the entry's braces do not balance: the quoted value of 'title' is never closed, "
            "or its braces do not pair (line 2)",
        ),
        (
            "@article{bad, title {A}}",
            "a field name followed by '=' was expected, not 'title {A}}' (line 2)",
        ),
        (
            "@string{broken = }",
            "the field 'broken' has no value (line 2)",
        ),
    ],
)
def test_a_broken_entry_fails_alone_with_its_problem(broken: str, problem: str) -> None:
    assert problems_between_good_entries(broken) == [(2, problem)]


def test_a_file_that_starts_as_ris_fails_its_ris_part_and_imports_its_entries() -> None:
    text = (
        "TY  - JOUR\nTI  - A RIS record\nER  - \n\n"
        "@article{k, title = {B}}\n"
        "TY  - JOUR\nTI  - Another\nER  - \n"
        "@article{k2, title = {C}}\n"
    )
    assert outcomes(text) == [
        (1, "this is RIS, not BibTeX: a RIS record cannot be read in a BibTeX file (line 1)"),
        (5, None),
        (6, "this is RIS, not BibTeX: a RIS record cannot be read in a BibTeX file (line 6)"),
        (9, None),
    ]


def test_text_between_entries_is_a_comment_unless_it_reads_as_fields() -> None:
    text = (
        "This file was created by a tool.\n"
        "@article{k, title = {B}}\nA comment line.\n\n"
        "article{k2, title = {C}}\n"
        "@article{k3, title = {D}}\n"
    )
    assert outcomes(text) == [
        (2, None),
        (
            5,
            "text outside any entry reads as fields: its @type{key, line is missing or broken "
            "(line 5)",
        ),
        (6, None),
    ]


def test_entries_that_share_a_line_each_import_under_the_next_free_number() -> None:
    text = "@misc{a, title = {A}} @misc{b, title = {B}} a note @misc{c, title = {C}\n}\n@misc{d,}\n"
    found = convert(text)
    assert [(c.line_number, c.problem) for c in found] == [
        (1, None),
        (2, None),
        (3, None),
        (4, None),
    ]
    assert [raw(json.loads(c.line or ""))["ID"] for c in found] == ["a", "b", "c", "d"]
    assert found[1].text == "@misc{b, title = {B}}"


# -- hostile input --------------------------------------------------------------------------------


def timed(text: str) -> tuple[float, list[tuple[int, str | None]]]:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        found = outcomes(text)
        best = min(best, time.process_time() - started)
    return best, found


def test_deep_nesting_imports_or_fails_alone_in_linear_time() -> None:
    def nested(depth: int) -> str:
        return "@article{deep, title = {" + "{" * depth + "x" + "}" * depth + "}}\n"

    good = "@article{next, title = {Next}}\n"
    small, found = timed(nested(10_000) + good)
    assert found == [(1, None), (2, None)]
    [deep, _] = convert(nested(10_000) + good)
    assert biblio(json.loads(deep.line or ""))["title"] == "x"
    large, _ = timed(nested(100_000) + good)
    assert large < 40 * small + 0.05  # ten times the text; quadratic would be a hundred

    unclosed = "@article{deep, title = {" + "{" * 10_000 + "x\n"
    _, found = timed(unclosed + good)
    assert found[1] == (2, None)
    assert (found[0][1] or "").startswith("the entry's braces do not balance")


def test_entries_on_one_line_cost_their_size() -> None:
    def entries_in(count: int) -> float:
        text = ("@a{k, t = {" + "x" * 500 + "}}") * count + "\n"
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            assert len(list(READER.entries(Piece(1, text), Header()))) == count
            best = min(best, time.process_time() - started)
        return best

    small = entries_in(1_000)
    assert entries_in(10_000) < 40 * small + 0.05  # ten times the text


def test_hostile_values_cost_their_size() -> None:
    cases = {
        "many groups": "@article{k, title = {" + "{a}" * 50_000 + "}}\n",
        "groups, then no comma": "@article{k, title = {" + "{a} " * 50_000 + "} x}\n",
        "many parts": "@article{k, title = " + " # ".join(["{a}"] * 20_000) + "}\n",
        "spaces with no '='": "@article{k, " + "a" + " " * 200_000 + "b}\n",
        "many authors": "@article{k, author = {" + " and ".join(["{A}"] * 20_000) + "}}\n",
        "latex": "@article{k, title = {" + "\\\"u\\'{e}$\\alpha$--~" * 20_000 + "}}\n",
        "starts": "@a{\n" * 20_000,
        "one line of entries": "@a{k, t = {x}}" * 5_000 + "\n",
        "one line of broken entries": "@a{k, t = {x}" * 20_000 + "\n",
    }
    for name, text in cases.items():
        started = time.process_time()
        found = outcomes(text)
        assert time.process_time() - started < 3, name
        assert found, name


def test_an_entry_longer_than_the_limit_fails_alone() -> None:
    text = (
        "@article{a, title = {A}}\n"
        + "@article{long, abstract = {"
        + "word " * 5000
        + "}}\n"
        + "@article{c, title = {C}}\n"
    )
    found = outcomes(text, max_entry_chars=2000, piece_chars=1000)
    assert [(line, problem is None) for line, problem in found] == [
        (1, True),
        (2, False),
        (3, True),
    ]


def read_in_pieces(text: str, piece_chars: int) -> list[Entry]:
    header = Header()
    return [
        entry
        for _, piece in pieces("bibtex", [text], piece_chars=piece_chars)
        for entry in READER.entries(piece, header)
    ]


def test_100000_entries_in_many_pieces_keep_their_lines() -> None:
    text = "".join(f"@misc{{k{i},\n v = {{{i}}}}}\n" for i in range(100_000))
    read = read_in_pieces(text, 256 * 1024)
    assert len(read) == 100_000
    assert [e.problem for e in read if e.problem] == []
    assert read[-1].line_number == 1 + 2 * 99_999
    assert read[-1].fields == (("ENTRYTYPE", "misc"), ("ID", "k99999"), ("v", "99999"))


def test_macros_defined_in_one_piece_resolve_in_the_next() -> None:
    text = "@string{v = {Vol}}\n" + "".join(
        f"@misc{{k{i},\n v = v # {i}, w = undefined}}\n" for i in range(2_000)
    )
    read = read_in_pieces(text, 4096)
    assert len(read) == 2_000
    assert read[-1].line_number == 2 + 2 * 1_999
    assert read[-1].fields[2:] == (("v", "Vol1999"), ("w", "undefined"))


def test_the_reader_is_picklable_and_a_piece_alone_reads() -> None:
    import pickle

    reader = pickle.loads(pickle.dumps(READER))
    [entry] = list(reader.entries(Piece(7, "@misc{k, title = {T}}\n"), Header()))
    assert entry.line_number == 7 and entry.fields[0] == ("ENTRYTYPE", "misc")


def test_any_pieces_read_as_the_whole_text() -> None:
    text = "".join(
        read_file(COLREV / f"{name}.bib") for name in ("bib_data", "scopus_bib", "wiley_bib")
    )
    text = JABREF + text + ACM + IEEE + DBLP + ZOTERO_BIBLATEX + WEB_OF_SCIENCE
    whole = [(c.line_number, c.problem, c.line) for c in convert(text)]
    assert len(whole) == 3 + 6 + 11 + 2 + 2 + 4 and not [p for _, p, _ in whole if p]
    for piece_chars in (1, 300, 4096):
        found = convert(text, piece_chars=piece_chars)
        assert [(c.line_number, c.problem, c.line) for c in found] == whole


def test_a_mangled_export_never_raises_and_every_entry_has_an_outcome() -> None:
    import random

    source = read_file(COLREV / "scopus_bib.bib")
    chooser = random.Random(30)
    for _ in range(300):
        text = list(source)
        for _ in range(chooser.randint(1, 5)):
            at = chooser.randrange(len(text))
            text[at] = chooser.choice(["{", "}", '"', ",", "=", "#", "@", "\n", "", "\\"])
        for entry in convert("".join(text)):
            # A line or a problem; the line model judges the line (a mangled DOI is its case).
            assert (entry.line is None) != (entry.problem is None)
            assert entry.line is None or json.loads(entry.line)["identifiers"]
