"""How a result's errors are written: the JSON list and its `Line N:` rendering (contract §4).

Polars expressions over a `List(Struct(code, message, field))` column, so a batch's results
are rendered in one pass.
"""

from __future__ import annotations

import polars as pl

#: One error of a result, as the `errors` column holds it.
ERROR = pl.Struct({"code": pl.String, "message": pl.String, "field": pl.String})


def errors_json(errors: pl.Expr) -> pl.Expr:
    """The `errors` column: a JSON array of `{"code", "message", "field"}` objects."""
    return pl.format(
        "[{}]",
        errors.list.eval(pl.element().struct.json_encode()).list.join(",").fill_null(""),
    )


def failure_details(line_number: pl.Expr, errors: pl.Expr) -> pl.Expr:
    """``Line N: Code at field: message; …``, or null when there is no error."""
    rendered = errors.list.eval(
        pl.format(
            "{}{}: {}",
            pl.element().struct.field("code"),
            pl.when(pl.element().struct.field("field").is_not_null())
            .then(pl.format(" at {}", pl.element().struct.field("field")))
            .otherwise(pl.lit("")),
            pl.element().struct.field("message"),
        )
    ).list.join("; ")
    return pl.when(errors.list.len() > 0).then(pl.format("Line {}: {}", line_number, rendered))
