"""The work-around for Dagster's spinning wait for a pool slot (`defs/dagster_fixes.py`)."""

from __future__ import annotations

import math
import threading
import time

import dagster as dg
import pytest
from dagster._core.execution.plan.active import ActiveExecution

from import_pipeline.defs import dagster_fixes
from import_pipeline.defs.ops import DUCKDB_POOL


def test_dagster_still_does_not_sleep_until_the_next_claim() -> None:
    # When Dagster fixes its wait this fails: the work-around can then be deleted.
    assert not dagster_fixes.dagster_sleeps_until_next_claim()


@dg.op(pool=DUCKDB_POOL)
def _writes() -> int:
    return 1


@dg.job(executor_def=dg.in_process_executor)
def _one_writer() -> None:
    _writes()


def test_a_step_waiting_for_the_writer_pool_sleeps_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dagster_fixes.apply()
    loops = 0
    next_step = ActiveExecution.get_next_step

    def counted(self: ActiveExecution) -> object:
        nonlocal loops
        loops += 1
        return next_step(self)

    monkeypatch.setattr(ActiveExecution, "get_next_step", counted)
    overrides = {"concurrency": {"pools": {"default_limit": 1}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        # Another run holds the writer for 3 s.
        held = storage.claim_concurrency_slot(DUCKDB_POOL, "another-run", "its-step")
        assert held.is_claimed
        releaser = threading.Timer(
            3.0, storage.free_concurrency_slots_for_run, args=("another-run",)
        )
        releaser.start()
        started = time.monotonic()
        result = _one_writer.execute_in_process(instance=instance)
        waited = time.monotonic() - started
        releaser.join()
    assert result.success
    assert waited >= 3.0  # it did wait for the pool ...
    # ... re-claiming on Dagster's back-off (1 s, 1.1 s, 1.21 s, …), not thousands of times
    assert loops < 20, loops


def test_a_step_that_waited_long_for_the_pool_claims_it_again_within_a_second() -> None:
    # Dagster's back-off after 40 refused claims is 15 s: a slot freed (and assigned to this
    # step in the instance) would sit idle that long before the step noticed.
    from dagster._core.execution.plan.instance_concurrency_context import (
        InstanceConcurrencyContext,
    )

    dagster_fixes.apply()
    overrides = {"concurrency": {"pools": {"default_limit": 1}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert storage.claim_concurrency_slot(DUCKDB_POOL, "another-run", "its-step").is_claimed
        run = instance.create_run_for_job(_one_writer)
        with InstanceConcurrencyContext(instance, run) as waiting:
            for _ in range(40):
                waiting._pending_timeouts.clear()  # as if each interval had passed
                assert not waiting.claim(DUCKDB_POOL, "_writes")
            next_claim_in = max(waiting._pending_timeouts.values()) - time.time()
            assert 0 < next_claim_in <= dagster_fixes.RECLAIM_SECONDS
            storage.free_concurrency_slots_for_run("another-run")
            time.sleep(next_claim_in + 0.05)  # sleep's clock is not the wall clock
            assert waiting.claim(DUCKDB_POOL, "_writes")


def test_the_sensor_daemon_still_looks_every_five_seconds() -> None:
    # `sensor_minimum_interval` is built on the daemon's loop; if Dagster changes it, so must it.
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    assert MIN_INTERVAL_LOOP_TIME == dagster_fixes.SENSOR_DAEMON_LOOP_SECONDS


@pytest.mark.parametrize("interval", [1, 5, 6, 10, 11, 30, 60])
def test_a_sensor_ticks_at_the_first_look_its_interval_allows(interval: int) -> None:
    # Dagster skips a sensor while `elapsed < minimum_interval_seconds`. Its looks come every
    # 5 s, drifting: the look due `k` loops after the last tick comes at k*5 s, up to 0.9 s
    # early or late. The sensor must tick at the first look at least `interval` after the last
    # tick, and at none before.
    loop = dagster_fixes.SENSOR_DAEMON_LOOP_SECONDS
    minimum = dagster_fixes.sensor_minimum_interval(interval)
    first = max(1, math.ceil(interval / loop))
    for drift in (-0.9, -0.02, 0.0, 0.5, 0.9):
        assert not first * loop + drift < minimum  # due
        assert (first - 1) * loop + drift < minimum  # not yet


def test_the_landing_zone_sensor_ticks_at_the_configured_interval() -> None:
    from import_pipeline.defs.sensors import build_landing_zone_sensor

    assert build_landing_zone_sensor(30).minimum_interval_seconds == 29
    assert build_landing_zone_sensor(7).minimum_interval_seconds == 9  # the look at 10 s
    assert build_landing_zone_sensor(1).minimum_interval_seconds == 4  # every look
