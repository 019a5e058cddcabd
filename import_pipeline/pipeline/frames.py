"""The schema of every frame a stage stages for the next one (Parquet files in the batch's
staging folder) or hands to the store: one definition each, read by the stage that writes it,
the stage that reads it, and the tests.
"""

from __future__ import annotations

import polars as pl

from import_pipeline.domain.error_codes import ERROR_KEYS

# -- load → validate -----------------------------------------------------------------------

#: A loaded chunk: one row per non-blank physical line; `problem` when it cannot be read.
LOADED_LINES = {"line_number": pl.Int64, "text": pl.String, "problem": pl.String}
#: Values of `problem`: the line's bytes are not UTF-8, or the line is longer than allowed.
NOT_UTF8 = "not_utf8"
TOO_LONG = "too_long"
#: Prefixes of `problem` for an export's entry (`pipeline/exports.py`), the message after it:
#: it cannot be read (`InvalidInput`), or it is longer than allowed (`LineTooLong`).
ENTRY_PROBLEM = "entry: "
ENTRY_TOO_LONG = "entry too long: "

# -- validate → cluster, resolve -------------------------------------------------------------

#: One row per line that was read: its visibility when the line is usable.
LINES = {"line_number": pl.Int64, "visibility": pl.String}
#: One row per valid identifier of a line.
IDENTIFIERS = {
    "line_number": pl.Int64,
    "position": pl.Int64,
    "identifier_type": pl.String,
    "identifier": pl.String,  # normalised
    "other_identifier_name": pl.String,
}
#: One row per valid enhancement of a line.
ENHANCEMENTS = {
    "line_number": pl.Int64,
    "position": pl.Int64,
    "enhancement_type": pl.String,
    "source": pl.String,
    "visibility": pl.String,
    "robot_version": pl.String,
    "processor_version": pl.String,
    "content": pl.String,  # the content object as JSON
    "content_hash": pl.String,  # identity of an exact duplicate: the whole enhancement
}
#: One row per target of a valid reference_association enhancement.
ASSOCIATIONS = {
    "line_number": pl.Int64,
    "association_type": pl.String,
    "target_type": pl.String,  # an identifier type, or "reference_id" for a reference UUID
    "target": pl.String,  # normalised
    "target_other_name": pl.String,
}
#: One row per error: a line may have several.
ERRORS = {
    "line_number": pl.Int64,
    "code": pl.String,
    "field": pl.String,
    "message": pl.String,
    "fatal": pl.Boolean,  # the whole line fails (otherwise only the part named by `field`)
}

#: What validation stages per batch, by name (a Parquet file per validation pass each).
VALIDATED_PARTS = {
    "lines": LINES,
    "identifiers": IDENTIFIERS,
    "enhancements": ENHANCEMENTS,
    "associations": ASSOCIATIONS,
    "errors": ERRORS,
}

# -- cluster → resolve ---------------------------------------------------------------------

#: Each line's cluster: the smallest line number it is linked to by trusted identifiers.
CLUSTERS = {"line_number": pl.Int64, "cluster": pl.Int64}

# -- resolve → store -----------------------------------------------------------------------

#: One error of a result, as a result's `errors` list holds it (contract section 4).
ERROR = pl.Struct({key: ERRORS[key] for key in ERROR_KEYS})
#: A target of an association as `unresolved_references` lists it.
TARGET = pl.Struct({"identifier_type": pl.String, "identifier": pl.String})
#: One result per line, as written to `import_results`.
RESULTS = {
    "line_number": pl.Int64,
    "status": pl.String,
    "reference_id": pl.String,
    "errors": pl.String,  # JSON list of ERROR
    "failure_details": pl.String,
}
