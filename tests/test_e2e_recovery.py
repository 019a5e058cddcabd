"""Killing things under the real `dagster dev`, as an operator would: a run's worker killed
mid-store, the whole `dagster dev` killed mid-store and started again, the disk filled during
the store step. Each ends with every record imported, with no one acting, in bounded time,
and the store's content equal to a clean import's."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from import_pipeline.defs.recovery import RecoveryTags
from import_pipeline.defs.run_workers import WORKER_TAG
from import_pipeline.landing import LandingZone
from import_pipeline.settings import Settings

from .conftest import import_directly
from .dagster_dev import DagsterDev, dagster_dev
from .test_faults import canonical_store, synthetic_lines

pytestmark = pytest.mark.e2e

RECORD = {"source_name": "t", "processor_name": "t", "processor_version": "1", "expected_reference_count": -1}  # fmt: skip
#: Fast retries, so that the tests wait seconds, not minutes.
ENV = {"IMPORT_PIPELINE_RETRY_SECONDS": "2"}
#: Enough lines for the store step to take a few seconds.
LINES = 60_000


def _drop(home: Path, key: str, lines: str) -> None:
    folder = home / "landing" / key
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(RECORD))
    (folder / "batch.jsonl").write_text(lines)


def _storing_run(dev: DagsterDev, key: str, timeout: float = 240) -> dict:
    """The run of `key` once its store step (`resolve_batches`) is under way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for listed in dev.runs(key):
            run = dev.run(listed["runId"])
            if any("resolve_batches" in s["stepKey"] and s["status"] == "IN_PROGRESS" for s in run["stepStats"]):  # fmt: skip
                return run
            assert run["status"] not in ("SUCCESS", "FAILURE"), f"{key} ended before its store step"
        time.sleep(0.1)
    raise AssertionError(f"{key} never reached its store step:\n{dev.log.read_text()[-3000:]}")


