"""The commands of the references and their duplicates: `reference`, `duplicates`, `decide`."""

from __future__ import annotations

import argparse
from pathlib import Path

from import_pipeline import store
from import_pipeline.cli import rendering
from import_pipeline.cli.common import Command, UsageProblem, bounded, parse_lookup, store_reader
from import_pipeline.domain.duplicates import Decision
from import_pipeline.settings import Settings
from import_pipeline.store.decision_history import HISTORY_FIELDS, decision_history


def cmd_reference(args: argparse.Namespace, settings: Settings) -> int:
    query = parse_lookup(args.lookup)
    with store_reader(settings, args.wait) as conn:
        doc = store.find_reference(conn, **query)
    rendering.emit(doc, args.json, rendering.render_reference)
    return 0


def cmd_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    if args.history is not None:  # REF as `reference` finds it
        with store_reader(settings, args.wait) as conn:
            ref = store.lookup_reference(conn, **parse_lookup(args.history))
            doc = decision_history(conn, ref)
        rendering.emit(doc, args.json, lambda d: rendering.table(d["history"], HISTORY_FIELDS))
        return 0
    if args.export is not None:
        return _export_maybe_pairs(args, settings)
    with store_reader(settings, args.wait) as conn:
        doc = store.list_decisions(
            conn, record_key=args.record, decision=args.decision, limit=args.limit,
            offset=args.offset,
        )  # fmt: skip
    rendering.emit(doc, args.json, rendering.render_duplicates)
    return 0


def _export_maybe_pairs(args: argparse.Namespace, settings: Settings) -> int:
    if args.decision != Decision.MAYBE:
        raise UsageProblem("--export writes the pairs a person should look at: --decision maybe")
    path = Path(args.export).absolute()
    with store_reader(settings, args.wait) as conn:
        doc = {"path": str(path), "pairs": store.export_file(conn, path, record_key=args.record)}
    rendering.emit(doc, args.json, lambda d: f"wrote {d['pairs']} maybe pair(s) to {d['path']}")
    return 0


def _decide_from(args: argparse.Namespace, settings: Settings) -> int:
    rows = store.read_review_file(Path(args.from_file))
    with store.connect(settings.store, memory_limit=settings.store_memory) as conn:
        doc = {"path": args.from_file, **store.apply_review(conn, rows)}
    rendering.emit(doc, args.json, lambda d: (
        f"applied {d['duplicate']} duplicate and {d['distinct']} distinct decision(s) "
        f"({d['made_canonical']} made canonical, {d['skipped']} row(s) without a decision)"
    ))  # fmt: skip
    return 0


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    if (args.from_file is None) == (args.reference is None):
        raise UsageProblem("decide takes REF with --duplicate-of or --distinct, or --from FILE")
    if args.from_file is not None:
        return _decide_from(args, settings)
    # REF and CANONICAL: any LOOKUP of `reference`, found as `reference` finds it.
    lookups = [parse_lookup(x) for x in (args.reference, args.duplicate_of) if x is not None]
    with store.connect(settings.store, memory_limit=settings.store_memory) as conn:
        found = [store.lookup_reference(conn, **lookup) for lookup in lookups]
        decided = store.decide(conn, found[0], duplicate_of=found[1] if args.duplicate_of else None)
    doc = {"reference_id": decided.reference_id, "decision": decided.decision.value,
           "duplicate_of": decided.duplicate_of, "decided_by": decided.decided_by.value}  # fmt: skip
    rendering.emit(doc, args.json, rendering.render_decision)
    return 0


def add_commands(command: Command) -> list[argparse.ArgumentParser]:
    """`reference`, `decide` and `duplicates`; returns the readers (they take `--wait`)."""
    reference = command(
        "reference", cmd_reference, "one reference with its identifiers and enhancements"
    )
    reference.add_argument(
        "lookup",
        help="a UUID, doi:…, pm_id:…, open_alex:…, eric:…, pro_quest:… or other:<name>:<value>",
    )
    p = command("decide", cmd_decide, "record a person's duplicate decisions (final)")
    lookup = "a UUID, doi:…, pm_id:…, open_alex:…, eric:…, pro_quest:… or other:<name>:<value>"
    p.add_argument("reference", nargs="?", metavar="REF", help=f"the reference: {lookup}")
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--duplicate-of", metavar="CANONICAL", help=f"the canonical: {lookup}")
    choice.add_argument("--distinct", action="store_true", help="not a duplicate of anything")
    choice.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE.csv",
        help="apply the decision column of a file --export wrote, all or none",
    )
    p = command("duplicates", cmd_duplicates, "duplicate decisions, a page at a time")
    p.add_argument("--record", help="only the references of this record's results")
    p.add_argument("--decision", choices=[d.value for d in Decision])
    p.add_argument("--limit", type=bounded(0, 500), default=20)
    p.add_argument("--offset", type=bounded(0, 100_000), default=0)
    p.add_argument(
        "--export",
        metavar="FILE.csv",
        help="with --decision maybe: every pair (no paging) into a CSV to fill in",
    )
    p.add_argument("--history", metavar="REF", help="every decision of REF, newest first")
    return [reference, p]
