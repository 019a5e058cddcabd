"""`import-pipeline`: the command line (contract section 6), a thin caller of the data path.

Exit codes: 0 success, 1 not found, 2 bad arguments or unusable input (including a store
that stayed busy), with one clear line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb

from import_pipeline import rendering, store
from import_pipeline.daemon_site import SITE_FOLDER
from import_pipeline.domain.duplicates import Decision
from import_pipeline.domain.formats import FORMATS
from import_pipeline.domain.identifiers import TRUSTED_TYPES, IdentifierType, normalise_identifier
from import_pipeline.domain.lines import batch_line_json_schema
from import_pipeline.domain.statuses import ImportResultStatus
from import_pipeline.errors import (
    BatchUnreadable,
    DecisionRefused,
    ImportPipelineError,
    LandingError,
    NotFound,
    StoreBusy,
)
from import_pipeline.landing import LandingZone, uploads
from import_pipeline.landing.records import BatchVersion, read_record
from import_pipeline.landing.zone import escaped
from import_pipeline.pipeline import progress
from import_pipeline.pipeline.exports import convert_file
from import_pipeline.settings import Settings, low_space_warnings, python_path_with
from import_pipeline.store.decision_history import HISTORY_FIELDS, decision_history


class UsageProblem(ImportPipelineError):
    """Bad arguments or unusable input: exit 2."""


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def prepare_dagster_home(settings: Settings) -> Path:
    """Points DAGSTER_HOME at a lasting folder with the shipped dagster.yaml (contract §1),
    its storage on PostgreSQL when DAGSTER_POSTGRES_URL is set (§9)."""
    from import_pipeline.defs.instance import write_instance_config

    home = settings.dagster_home
    write_instance_config(home, postgres=settings.dagster_postgres_url is not None)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.dagster_postgres_url is not None:  # with its driver, for every process started
        os.environ["DAGSTER_POSTGRES_URL"] = settings.dagster_postgres_url
    return home


def _reading(
    settings: Settings, wait: float | None
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only store connection, waiting up to `wait` seconds (the setting's unless
    given) for a writer to finish."""
    return store.connect(
        settings.store,
        read_only=True,
        wait_seconds=settings.read_wait_seconds if wait is None else wait,
        memory_limit=settings.store_memory,
    )


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


def _imported_checksums(settings: Settings, key: str) -> dict[str, str]:
    """Batch name → checksum of the version the store has, for record `key` (none: no store)."""
    try:
        with _reading(settings, None) as conn:
            return store.imported_checksums(conn, key)
    except NotFound:
        return {}


def _run_import(settings: Settings, key: str, versions: list[BatchVersion]) -> str:
    """Imports `versions` of record `key` now, in this process, through the job the sensor
    launches; the run's id. Raises `UsageProblem` if the run failed."""
    prepare_dagster_home(settings)
    import dagster as dg

    from import_pipeline.defs import build_defs
    from import_pipeline.defs.jobs import import_record_job, run_config_for
    from import_pipeline.defs.partitions import IMPORT_RECORDS
    from import_pipeline.defs.recovery import settle_ended_run
    from import_pipeline.defs.resources import ImportPipelineResource
    from import_pipeline.defs.tags import run_tags

    with dg.DagsterInstance.get() as instance, progress.listening(progress.to_terminal()):
        instance.add_dynamic_partitions(IMPORT_RECORDS, [key])
        result = (
            build_defs(settings)
            .resolve_job_def(import_record_job.name)
            .execute_in_process(
                partition_key=key,
                instance=instance,
                run_config=run_config_for(versions),
                tags=run_tags(key, versions, source="cli"),
                raise_on_error=False,
            )
        )
        if not result.success and (run := instance.get_run_by_id(result.run_id)) is not None:
            # No batch left `started` by this run, with or without a daemon to settle it.
            settle_ended_run(instance, run, ImportPipelineResource.from_settings(settings))
    if not result.success:
        failure = next((e for e in result.all_events if e.is_failure), None)
        message = failure.message if failure else "the import run failed"
        raise UsageProblem(f"import of record {key!r} failed (run {result.run_id}): {message}")
    return result.run_id


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    landing = LandingZone(settings.landing)
    upload = uploads.plan_upload(Path(args.path).resolve(), args.record, landing)
    key = upload.record_key
    # Held until the import has read what this copied: no other ingest replaces it meanwhile.
    with uploads.exclusive(upload, landing, settings.home / "locks"):
        checksums = {name: uploads.local_checksum(path) for path, name in upload.batches}
        if lost := uploads.replaced_unimported(
            upload, checksums, landing, _imported_checksums(settings, key)
        ):
            raise UsageProblem("; ".join(lost))
        uploads.put(upload, landing)
        reading = read_record(landing, landing.record_folder(key))
        if reading.record is None:
            raise UsageProblem(reading.problem or "invalid record.json")
        print(
            f"copied {len(upload.batches)} batch file(s) into {landing.url}/{key}; importing…",
            file=sys.stderr,
        )
        run_id = _run_import(settings, key, [BatchVersion(n, c) for n, c in checksums.items()])
    print(f"run {run_id} finished", file=sys.stderr)
    with _reading(settings, None) as conn:
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
    with _reading(settings, args.wait) as conn:
        doc = store.record_summary(conn, args.key)
    rendering.emit(doc, args.json, rendering.render_summary)
    return 0


