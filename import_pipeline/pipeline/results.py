"""Results: one per line, its status, reference and errors (contract section 4).

The rules of a line's result over a window of lines (Polars), and how a result's errors are
written: the JSON list and its `Line N:` rendering, as expressions over a `List(ERROR)` column,
so a batch's results are rendered in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import polars as pl

from import_pipeline.domain.error_codes import ErrorCode
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.domain.strategies import OnMatch, StrategyRule
from import_pipeline.pipeline.frames import ERROR, ERRORS


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


def error_struct(code: ErrorCode, message: pl.Expr, field: str | None) -> pl.Expr:
    """One error of a result (`frames.ERROR`) from expressions."""
    return pl.struct(code=pl.lit(code.value), message=message, field=pl.lit(field, pl.String))


@dataclass(frozen=True)
class ResultInputs:
    """What decides the results of a window of lines, each named by (`batch`, `line_number`):
    `batch` is the batch's place in the resolver's wave (`pipeline/resolve.py`)."""

    lines: pl.DataFrame  # every line read
    fates: pl.DataFrame  # usable lines: their cluster's match (matched, refs), reference_id
    errors: pl.DataFrame  # frames.ERRORS, with `batch`
    associated: pl.DataFrame  # the lines with a valid association


#: The key of a line in a wave of batches.
LINE_KEY = ["batch", "line_number"]
#: A line's errors (`frames.ERRORS`) with its batch.
_KEYED_ERRORS = pl.Schema({"batch": pl.Int64, **ERRORS})


@dataclass(frozen=True)
class Window:
    """Lines of batches `first_batch`..`last_batch` with `first_line` ≤ n < `end_line`: whole
    batches when they are small, a slice of lines of one batch when it is large."""

    first_batch: int
    last_batch: int
    first_line: int = 1
    end_line: int = 2**62


def plain_lines_sql(tables: ResultTables, rule: StrategyRule, batches: int) -> str:
    """The lines whose result is plain: `completed` with their reference and no error — a
    usable line without errors or associations whose cluster's match neither collides nor
    fails under the strategy (`line_results` gives each of them just that). Their results are
    written by one statement in the store, without a trip through Polars (most lines of most
    batches: a 1M-line batch's round trip took longer than its identifiers' writes). Of the
    wave's first `batches` batches, those stored."""
    keeps_stored = "TRUE" if rule.on_match is OnMatch.KEEP_STORED else "FALSE"
    fails = "TRUE" if rule.on_match is OnMatch.FAIL else "FALSE"
    return f"""
        SELECT l.batch, l.line_number, COALESCE(t.reference_id,
            CASE WHEN {keeps_stored} AND c.matched = 1 THEN c.refs[1] END) AS reference_id
        FROM {tables.lines} l JOIN {tables.clusters} c USING (batch, cluster)
        LEFT JOIN {tables.targets} t USING (batch, cluster)
        ANTI JOIN {tables.associated} a USING (batch, line_number)
        WHERE l.batch < {batches} AND NOT l.has_errors AND c.matched < 2
            AND NOT (c.matched = 1 AND {fails})
    """


def read_window(
    conn: duckdb.DuckDBPyConnection, tables: ResultTables, window: Window
) -> ResultInputs:
    """The inputs of the results of the lines in `window`, from the resolver's tables."""
    bounds = (
        "batch BETWEEN $first_batch AND $last_batch "
        "AND line_number >= $first_line AND line_number < $end_line"
    )

    def read(sql: str) -> pl.DataFrame:
        return conn.sql(sql, params=asdict(window)).pl()

    return ResultInputs(
        lines=read(f"SELECT batch, line_number FROM {tables.all_lines} WHERE {bounds}"),
        fates=read(
            f"""
            SELECT batch, line_number, l.cluster, l.has_errors, c.matched,
                c.refs::VARCHAR[] AS refs, t.reference_id::VARCHAR AS reference_id
            FROM {tables.lines} l JOIN {tables.clusters} c USING (batch, cluster)
            LEFT JOIN {tables.targets} t USING (batch, cluster)
            WHERE {bounds}
            """
        ),
        errors=read(f"SELECT * FROM {tables.errors} WHERE {bounds}"),
        associated=read(f"SELECT batch, line_number FROM {tables.associated} WHERE {bounds}"),
    )