def _wait(what: str, done: Callable[[], bool], dev: DagsterDev, timeout: float = 300) -> float:
    """Waits until `done()`; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if done():
                return time.monotonic() - started
        except OSError:
            pass  # the webserver answers 500 while the instance cannot be read
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout}s:\n{dev.log.read_text()[-4000:]}")


def _imported(dev: DagsterDev, key: str) -> bool:
    """Every batch of `key` completed, by a run that succeeded."""
    if not any(r["status"] == "SUCCESS" for r in dev.runs(key)):
        return False
    done = dev.cli("summary", key, "--json", "--wait", "5")
    return done.returncode == 0 and all(
        b["status"] == "completed" for b in json.loads(done.stdout)["batches"]
    )


def _clean_import(tmp_path: Path, records: dict[str, str]) -> tuple[dict[str, int], str]:
    """The store a clean import of `records` (key → lines) makes, in their order."""
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": str(tmp_path / "clean")})
    landing = LandingZone(settings.landing)
    for key, lines in records.items():
        _drop(settings.home, key, lines)
        import_directly(settings, landing, key)
    return canonical_store(settings)


def _store_of(dev: DagsterDev) -> tuple[dict[str, int], str]:
    return canonical_store(Settings.from_env({"IMPORT_PIPELINE_HOME": str(dev.home)}))


def _retried(dev: DagsterDev, key: str, failed_run: str) -> dict:
    """The run that retried `failed_run`, and what the failed run says of it."""
    runs = [dev.run(r["runId"]) for r in dev.runs(key)]
    (retry,) = [r for r in runs if r["tags"].get(RecoveryTags.RETRY_OF) == failed_run]
    return retry


def test_a_run_worker_killed_mid_store_frees_the_writer_and_is_retried(tmp_path: Path) -> None:
    first, second = synthetic_lines(LINES), synthetic_lines(500, offset=LINES * 2)
    with dagster_dev(tmp_path, env=ENV) as dev:
        _drop(dev.home, "first", first)
        killed = _storing_run(dev, "first")
        os.kill(int(killed["tags"][WORKER_TAG].split(":")[1]), signal.SIGKILL)
        _drop(dev.home, "second", second)  # it needs the writer the dead run held
        seconds = _wait(
            "both records imported",
            lambda: _imported(dev, "first") and _imported(dev, "second"),
            dev,
        )
        print(f"killed worker: both records imported {seconds:.1f}s after the kill")
        failed = dev.run(killed["runId"])
        assert failed["status"] == "FAILURE"
        store_step = next(s for s in failed["stepStats"] if "resolve_batches" in s["stepKey"])
        assert store_step["status"] != "SUCCESS"  # killed inside it
        assert _retried(dev, "first", killed["runId"])["status"] == "SUCCESS"
        assert failed["tags"][RecoveryTags.RETRY] == "launched"
        assert not list((dev.home / "staging").glob(f"{killed['runId']}*"))
        content = _store_of(dev)
    assert content == _clean_import(tmp_path, {"first": first, "second": second})


def test_dagster_dev_killed_mid_store_recovers_once_started_again(tmp_path: Path) -> None:
    lines = synthetic_lines(LINES)
    with dagster_dev(tmp_path, env=ENV) as dev:
        _drop(dev.home, "rec", lines)
        killed = _storing_run(dev, "rec")
        worker = int(killed["tags"][WORKER_TAG].split(":")[1])
        dev.kill()  # the webserver, the daemon, the code server and the run's worker with them
        _wait("the worker gone", lambda: not Path(f"/proc/{worker}").exists(), dev, timeout=30)
    with dagster_dev(tmp_path, env=ENV) as dev:
        seconds = _wait("the record imported", lambda: _imported(dev, "rec"), dev)
        print(f"dagster dev killed: the record imported {seconds:.1f}s after the restart")
        ghost = dev.run(killed["runId"])
        assert ghost["status"] == "FAILURE"
        assert _retried(dev, "rec", killed["runId"])["status"] == "SUCCESS"
        summary = json.loads(dev.cli("summary", "rec", "--json").stdout)
        assert summary["total"] == LINES
        content = _store_of(dev)
    assert content == _clean_import(tmp_path, {"rec": lines})


@contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (the tests run as root, as CI does)."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> Path:
    """Writes until the disk refuses. (Asking for the free space measured a moment before
    races the import, which goes on writing.)"""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        for block in (b"\0" * (1 << 20), b"\0" * 4096):
            try:
                while handle.write(block):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    space = os.statvfs(disk)
    assert space.f_bavail * space.f_frsize < 64 * 1024
    return filler


def _log_lines(dev: DagsterDev) -> int:
    return dev.log.read_bytes().count(b"\n")


def test_a_disk_filled_during_the_store_step_is_said_and_recovered_once_freed(
    tmp_path: Path,
) -> None:
    lines = synthetic_lines(100_000)
    # The project's home (store, staging, Dagster instance) on a small disk of its own; the
    # `dagster dev` log beside it, as a terminal would be.
    with _small_disk(tmp_path / "home", "400m"), dagster_dev(tmp_path, env=ENV) as dev:
        _drop(dev.home, "rec", lines)
        full = _storing_run(dev, "rec")
        filler = _fill(dev.home)
        before = _log_lines(dev)
        time.sleep(30)
        logged = _log_lines(dev) - before
        print(f"full disk: {logged} log lines in 30 s")
        assert logged < 3000  # Dagster's daemons gave ~900 lines a second before
        said = dev.cli("summary", "rec", "--json", "--wait", "5")
        assert "no space left on device" in said.stderr, said.stderr
        filler.unlink()
        seconds = _wait("the record imported", lambda: _imported(dev, "rec"), dev)
        print(f"full disk: the record imported {seconds:.1f}s after space was freed")
        failed = dev.run(full["runId"])
        assert failed["status"] == "FAILURE"
        outcome = failed["tags"][RecoveryTags.OUTCOME]
        assert "its first error" in outcome and "No space left on device" in outcome, outcome
        assert _retried(dev, "rec", full["runId"])["status"] == "SUCCESS"
        content = _store_of(dev)
    assert content == _clean_import(tmp_path, {"rec": lines})
