"""Identifier normalisation over whole columns: the Polars execution of `domain.identifiers.RULES`.

The twin of `normalise_identifier` (one value, Python `re`), for a column of any length in one
expression; a test proves both agree on every form in the tests, the SYNERGY identifiers and
generated mutations.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from import_pipeline.domain.identifiers import (
    RULES,
    WHITESPACE,
    IdentifierRule,
    ascii_case_insensitive,
)


def _rule_expression(rule: IdentifierRule, text: pl.Expr) -> pl.Expr:
    if rule.nfc:
        text = text.str.normalize("NFC")
    for old, new in rule.translate:
        text = text.str.replace_all(old, new, literal=True)
    text = text.str.strip_chars(WHITESPACE)
    if rule.prefix is not None:
        prefix = ascii_case_insensitive(rule.prefix)
        text = text.str.replace(prefix, "").str.strip_chars(WHITESPACE)
    # `(?s)` so that `.` matches line ends, as re.DOTALL does on the Python side.
    pattern = "(?s)" + ascii_case_insensitive(rule.pattern)
    if re.compile(rule.pattern).groups:
        matched = text.str.extract(pattern, 1)
    else:
        matched = pl.when(text.str.contains(pattern)).then(text)
    if rule.case == "lower":
        return matched.str.to_lowercase()
    if rule.case == "upper":
        return matched.str.to_uppercase()
    return matched


def normalised_identifier(
    identifier_type: pl.Expr = pl.col("identifier_type"),
    value: pl.Expr = pl.col("identifier"),
    is_integer: pl.Expr = pl.col("identifier_is_integer"),
) -> pl.Expr:
    """The normalised form of a column of identifiers (null where refused): the Polars twin
    of `normalise_identifier`.

    `value` is the identifier as text (a JSON integer rendered in decimal) and `is_integer`
    says whether it was a JSON integer, which only `pm_id` accepts (positive).
    """
    as_text = pl.when(~is_integer).then(value)
    expression: Any = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for kind, rule in RULES.items():
        branch = _rule_expression(rule, as_text)
        if rule.accepts_integers:
            positive = pl.when(value.str.contains(r"^[1-9][0-9]*$")).then(value)
            branch = pl.when(is_integer).then(positive).otherwise(branch)
        expression = expression.when(identifier_type == kind.value).then(branch)
    return expression.otherwise(None)
