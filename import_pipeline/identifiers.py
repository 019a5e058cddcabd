"""Identifier normalisation (contract section 3): the one place its rules live.

The rules are Polars expressions so that a batch is normalised in one vectorised pass; the
pydantic models and the CLI call `normalise_identifier` for single values, which runs the very
same expressions, so the two paths cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl


class IdentifierType(StrEnum):
    """The external identifier types of a reference."""

    DOI = "doi"
    PM_ID = "pm_id"
    OPEN_ALEX = "open_alex"
    ERIC = "eric"
    PRO_QUEST = "pro_quest"
    OTHER = "other"


#: Types used to match incoming references to stored ones; `other` is stored, never matched.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        IdentifierType.DOI,
        IdentifierType.PM_ID,
        IdentifierType.OPEN_ALEX,
        IdentifierType.ERIC,
        IdentifierType.PRO_QUEST,
    }
)

# `[0-9]`, not `\d`: Rust's `\d` is Unicode-aware and would accept Arabic-Indic digits.
_DOI_PREFIX = r"(?i)^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)"
_DOI_FORM = r"^10\.[0-9]{4,9}/\S+$"
_PM_ID = r"(?i)^(?:pmid:\s*|https?://pubmed\.ncbi\.nlm\.nih\.gov/)?0*([1-9][0-9]*)/?$"
_OPEN_ALEX = r"(?i)^(?:https?://(?:api\.)?openalex\.org/)?(?:works/)?(w[0-9]+)$"
_ERIC = (
    r"(?i)^(?:https?://(?:www\.|files\.)?eric\.ed\.gov/(?:\?id=|fulltext/)?)?"
    r"(e[dj][0-9]+)(?:\.pdf)?$"
)
_PRO_QUEST = r"(?i)^(?:https?://(?:www\.|search\.)?proquest\.com/(?:[a-z-]+/)*docview/)?([0-9]+)/?$"

#: What each type accepts, for error messages and the docs.
ACCEPTED_FORMS: dict[IdentifierType, str] = {
    IdentifierType.DOI: "10.<4-9 digits>/<suffix>, optionally prefixed doi: or https://doi.org/",
    IdentifierType.PM_ID: "a positive integer, a digit string, PMID:<n> or a pubmed.ncbi.nlm.nih.gov URL",
    IdentifierType.OPEN_ALEX: "W<digits>, optionally as an openalex.org URL or works/ path",
    IdentifierType.ERIC: "ED<digits> or EJ<digits>, optionally as an eric.ed.gov URL",
    IdentifierType.PRO_QUEST: "digits, optionally as a proquest.com docview URL",
    IdentifierType.OTHER: "any non-empty string, with other_identifier_name",
}


def _doi(value: pl.Expr) -> pl.Expr:
    candidate = (
        value.str.strip_chars()
        .str.normalize("NFC")
        .str.replace_all("\u2010", "-", literal=True)
        .str.replace(_DOI_PREFIX, "")
        .str.strip_chars()
        .str.to_lowercase()
    )
    return pl.when(candidate.str.contains(_DOI_FORM)).then(candidate)


def _pm_id(value: pl.Expr, is_integer: pl.Expr) -> pl.Expr:
    digits = value.str.strip_chars().str.extract(_PM_ID, 1)
    # A JSON integer is taken as it is (positive only); a string goes through the URL forms.
    from_integer = pl.when(value.str.contains(r"^[1-9][0-9]*$")).then(value)
    return pl.when(is_integer).then(from_integer).otherwise(digits)


def normalised_identifier(
    identifier_type: pl.Expr = pl.col("identifier_type"),
    value: pl.Expr = pl.col("identifier"),
    is_integer: pl.Expr = pl.col("identifier_is_integer"),
) -> pl.Expr:
    """The normalised (stored, compared) form of an identifier, or null where it is refused.

    `value` is the identifier as text (a JSON integer rendered in decimal) and `is_integer`
    says whether it was a JSON integer, which only `pm_id` accepts.
    """
    as_text = pl.when(~is_integer).then(value)
    trimmed = as_text.str.strip_chars()
    return (
        pl.when(identifier_type == IdentifierType.DOI)
        .then(_doi(as_text))
        .when(identifier_type == IdentifierType.PM_ID)
        .then(_pm_id(value, is_integer))
        .when(identifier_type == IdentifierType.OPEN_ALEX)
        .then(trimmed.str.extract(_OPEN_ALEX, 1).str.to_uppercase())
        .when(identifier_type == IdentifierType.ERIC)
        .then(trimmed.str.extract(_ERIC, 1).str.to_uppercase())
        .when(identifier_type == IdentifierType.PRO_QUEST)
        .then(trimmed.str.extract(_PRO_QUEST, 1))
        .when(identifier_type == IdentifierType.OTHER)
        .then(pl.when(trimmed != "").then(trimmed))
        .otherwise(None)
    )


def normalise_identifier(identifier_type: str, value: str | int) -> str | None:
    """Normalises one identifier with the same expressions as a batch; None if refused."""
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    frame = pl.DataFrame(
        {
            "identifier_type": [str(identifier_type)],
            "identifier": [str(value)],
            "identifier_is_integer": [is_integer],
        }
    )
    return frame.select(normalised_identifier()).item()
