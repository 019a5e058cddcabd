"""The reference store: its schema, connections, the writes of records and batches, the
readers' queries and the invariants the checks ask. The names below are its public face;
`batch_writes` holds the writes of a resolved batch, which only the resolver makes.
"""

from import_pipeline.store.connection import (
    connect,
    scratch_engine,
    sql_literal,
    threads_for,
    transaction,
)
from import_pipeline.store.duplicates import (
    decide,
    decisions_of,
    duplicates_without_canonical,
    list_decisions,
)
from import_pipeline.store.invariants import (
    identifiers_on_two_references,
    lines_without_one_result,
    results_with_missing_reference,
)
from import_pipeline.store.readers import (
    RESULT_STATUSES,
    failing_lines,
    find_reference,
    list_results,
    lookup_reference,
    record_summary,
    table_counts,
    titles,
)
from import_pipeline.store.records import (
    fail_batch,
    fail_batches_of_run,
    imported_checksums,
    record_first_seen,
    release_batch,
    start_batch,
    start_batches,
    update_batch_statuses,
    upsert_record,
)
from import_pipeline.store.review import (
    apply_review,
    decided_pairs,
    export_file,
    export_maybe_pairs,
    read_review,
    read_review_file,
    review_rows,
)
from import_pipeline.store.schema import ALL_TABLES, REFERENCE_TABLES, SCHEMA_VERSION, ensure_schema

__all__ = [
    "ALL_TABLES",
    "REFERENCE_TABLES",
    "RESULT_STATUSES",
    "SCHEMA_VERSION",
    "apply_review",
    "connect",
    "decided_pairs",
    "export_file",
    "export_maybe_pairs",
    "read_review",
    "read_review_file",
    "review_rows",
    "decide",
    "decisions_of",
    "duplicates_without_canonical",
    "list_decisions",
    "ensure_schema",
    "fail_batch",
    "fail_batches_of_run",
    "release_batch",
    "failing_lines",
    "find_reference",
    "lookup_reference",
    "titles",
    "identifiers_on_two_references",
    "imported_checksums",
    "record_first_seen",
    "lines_without_one_result",
    "list_results",
    "record_summary",
    "results_with_missing_reference",
    "scratch_engine",
    "threads_for",
    "sql_literal",
    "start_batch",
    "start_batches",
    "table_counts",
    "transaction",
    "update_batch_statuses",
    "upsert_record",
]
