"""The writes of a resolved batch: its references, identifiers, enhancements and results.

Only the resolver calls these, inside its transaction, with the temp tables it staged
(`pipeline/resolve.py`): `targets` (cluster → reference_id, is_new, visibility), and the
batch's valid `identifiers` and `enhancements` with their cluster. What each write does to a
matched reference is the strategy's rule (`domain/strategies.py`), read here and nowhere else.
"""

from __future__ import annotations

import duckdb
import polars as pl

from import_pipeline.domain.strategies import EnhancementMerge, IdentifierMerge, StrategyRule
from import_pipeline.store.connection import TempTables


def _insert_new_references_sql(targets: str) -> str:
    return f"""
        INSERT INTO reference (id, visibility, created_at, updated_at)
        SELECT reference_id, visibility, now(), now() FROM {targets} WHERE is_new
    """


def _take_visibility_sql(targets: str) -> str:
    return f"""
        UPDATE reference SET visibility = t.visibility, updated_at = now()
        FROM {targets} t WHERE reference.id = t.reference_id AND NOT t.is_new
    """


def _remove_replaced_identifiers_sql(targets: str, identifiers: str) -> str:
    """Stored identifiers of a type (and other_identifier_name) the batch brings for the same
    reference, unless the batch brings that very identifier."""
    return f"""
        DELETE FROM reference_identifier ri USING (
            SELECT DISTINCT t.reference_id, i.identifier_type,
                COALESCE(i.other_identifier_name, '') AS other_name
            FROM {identifiers} i JOIN {targets} t USING (cluster) WHERE NOT t.is_new
        ) k
        WHERE ri.reference_id = k.reference_id AND ri.identifier_type = k.identifier_type
            AND COALESCE(ri.other_identifier_name, '') = k.other_name
            AND NOT EXISTS (
                SELECT 1 FROM {identifiers} i JOIN {targets} t USING (cluster)
                WHERE t.reference_id = ri.reference_id AND i.identifier_type = ri.identifier_type
                    AND i.identifier = ri.identifier)
    """


def _remove_same_type_and_source_sql(targets: str, enhancements: str) -> str:
    return f"""
        DELETE FROM reference_enhancement re USING (
            SELECT DISTINCT t.reference_id, e.enhancement_type, e.source
            FROM {enhancements} e JOIN {targets} t USING (cluster) WHERE NOT t.is_new
        ) k
        WHERE re.reference_id = k.reference_id AND re.enhancement_type = k.enhancement_type
            AND re.source = k.source
    """


def _remove_all_enhancements_sql(targets: str) -> str:
    return f"""
        DELETE FROM reference_enhancement
        WHERE reference_id IN (SELECT reference_id FROM {targets} WHERE NOT is_new)
    """


def _stored_identifiers_sql(targets: str) -> str:
    """The identifiers of the stored references the batch writes into: the batch is compared
    with these only, not whole tables (small hash tables, however big the store)."""
    return f"""
        SELECT reference_id, identifier_type, identifier, other_identifier_name
        FROM reference_identifier
        WHERE reference_id IN (SELECT reference_id FROM {targets} WHERE NOT is_new)
    """


def _stored_enhancements_sql(targets: str) -> str:
    return f"""
        SELECT reference_id, content_hash, enhancement_type, source FROM reference_enhancement
        WHERE reference_id IN (SELECT reference_id FROM {targets} WHERE NOT is_new)
    """


def _insert_identifiers_sql(targets: str, identifiers: str, stored: str) -> str:
    """The batch's identifiers its reference lacks; with `$new_types_only`, an identifier of
    a type the reference has already is left out (the stored one wins)."""
    return f"""
        INSERT INTO reference_identifier (reference_id, identifier_type, identifier,
            other_identifier_name, created_at)
        SELECT DISTINCT t.reference_id, i.identifier_type, i.identifier, i.other_identifier_name,
            now()
        FROM {identifiers} i JOIN {targets} t USING (cluster)
        WHERE NOT EXISTS (
            SELECT 1 FROM {stored} ri
            WHERE ri.reference_id = t.reference_id
                AND ri.identifier_type = i.identifier_type
                AND COALESCE(ri.other_identifier_name, '') = COALESCE(i.other_identifier_name, '')
                AND (ri.identifier = i.identifier OR $new_types_only))
    """


