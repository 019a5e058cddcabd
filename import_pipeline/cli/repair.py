"""The commands that fix what failed: `failures`, `patch`, `reimport` (contract section 11).

`failures` reads each batch's failing results in a short store connection, then the lines
from the landing zone, so an import is never held up by a long listing. `patch` writes each
new version beside the landing zone, then copies it in under the lock `ingest` takes, and
imports it through the same job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from import_pipeline import repair
from import_pipeline.cli import rendering
from import_pipeline.cli.common import (
    Command,
    UsageProblem,
    prepared_import,
    run_import,
    store_reader,
)
from import_pipeline.errors import NotFound
from import_pipeline.landing import LandingZone, uploads
from import_pipeline.landing.records import BatchVersion
from import_pipeline.landing.zone import escaped
from import_pipeline.repair.offending import shown
from import_pipeline.repair.text import printable
from import_pipeline.settings import Settings
from import_pipeline.store import failures as stored
from import_pipeline.store.failures import FAILING, FailingLine


def failing_entries(
    settings: Settings, key: str, names: list[str], statuses: list[str], wait: float | None
) -> Iterator[dict[str, Any]]:
    """The failures documents of `names`' failing lines, batch by batch, each with its text."""
    landing = LandingZone(settings.landing)
    for name in names:
        with store_reader(settings, wait) as conn:
            lines = list(stored.failing_lines(conn, key, name, statuses))
        if not lines:
            continue
        starts = [(line.line_number, line.next_entry) for line in lines]
        found = repair.entry_texts(landing, key, name, lines[0].checksum, starts)
        for line in lines:
            yield _failure(line, found[line.line_number])


def _failure(line: FailingLine, text: str) -> dict[str, Any]:
    return {
        "batch": line.batch,
        "checksum": line.checksum,
        "line_number": line.line_number,
        "status": line.status,
        "errors": line.errors,
        "text": text,
    }


def cmd_failures(args: argparse.Namespace, settings: Settings) -> int:
    statuses = args.status or list(FAILING)
    with store_reader(settings, args.wait) as conn:
        count = stored.count_failing(conn, args.key, args.batch, statuses)
        names = stored.failing_batches(conn, args.key, args.batch, statuses)
    failures = failing_entries(settings, args.key, names, statuses, args.wait)
    if args.out is not None:
        with open(args.out, "w", encoding="utf-8", newline="\n") as out:
            written = sum(_write_json_line(out, failure) for failure in failures)
        doc = {"path": str(Path(args.out).absolute()), "count": written}
        rendering.emit(
            doc, args.json, lambda d: f"wrote {d['count']} failing line(s) to {d['path']}"
        )
    elif args.json:
        _stream_document(count, failures, sys.stdout)
    else:
        print(f"{count} failing line(s) in record {args.key}")
        for failure in failures:  # streamed: a block a line, whole messages, nothing held
            print(_block(failure))
    return 0


def _block(failure: dict[str, Any]) -> str:
    """A failing line for a terminal: where, each error whole, then the text (cut)."""
    lines = [f"\n{failure['batch']} line {failure['line_number']} ({failure['status']})"]
    lines += [
        f"  {e.get('field') or '(the whole line)'}: {e['code']}: {e['message']}"
        for e in failure["errors"]
    ]
    text = printable(failure["text"]).replace("\r", "\\r").replace("\n", "\\n")
    lines.append(f"  text: {shown(text, 400)}")
    return "\n".join(lines)


def _write_json_line(out: IO[str], failure: dict[str, Any]) -> int:
    out.write(repair.json_text(json.dumps(failure, ensure_ascii=False)) + "\n")
    return 1


def _stream_document(count: int, failures: Iterator[dict[str, Any]], out: IO[str]) -> None:
    """`{"count": …, "failures": […]}`, one failure a line, never all of them held."""
    out.write(f'{{"count": {count}, "failures": [')
    for index, failure in enumerate(failures):
        out.write(("," if index else "") + "\n  ")
        out.write(repair.json_text(json.dumps(failure, ensure_ascii=False)))
    out.write("\n]}\n")


# -- patch -------------------------------------------------------------------------------


def read_patch(path: Path) -> dict[str, dict[int, tuple[str, str]]]:
    """Batch → line number → (checksum, new text), from a file as `failures --out` writes."""
    patches: dict[str, dict[int, tuple[str, str]]] = {}
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"{path}: {exc.strerror}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            batch, line_number, checksum, text = _patch_line(path, number, line)
            lines = patches.setdefault(batch, {})
            if line_number in lines:
                raise UsageProblem(f"{path}:{number}: line {line_number} of {batch} twice")
            lines[line_number] = (checksum, text)
    if not patches:
        raise UsageProblem(f"{path} names no line to patch")
    return patches


def _patch_line(path: Path, number: int, line: str) -> tuple[str, int, str, str]:
    where = f"{path}:{number}"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"{where}: not a JSON object ({exc.msg})") from exc
    if not isinstance(item, dict):
        raise UsageProblem(f"{where}: not a JSON object")
    kinds = {"batch": str, "checksum": str, "line_number": int, "text": str}
    for name, kind in kinds.items():
        if not isinstance(item.get(name), kind) or isinstance(item.get(name), bool):
            raise UsageProblem(f"{where}: {name!r} missing or not a {kind.__name__}")
    return item["batch"], item["line_number"], item["checksum"], item["text"]


