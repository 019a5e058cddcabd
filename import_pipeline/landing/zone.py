"""The landing zone (contract section 2) behind one small, fsspec-shaped interface.

Everything that decides what is a record, what is a batch and what is refused lives here; the
sensor, the ops and the CLI only call it. A local folder and an `s3://bucket/prefix` (s3fs,
credentials and endpoint from the standard AWS variables) are the tested backends; any fsspec
URL goes through the same calls. On object storage every listing is read afresh (fsspec would
otherwise cache it for the life of the process) and pages through any number of objects.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import unicodedata
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import fsspec

from import_pipeline.domain.formats import batch_extensions
from import_pipeline.errors import LandingError

RECORD_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RECORD_FILE = "record.json"
FINALISED_MARKER = "_finalised"
#: A batch is a DESTINY JSONL file or an export (contract section 10), gzipped or not.
BATCH_SUFFIXES = batch_extensions()
_IN_PROGRESS_SUFFIXES = (".tmp", ".part")
# Names a person could type; control characters (a newline in a name) are refused.
_SAFE_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,255}$")
_CHECKSUM_BLOCK = 8 * 1024 * 1024
#: Reads at once from object storage (each mostly waits on the network).
_REMOTE_READERS = 16
#: Local files hashed at once: one per core this process may use, at most four (hashlib lets
#: go of the GIL while it hashes; each reader holds a block).
_LOCAL_READERS = min(4, len(os.sched_getaffinity(0)))


def is_valid_record_key(key: str) -> bool:
    return bool(RECORD_KEY_PATTERN.fullmatch(key))


def record_key_problem(key: str) -> str | None:
    """Why `key` cannot be a record key (and so a partition), or None if it can."""
    if is_valid_record_key(key):
        return None
    return (
        f"folder name {key!r} is not a valid record key: it must match "
        f"{RECORD_KEY_PATTERN.pattern} (letters, digits, '_' and '-', at most 64 characters)"
    )


def batch_name_problem(name: str) -> str | None:
    """Why a file name in a record folder is not a batch, or None if it is one.

    Uploads in progress (leading `.` or `_`, trailing `.tmp` / `.part`) are not batches yet and
    give the reason "in progress"; callers ignore those silently.
    """
    if name.startswith((".", "_")) or name.endswith(_IN_PROGRESS_SUFFIXES):
        return "in progress"
    if not _SAFE_NAME.fullmatch(name):
        return f"batch name {name!r} contains a control character or a path separator"
    if name == RECORD_FILE:
        return f"{name!r} is the record, not a batch"
    if not name.lower().endswith(BATCH_SUFFIXES):
        return (
            f"{name!r} is not a batch: batch files end in "
            f"{', '.join(s for s in BATCH_SUFFIXES if not s.endswith('.gz'))} (or one of them "
            "followed by .gz)"
        )
    return None


@dataclass(frozen=True)
class BatchFile:
    """One batch file as listed: identity is (record_key, name, checksum)."""

    record_key: str
    name: str
    path: str
    url: str
    size: int
    version: str  # modification time or etag: with `size`, what must be stable before taking it


@dataclass(frozen=True)
class RecordFolder:
    key: str
    record_path: str | None
    batches: tuple[BatchFile, ...]
    finalised: bool
    ignored: tuple[str, ...] = ()  # files that are neither record, marker nor batch, with why


@dataclass(frozen=True)
class LandingScan:
    records: tuple[RecordFolder, ...]
    refused: tuple[str, ...] = field(default=())  # folder-level refusals, each a full sentence


class LandingZone:
    """A root folder (local path or fsspec URL) holding one folder per import record."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        self.root = root.rstrip("/") or "/"
        self._is_local = "file" in _protocols(self.fs)
        if self._is_local:
            self.root = os.path.realpath(self.root)

    def _ls(self, path: str) -> list[dict[str, Any]]:
        """A fresh listing: another process may have changed the zone since the last one."""
        if not self._is_local:
            self.fs.invalidate_cache()  # all of it: s3fs drops a path's parents, not its children
        entries: list[dict[str, Any]] = self.fs.ls(path, detail=True)
        return entries

    # -- reading -------------------------------------------------------------------------
    def _children(self) -> dict[str, list[dict[str, Any]]]:
        """Everything under a remote root in one paged listing, by parent folder: one request
        per thousand objects instead of one per folder."""
        self.fs.invalidate_cache()
        children: dict[str, list[dict[str, Any]]] = {}
        for path, entry in self.fs.find(self.root, withdirs=True, detail=True).items():
            children.setdefault(posixpath.dirname(path.rstrip("/")), []).append(entry)
        return children

    def scan(self) -> LandingScan:
        """Lists every record folder and its batches; refuses what the contract refuses."""
        if not self._is_local:
            children: dict[str, list[dict[str, Any]]] | None = self._children()
            top = (children or {}).get(self.root, [])
        elif self.fs.exists(self.root):
            children, top = None, self._ls(self.root)
        else:
            return LandingScan(records=())
        records: list[RecordFolder] = []
        refused: list[str] = []
        for entry in sorted(top, key=lambda e: e["name"]):
            name = posixpath.basename(entry["name"].rstrip("/"))
            if name in _DOT_SEGMENTS:
                refused.append(_dot_segment_problem(entry["name"]))
                continue
            if self._kind(entry) != "directory" or name.startswith((".", "_")):
                continue
            problem = self._outside_problem(entry) or record_key_problem(name)
            if problem:
                refused.append(problem)
                continue
            listed = None if children is None else children.get(self.path_of(name), [])
            records.append(self._record_folder(name, listed))
        return LandingScan(records=tuple(records), refused=tuple(refused))

    def record_folder(self, key: str) -> RecordFolder:
        if not is_valid_record_key(key):
            raise LandingError(record_key_problem(key) or key)
        return self._record_folder(key)

    def read_text(self, path: str) -> str:
        self._check_inside(path)
        with self.fs.open(path, "rb") as handle:
            return handle.read().decode("utf-8-sig")

    @contextmanager
    def open_binary(self, path: str) -> Iterator[IO[bytes]]:
        self._check_inside(path)
        with self.fs.open(path, "rb") as handle:
            yield handle

    def checksums(self, paths: list[str]) -> dict[str, str | None]:
        """`checksum` of each path (None: it disappeared, or was replaced while being read),
        several at a time: from object storage each read waits on the network, and local
        files are hashed on every core."""

        def one(path: str) -> str | None:
            try:
                return self.checksum(path)
            except FileNotFoundError:
                return None
            except OSError:
                if self._is_local:
                    raise
                return None  # replaced while read (its ETag no longer the listed one)

        readers = _LOCAL_READERS if self._is_local else _REMOTE_READERS
        if len(paths) < 2 or readers < 2:
            return {path: one(path) for path in paths}
        with ThreadPoolExecutor(readers) as pool:
            return dict(zip(paths, pool.map(one, paths), strict=True))

    def checksum(self, path: str) -> str:
        """SHA-256 of the stored bytes (the compressed bytes for .jsonl.gz)."""
        digest = hashlib.sha256()
        with self.open_binary(path) as handle:
            while block := handle.read(_CHECKSUM_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    def path_of(self, record_key: str, name: str = "") -> str:
        return (
            posixpath.join(self.root, record_key, name)
            if name
            else posixpath.join(self.root, record_key)
        )

    def url_of(self, path: str) -> str:
        """The URL of a listed path (`s3://bucket/…`, `file:///…`)."""
        if not self._is_local:
            return str(self.fs.unstrip_protocol(path))
        return path if "://" in self.url else f"file://{path}"

    # -- writing (the CLI's demo and ingest) -----------------------------------------------
    def put_file(self, local_path: str, record_key: str, name: str) -> str:
        """Copies a local file in under a temporary name, then renames: never seen half-written."""
        if not is_valid_record_key(record_key):
            raise LandingError(record_key_problem(record_key) or record_key)
        target = self.path_of(record_key, name)
        partial = self.path_of(record_key, f".{name}.{uuid.uuid4().hex}.part")
        self.fs.makedirs(self.path_of(record_key), exist_ok=True)
        self.fs.put_file(local_path, partial)
        self.fs.mv(partial, target)
        return target

    # -- internals -------------------------------------------------------------------------
    def _record_folder(self, key: str, listed: list[dict[str, Any]] | None = None) -> RecordFolder:
        """The folder of `key` from its entries (`listed`, or listed now)."""
        folder = self.path_of(key)
        record_path: str | None = None
        finalised = False
        batches: list[BatchFile] = []
        ignored: list[str] = []
        entries = self._ls_or_nothing(folder) if listed is None else listed
        for entry in sorted(entries, key=lambda e: e["name"]):
            name = posixpath.basename(entry["name"].rstrip("/"))
            if name in _DOT_SEGMENTS:
                ignored.append(_dot_segment_problem(entry["name"]))
                continue
            if name == FINALISED_MARKER:
                finalised = True
                continue
            if (not_a_file := self._not_a_file(entry, name)) is not None:
                if not_a_file:
                    ignored.append(not_a_file)
                continue
            outside = self._outside_problem(entry)
            if name == RECORD_FILE:
                if outside:
                    ignored.append(outside)
                else:
                    record_path = entry["name"]
                continue
            problem = batch_name_problem(name) or outside
            if problem == "in progress":
                continue
            if problem:
                ignored.append(problem)
                continue
            path = entry["name"]
            batches.append(
                BatchFile(
                    record_key=key,
                    name=name,
                    path=path,
                    url=self.url_of(path),
                    size=int(entry.get("size") or 0),
                    version=str(entry.get("mtime") or entry.get("ETag") or entry.get("etag") or ""),
                )
            )
        batches, ambiguous = _without_names_written_two_ways(batches)
        ignored.extend(ambiguous)
        return RecordFolder(
            key=key,
            record_path=record_path,
            batches=tuple(batches),
            finalised=finalised,
            ignored=tuple(ignored),
        )

    def _not_a_file(self, entry: dict[str, Any], name: str) -> str | None:
        """None for a file; "" for what is passed over in silence (a folder, an upload in
        progress); otherwise why the entry is refused (a FIFO, a link in a loop)."""
        kind = self._kind(entry)
        if kind == "file":
            return None
        if kind == "directory" or batch_name_problem(name) == "in progress":
            return ""
        return _not_a_file_problem(entry["name"])

    def _ls_or_nothing(self, folder: str) -> list[dict[str, Any]]:
        try:
            return self._ls(folder)
        except FileNotFoundError:
            return []

    def _kind(self, entry: dict[str, Any]) -> str:
        """ "file" or "directory"; a local link counts as what it points at."""
        if self._is_local and entry.get("islink"):
            target = os.path.realpath(entry["name"])
            return (
                "directory"
                if os.path.isdir(target)
                else "file"
                if os.path.isfile(target)
                else "other"
            )
        return str(entry["type"])

    def _outside_problem(self, entry: dict[str, Any]) -> str | None:
        if not self._is_local or not entry.get("islink"):
            return None
        name = entry["name"]
        if _is_under(os.path.realpath(name), self.root):
            return None
        return f"{name!r} is a link that leads outside the landing zone; refused"

    def _check_inside(self, path: str) -> None:
        inside = (
            _is_under(os.path.realpath(path), self.root)
            if self._is_local
            else _is_under(path, self.root) and not set(path.split("/")) & _DOT_SEGMENTS
        )
        if not inside:
            raise LandingError(f"{path!r} leads outside the landing zone {self.root!r}; refused")


#: Path segments that would lead elsewhere: an object key may hold them, a folder cannot.
_DOT_SEGMENTS = frozenset({".", ".."})


def _not_a_file_problem(path: str) -> str:
    return (
        f"{path!r} is not a regular file (a FIFO, a socket, a device, or a link that leads "
        f"nowhere or in a loop); refused"
    )


def escaped(name: str) -> str:
    """`name` with every character outside ASCII written as its escape: two names that differ
    only in how an accented letter is composed print differently."""
    return name.encode("ascii", "backslashreplace").decode("ascii")


def _without_names_written_two_ways(
    batches: list[BatchFile],
) -> tuple[list[BatchFile], list[str]]:
    """The batches whose names are one name in Unicode's composed form (NFC) only once, and a
    refusal for each name written several ways ("café" composed and decomposed): they print
    alike, so a person could not tell which is which. Both are refused until one is renamed."""
    by_form: dict[str, list[BatchFile]] = {}
    for batch in batches:
        by_form.setdefault(unicodedata.normalize("NFC", batch.name), []).append(batch)
    kept, problems = [], []
    for form, alike in by_form.items():
        if len(alike) == 1:
            kept.extend(alike)
            continue
        written = " and ".join(f"'{escaped(b.name)}'" for b in alike)
        problems.append(
            f"batch names {written} in record {alike[0].record_key} are the same name "
            f"('{escaped(form)}') written two ways (Unicode normalisation): both refused until "
            f"one is renamed"
        )
    return kept, problems


def _dot_segment_problem(path: str) -> str:
    return f"{path!r} has a '.' or '..' segment, which would lead elsewhere; refused"


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