@dataclass(frozen=True)
class ResultTables:
    """The resolver's temp tables a result is decided from (see `pipeline/resolve.py`)."""

    all_lines: str
    lines: str
    clusters: str
    targets: str
    errors: str
    associated: str


def _match_errors(fates: pl.DataFrame, rule: StrategyRule) -> pl.DataFrame:
    """The fatal errors of matching (`frames.ERRORS`): a cluster that matches two or more
    stored references, or one when the strategy fails on a match."""

    def rows(condition: pl.Expr, code: ErrorCode, message: pl.Expr) -> pl.DataFrame:
        return fates.filter(condition).select(
            *LINE_KEY,
            code=pl.lit(code.value),
            field=pl.lit("identifiers"),
            message=message,
            fatal=pl.lit(True),
        )

    collided = rows(
        pl.col("matched") >= 2,
        ErrorCode.IDENTIFIER_COLLISION,
        pl.format(
            "the line's identifiers match {} different stored references: {}",
            pl.col("matched"),
            pl.col("refs").list.join(", "),
        ),
    )
    duplicate = rows(
        (pl.col("matched") == 1) & pl.lit(rule.on_match is OnMatch.FAIL),
        ErrorCode.DUPLICATE_REFERENCE,
        pl.format(
            "a stored reference has these identifiers ({}) and the record's "
            "collision_strategy is 'fail'",
            pl.col("refs").list.first(),
        ),
    )
    return pl.concat([collided, duplicate]).cast(_KEYED_ERRORS)


def _status(rule: StrategyRule) -> pl.Expr:
    """A failed line is `failed`; a written line with associations waits for them
    (`retrying`, see associations.py); one with errors is `partially_failed`."""
    waits = (
        pl.col("is_associated")
        & pl.col("reference_id").is_not_null()
        # (under `discard` no line waits, not even one that created its reference)
        & pl.lit(rule.on_match is not OnMatch.KEEP_STORED)
    )
    return (
        pl.when(pl.col("is_failed"))
        .then(pl.lit(ImportResultStatus.FAILED.value))
        .when(waits)
        .then(pl.lit(ImportResultStatus.RETRYING.value))
        .when(pl.col("errors").list.len() > 0)
        .then(pl.lit(ImportResultStatus.PARTIALLY_FAILED.value))
        .otherwise(pl.lit(ImportResultStatus.COMPLETED.value))
    )


def line_results(inputs: ResultInputs, rule: StrategyRule) -> pl.DataFrame:
    """One result per line of the window (`frames.RESULTS`, with `batch`)."""
    errors = inputs.errors.select("batch", *ERRORS).cast(_KEYED_ERRORS)
    all_errors = pl.concat([errors, _match_errors(inputs.fates, rule)])
    failed = all_errors.filter("fatal").select(*LINE_KEY).unique().with_columns(is_failed=True)
    # `discard`: the line is completed with the stored reference it matched.
    kept_stored = pl.when(
        (pl.col("matched") == 1) & pl.lit(rule.on_match is OnMatch.KEEP_STORED)
    ).then(pl.col("refs").list.first())
    per_line = (
        all_errors.sort(LINE_KEY, maintain_order=True)
        .group_by(LINE_KEY, maintain_order=True)
        .agg(errors=pl.struct("code", "message", "field"))
    )
    associated = inputs.associated.select(*LINE_KEY).unique().with_columns(is_associated=True)
    return (
        inputs.lines.select(*LINE_KEY)
        .join(
            inputs.fates.select(*LINE_KEY, "reference_id", "refs", "matched"),
            on=LINE_KEY,
            how="left",
        )
        .join(per_line, on=LINE_KEY, how="left")
        .join(failed, on=LINE_KEY, how="left")
        .join(associated, on=LINE_KEY, how="left")
        .with_columns(
            is_failed=pl.col("is_failed").fill_null(False),
            is_associated=pl.col("is_associated").fill_null(False),
        )
        .with_columns(
            reference_id=pl.when(pl.col("is_failed"))
            .then(None)
            .otherwise(pl.coalesce("reference_id", kept_stored)),
            errors=pl.col("errors")
            .fill_null(pl.lit([], dtype=pl.List(ERROR)))
            .cast(pl.List(ERROR)),
        )
        .select(
            *LINE_KEY,
            status=_status(rule),
            reference_id="reference_id",
            errors=errors_json(pl.col("errors")),
            failure_details=failure_details(pl.col("line_number"), pl.col("errors")),
        )
        .sort(LINE_KEY)
    )
