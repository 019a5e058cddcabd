"""Normalised bibliographic keys of references, from their `bibliographic` enhancements (all of
them: a reference has one key row per enhancement), in DuckDB SQL — no Python per record.

Title: HTML, accents, case and punctuation gone; a trailing language tag ("[Chinese]"), a
conference abstract's note ("[abstract no: 134]"), a section tag ("[Research Note]", "-
Research Commentary"), the brackets of a translated title and MEDLINE's trailing notes
("erratum appears in …") dropped; "&" read as "and".
Authors: family names in order, from "Last, F.", "Last FM" and "First Last" forms. Pages:
the first page, and the last page written out ("73-6" ends at 76); front matter's roman pages
kept ("iii"), and an article number's letter ("e12724", "c1804", "S27": a numbering of its
own, never compared with printed pages). Volume and issue: their first number.
"""

from __future__ import annotations

import duckdb

#: Language tags MEDLINE and Embase put after a translated title.
LANGUAGES = (
    "chinese", "german", "french", "spanish", "russian", "japanese", "italian", "portuguese",
    "polish", "dutch", "korean", "turkish", "czech", "hungarian", "danish", "swedish",
    "norwegian", "hebrew", "persian", "arabic", "croatian", "serbian", "finnish", "greek",
    "romanian", "slovak", "slovenian", "bulgarian", "lithuanian", "ukrainian",
    "english abstract", "author's transl", "author.s transl",
)  # fmt: skip

#: Notes a database appends to a title that are not part of it.
TRAILING_NOTES = (
    "published erratum appears in", "erratum appears in", "erratum in", "comment in",
    "retraction in", "update in", "corrected and republished in",
)  # fmt: skip

#: Section tags a database or a PDF extraction appends to a title ("… [Research Note]",
#: "… - Research Commentary", "… (Editorial)"): the article's kind, not its title.
SECTION_TAGS = (
    "research note", "research notes", "research commentary", "research article",
    "research paper", "research essay", "editorial", "commentary", "review article",
    "review", "original article", "original research", "short paper", "full paper",
    "short communication", "brief report", "case report", "letter", "invited paper",
    "position paper", "theory and review", "issues and opinions", "research in progress",
)  # fmt: skip

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO bib_text(s) AS
  trim(regexp_replace(regexp_replace(
    lower(strip_accents(regexp_replace(coalesce(s, ''), '<[^>]*>', ' ', 'g'))),
    '[^a-z0-9 ]+', ' ', 'g'), '  +', ' ', 'g'));
CREATE OR REPLACE TEMP MACRO bib_title_text(s) AS
  regexp_replace(regexp_replace(regexp_replace(regexp_replace(trim(coalesce(s, '')),
      '(\s*[\[(]\s*|[.;]\s+)({notes})\b.*$', '', 'i'),
      '\s*[\[(]({languages})[\])]\.?\s*$', '', 'i'),
      '\s*[\[(]abstract\b[^\])]*[\])]\.?\s*$', '', 'i'),
      '^\[(.*)\]\.?$', '\1');
CREATE OR REPLACE TEMP MACRO bib_unreviewed(t) AS
  regexp_replace(t, '\s*\[review\]\s*(\[\d+ refs\])?\.?\s*$', '', 'i');
CREATE OR REPLACE TEMP MACRO bib_untagged(t) AS
  regexp_replace(t, '\s*(\[({sections})\]|\(({sections})\)|\s[-–—:]\s*({sections}))\.?\s*$', '', 'i');
CREATE OR REPLACE TEMP MACRO bib_title(s) AS
  bib_text(regexp_replace(regexp_replace(bib_untagged(bib_unreviewed(bib_title_text(s))),
      '&(amp;)?', ' and ', 'g'), '\bampersand\b', ' and ', 'gi'));
CREATE OR REPLACE TEMP MACRO title_numbers(t) AS
  list_sort(list_transform(
    regexp_extract_all(regexp_replace(t, '([0-9]) ([0-9]{3})\b', '\1\2', 'g'),
                       '\b([0-9]+|i|ii|iii|iv|v|vi|vii|viii|ix|x)\b'),
    n -> CASE n WHEN 'i' THEN '1' WHEN 'ii' THEN '2' WHEN 'iii' THEN '3' WHEN 'iv' THEN '4'
                WHEN 'v' THEN '5' WHEN 'vi' THEN '6' WHEN 'vii' THEN '7' WHEN 'viii' THEN '8'
                WHEN 'ix' THEN '9' WHEN 'x' THEN '10' ELSE ltrim(n, '0') END));