def _checked_patch(
    settings: Settings, key: str, batch: str, lines: dict[int, tuple[str, str]]
) -> dict[int, FailingLine]:
    """The entries a batch's patch replaces, as the store has them; refuses a batch or line
    that does not exist, or a batch imported again since the export."""
    with store_reader(settings, None) as conn:
        try:
            stored.check_exists(conn, key, batch)
        except NotFound as exc:
            raise UsageProblem(str(exc)) from exc
        entries = stored.entry_lines(conn, key, batch, sorted(lines))
    for line_number, (checksum, _) in sorted(lines.items()):
        entry = entries.get(line_number)
        if entry is None:
            raise UsageProblem(f"batch {escaped(batch)} has no entry at line {line_number}")
        if entry.checksum != checksum:
            raise UsageProblem(
                f"batch {escaped(batch)} has changed since the export (it is now imported at "
                f"{entry.checksum[:12]}…, the export read {checksum[:12]}…): read its failures "
                f"again"
            )
    return entries


def _write_version(
    landing: LandingZone,
    key: str,
    batch: str,
    lines: dict[int, tuple[str, str]],
    entries: dict[int, FailingLine],
    folder: Path,
) -> Path:
    """The batch's new version, written into `folder`."""
    checksum = next(iter(lines.values()))[0]
    found = repair.checked_version(landing, key, batch, checksum)
    form = repair.batch_form(landing, key, found)
    replacements = {}
    for line_number, (_, text) in lines.items():
        if form.one_line_entries and "\n" in text:
            raise UsageProblem(f"line {line_number} of {escaped(batch)}: a JSONL line is one line")
        (span,) = repair.spans_of(
            [(line_number, entries[line_number].next_entry)], form.one_line_entries
        )
        replacements[span] = text
    path = folder / f"{len(list(folder.iterdir()))}.batch"
    with landing.open_binary(found.path) as handle, path.open("wb") as out:
        try:
            repair.write_patched(handle, form, replacements, out)
        except repair.EntryNotReplaceable as exc:
            raise UsageProblem(f"batch {escaped(batch)}: {exc}") from exc
    return path


def cmd_patch(args: argparse.Namespace, settings: Settings) -> int:
    patches = read_patch(Path(args.file))
    landing = LandingZone(settings.landing)
    checked = {
        batch: _checked_patch(settings, args.key, batch, lines) for batch, lines in patches.items()
    }
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=_scratch(settings))))
        written = [
            (_write_version(landing, args.key, batch, lines, checked[batch], folder), batch)
            for batch, lines in sorted(patches.items())
        ]
        upload = uploads.Upload(args.key, None, tuple(written))
        stack.enter_context(uploads.exclusive(upload, landing, settings.home / "locks"))
        for batch, lines in patches.items():  # nobody replaced it meanwhile
            repair.checked_version(landing, args.key, batch, next(iter(lines.values()))[0])
        run_import = stack.enter_context(prepared_import(settings, args.key))
        uploads.put(upload, landing)
        versions = [BatchVersion(name, uploads.local_checksum(path)) for path, name in written]
        print(
            f"patched {sum(map(len, patches.values()))} line(s) of {len(written)} batch(es) in "
            f"record {args.key}; importing…",
            file=sys.stderr,
        )
        run_id = run_import(versions, False)
    print(f"run {run_id} finished", file=sys.stderr)
    return _summarise(settings, args)


def _scratch(settings: Settings) -> Path:
    folder = settings.home / "patches"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _summarise(settings: Settings, args: argparse.Namespace) -> int:
    from import_pipeline import store

    with store_reader(settings, None) as conn:
        doc = store.record_summary(conn, args.key)
    rendering.emit(doc, args.json, rendering.render_summary)
    return 0


# -- reimport ----------------------------------------------------------------------------


def cmd_reimport(args: argparse.Namespace, settings: Settings) -> int:
    landing = LandingZone(settings.landing)
    names = [b.name for b in landing.record_folder(args.key).batches]
    if args.batch is not None:
        if args.batch not in names:
            raise UsageProblem(
                f"record {args.key} has no batch {escaped(args.batch)} in the landing zone"
            )
        names = [args.batch]
    if not names:
        raise UsageProblem(f"record {args.key} has no batch in the landing zone")
    print(f"importing {len(names)} batch(es) of record {args.key} again…", file=sys.stderr)
    run_id = run_import(settings, args.key, [BatchVersion(name) for name in names], again=True)
    print(f"run {run_id} finished", file=sys.stderr)
    return _summarise(settings, args)


def add_commands(command: Command) -> list[argparse.ArgumentParser]:
    """`failures` (returned: a reader), `patch` and `reimport`."""
    p = command("failures", cmd_failures, "every failing line of a record, with its text")
    p.add_argument("key")
    p.add_argument("--batch", help="only this batch (its file name)")
    p.add_argument("--status", choices=list(FAILING), action="append",
                   help="only lines of this status (repeat for both; default both)")  # fmt: skip
    p.add_argument("--out", metavar="FILE", help="write one JSON object a line, ready to edit")
    patch = command("patch", cmd_patch, "replace failing lines with fixed ones and import")
    patch.add_argument("key")
    patch.add_argument("file", help="a file `failures --out` wrote, its texts edited")
    again = command("reimport", cmd_reimport, "import a record's batches again, unchanged ones too")
    again.add_argument("key")
    again.add_argument("--batch", help="only this batch (its file name)")
    return [p]
