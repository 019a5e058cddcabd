"""Duplicates without a shared identifier (contract section 8): the decisions, and the rules
that find the same work from its bibliographic record — as data, read by
`detection.pairs`, which runs them as SQL over the store's engine.

A candidate pair is scored on features computed from the normalised keys of both records
(`detection.keys`); a pair is a duplicate when a `MATCH_RULES` entry holds and no `VETOES` or
`SEPARATORS` entry does, a `maybe` when only `MAYBE_RULE` holds or a separator does. No
two members of a star may be separated or vetoed (`detection.stars`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    CANONICAL = "canonical"  # the reference its duplicates point to
    DUPLICATE = "duplicate"  # of exactly one canonical (a star, never a chain)
    MAYBE = "maybe"  # a pair a person should look at
    DISTINCT = "distinct"


class Trigger(StrEnum):
    """What made a decision (contract section 8)."""

    IMPORT = "import"  # detection after a record run stored its batches (with the run's id)
    MANUAL = "manual"  # a person, through `decide`


class DecidedBy(StrEnum):
    SYSTEM = "system"
    PERSON = "person"  # final: detection never overrides it


@dataclass(frozen=True)
class BlockingKey:
    """Records that share this key (an SQL expression over one record's keys) are compared.
    Several keys, each built from different fields, so that no single missing or garbled
    field hides a pair."""

    name: str
    sql: str


#: Each key is NULL (no block) when a field it needs is missing.
BLOCKING_KEYS = (
    BlockingKey("title_start", "nullif(left(title, 30), '')"),
    BlockingKey("title_end", "CASE WHEN length(title) >= 30 THEN right(title, 30) END"),
    BlockingKey(
        "title_rare_words",
        "CASE WHEN title <> '' THEN list_sort(string_split(title, ' '))[-3:]::VARCHAR END",
    ),
    BlockingKey("year_first_author", "year::VARCHAR || '|' || first_author"),
    BlockingKey("year_title_start", "year::VARCHAR || '|' || nullif(left(title, 12), '')"),
    BlockingKey("first_author_title_start", "first_author || '|' || nullif(left(title, 10), '')"),
    BlockingKey("year_volume_first_page", "year::VARCHAR || '|' || volume || '|' || first_page"),
    BlockingKey("first_author_first_page", "first_author || '|' || first_page"),
)

#: A block larger than this is too common a key to tell works apart (a year and a page "1"):
#: its pairs come from the other keys.
MAX_BLOCK_SIZE = 200


@dataclass(frozen=True)
class Rule:
    """A named SQL condition over a pair's features (`detection.pairs`: a veto reads only
    its `EXACT_FEATURES`, a rule also the titles' similarities and `SIMILARITY_FEATURES`), and
    the fields it rests on (the evidence recorded with the decision)."""

    name: str
    sql: str
    evidence: tuple[str, ...]


#: The same year, volume and pages: the one place a rule accepts titles that are not alike
#: (a translated title).
SAME_PLACE = "year_same AND volume_same AND first_page_same AND page_range_same"

#: Titles that say the same: alike by edit distance or Jaro-Winkler, or one the other cut to
#: its main clause, or with a short name put before it (`title_variant`).
CLOSE_TITLE = "(title_similarity >= 0.90 OR title_jaro_winkler >= 0.97 OR title_variant)"

#: What makes a pair a duplicate (any one suffices), unless a `SEPARATORS` entry holds.
MATCH_RULES = (
    Rule(
        "same_title_no_conflict",
        "title_similarity >= 0.98 AND NOT pages_conflict AND NOT volume_conflict",
        ("title", "year"),
    ),
    Rule(
        "same_title_authors_venue",
        "title_similarity >= 0.98 AND year_same AND first_author_same "
        "AND coalesce(author_similarity, 0) >= 0.93 AND coalesce(venue_similarity, 1) >= 0.9",
        ("title", "year", "authors", "venue"),
    ),
    Rule(
        "close_title_same_place",
        f"{CLOSE_TITLE} AND year_same "
        "AND NOT pages_conflict AND NOT volume_conflict "
        "AND (first_page_same OR (volume_same AND issue_same)) "
        "AND coalesce(author_similarity, 1) >= 0.7",
        ("title", "year", "pages", "volume"),
    ),
    Rule(
        "close_title_same_authors_volume",
        "title_similarity >= 0.92 AND year_same AND volume_same AND NOT pages_conflict "
        "AND first_author_same AND coalesce(author_similarity, 0) >= 0.9",
        ("title", "year", "volume", "authors"),
    ),
    Rule(
        "same_place_same_authors",
        f"{SAME_PLACE} "
        "AND (first_author_same OR coalesce(author_similarity, 0) >= 0.9 "
        "     OR (author_similarity IS NULL AND title_jaro_winkler >= 0.8)) "
        "AND title_jaro_winkler >= 0.6",
        ("year", "volume", "pages", "authors"),
    ),
    # A record extracted from a PDF has no year and no pages; its volume, issue and authors
    # still place it (the years, where both have one, are checked by the veto). Not a title
    # cut short: one author's two papers in one issue may share a main clause.
    Rule(
        "close_title_same_authors_issue",
        "(title_similarity >= 0.90 OR title_jaro_winkler >= 0.97) AND volume_same AND issue_same AND NOT pages_conflict "
        "AND first_author_same AND coalesce(author_similarity, 0) >= 0.9",
        ("title", "authors", "volume", "issue"),
    ),
    # A database that keeps only the main clause of a title: the same year, authors and venue.
    Rule(
        "title_cut_same_authors_year",
        "title_variant AND year_same AND first_author_same "
        "AND coalesce(author_similarity, 0) >= 0.9 AND coalesce(venue_similarity, 1) >= 0.9 "
        "AND NOT pages_conflict AND NOT volume_conflict",
        ("title", "year", "authors", "venue"),
    ),
    Rule(
        "same_doi",
        "doi_same AND (title_similarity >= 0.8 OR title_jaro_winkler >= 0.9 OR title_variant)",
        ("doi", "title"),
    ),
)

#: No rule (nor the maybe rule) holds for titles less alike than this to Jaro-Winkler (a
#: title similarity needs ≥ 0.8, a prefix of 30 characters gives ≥ 0.8, the loosest rule asks
#: 0.6): the pairs below it are dropped before the other similarities are computed.
TITLE_JARO_WINKLER_FLOOR = 0.6

#: Outside `SAME_PLACE`, and unless one title starts with the other, every rule asks a title
#: similarity of at least 0.85 or a Jaro-Winkler similarity of at least 0.97; either needs
#: the titles to share at least this share of the longer one's characters (an edit distance
#: is at least the longer length less the characters in common; a Jaro-Winkler of 0.97 needs
#: a Jaro of 0.95, so matching characters of 0.85 of both lengths). Pairs that share fewer
#: are dropped before any string similarity is computed.
TITLE_CHARACTERS_FLOOR = 0.85

#: Titles that name a kind of item, not a work: an editorial, an erratum, a reply. Two records
#: with such a title (or with a title their venue repeats, `title_generic`) are one work only
#: with the same DOI or the same volume, issue and first page.
GENERIC_TITLES = (
    "editorial", "editorials", "editor s comments", "editors comments", "editor s comment",
    "editor s note", "editors note", "from the editor", "from the editors", "letter from the editor",
    "editorial statement", "editorial notes", "editor s introduction", "editors introduction",
    "guest editorial", "guest editors introduction", "from the editor in chief",
    "message from the editor", "note from the editor", "introduction to the special issue",
    "special issue introduction", "list of reviewers", "reviewer acknowledgement",
    "erratum", "errata", "correction", "corrections", "corrigendum", "retraction",
    "notice of retraction", "expression of concern", "in this issue", "issue information",
    "front matter", "back matter", "front cover", "back cover", "cover", "table of contents",
    "contents", "masthead", "editorial board", "introduction", "preface", "foreword",
    "reply", "author s reply", "authors reply", "response", "author response",
    "letter to the editor", "letters to the editor", "letter", "letters", "comment",
    "commentary", "book review", "book reviews", "review", "news", "announcements",
    "announcement", "call for papers", "acknowledgement", "acknowledgements",
    "acknowledgment", "acknowledgments", "reviewers", "thank you to our reviewers",
    "index", "author index", "subject index", "abstracts", "conference report", "obituary",
    "unknown", "untitled", "no title",
)  # fmt: skip

#: A venue that names a journal and no meeting, and one that names a meeting (a conference's
#: proceedings too) and no journal ("J"ournal abbreviated too), in normalised venue text: a paper at a conference and its
#: journal version are two works. A venue that names both (a journal's supplement of a
#: congress's abstracts) is either.
MEETING_VENUE = r"\b(conference|symposium|workshop|congress|proceedings|proc|meeting)\b"
JOURNAL_VENUE = r"\b(journal|j)\b"

#: Titles that start so answer or amend another item ("Reply to letter to the editor",
#: "Erratum to …"): as generic as `GENERIC_TITLES`.
GENERIC_TITLE_STARTS = (
    "reply to ", "in reply ", "authors reply", "author s reply", "response to letter",
    "response to comment", "erratum to ", "erratum for ", "correction to ", "corrigendum to ",
    "comment on ", "letter to the editor", "retraction of ", "retraction note",
)  # fmt: skip

#: A title the same venue carries in this many years or volumes is a recurring column (the
#: copies of one work from several databases differ in their issue, if at all, not in these).
RECURRING_TITLE_OCCURRENCES = 3

#: The same item of a volume: the same volume (or none on either, in one year), issue and
#: page range.
SAME_ITEM = (
    "((volume_same OR (volume_unknown AND year_same)) AND issue_same AND first_page_same "
    "AND NOT last_page_conflict)"
)

#: What rules a pair out whatever else agrees (not even a `maybe`): the same title in
#: another year is another work (a reprint, an update, next year's report), unless the DOI
#: is the same; a generic title alone joins nothing.
VETOES = (
    Rule("years_apart", "coalesce(year_gap, 0) > 1 AND NOT doi_same", ("year",)),
    Rule("no_title", "shorter_title_length < 10", ("title",)),
    Rule("generic_title", f"title_generic AND NOT (doi_same OR {SAME_ITEM})", ("title",)),
    # A title its venue repeats each year (an annual abstract, a yearly report) is one item a
    # year: the same year and authors place it where one record lacks volume and pages.
    Rule(
        "recurring_title",
        f"title_recurring AND NOT (doi_same OR {SAME_ITEM} OR (year_same AND first_author_same "
        "AND NOT issue_conflict AND NOT volume_conflict AND NOT pages_conflict))",
        ("title",),
    ),
)


#: Issue numbers are compared only up to this: a volume has at most 53 issues (a weekly);
#: a larger number is a running one (the Lancet's 9412, whose pages run on through the
#: volume, so that two issues never share a page range) or no issue number at all (an
#: accession number exported into the issue field).
ISSUE_NUMBER_MAX = 60

#: What keeps two records apart as works, however alike the rest (at most a `maybe`): two
#: DOIs that differ (a reference's DOIs are one work's); for titles that are not close,
#: another issue of the same volume or other pages (two papers of one author on the same
#: pages of two issues). Close titles in another issue or on other pages are a slip of one
#: database as often as not (an abstract's pages, an accession number in the issue field)
#: and are kept apart only when the title is generic (`VETOES`). The same DOI outweighs the
#: issue and the pages. Read with the titles' similarities, after the vetoes.
SEPARATORS = (
    Rule("doi_conflict", "doi_conflict", ("doi",)),
    Rule("other_issue", f"volume_same AND issue_conflict AND NOT doi_same AND NOT {CLOSE_TITLE}",
         ("issue",)),
    Rule("other_pages", f"pages_conflict AND NOT doi_same AND NOT {CLOSE_TITLE}", ("pages",)),
    # A paper at a conference and its journal version are two works (bib-dedupe's rule).
    Rule("conference_and_journal", "venue_kinds_differ AND NOT doi_same", ("venue",)),
    # A conference meets once a year: the same title at a meeting a year later is the next
    # year's paper (bib-dedupe's rule for proceedings).
    Rule("meetings_a_year_apart", "both_meetings AND coalesce(year_gap, 0) > 0 AND NOT doi_same",
         ("year",)),  # fmt: skip
    # Part I and part II, the 2011 and the 2012 update: titles one number apart.
    Rule("other_numbers", "title_numbers_differ AND NOT doi_same", ("title",)),
)  # fmt: skip

#: A pair a person should see: titles close, nothing vetoed, but no rule is sure.
MAYBE_RULE = Rule(
    "close_title",
    "(title_similarity >= 0.85 OR title_variant) AND coalesce(author_similarity, 1) >= 0.6",
    ("title",),
)


#: How pairs become stars: the version of that algorithm (`detection.stars`), part of the
#: rules' fingerprint.
STARS = "stars-matched-to-their-canonical-1"