CREATE OR REPLACE TEMP MACRO bib_number(s) AS nullif(regexp_extract(coalesce(s, ''), '\d+', 0), '');
CREATE OR REPLACE TEMP MACRO bib_page(s) AS
  CASE WHEN regexp_matches(coalesce(s, ''), '^\s*[A-Za-z]\d+')
       THEN lower(regexp_extract(s, '^\s*([A-Za-z]\d+)', 1))
       ELSE coalesce(bib_number(s),
                     nullif(regexp_extract(lower(coalesce(s, '')), '^\s*([ivxlc]+)\s*$', 1), ''))
  END;
CREATE OR REPLACE TEMP MACRO bib_last_page(first, last) AS
  CASE WHEN first IS NULL OR last IS NULL THEN last
       WHEN length(last) < length(first) THEN left(first, length(first) - length(last)) || last
       ELSE last END;
CREATE OR REPLACE TEMP MACRO bib_family(name) AS
  CASE WHEN name LIKE '%,%' THEN bib_text(split_part(name, ',', 1))
       WHEN regexp_matches(trim(name), '\S\s+([A-Z]{1,3}\.?\s*)+$')
           THEN bib_text(regexp_replace(trim(name), '(\s+[A-Z]{1,3}\.?)+$', ''))
       ELSE bib_text(regexp_extract(trim(name), '(\S+)$', 1)) END;
"""


def _macros() -> str:
    alternatives = {
        "notes": "|".join(TRAILING_NOTES),
        "languages": "|".join(language.replace("'", "''") for language in LANGUAGES),
        "sections": "|".join(SECTION_TAGS),
    }
    macros = _MACROS
    for name, alternative in alternatives.items():
        macros = macros.replace("{" + name + "}", alternative)
    return macros


def install_macros(conn: duckdb.DuckDBPyConnection) -> None:
    """The normalisation functions, as temp macros of this connection."""
    conn.execute(_macros())


def definitions() -> str:
    """Everything the keys are computed with, as text (what a store's stored keys are
    versioned by)."""
    return _macros() + keys_sql("enhancements")


#: A title's key is at most this long: no real title is, and it bounds what one pair's
#: similarities (and a title's character counts, kept as 16-bit numbers) cost.
TITLE_KEY_LENGTH = 1000

#: The fields of a bibliographic enhancement the keys read, parsed once per enhancement (one
#: `->>` per field parses the document again each time: three times the cost).
_CONTENT_SHAPE = """{
    "title": "VARCHAR", "publication_year": "VARCHAR", "publication_date": "VARCHAR",
    "authorship": [{"display_name": "VARCHAR"}],
    "publication_venue": {"display_name": "VARCHAR"},
    "pagination": {"volume": "VARCHAR", "issue": "VARCHAR", "first_page": "VARCHAR",
                   "last_page": "VARCHAR"}
}"""


def keys_sql(enhancements: str) -> str:
    """One row of keys per bibliographic enhancement in `enhancements` (a table or query with
    `reference_id`, `enhancement_type` and `content`)."""
    return f"""
        WITH bib AS MATERIALIZED (
            SELECT reference_id, from_json(content::VARCHAR, '{_CONTENT_SHAPE}') AS c
            FROM {enhancements} WHERE enhancement_type = 'bibliographic'
        ), fields AS (
            SELECT reference_id, c.title, c.publication_year, c.publication_date,
                list_filter(list_transform(c.authorship, a -> bib_family(a.display_name)),
                            family -> family <> '') AS families,
                c.publication_venue.display_name AS venue,
                bib_number(c.pagination.volume) AS volume,
                bib_number(c.pagination.issue) AS issue,
                bib_page(c.pagination.first_page) AS first_page,
                bib_page(c.pagination.last_page) AS last_page
            FROM bib
        )
        SELECT reference_id,
            left(bib_title(title), {TITLE_KEY_LENGTH}) AS title,
            coalesce(TRY_CAST(publication_year AS INTEGER),
                     year(TRY_CAST(publication_date AS DATE))) AS year,
            nullif(array_to_string(families, ' '), '') AS authors,
            families[1] AS first_author,
            nullif(bib_text(venue), '') AS venue,
            volume, issue, first_page,
            bib_last_page(first_page, last_page) AS last_page
        FROM fields
    """
