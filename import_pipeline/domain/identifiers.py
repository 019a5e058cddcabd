"""Identifier normalisation (contract section 3): the one place its rules live.

Each type's rule is data (`RULES`): the characters it trims, an optional prefix it drops, the
pattern the rest must match, and the case of the stored form. Two executions read the same
rules: `normalise_identifier` with compiled Python `re` for single values (the pydantic
validators, the CLI's `reference` lookup), and `pipeline/identifier_columns.py` as one Polars
expression for whole columns. Both are written in the subset of regex syntax on which Python's `re` and
Rust's `regex` agree (explicit character classes, no `\\d`, `\\s` or `\\w`), and a test proves
they agree on every form in the tests, on the SYNERGY identifiers and on generated mutations.
(Lower-casing follows each engine's Unicode tables, Python 3.11's 14.0 and Rust's newer ones:
letters added to Unicode since, such as U+A7CB, may fold differently.)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from import_pipeline.domain.formats import ENTRY_KEY_NAME


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


def matched_sql(alias: str = "") -> str:
    """SQL: whether an identifier row (columns `identifier_type`, `other_identifier_name`,
    prefixed by `alias`) is matched in clustering and resolution: a trusted type (the
    parameter `$trusted` lists them), or an export entry's key (`formats.ENTRY_KEY_NAME`)."""
    a = f"{alias}." if alias else ""
    return (
        f"(list_contains($trusted, {a}identifier_type) OR ({a}identifier_type = 'other' "
        f"AND {a}other_identifier_name = '{ENTRY_KEY_NAME}'))"
    )


#: What Python's `str.strip()` removes (Unicode White_Space and the four information
#: separators), spelled out so that Polars' `strip_chars` removes exactly the same.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# The same set as a regex class body, escaped for both engines.
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@dataclass(frozen=True)
class IdentifierRule:
    """How one identifier type is normalised: trim, translate, drop `prefix`, match `pattern`
    (its first group, or the whole text, is the stored form), then set the case."""

    accepted_forms: str
    pattern: str
    prefix: str | None = None
    translate: tuple[tuple[str, str], ...] = ()
    nfc: bool = False
    case: str | None = None  # "lower", "upper" or None (as sent)
    accepts_integers: bool = False
    #: A value already in this form is stored as it is (what most values are: the shortcut
    #: of the single-value execution; each step above would leave it unchanged).
    normal_form: str | None = None


RULES: dict[IdentifierType, IdentifierRule] = {
    IdentifierType.DOI: IdentifierRule(
        accepted_forms="10.<4-9 digits>/<suffix>, optionally prefixed doi:, doi.org/, "
        "dx.doi.org/ or an http(s) doi.org URL",
        # NBSP becomes a space (so it trims at the ends and is refused inside), U+2010 a hyphen.
        translate=(("\u00a0", " "), ("\u2010", "-")),
        nfc=True,
        prefix=rf"(?i)^(?:(?:https?://)?(?:dx\.)?doi\.org/)?(?:doi:[{_WS}]*)?",
        pattern=rf"^10\.[0-9]{{4,9}}/[^{_WS}]+$",
        case="lower",
        normal_form=r"^10\.[0-9]{4,9}/[!-@\[-~]+$",  # printable ASCII, no capital letters
    ),
    IdentifierType.PM_ID: IdentifierRule(
        accepted_forms="a positive integer, a digit string, PMID:<n> or a "
        "pubmed.ncbi.nlm.nih.gov URL",
        pattern=rf"(?i)^(?:pmid:[{_WS}]*|https?://pubmed\.ncbi\.nlm\.nih\.gov/)?0*([1-9][0-9]*)/?$",
        accepts_integers=True,
        normal_form=r"^[1-9][0-9]*$",
    ),
    IdentifierType.OPEN_ALEX: IdentifierRule(
        accepted_forms="W<digits>, optionally as an openalex.org or explore.openalex.org URL "
        "or a works/ path",
        pattern=r"(?i)^(?:(?:https?://)?(?:api\.|explore\.)?openalex\.org/)?(?:works/)?(w[0-9]+)$",
        case="upper",
        normal_form=r"^W[0-9]+$",
    ),
    IdentifierType.ERIC: IdentifierRule(
        accepted_forms="ED<digits> or EJ<digits>, optionally as an eric.ed.gov URL",
        pattern=r"(?i)^(?:(?:https?://)?(?:www\.|files\.)?eric\.ed\.gov/(?:\?id=|fulltext/)?)?"
        r"(e[dj][0-9]+)(?:\.pdf)?$",
        case="upper",
        normal_form=r"^E[DJ][0-9]+$",
    ),
    IdentifierType.PRO_QUEST: IdentifierRule(
        accepted_forms="digits, optionally as a proquest.com docview URL or docview/<digits>",
        pattern=r"(?i)^(?:(?:https?://)?(?:www\.|search\.)?proquest\.com/(?:[a-z-]+/)*)?"
        r"(?:docview/)?([0-9]+)/?$",
        normal_form=r"^[0-9]+$",
    ),
    IdentifierType.OTHER: IdentifierRule(
        accepted_forms="any non-empty string, with other_identifier_name",
        pattern=r"^(.+)$",
    ),
}

