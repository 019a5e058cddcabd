"""The statuses of records, batches and results, and how one follows from the others (contract
section 4), stated once: Python asks `batch_status` and `record_status`, SQL gets the same rules
from `batch_status_sql` and `sql_list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ImportRecordStatus(StrEnum):
    CREATED = "created"
    STARTED = "started"
    COMPLETED = "completed"


class ImportBatchStatus(StrEnum):
    CREATED = "created"
    STARTED = "started"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"


class ImportResultStatus(StrEnum):
    CREATED = "created"
    STARTED = "started"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    RETRYING = "retrying"


#: A batch in one of these statuses has finished: its results are the ones that stay.
TERMINAL_BATCH_STATUSES = (
    ImportBatchStatus.COMPLETED,
    ImportBatchStatus.PARTIALLY_FAILED,
    ImportBatchStatus.FAILED,
)


@dataclass(frozen=True)
class _Rung:
    """A batch has `status` when the set of its results' statuses passes this test."""

    status: ImportBatchStatus
    any_of: frozenset[ImportResultStatus] = frozenset()  # some result has one of these
    only: ImportResultStatus | None = None  # every result has this one
    none: bool = False  # there is no result


#: The batch status ladder, read top to bottom; the first rung that holds decides, and a batch
#: that passes none is `partially_failed` (a mix of outcomes).
BATCH_LADDER = (
    _Rung(ImportBatchStatus.CREATED, none=True),
    _Rung(
        ImportBatchStatus.STARTED,
        any_of=frozenset(
            {ImportResultStatus.CREATED, ImportResultStatus.STARTED, ImportResultStatus.RETRYING}
        ),
    ),
    _Rung(ImportBatchStatus.COMPLETED, only=ImportResultStatus.COMPLETED),
    _Rung(ImportBatchStatus.FAILED, only=ImportResultStatus.FAILED),
)
_MIXED = ImportBatchStatus.PARTIALLY_FAILED


def batch_status(result_statuses: Iterable[str]) -> ImportBatchStatus:
    """A batch's status from the statuses its results have (each may appear any number of times)."""
    present = {ImportResultStatus(status) for status in result_statuses}
    for rung in BATCH_LADDER:
        if rung.none and not present:
            return rung.status
        if rung.any_of and present & rung.any_of:
            return rung.status
        if rung.only is not None and present == {rung.only}:
            return rung.status
    return _MIXED


def derive_batch_status(counts: dict[str, int]) -> ImportBatchStatus:
    """`batch_status` from a count of results per status."""
    return batch_status(status for status, count in counts.items() if count > 0)


def sql_list(values: Iterable[str]) -> str:
    """Status values as an SQL list of literals, e.g. ``('completed', 'failed')``. Statuses are
    this module's constants, never input."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def batch_status_sql(statuses: str) -> str:
    """An SQL expression of the ladder over `statuses`, an SQL expression that is the list of
    the distinct statuses of a batch's results (empty or NULL when it has none)."""
    cases = []
    for rung in BATCH_LADDER:
        if rung.none:
            test = f"COALESCE(len({statuses}), 0) = 0"
        elif rung.any_of:
            test = f"list_has_any({statuses}, {_sql_array(sorted(rung.any_of))})"
        else:
            test = f"list_sort({statuses}) = ['{rung.only}']"
        cases.append(f"WHEN {test} THEN '{rung.status}'")
    return f"CASE {' '.join(cases)} ELSE '{_MIXED}' END"


def _sql_array(values: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


#: `status IN …` of a finished batch, for SQL.
TERMINAL_BATCH_SQL = sql_list(TERMINAL_BATCH_STATUSES)


def record_status(batch_statuses: Iterable[str], finalised: bool) -> ImportRecordStatus:
    """`created` until a batch starts, then `started`; `completed` once the record is finalised
    and all its batches are terminal."""
    statuses = list(batch_statuses)
    if not statuses:
        return ImportRecordStatus.CREATED
    if finalised and all(status in TERMINAL_BATCH_STATUSES for status in statuses):
        return ImportRecordStatus.COMPLETED
    return ImportRecordStatus.STARTED