def _insert_enhancements_sql(targets: str, enhancements: str, stored: str) -> str:
    """The batch's enhancements, each once per reference, that the reference lacks as exact
    duplicates; with `$new_type_and_source_only`, one whose (type, source) the reference has
    is left out."""
    return f"""
        INSERT INTO reference_enhancement (id, reference_id, enhancement_type, source,
            visibility, robot_version, processor_version, content, content_hash, created_at)
        WITH keyed AS NOT MATERIALIZED (  -- narrow: scanned twice rather than stored
            SELECT e.line_number, e.position, t.reference_id,
                hash(t.reference_id, e.content_hash) AS copy_key
            FROM {enhancements} e JOIN {targets} t USING (cluster)
        ), repeated AS (
            -- Where a second copy of an enhancement of a reference can be, found on one
            -- 64-bit key per row (a batch's millions of rows stay a small hash table); the
            -- exact comparison is made on these few rows only.
            SELECT copy_key FROM keyed GROUP BY copy_key HAVING count(*) > 1
        ), later_copies AS (
            SELECT line_number, position FROM (
                SELECT k.line_number, k.position, row_number() OVER (
                    PARTITION BY k.reference_id, e.content_hash
                    ORDER BY k.line_number, k.position) AS copy
                FROM keyed k
                JOIN {enhancements} e USING (line_number, position)
                WHERE k.copy_key IN (SELECT copy_key FROM repeated)
            ) WHERE copy > 1
        ), kept AS (
            -- Decided on narrow rows (keys, hash, type, source); the wide content is joined
            -- once, at the end, rather than carried through every anti-join.
            SELECT e.line_number, e.position, t.reference_id
            FROM {enhancements} e JOIN {targets} t USING (cluster)
            ANTI JOIN later_copies c USING (line_number, position)
            ANTI JOIN {stored} same
                ON same.reference_id = t.reference_id AND same.content_hash = e.content_hash
            ANTI JOIN {stored} kind
                ON $new_type_and_source_only AND kind.reference_id = t.reference_id
                AND kind.enhancement_type = e.enhancement_type AND kind.source = e.source
        )
        SELECT uuid(), k.reference_id, e.enhancement_type, e.source, e.visibility,
            e.robot_version, e.processor_version, e.content, e.content_hash, now()
        FROM kept k JOIN {enhancements} e USING (line_number, position)
    """


def write_references(
    tables: TempTables, targets: str, identifiers: str, enhancements: str, rule: StrategyRule
) -> None:
    """Creates the new references and writes the batch's parts into its targets, as `rule`
    says for the stored ones."""
    conn = tables.conn
    conn.execute(_insert_new_references_sql(targets))
    if rule.takes_visibility:
        conn.execute(_take_visibility_sql(targets))
    if rule.identifiers is IdentifierMerge.REPLACE_SAME_TYPE:
        conn.execute(_remove_replaced_identifiers_sql(targets, identifiers))
    if rule.enhancements is EnhancementMerge.REPLACE_SAME_TYPE_AND_SOURCE:
        conn.execute(_remove_same_type_and_source_sql(targets, enhancements))
    elif rule.enhancements is EnhancementMerge.REPLACE_ALL:
        conn.execute(_remove_all_enhancements_sql(targets))
    stored_identifiers = tables.create("stored_identifiers", _stored_identifiers_sql(targets))
    stored_enhancements = tables.create("stored_enhancements", _stored_enhancements_sql(targets))
    conn.execute(
        _insert_identifiers_sql(targets, identifiers, stored_identifiers),
        {"new_types_only": rule.identifiers is IdentifierMerge.ADD_NEW_TYPES},
    )
    conn.execute(
        _insert_enhancements_sql(targets, enhancements, stored_enhancements),
        {"new_type_and_source_only": rule.enhancements is EnhancementMerge.ADD_NEW_TYPE_AND_SOURCE},
    )


def delete_results(conn: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    """The results of an older version of the batch go: the new ones replace them."""
    conn.execute("DELETE FROM import_results WHERE import_batch_id = ?", [batch_id])


def insert_results(conn: duckdb.DuckDBPyConnection, batch_id: str, results: pl.DataFrame) -> None:
    """Inserts a slice of the batch's results (`frames.RESULTS`)."""
    if results.is_empty():
        return
    conn.register("frame_results", results)
    try:
        conn.execute(
            """
            INSERT INTO import_results (id, import_batch_id, line_number, status,
                reference_id, errors, failure_details, unresolved_references, created_at)
            SELECT uuid(), $batch, line_number, status, reference_id::UUID, errors,
                failure_details, '[]', now() FROM frame_results
            """,
            {"batch": batch_id},
        )
    finally:
        conn.unregister("frame_results")


def finish_batch(
    conn: duckdb.DuckDBPyConnection,
    batch_id: str,
    checksum: str,
    physical_lines: int,
    blank_lines: int,
) -> None:
    """Records which version of the batch file the stored results are of."""
    conn.execute(
        """
        UPDATE import_batches SET checksum = ?, failure_details = NULL,
            physical_lines = ?, blank_lines = ?, updated_at = now()
        WHERE id = ?
        """,
        [checksum, physical_lines, blank_lines, batch_id],
    )
