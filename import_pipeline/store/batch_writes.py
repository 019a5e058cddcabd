"""The writes of resolved batches: their references, identifiers, enhancements and results.

Only the resolver calls these, inside its transaction, with the temp tables it staged for a
wave of batches (`pipeline/resolve.py`), every row named by its `batch`: `targets` (cluster →
reference_id, is_new, visibility), and the valid `identifiers` and `enhancements` with their
cluster. Writes are planned first, each batch against the store as it stands and with its own
rows only, then applied for the batches the resolver stores. What each write does to a
matched reference is the strategy's rule (`domain/strategies.py`), read here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.domain.strategies import EnhancementMerge, IdentifierMerge, StrategyRule
from import_pipeline.store.connection import BATCH_STRIDE, TempTables, uuid_literal


@dataclass(frozen=True)
class WritePlan:
    """What each batch of a wave would write, as temp tables whose rows name their `batch`,
    decided against the store as it stands (each batch only with its own rows). The resolver
    applies the plan of the batches whose inputs no earlier batch of the wave changes."""

    added_identifiers: (
        str  # batch, reference_id, identifier_type, identifier, other_identifier_name
    )
    added_enhancements: str  # batch, line_number, position, reference_id (content joined later)
    removed_identifiers: str | None  # stored rows a batch replaces (identifiers by type)
    replaced_enhancements: str | None  # keys of stored enhancements a batch replaces
    enhancements_wide: bool = False  # `added_enhancements` has the content (`_WIDE_COLUMNS`)


def _targets_of_stored_sql(targets: str) -> str:
    return f"SELECT DISTINCT batch, reference_id FROM {targets} WHERE NOT is_new"


def _removed_identifiers_sql(targets: str, identifiers: str) -> str:
    """Stored identifiers of a type (and other_identifier_name) a batch brings for the same
    reference, unless that batch brings that very identifier."""
    return f"""
        SELECT DISTINCT k.batch, ri.reference_id, ri.identifier_type, ri.identifier,
            ri.other_identifier_name
        FROM reference_identifier ri JOIN (
            SELECT DISTINCT t.batch, t.reference_id, i.identifier_type,
                COALESCE(i.other_identifier_name, '') AS other_name
            FROM {identifiers} i JOIN {targets} t USING (batch, cluster) WHERE NOT t.is_new
        ) k
            ON ri.reference_id = k.reference_id AND ri.identifier_type = k.identifier_type
            AND COALESCE(ri.other_identifier_name, '') = k.other_name
        WHERE NOT EXISTS (
            SELECT 1 FROM {identifiers} i JOIN {targets} t USING (batch, cluster)
            WHERE t.batch = k.batch AND t.reference_id = ri.reference_id
                AND i.identifier_type = ri.identifier_type AND i.identifier = ri.identifier)
    """


def _replaced_enhancement_keys_sql(targets: str, enhancements: str, rule: StrategyRule) -> str:
    if rule.enhancements is EnhancementMerge.REPLACE_ALL:
        return _targets_of_stored_sql(targets)
    return f"""
        SELECT DISTINCT t.batch, t.reference_id, e.enhancement_type, e.source
        FROM {enhancements} e JOIN {targets} t USING (batch, cluster) WHERE NOT t.is_new
    """


def _stored_identifiers_sql(targets: str, removed: str | None) -> str:
    """The identifiers of the stored references each batch writes into, but those it
    removes: each batch is compared with these only, not whole tables (small hash tables,
    however big the store)."""
    unless_removed = (
        f"""ANTI JOIN {removed} r ON r.batch = t.batch AND r.reference_id = ri.reference_id
            AND r.identifier_type = ri.identifier_type AND r.identifier = ri.identifier
            AND COALESCE(r.other_identifier_name, '') = COALESCE(ri.other_identifier_name, '')"""
        if removed
        else ""
    )
    return f"""
        SELECT t.batch, ri.reference_id, ri.identifier_type, ri.identifier,
            ri.other_identifier_name
        FROM ({_targets_of_stored_sql(targets)}) t
        JOIN reference_identifier ri ON ri.reference_id = t.reference_id
        {unless_removed}
    """


def _stored_enhancements_sql(targets: str, replaced: str | None, rule: StrategyRule) -> str:
    if rule.enhancements is EnhancementMerge.REPLACE_ALL:
        unless_replaced = "WHERE FALSE"
    elif replaced:
        unless_replaced = f"""ANTI JOIN {replaced} k ON k.batch = t.batch
            AND k.reference_id = re.reference_id AND k.enhancement_type = re.enhancement_type
            AND k.source = re.source"""
    else:
        unless_replaced = ""
    return f"""
        SELECT t.batch, re.reference_id, re.content_hash, re.enhancement_type, re.source
        FROM ({_targets_of_stored_sql(targets)}) t
        JOIN reference_enhancement re ON re.reference_id = t.reference_id
        {unless_replaced}
    """


def _added_identifiers_sql(
    targets: str, identifiers: str, stored: str, new_types_only: bool
) -> str:
    """Each batch's identifiers its reference lacks; with `new_types_only`, an identifier of
    a type the reference has already is left out (the stored one wins). An anti join on
    equalities (a hash join): `NOT EXISTS` with the rule as an `OR` was a nested loop."""
    same_identifier = "" if new_types_only else "AND ri.identifier = i.identifier"
    return f"""
        SELECT DISTINCT t.batch, t.reference_id, i.identifier_type, i.identifier,
            i.other_identifier_name
        FROM {identifiers} i JOIN {targets} t USING (batch, cluster)
        ANTI JOIN {stored} ri ON ri.batch = t.batch AND ri.reference_id = t.reference_id
            AND ri.identifier_type = i.identifier_type
            AND COALESCE(ri.other_identifier_name, '') = COALESCE(i.other_identifier_name, '')
            {same_identifier}
    """


def _added_enhancements_sql(
    targets: str, enhancements: str, stored: str, new_type_and_source_only: bool, wide: bool
) -> str:
    """Each batch's enhancements, each once per reference, that the reference lacks as exact
    duplicates; with `new_type_and_source_only`, one whose (type, source) the reference has
    is left out. `wide`: with every column the insert writes, for a plan the insert alone
    reads (the wide rows stream through the anti joins); else narrow rows, which a wave's
    plan keeps as a table, the wide content joined once when they are written."""
    return f"""
        WITH keyed AS NOT MATERIALIZED (  -- narrow: scanned twice rather than stored
            SELECT e.batch, e.line_number, e.position, t.reference_id,
                hash(e.batch, t.reference_id, e.content_hash) AS copy_key
            FROM {enhancements} e JOIN {targets} t USING (batch, cluster)
        ), repeated AS (
            -- Where a second copy of an enhancement of a reference can be, found on one
            -- 64-bit key per row (a batch's millions of rows stay a small hash table); the
            -- exact comparison is made on these few rows only.
            SELECT copy_key FROM keyed GROUP BY copy_key HAVING count(*) > 1
        ), later_copies AS (
            SELECT batch, line_number, position FROM (
                SELECT k.batch, k.line_number, k.position, row_number() OVER (
                    PARTITION BY k.batch, k.reference_id, e.content_hash
                    ORDER BY k.line_number, k.position) AS copy
                FROM keyed k
                JOIN {enhancements} e USING (batch, line_number, position)
                WHERE k.copy_key IN (SELECT copy_key FROM repeated)
            ) WHERE copy > 1
        )
        SELECT e.batch, e.line_number, e.position, t.reference_id{_WIDE_COLUMNS if wide else ""}
        FROM {enhancements} e JOIN {targets} t USING (batch, cluster)
        ANTI JOIN later_copies c USING (batch, line_number, position)
        ANTI JOIN {stored} same ON same.batch = t.batch
            AND same.reference_id = t.reference_id AND same.content_hash = e.content_hash
        ANTI JOIN {stored} kind ON {_sql_bool(new_type_and_source_only)} AND kind.batch = t.batch
            AND kind.reference_id = t.reference_id
            AND kind.enhancement_type = e.enhancement_type AND kind.source = e.source
    """


#: The columns of an enhancement the insert writes, beside its reference.
_WIDE_COLUMNS = """, e.enhancement_type, e.source, e.visibility, e.robot_version,
            e.processor_version, e.content, e.content_hash"""


def _sql_bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def plan_writes(
    tables: TempTables,
    targets: str,
    identifiers: str,
    enhancements: str,
    rule: StrategyRule,
    *,
    materialise: bool,
) -> WritePlan:
    """What each batch would write into its targets, as `rule` says for the stored ones.
    The additions are temp tables when `materialise` (a wave of several batches reads them to
    decide which to store), else subqueries the writes read once (one batch: no copy of its
    millions of rows)."""
    removed = None
    if rule.identifiers is IdentifierMerge.REPLACE_SAME_TYPE:
        removed = tables.create("removed_identifiers",
                                _removed_identifiers_sql(targets, identifiers))  # fmt: skip
    replaced = None
    if rule.enhancements in (
        EnhancementMerge.REPLACE_SAME_TYPE_AND_SOURCE,
        EnhancementMerge.REPLACE_ALL,
    ):
        replaced = tables.create(
            "replaced_enhancements", _replaced_enhancement_keys_sql(targets, enhancements, rule)
        )
    stored_identifiers = tables.create(
        "stored_identifiers", _stored_identifiers_sql(targets, removed)
    )
    stored_enhancements = tables.create(
        "stored_enhancements", _stored_enhancements_sql(targets, replaced, rule)
    )
    added = {
        "added_identifiers": _added_identifiers_sql(
            targets,
            identifiers,
            stored_identifiers,
            new_types_only=rule.identifiers is IdentifierMerge.ADD_NEW_TYPES,
        ),
        "added_enhancements": _added_enhancements_sql(
            targets,
            enhancements,
            stored_enhancements,
            new_type_and_source_only=rule.enhancements is EnhancementMerge.ADD_NEW_TYPE_AND_SOURCE,
            wide=not materialise,
        ),
    }
    sources = {
        name: tables.create(name, sql) if materialise else f"({sql})" for name, sql in added.items()
    }
    return WritePlan(
        added_identifiers=sources["added_identifiers"],
        added_enhancements=sources["added_enhancements"],
        removed_identifiers=removed,
        replaced_enhancements=replaced,
        enhancements_wide=not materialise,
    )


def written_references_sql(plan: WritePlan, targets: str, rule: StrategyRule) -> str:
    """(batch, reference_id): the references each batch would change, new ones aside."""
    parts = [
        f"SELECT batch, reference_id FROM {plan.added_identifiers}",
        f"SELECT batch, reference_id FROM {plan.added_enhancements}",
    ]
    replacing = (plan.removed_identifiers, plan.replaced_enhancements)
    parts += [f"SELECT batch, reference_id FROM {table}" for table in replacing if table]
    if rule.takes_visibility:
        parts.append(
            f"""SELECT t.batch, t.reference_id FROM {targets} t
            JOIN reference r ON r.id = t.reference_id
            WHERE NOT t.is_new AND r.visibility IS DISTINCT FROM t.visibility"""
        )
    return " UNION ALL ".join(parts)


def changed_identifiers_sql(plan: WritePlan) -> str:
    """(batch, identifier_type, identifier): the identifiers each batch would add or remove."""
    parts = [f"SELECT batch, identifier_type, identifier FROM {plan.added_identifiers}"]
    if plan.removed_identifiers:
        parts.append(f"SELECT batch, identifier_type, identifier FROM {plan.removed_identifiers}")
    return " UNION ALL ".join(parts)


def _insert_new_references_sql(targets: str) -> str:
    return f"""
        INSERT INTO reference (id, visibility, created_at, updated_at)
        SELECT reference_id, visibility, now(), now() FROM {targets}
        WHERE is_new AND batch < $applied
    """


def _take_visibility_sql(targets: str) -> str:
    """A reference several clusters match takes the last one's, as one line after another
    would (a cluster is named by its first line; an earlier batch of the wave that matched it
    left it as it was, else this one would have waited for the next wave)."""
    return f"""
        UPDATE reference SET visibility = t.visibility, updated_at = now()
        FROM (SELECT reference_id, arg_max(visibility, batch * {BATCH_STRIDE} + cluster) AS visibility
              FROM {targets} WHERE NOT is_new AND batch < $applied GROUP BY reference_id) t
        WHERE reference.id = t.reference_id
    """


def _remove_identifiers_sql(removed: str) -> str:
    return f"""
        DELETE FROM reference_identifier ri USING (
            SELECT * FROM {removed} WHERE batch < $applied) r
        WHERE ri.reference_id = r.reference_id AND ri.identifier_type = r.identifier_type
            AND ri.identifier = r.identifier
            AND COALESCE(ri.other_identifier_name, '') = COALESCE(r.other_identifier_name, '')
    """


def _remove_enhancements_sql(replaced: str, rule: StrategyRule) -> str:
    """The stored enhancements the batches replace: all of a reference's, or those of a
    (type, source) they bring (the keys `_replaced_enhancement_keys_sql` planned)."""
    same_kind = (
        ""
        if rule.enhancements is EnhancementMerge.REPLACE_ALL
        else "AND re.enhancement_type = k.enhancement_type AND re.source = k.source"
    )
    return f"""
        DELETE FROM reference_enhancement re USING (
            SELECT * FROM {replaced} WHERE batch < $applied) k
        WHERE re.reference_id = k.reference_id {same_kind}
    """


def _insert_identifiers_sql(added: str) -> str:
    return f"""
        INSERT INTO reference_identifier (reference_id, identifier_type, identifier,
            other_identifier_name, created_at)
        SELECT reference_id, identifier_type, identifier, other_identifier_name, now()
        FROM {added} WHERE batch < $applied
    """


def _insert_enhancements_sql(added: str, enhancements: str, wide: bool) -> str:
    if wide:  # the plan holds the columns: no join of millions of wide rows (~13 s at 1M lines)
        return f"""
        INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
            visibility, robot_version, processor_version, content, content_hash, created_at)
        SELECT uuid(), reference_id, enhancement_type, source, visibility, robot_version,
            processor_version, content, content_hash, now()
        FROM {added} WHERE batch < $applied
        """
    return f"""
        INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
            visibility, robot_version, processor_version, content, content_hash, created_at)
        SELECT uuid(), k.reference_id, e.enhancement_type, e.source, e.visibility,
            e.robot_version, e.processor_version, e.content, e.content_hash, now()
        FROM {added} k JOIN {enhancements} e USING (batch, line_number, position)
        WHERE k.batch < $applied
    """


def apply_writes(
    conn: duckdb.DuckDBPyConnection,
    plan: WritePlan,
    targets: str,
    enhancements: str,
    rule: StrategyRule,
    *,
    applied: int,
) -> None:
    """Writes the plan of the wave's first `applied` batches: creates their new references,
    removes what they replace, adds what they bring."""
    statements = [_insert_new_references_sql(targets)]
    if rule.takes_visibility:
        statements.append(_take_visibility_sql(targets))
    if plan.removed_identifiers:
        statements.append(_remove_identifiers_sql(plan.removed_identifiers))
    if plan.replaced_enhancements:
        statements.append(_remove_enhancements_sql(plan.replaced_enhancements, rule))
    statements += [
        _insert_identifiers_sql(plan.added_identifiers),
        _insert_enhancements_sql(plan.added_enhancements, enhancements, plan.enhancements_wide),
    ]
    for statement in statements:
        conn.execute(statement, {"applied": applied})


def batch_ids_in(batch_ids: list[str], column: str = "import_batch_id") -> str:
    """`import_batch_id IN (…)` with the ids as literals: a filter of constants is what the
    PostgreSQL store pushes down to its index; a list parameter would scan the table."""
    return "{} IN ({})".format(column, ", ".join(uuid_literal(batch_id) for batch_id in batch_ids))


def batch_ids_sql(batch_ids: list[str]) -> str:
    """A wave's batches as a table (batch, batch_id) of constants: `batch` is the place in the
    wave that names every staged row."""
    rows = ", ".join(f"({index}, {uuid_literal(b)})" for index, b in enumerate(batch_ids))
    return f"(VALUES {rows}) AS ids(batch, batch_id)"


def delete_results(conn: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> None:
    """The results of older versions of the batches go: the new ones replace them."""
    conn.execute(f"DELETE FROM import_results WHERE {batch_ids_in(batch_ids)}")


def insert_results(conn: duckdb.DuckDBPyConnection, results: pl.DataFrame) -> None:
    """Inserts a slice of results (`frames.RESULTS`, with their `import_batch_id`)."""
    if results.is_empty():
        return
    conn.register("frame_results", results)
    try:
        conn.execute(
            """
            INSERT INTO import_results (id, import_batch_id, line_number, status,
                reference_id, errors, failure_details, unresolved_references, created_at)
            SELECT uuid(), import_batch_id::UUID, line_number, status, reference_id::UUID,
                errors, failure_details, '[]', now() FROM frame_results
            """
        )
    finally:
        conn.unregister("frame_results")


def insert_plain_results(conn: duckdb.DuckDBPyConnection, plain: str, batch_ids: str) -> None:
    """Inserts the results of the `plain` lines (batch, line_number, reference_id: each
    `completed` with its reference and no error); `batch_ids` names each batch's id."""
    conn.execute(
        f"""
        INSERT INTO import_results (id, import_batch_id, line_number, status,
            reference_id, errors, failure_details, unresolved_references, created_at)
        SELECT uuid(), ids.batch_id, p.line_number, $completed, p.reference_id,
            '[]', NULL, '[]', now()
        FROM {plain} p JOIN {batch_ids} USING (batch)
        """,
        {"completed": ImportResultStatus.COMPLETED.value},
    )


@dataclass(frozen=True)
class BatchVersionRead:
    """The version of a batch file whose results are stored, and what the loader counted."""

    batch_id: str
    checksum: str
    physical_lines: int
    blank_lines: int


def finish_batches(conn: duckdb.DuckDBPyConnection, batches: list[BatchVersionRead]) -> None:
    """Records which version of each batch file the stored results are of."""
    conn.execute(
        """
        UPDATE import_batches SET checksum = f.checksum, failure_details = NULL,
            physical_lines = f.physical_lines, blank_lines = f.blank_lines, updated_at = now()
        FROM (SELECT unnest($ids)::UUID AS id, unnest($checksums) AS checksum,
                unnest($physical)::BIGINT AS physical_lines,
                unnest($blank)::BIGINT AS blank_lines) f
        WHERE import_batches.id = f.id
        """,
        {
            "ids": [b.batch_id for b in batches],
            "checksums": [b.checksum for b in batches],
            "physical": [b.physical_lines for b in batches],
            "blank": [b.blank_lines for b in batches],
        },
    )
