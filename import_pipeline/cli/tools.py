"""The tools around an import: `convert`, `schema`, `dev`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from import_pipeline.cli.common import Command, UsageProblem, prepare_dagster_home
from import_pipeline.daemon_site import SITE_FOLDER
from import_pipeline.domain.formats import FORMATS
from import_pipeline.domain.lines import batch_line_json_schema
from import_pipeline.errors import BatchUnreadable
from import_pipeline.pipeline.exports import convert_file
from import_pipeline.settings import Settings, python_path_with


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


def add_commands(command: Command) -> list[argparse.ArgumentParser]:
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
    return []
