"""Batches imported in groups: many small files share Dagster steps and validation passes,
and nothing about a batch's results depends on which other batches it travelled with."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from import_pipeline import store
from import_pipeline.defs import build_defs
from import_pipeline.defs.jobs import import_record_job
from import_pipeline.defs.ops import (
    cluster_batches,
    load_batches,
    resolve_batches,
    validate_batches,
)
from import_pipeline.defs.partitions import import_records
from import_pipeline.landing import LandingZone
from import_pipeline.pipeline import passes, resolve, stages
from import_pipeline.pipeline.frames import VALIDATED_PARTS
from import_pipeline.settings import Settings

from .conftest import (
    EPPI_FILES,
    OPENALEX_FILE,
    results_of,
    validate_batch,
    write_batch,
    write_record,
)
from .test_hostile_input import LINE_CASES

MB = 1024 * 1024


def test_small_files_share_a_group_and_a_large_one_is_alone() -> None:
    sizes = [MB] * 3 + [stages.GROUP_BYTES] + [MB] * 2
    assert stages.import_groups(sizes) == [[0, 1, 2], [3], [4, 5]]


def test_a_group_closes_at_its_byte_budget_and_file_count() -> None:
    assert stages.import_groups([40 * MB, 30 * MB, 30 * MB]) == [[0], [1, 2]]
    many = stages.import_groups([100] * (2 * stages.GROUP_FILES + 1))
    assert [len(g) for g in many] == [stages.GROUP_FILES, stages.GROUP_FILES, 1]
    assert stages.import_groups([]) == []


def _hostile_batches(landing: LandingZone, destiny) -> None:
    """Real files, the hostile lines, a blank-only and an unreadable file: one record."""
    write_record(landing, "mixed")
    for name in [*EPPI_FILES, OPENALEX_FILE]:
        write_batch(landing, "mixed", name, (destiny / name).read_bytes())
    valid = (destiny / EPPI_FILES[0]).read_text().splitlines()[0]
    hostile = "\n".join(f"{valid}\n{case[1]}" for case in LINE_CASES) + "\n"
    write_batch(landing, "mixed", "hostile.jsonl", hostile)
    write_batch(landing, "mixed", "blank.jsonl", "\n\n")
    write_batch(landing, "mixed", "broken.jsonl.gz", b"\x1f\x8b\x08\x00garbage")


def _staged(validated: stages.ValidatedBatch) -> dict[str, pl.DataFrame]:
    def read(part: str) -> pl.DataFrame:
        frame = pl.concat([pl.read_parquet(p) for p in validated.paths[part]])
        return frame.sort(pl.all())

    return {part: read(part) for part in VALIDATED_PARTS}


def test_batches_validated_together_equal_batches_validated_alone(
    settings: Settings, landing: LandingZone, destiny, monkeypatch
) -> None:
    _hostile_batches(landing, destiny)
    folder = landing.record_folder("mixed")

    def load(tag: str) -> list[stages.LoadedBatch]:
        return [
            stages.load_batch(
                landing,
                batch,
                batch_id="",
                staging=settings.staging / tag / batch.name,
                settings=settings,
            )  # fmt: skip
            for batch in folder.batches
        ]

    alone = [validate_batch(loaded) for loaded in load("alone")]
    # A small pass budget: the packed run has several passes, some shared by several batches.
    monkeypatch.setattr(passes, "VALIDATION_PASS_BYTES", 20_000)
    together = stages.validate_batches(load("together"))
    assert len(passes._validation_passes([v.loaded for v in together])) > 2
    assert [v.loaded.name for v in together] == [v.loaded.name for v in alone]
    for one, packed in zip(alone, together, strict=True):
        assert packed.loaded.unreadable == one.loaded.unreadable
        assert (packed.lines_read, packed.lines_with_errors, packed.slow_path_lines) == (
            one.lines_read, one.lines_with_errors, one.slow_path_lines,
        )  # fmt: skip
        if one.loaded.unreadable:
            continue
        expected, actual = _staged(one), _staged(packed)
        for name, frame in expected.items():
            assert actual[name].equals(frame), (one.loaded.name, name)
    hostile = next(v for v in together if v.loaded.name == "hostile.jsonl")
    assert hostile.lines_with_errors > 40 and hostile.slow_path_lines > 40

    # Clustering a group's batches on one shared engine equals clustering each on its own.
    engine = store.scratch_engine()
    try:
        shared = [stages.cluster_batch(v, engine) for v in together]
    finally:
        engine.close()
    for one, packed in zip(map(stages.cluster_batch, alone), shared, strict=True):
        assert packed.clusters == one.clusters
        if one.clusters_path:
            expected = pl.read_parquet(one.clusters_path)
            assert expected.height > 0 and pl.read_parquet(packed.clusters_path).equals(expected)


def _run(settings: Settings, instance: dg.DagsterInstance, key: str):
    instance.add_dynamic_partitions(import_records.name, [key])
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    return job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        yield inst


def test_many_small_files_run_as_one_group(settings, landing, instance, destiny) -> None:
    write_record(landing, "small")
    lines = (destiny / OPENALEX_FILE).read_text().splitlines()
    for index in range(30):
        write_batch(landing, "small", f"part-{index:02d}.jsonl", lines[index % len(lines)] + "\n")
    result = _run(settings, instance, "small")
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    group_steps = sorted(s for s in steps if ".import_batch_group." in s)
    assert group_steps == [
        f"import_results.import_batch_group.{op}[g0000_part_00_jsonl_and_29_more]"
        for op in sorted(
            o.name for o in (cluster_batches, load_batches, resolve_batches, validate_batches)
        )
    ]
    results = results_of(settings, "small")
    assert len(results) == 30 and {r["status"] for r in results} == {"completed"}
    with store.connect(settings.store, read_only=True) as conn:
        batches = store.record_summary(conn, "small")["batches"]
    assert len(batches) == 30 and {b["status"] for b in batches} == {"completed"}


def test_a_batch_that_cannot_be_stored_fails_alone_and_a_retry_redoes_only_it(
    settings, landing, instance, destiny, monkeypatch
) -> None:
    write_record(landing, "flaky")
    for name in EPPI_FILES:
        write_batch(landing, "flaky", name, (destiny / name).read_bytes())
    stored_names: list[str] = []
    flaky_attempts: list[int] = []
    real_store_wave = resolve._store_wave

    def name_of(batch: resolve.StagedBatch) -> str:
        return Path(batch.parts["lines"][0]).parent.name

    def flaky_store_wave(conn, wave, *args, **kwargs):
        if EPPI_FILES[1] in [name_of(b) for b in wave]:
            flaky_attempts.append(len(wave))
            if len(flaky_attempts) <= 2:  # the first attempt, with others and then alone
                raise OSError("disk briefly full")
        outcomes = real_store_wave(conn, wave, *args, **kwargs)
        stored_names.extend(name_of(b) for b in wave[: len(outcomes)])
        return outcomes

    monkeypatch.setattr(resolve, "_store_wave", flaky_store_wave)
    result = _run(settings, instance, "flaky")
    assert result.success
    # Tried with the others, then alone (it failed alone), then by the step's retry, which
    # skipped the batches already stored: each batch stored once.
    assert flaky_attempts[0] > 1 and flaky_attempts[1:] == [1, 1]
    assert sorted(stored_names) == sorted(EPPI_FILES)
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1 and "disk briefly full" in str(retries[0].event_specific_data)
    results = results_of(settings, "flaky")
    assert len(results) == 12 and {r["status"] for r in results} == {"completed"}


def test_a_run_carries_each_group_to_its_store_before_loading_the_next(
    settings, landing, instance, destiny, monkeypatch
) -> None:
    # Depth-first (the ops' step priorities): while one group's store waits for the writer
    # pool, the run can load and validate the next group.
    monkeypatch.setattr(stages, "GROUP_FILES", 1)
    write_record(landing, "depth")
    lines = (destiny / OPENALEX_FILE).read_text().splitlines()
    for index in range(3):
        write_batch(landing, "depth", f"part-{index}.jsonl", lines[index] + "\n")
    result = _run(settings, instance, "depth")
    assert result.success
    started = [
        e.step_key.split(".")[-1]
        for e in result.all_events
        if e.event_type_value == "STEP_START" and ".import_batch_group." in (e.step_key or "")
    ]
    assert started == [
        f"{op}[g000{group}_part_{group}_jsonl]"
        for group in range(3)
        for op in ("load_batches", "validate_batches", "cluster_batches", "resolve_batches")
    ]


def test_older_runs_validate_ahead_of_younger_ones() -> None:
    from import_pipeline.defs.ops import validation_niceness

    started = [100.0, 105.0, None, 110.0]  # the runs going on (one not started yet)
    assert [validation_niceness(t, started) for t in (100.0, 105.0, 110.0)] == [10, 13, 16]
    assert validation_niceness(200.0, started * 3) == 10 + 3 * 9  # a worker pool caps it at 19