def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    with _reading(settings, args.wait) as conn:
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


def parse_lookup(lookup: str) -> dict[str, str | None]:
    """`UUID`, `doi:…`, `pm_id:…`, `open_alex:…`, `eric:…`, `pro_quest:…` or `other:<name>:<value>`."""
    try:
        return {"reference_id": str(uuid.UUID(lookup))}
    except ValueError:
        pass
    kind, sep, value = lookup.partition(":")
    if not sep or kind not in {t.value for t in IdentifierType}:
        raise UsageProblem(
            f"cannot read {lookup!r}: expected a UUID or one of "
            + ", ".join(f"{t}:…" for t in sorted(TRUSTED_TYPES))
            + ", other:<name>:<value>"
        )
    name = None
    if kind == IdentifierType.OTHER:
        name, sep, value = value.partition(":")
        if not sep or not name.strip():
            raise UsageProblem("an other identifier is looked up as other:<name>:<value>")
        name = name.strip()
    normalised = normalise_identifier(kind, value)
    if normalised is None:
        raise UsageProblem(f"{value!r} is not a valid {kind} identifier")
    return {"identifier_type": kind, "identifier": normalised, "other_identifier_name": name}


def cmd_reference(args: argparse.Namespace, settings: Settings) -> int:
    query = parse_lookup(args.lookup)
    with _reading(settings, args.wait) as conn:
        doc = store.find_reference(conn, **query)
    rendering.emit(doc, args.json, rendering.render_reference)
    return 0


def cmd_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    if args.history is not None:  # REF as `reference` finds it
        with _reading(settings, args.wait) as conn:
            ref = store.find_reference(conn, **parse_lookup(args.history))["id"]
            doc = decision_history(conn, ref)
        rendering.emit(doc, args.json, lambda d: rendering.table(d["history"], HISTORY_FIELDS))
        return 0
    if args.export is not None:
        return _export_maybe_pairs(args, settings)
    with _reading(settings, args.wait) as conn:
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
    with _reading(settings, args.wait) as conn:
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
        found = [store.find_reference(conn, **lookup)["id"] for lookup in lookups]
        decided = store.decide(conn, found[0], duplicate_of=found[1] if args.duplicate_of else None)
    doc = {"reference_id": decided.reference_id, "decision": decided.decision.value,
           "duplicate_of": decided.duplicate_of, "decided_by": decided.decided_by.value}  # fmt: skip
    rendering.emit(doc, args.json, rendering.render_decision)
    return 0


