"""Repeated daemon errors shown once a minute with a count, in every process `dev` starts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import dagster._daemon.daemon  # noqa: F401 - the daemons' module, for their classes
from dagster._daemon.daemon import DagsterDaemon

from import_pipeline.daemon_site import SITE_FOLDER, quiet_logs
from import_pipeline.daemon_site.quiet_logs import RepeatedErrors
from import_pipeline.settings import python_path_with


def _record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("detail",), None)


def test_the_same_error_is_shown_once_a_window_with_how_often_it_came() -> None:
    now = [0.0]
    repeated = RepeatedErrors(window=60, clock=lambda: now[0])
    shown = []
    for second in range(0, 130):
        now[0] = float(second)
        for _ in range(5):  # five a second, as a daemon's loop steps give them
            record = _record("dagster.daemon.SensorDaemon", "Failed to add heartbeat: \n%s")
            if repeated.filter(record):
                shown.append((second, record.getMessage()))
    assert [second for second, _ in shown] == [0, 60, 120]
    assert "the same error 299 more time(s) in the last 60 s" in shown[1][1]
    # Another error, another logger, or a line below WARNING is never held back.
    assert repeated.filter(_record("dagster.daemon.SensorDaemon", "Caught error: %s"))
    assert repeated.filter(
        _record("dagster.daemon.MonitoringDaemon", "Failed to add heartbeat: \n%s")
    )
    assert all(repeated.filter(_record("x", "tick %s", logging.INFO)) for _ in range(3))


def test_two_errors_logged_through_one_template_are_two_errors() -> None:
    repeated = RepeatedErrors(window=60, clock=lambda: 0.0)
    first = logging.LogRecord(
        "dagster.daemon.SensorDaemon",
        logging.ERROR,
        __file__,
        1,
        "Caught error:\n%s",
        ("disk I/O error",),
        None,
    )
    other = logging.LogRecord(
        "dagster.daemon.SensorDaemon",
        logging.ERROR,
        __file__,
        1,
        "Caught error:\n%s",
        ("a bug",),
        None,
    )
    assert repeated.filter(first) and repeated.filter(other)
    assert not repeated.filter(first)


def test_every_daemon_of_the_dagster_installed_is_quieted() -> None:
    def subclasses(cls: type) -> set[type]:
        return {c for sub in cls.__subclasses__() for c in {sub} | subclasses(sub)}

    # The modules that define daemons (the rest are in dagster._daemon.daemon).
    import dagster._daemon.asset_daemon
    import dagster._daemon.auto_run_reexecution.event_log_consumer
    import dagster._daemon.freshness
    import dagster._daemon.run_coordinator.queued_run_coordinator_daemon  # noqa: F401

    concrete = {c.__name__ for c in subclasses(DagsterDaemon) if "Test" not in c.__name__}
    concrete -= {"IntervalDaemon"}  # abstract: its subclasses log under their own names
    assert {f"dagster.daemon.{name}" for name in concrete} <= set(quiet_logs.DAEMON_LOGGERS)


def test_a_process_started_with_the_site_folder_has_the_filter() -> None:
    code = "import logging; print(len(logging.getLogger('dagster.daemon.SensorDaemon').filters))"
    env = {**os.environ, "PYTHONPATH": python_path_with(SITE_FOLDER)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "1", done.stderr
