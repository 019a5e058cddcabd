"""The first error of a run, kept where a full disk still takes it.

When the disk that holds the Dagster instance is full, a run that fails cannot record why:
its worker ends, and the run is later found with its worker gone (`run_workers`). So when a
run starts, its worker allocates a small file in the run's staging folder, and the first error
of the run's steps is written over those bytes, which needs no new space. The first, since
what follows it (the instance's own "disk I/O error") is its consequence. The run is then
failed with that error, and a full disk is retried as what passes (`domain.recovery`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_NAME = "first_error"
_BYTES = 4096

#: Where this process keeps its run's first error (a worker runs one run at a time), until
#: one is kept.
_kept_in: Path | None = None


def path_of(staging: Path, run_id: str) -> Path:
    return staging / run_id / FILE_NAME


def keep_in(path: Path | None) -> None:
    """From now on, errors are kept in `path`, allocated now (None: not kept any more)."""
    global _kept_in
    _kept_in = None
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(handle.fileno(), 0, _BYTES)
            else:  # macOS: written zeros hold their blocks as well
                handle.write(b"\0" * _BYTES)
    except OSError:
        return  # the disk is full already: the run says so itself, or never starts
    _kept_in = path


def remember(error: BaseException) -> None:
    """Writes `error` over the allocated bytes, if it is the run's first (nothing when none
    were allocated)."""
    global _kept_in
    if _kept_in is None:
        return
    text = f"{type(error).__name__}: {error}".encode(errors="replace")[:_BYTES]
    try:
        with _kept_in.open("r+b") as handle:
            handle.write(text.ljust(_BYTES, b"\0"))
    except OSError:
        return
    _kept_in = None


@contextmanager
def remembering() -> Iterator[None]:
    """Keeps what the block raises (`remember`), and raises it."""
    try:
        yield
    except BaseException as error:
        remember(error)
        raise


def read(staging: Path, run_id: str) -> str | None:
    """The first error a run's worker kept, if it kept one."""
    try:
        text = path_of(staging, run_id).read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return None
    return text.strip() or None