def cmd_convert(args: argparse.Namespace, settings: Settings) -> int:
    """The DESTINY lines an export becomes on stdout; each entry's problem on stderr."""
    failed = 0
    try:
        for entry in convert_file(Path(args.file), args.format, args.encoding, args.source):
            if entry.line is None:
                failed += 1
                print(f"line {entry.line_number}: {entry.problem}", file=sys.stderr)
            else:
                print(entry.line)
    except BatchUnreadable as exc:
        raise UsageProblem(f"{args.file}: {exc.reason}") from exc
    except (OSError, LookupError) as exc:  # no such file; no such encoding
        raise UsageProblem(f"{args.file}: {exc}") from exc
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(batch_line_json_schema(), indent=2))
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Starts `dagster dev` (webserver + daemon) with this project's lasting instance."""
    prepare_dagster_home(settings)
    os.environ.setdefault("IMPORT_PIPELINE_HOME", str(settings.home))
    # Every process dagster dev starts loads `daemon_site/sitecustomize.py`: a daemon that
    # cannot write its instance (the disk full) logs each repeated error once a minute.
    os.environ["PYTHONPATH"] = python_path_with(SITE_FOLDER)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    argv = [
        dagster,
        "dev",
        "-m",
        "import_pipeline.definitions",
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    os.execv(dagster, argv)
    return 0  # not reached


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _add_duplicate_commands(
    command: Callable[[str, Callable[..., int], str], argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """`duplicates` (returned: a reader) and `decide` (contract section 8)."""
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
    p.add_argument("--limit", type=_bounded(0, 500), default=20)
    p.add_argument("--offset", type=_bounded(0, 100_000), default=0)
    p.add_argument(
        "--export",
        metavar="FILE.csv",
        help="with --decision maybe: every pair (no paging) into a CSV to fill in",
    )
    p.add_argument("--history", metavar="REF", help="every decision of REF, newest first")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="import-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(handler=handler)
        return p

    command("demo", cmd_demo, "put the bundled sample records into the landing zone")
    p = command(
        "ingest", cmd_ingest, "copy a record folder (or one batch file) in and import it now"
    )
    p.add_argument("path", help="a record folder (with record.json) or one batch file")
    p.add_argument("--record", help="the record key (default: the folder's name)")
    readers = []
    p = command("summary", cmd_summary, "a record's status and result counts per batch")
    p.add_argument("key")
    readers.append(p)
    p = command("results", cmd_results, "a record's results, by batch then line")
    p.add_argument("key")
    p.add_argument("--batch", help="only this batch (its file name)")
    p.add_argument(
        "--status",
        choices=[s.value for s in ImportResultStatus],
        action="append",
        help="only results of this status (repeat for several)",
    )
    p.add_argument("--limit", type=_bounded(0, 500), default=20)
    p.add_argument("--offset", type=_bounded(0, 10_000), default=0)
    readers.append(p)
    p = command("reference", cmd_reference, "one reference with its identifiers and enhancements")
    p.add_argument(
        "lookup",
        help="a UUID, doi:…, pm_id:…, open_alex:…, eric:…, pro_quest:… or other:<name>:<value>",
    )
    readers.append(p)
    readers.append(_add_duplicate_commands(command))
    for reader in readers:
        reader.add_argument(
            "--wait",
            type=float,
            default=None,
            help="seconds to wait while an import holds the store "
            "(default: IMPORT_PIPELINE_READ_WAIT, else 30)",
        )
    p = command("convert", cmd_convert, "print the DESTINY lines an export file becomes")
    p.add_argument("file", help="a RIS, MEDLINE, BibTeX, EndNote, CSV/TSV or EPPI JSON file")
    p.add_argument(
        "--format", choices=sorted(set(FORMATS) - {"jsonl"}), help="default: told by the name"
    )
    p.add_argument("--encoding", help="when the file has no byte order mark (default UTF-8)")
    p.add_argument("--source", default="convert", help="the source of entries naming no database")
    command("schema", cmd_schema, "the JSON Schema of a batch line")
    p = command("dev", cmd_dev, "start the Dagster UI and daemon (sensor on) for this project")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        for line in low_space_warnings(settings):
            print(f"import-pipeline: {line}", file=sys.stderr)
        return int(args.handler(args, settings))
    except NotFound as exc:
        print(f"import-pipeline: {exc}", file=sys.stderr)
        return 1
    except (UsageProblem, LandingError, StoreBusy, DecisionRefused, ImportPipelineError) as exc:
        print(f"import-pipeline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