#: What each type accepts, for error messages and the docs.
ACCEPTED_FORMS: dict[IdentifierType, str] = {kind: r.accepted_forms for kind, r in RULES.items()}

_TYPES = {kind.value: kind for kind in IdentifierType}


def ascii_case_insensitive(pattern: str) -> str:
    """`pattern` with its `(?i)` spelled out for ASCII letters only (`d` → `[dD]`, `[a-z]` →
    `[a-zA-Z]`): Python's `re` folds `ı`, `ſ` and the Kelvin sign to ASCII letters and Rust's
    `regex` folds only some of them, so neither is asked to fold at all."""
    if not pattern.startswith("(?i)"):
        return pattern
    out, index, in_class = [], len("(?i)"), False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":  # an escape: copied whole (its letters are not letters)
            size = {"u": 6, "x": 4}.get(pattern[index + 1], 2)
            out.append(pattern[index : index + size])
            index += size
            continue
        if in_class and char == "]":
            in_class = False
        elif not in_class and char == "[":
            in_class = True
        elif char.isascii() and char.islower():
            ranged = (
                in_class
                and pattern[index + 1 : index + 2] == "-"
                and pattern[index + 2 : index + 3].islower()
            )
            if ranged:
                high = pattern[index + 2]
                out.append(f"{char}-{high}{char.upper()}-{high.upper()}")
                index += 3
                continue
            out.append(char + char.upper() if in_class else f"[{char}{char.upper()}]")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


@dataclass(frozen=True)
class _CompiledRule:
    rule: IdentifierRule
    prefix: re.Pattern[str] | None
    pattern: re.Pattern[str]
    table: dict[int, str]
    normal_form: re.Pattern[str] | None


_COMPILED = {
    kind: _CompiledRule(
        rule=rule,
        prefix=re.compile(ascii_case_insensitive(rule.prefix)) if rule.prefix else None,
        pattern=re.compile(ascii_case_insensitive(rule.pattern), re.DOTALL),
        table=str.maketrans(dict(rule.translate)),
        # `fullmatch`: `$` alone would let a final line end through.
        normal_form=re.compile(rule.normal_form) if rule.normal_form else None,
    )
    for kind, rule in RULES.items()
}


def _case(value: str, case: str | None) -> str:
    return value.lower() if case == "lower" else value.upper() if case == "upper" else value


def normalise_identifier(identifier_type: str, value: object) -> str | None:
    """The normalised (stored, compared) form of one identifier, or None if it is refused.

    `value` is what the line holds: a string, or (for `pm_id` only) a JSON integer.
    """
    kind = _TYPES.get(identifier_type)
    if kind is None:
        return None
    compiled = _COMPILED[kind]
    rule = compiled.rule
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    if isinstance(value, int):
        return str(value) if rule.accepts_integers and value > 0 else None
    if compiled.normal_form is not None and compiled.normal_form.fullmatch(value):
        return value
    text = unicodedata.normalize("NFC", value) if rule.nfc else value
    text = text.translate(compiled.table).strip(WHITESPACE)
    if compiled.prefix is not None:
        text = compiled.prefix.sub("", text, count=1).strip(WHITESPACE)
    match = compiled.pattern.search(text)
    if match is None:
        return None
    return _case(match.group(1) if match.re.groups else match.group(0), rule.case)
