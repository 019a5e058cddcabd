"""`import-pipeline`: the command line, a thin caller of the data path and the job.

Exit codes: 0 success, 1 not found, 2 bad arguments or unusable input (including a store
that stayed busy), with one clear line on stderr. Each module adds a group of commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from import_pipeline.cli import records, references, repair, tools
from import_pipeline.cli.common import UsageProblem
from import_pipeline.errors import (
    DecisionRefused,
    ImportPipelineError,
    LandingError,
    NotFound,
    StoreBusy,
)
from import_pipeline.settings import Settings, low_space_warnings

#: The command groups, in the order `--help` lists them.
GROUPS = (records, repair, references, tools)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="import-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(handler=handler)
        return p

    for group in GROUPS:
        for reader in group.add_commands(command):
            reader.add_argument(
                "--wait",
                type=float,
                default=None,
                help="seconds to wait while an import holds the store "
                "(default: IMPORT_PIPELINE_READ_WAIT, else 30)",
            )
    return parser


#: The exit code when the reader of the output went away (`… | head -1`): what a shell
#: reports for a command that SIGPIPE ended (128 + 13), as `cat` or `grep` would give, so a
#: script with `set -o pipefail` can tell that the output was cut; nothing is printed.
CLOSED_PIPE = 141


def _output_closed() -> int:
    """The reader of stdout is gone: what is still buffered for it goes nowhere (Python would
    otherwise try again at exit, and print that it failed), and the command ends quietly."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a file descriptor (a test's captured output)
        pass
    return CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        for line in low_space_warnings(settings):
            print(f"import-pipeline: {line}", file=sys.stderr)
        code = int(args.handler(args, settings))
        sys.stdout.flush()  # a closed pipe is found here, not at exit
        return code
    except BrokenPipeError:
        return _output_closed()
    except NotFound as exc:
        print(f"import-pipeline: {exc}", file=sys.stderr)
        return 1
    except (UsageProblem, LandingError, StoreBusy, DecisionRefused, ImportPipelineError) as exc:
        print(f"import-pipeline: {exc}", file=sys.stderr)
        return 2
