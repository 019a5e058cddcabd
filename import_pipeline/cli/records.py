"""The commands of a record's import: `demo`, `ingest`, `summary`, `results`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from import_pipeline import store
from import_pipeline.cli import rendering
from import_pipeline.cli.common import (
    Command,
    RunImport,
    UsageProblem,
    bounded,
    imported_checksums,
    prepared_import,
    store_reader,
)
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.errors import NotFound
from import_pipeline.landing import LandingZone, uploads
from import_pipeline.landing.records import BatchVersion, folder_refusal, read_record
from import_pipeline.landing.zone import escaped
from import_pipeline.settings import Settings


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from import_pipeline.landing.demo import install_demo

    keys = install_demo(LandingZone(settings.landing))
    rendering.emit(
        {"landing": settings.landing, "records": keys},
        args.json,
        lambda d: (
            f"put {len(d['records'])} sample records into {d['landing']}: "
            + ", ".join(d["records"])
        ),
    )
    return 0


def _import_copied(
    landing: LandingZone,
    key: str,
    upload: uploads.Upload,
    checksums: dict[str, str],
    run_import: RunImport,
) -> str:
    reading = read_record(landing, landing.record_folder(key))
    if reading.record is None:
        raise UsageProblem(reading.problem or "invalid record.json")
    print(
        f"copied {len(upload.batches)} batch file(s) into {landing.url}/{key}; importing…",
        file=sys.stderr,
    )
    return run_import([BatchVersion(n, c) for n, c in checksums.items()], False)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    landing = LandingZone(settings.landing)
    upload = uploads.plan_upload(Path(args.path).resolve(), args.record, landing)
    key = upload.record_key
    # Held until the import has read what this copied: no other ingest replaces it meanwhile.
    with uploads.exclusive(upload, landing, settings.home / "locks"):
        checksums = {name: uploads.local_checksum(path) for path, name in upload.batches}
        if lost := uploads.replaced_unimported(
            upload, checksums, landing, imported_checksums(settings, key)
        ):
            raise UsageProblem("; ".join(lost))
        with prepared_import(settings, key) as run_import:
            uploads.put(upload, landing)
            run_id = _import_copied(landing, key, upload, checksums, run_import)
    print(f"run {run_id} finished", file=sys.stderr)
    with store_reader(settings, None) as conn:
        doc = store.record_summary(conn, key)
        imported = store.imported_checksums(conn, key)
    rendering.emit(doc, args.json, rendering.render_summary)
    reasons = {b["name"]: b["failure_details"] for b in doc["batches"]}
    not_imported = [
        f"{escaped(name)}: {reasons.get(name) or 'refused in the landing zone (see the run log)'}"
        for name, checksum in checksums.items()
        if imported.get(name) != checksum
    ]
    if not_imported:
        raise UsageProblem("what this ingest copied was not imported: " + "; ".join(not_imported))
    return 0


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with store_reader(settings, args.wait) as conn:
            doc = store.record_summary(conn, args.key)
    except NotFound as exc:
        # Not in the store: a folder the landing zone refuses says why (exit 2, not 1).
        if problem := folder_refusal(LandingZone(settings.landing), args.key):
            raise UsageProblem(f"{exc}: the landing zone refuses its folder: {problem}") from exc
        raise
    rendering.emit(doc, args.json, rendering.render_summary)
    return 0


def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    with store_reader(settings, args.wait) as conn:
        doc = store.list_results(
            conn,
            args.key,
            batch=args.batch,
            status=args.status,
            limit=args.limit,
            offset=args.offset,
        )
    rendering.emit(doc, args.json, rendering.render_results)
    return 0


def add_commands(command: Command) -> list[argparse.ArgumentParser]:
    """Adds this module's commands; returns the readers (they take `--wait`)."""
    command("demo", cmd_demo, "put the bundled sample records into the landing zone")
    p = command(
        "ingest", cmd_ingest, "copy a record folder (or one batch file) in and import it now"
    )
    p.add_argument("path", help="a record folder (with record.json) or one batch file")
    p.add_argument("--record", help="the record key (default: the folder's name)")
    summary = command("summary", cmd_summary, "a record's status and result counts per batch")
    summary.add_argument("key")
    p = command("results", cmd_results, "a record's results, by batch then line")
    p.add_argument("key")
    p.add_argument("--batch", help="only this batch (its file name)")
    p.add_argument(
        "--status",
        choices=[s.value for s in ImportResultStatus],
        action="append",
        help="only results of this status (repeat for several)",
    )
    p.add_argument("--limit", type=bounded(0, 500), default=20)
    p.add_argument("--offset", type=bounded(0, 10_000), default=0)
    return [summary, p]
