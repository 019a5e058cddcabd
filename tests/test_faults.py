"""Faults: a killed writer, concurrent runs, many files at once. Nothing lost, nothing doubled."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from import_pipeline import store
from import_pipeline.defs import build_defs
from import_pipeline.defs.jobs import import_record_job, run_config_for
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.domain.strategies import CollisionStrategy
from import_pipeline.landing.records import BatchVersion
from import_pipeline.pipeline import stages
from import_pipeline.settings import Settings

from .conftest import (
    import_directly,
    landing_zone_sensor,
    validate_batch,
    write_batch,
    write_record,
)


def synthetic_lines(count: int, offset: int = 0) -> str:
    """Lines whose works overlap in pairs (line i and i+1 share a PMID) with an enhancement."""
    lines = []
    for i in range(offset, offset + count):
        identifiers = [{"identifier_type": "doi", "identifier": f"10.5555/w{i}"}]
        identifiers.append({"identifier_type": "pm_id", "identifier": 1_000_000 + i // 2})
        enhancement = {
            "source": "synthetic",
            "visibility": "public",
            "content": {
                "enhancement_type": "abstract",
                "process": "other",
                "abstract": f"work {i}",
            },
        }
        lines.append(json.dumps({"identifiers": identifiers, "enhancements": [enhancement]}))
    return "\n".join(lines) + "\n"


def canonical_store(settings: Settings) -> tuple[dict[str, int], str]:
    """Row counts of every table and a hash of their content, independent of generated ids."""
    with store.connect(settings.store, read_only=True) as conn:
        counts = store.table_counts(conn)
        refs = dict(
            conn.execute(
                """
                SELECT reference_id::VARCHAR, string_agg(identifier_type || ':' || identifier, '|'
                    ORDER BY identifier_type, identifier)
                FROM reference_identifier GROUP BY 1
                """
            ).fetchall()
        )
        enhancements = conn.execute(
            "SELECT reference_id::VARCHAR, content_hash FROM reference_enhancement"
        ).fetchall()
        results = conn.execute(
            """
            SELECT b.name, r.line_number, r.status, r.reference_id::VARCHAR, r.errors::VARCHAR
            FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
            """
        ).fetchall()
        batches = conn.execute("SELECT name, status, checksum FROM import_batches").fetchall()
    content = {
        "references": sorted(refs.values()),
        "enhancements": sorted((refs.get(r, ""), h) for r, h in enhancements),
        "results": sorted((n, line, s, refs.get(r or "", ""), e) for n, line, s, r, e in results),
        "batches": sorted(batches),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return counts, digest


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from import_pipeline import store
    from import_pipeline.pipeline import stages
    from import_pipeline.landing import LandingZone
    from import_pipeline.domain.strategies import CollisionStrategy
    from import_pipeline.settings import Settings

    store_url = sys.argv[2] if len(sys.argv) > 2 else ""  # a PostgreSQL store, else the file
    settings = Settings.from_env({"IMPORT_PIPELINE_HOME": sys.argv[1], "IMPORT_PIPELINE_STORE": store_url})
    landing = LandingZone(settings.landing)
    batch = landing.record_folder("rec").batches[0]
    with store.connect(settings.store) as conn:
        store.upsert_record(conn, "rec", None)
        batch_id = store.start_batch(conn, "rec", batch.name, batch.url, "killed-run")
    loaded = stages.load_batch(landing, batch, batch_id=batch_id, staging=settings.staging / "k", settings=settings)
    clustered = stages.cluster_batch(stages.validate_batches([loaded])[0])
    with store.connect(settings.store) as conn:
        print("writing", flush=True)
        stages.resolve_once(conn, clustered, CollisionStrategy.MERGE_DEFENSIVE, ttl=settings.unresolved_ttl)
    print("written", flush=True)
    """
)


def test_a_writer_killed_mid_batch_leaves_all_or_nothing_and_a_rerun_converges(
    tmp_path: Path,
) -> None:
    lines = 200_000
    content = synthetic_lines(lines)
    killed = Settings.from_env({"IMPORT_PIPELINE_HOME": str(tmp_path / "killed")})
    clean = Settings.from_env({"IMPORT_PIPELINE_HOME": str(tmp_path / "clean")})
    for settings in (killed, clean):
        Path(settings.landing, "rec").mkdir(parents=True)
        Path(settings.landing, "rec", "record.json").write_text(
            json.dumps({"source_name": "t", "processor_name": "t", "processor_version": "1", "expected_reference_count": -1})
        )  # fmt: skip
        Path(settings.landing, "rec", "big.jsonl").write_text(content)

    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(killed.home)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.15)  # inside the transaction: the write of 200,000 lines takes about a second
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.stdout.read() == ""  # it never got to "written"

    with store.connect(killed.store, read_only=True) as conn:
        counts = store.table_counts(conn)
    assert counts["import_results"] in (0, lines)
    assert counts["reference"] in (0, lines // 2)
    assert counts["import_results"] == 0, "the kill was meant to land inside the transaction"

    from import_pipeline.landing import LandingZone

    for settings in (killed, clean):
        import_directly(settings, LandingZone(settings.landing), "rec")
    assert canonical_store(killed) == canonical_store(clean)
    assert canonical_store(clean)[0]["reference"] == lines // 2


def _job_process(settings: Settings, dagster_home: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        """
        import dagster as dg
        from import_pipeline.defs import build_defs
        from import_pipeline.defs.jobs import import_record_job, run_config_for
        from import_pipeline.settings import Settings
        settings = Settings.from_env()
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("import_records", ["rec"])
            job = build_defs(settings).resolve_job_def(import_record_job.name)
            result = job.execute_in_process(partition_key="rec", instance=instance)
            print("ok" if result.success else "failed", flush=True)
        """
    )
    env = {
        **os.environ,
        "IMPORT_PIPELINE_HOME": str(settings.home),
        "DAGSTER_HOME": str(dagster_home),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_two_runs_of_the_same_record_at_once_write_everything_once(
    settings, landing, destiny
) -> None:
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\n")
    write_record(landing, "rec")
    for name in ("eppi_import.jsonl", "openalex_references.jsonl"):
        write_batch(landing, "rec", name, (destiny / name).read_bytes())
    write_batch(landing, "rec", "synthetic.jsonl", synthetic_lines(2000))
    # The instance exists before the two runs start, as it does under a running daemon.
    subprocess.run(
        [sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().add_dynamic_partitions('import_records', ['rec'])"],
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)}, check=True, timeout=120,
    )  # fmt: skip
    first, second = _job_process(settings, dagster_home), _job_process(settings, dagster_home)
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert out.strip() == "ok", err[-3000:]
    with store.connect(settings.store, read_only=True) as conn:
        counts = store.table_counts(conn)
        duplicate_results = conn.execute(
            "SELECT count(*) FROM (SELECT import_batch_id, line_number FROM import_results GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        duplicate_identifiers = conn.execute(
            "SELECT count(*) FROM (SELECT identifier_type, identifier FROM reference_identifier GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        duplicate_enhancements = conn.execute(
            "SELECT count(*) FROM (SELECT reference_id, content_hash FROM reference_enhancement GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
    assert (duplicate_results, duplicate_identifiers, duplicate_enhancements) == (0, 0, 0)
    assert counts["reference"] == 4 + 10 + 1000
    assert counts["import_results"] == 4 + 10 + 2000


def test_a_batch_deleted_before_it_is_read_fails_with_a_reason(settings, landing) -> None:
    write_record(landing, "rec")
    path = write_batch(landing, "rec", "gone.jsonl", synthetic_lines(3))
    (batch,) = landing.record_folder("rec").batches
    path.unlink()
    with store.connect(settings.store) as conn:
        store.upsert_record(conn, "rec", None)
        batch_id = store.start_batch(conn, "rec", batch.name, batch.url, "run")
    loaded = stages.load_batch(
        landing, batch, batch_id=batch_id, staging=settings.staging / "g", settings=settings
    )
    with store.connect(settings.store) as conn:
        stored = stages.resolve_once(
            conn,
            stages.cluster_batch(validate_batch(loaded)),
            CollisionStrategy.MERGE_DEFENSIVE,
            ttl=settings.unresolved_ttl,
        )
    assert stored.status == "failed" and "disappeared" in stored.failure_details


def test_a_batch_changed_after_its_run_was_planned_is_not_imported_as_another_version(
    settings, landing
) -> None:
    """The run was asked for one content; the file holds another by the time it is read (a
    second user dropped the same name, or it was rewritten while read). Nothing of what was
    read is stored; the earlier version's results stand, and the batch says why."""
    write_record(landing, "rec")
    write_batch(landing, "rec", "b.jsonl", synthetic_lines(3))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("import_records", ["rec"])
        job = build_defs(settings).resolve_job_def(import_record_job.name)
        assert job.execute_in_process(partition_key="rec", instance=instance).success
        before = canonical_store(settings)
        planned = landing.checksum(landing.path_of("rec", "b.jsonl"))
        write_batch(landing, "rec", "b.jsonl", synthetic_lines(5, offset=100))  # replaced
        changed = job.execute_in_process(
            partition_key="rec",
            instance=instance,
            run_config=run_config_for([BatchVersion("b.jsonl", "0" * 64)]),  # planned elsewhere
        )
        assert changed.success
        with store.connect(settings.store, read_only=True) as conn:
            (batch,) = store.record_summary(conn, "rec")["batches"]
            results = store.list_results(conn, "rec")["total"]
        assert batch["status"] == "completed" and results == 3  # the first version's
        assert batch["failure_details"].startswith("the file changed after this run was asked")
        assert canonical_store(settings)[0] == before[0]
        # Asked for what the file holds, the run imports it, replacing the first version.
        now = landing.checksum(landing.path_of("rec", "b.jsonl"))
        assert now != planned
        assert job.execute_in_process(
            partition_key="rec",
            instance=instance,
            run_config=run_config_for([BatchVersion("b.jsonl", now)]),
        ).success
    with store.connect(settings.store, read_only=True) as conn:
        (batch,) = store.record_summary(conn, "rec")["batches"]
        assert store.list_results(conn, "rec")["total"] == 5
    assert batch["status"] == "completed" and not batch["failure_details"]


def test_two_hundred_files_across_twenty_records_are_imported_exactly_once(
    settings, landing
) -> None:
    for record in range(20):
        write_record(landing, f"rec-{record:02d}")
        for batch in range(10):
            offset = (record * 10 + batch) * 5
            write_batch(landing, f"rec-{record:02d}", f"b{batch}.jsonl", synthetic_lines(5, offset))
    resource = ImportPipelineResource.from_settings(settings)
    job = build_defs(settings).resolve_job_def(import_record_job.name)
    launched = []
    with dg.instance_for_test(
        overrides={"concurrency": {"pools": {"default_limit": 1}}}
    ) as instance:
        cursor = None
        for _ in range(4):  # the daemon's ticks; runs requested are run before the next tick
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"pipeline": resource}
            ) as context:
                result = landing_zone_sensor(context)
            cursor = result.cursor
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
            for request in result.run_requests:
                launched.append(request.partition_key)
                run = job.execute_in_process(
                    partition_key=request.partition_key, run_config=request.run_config, instance=instance, tags=request.tags
                )  # fmt: skip
                assert run.success
    assert sorted(launched) == [f"rec-{r:02d}" for r in range(20)]
    with store.connect(settings.store, read_only=True) as conn:
        counts = store.table_counts(conn)
        per_batch = conn.execute(
            "SELECT count(*) FROM import_results GROUP BY import_batch_id"
        ).fetchall()
    assert counts["import_batches"] == 200 and counts["import_results"] == 1000
    assert {n for (n,) in per_batch} == {5}
    # Line pairs (2k, 2k+1) share a PMID; a pair split across two batches still merges.
    assert counts["reference"] == 500


def test_readers_during_an_import_neither_block_it_nor_see_half_a_batch(settings, landing) -> None:
    write_record(landing, "rec")
    write_batch(landing, "rec", "first.jsonl", synthetic_lines(10))
    import_directly(settings, landing, "rec")
    write_batch(landing, "rec", "second.jsonl", synthetic_lines(100_000, offset=10))
    reader_code = textwrap.dedent(
        """
        import json, subprocess, sys, time
        seen = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-m", "import_pipeline.cli", "summary", "rec",
                                   "--json", "--wait", "20"], capture_output=True, text=True)
            seen.append((done.returncode, json.loads(done.stdout)["total"] if done.returncode == 0 else done.stderr))
        print(json.dumps(seen))
        """
    )
    env = {**os.environ, "IMPORT_PIPELINE_HOME": str(settings.home)}
    reader = subprocess.Popen(
        [sys.executable, "-c", reader_code], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.0)
    started = time.monotonic()
    import_directly(settings, landing, "rec", ["second.jsonl"])
    assert time.monotonic() - started < 60
    seen = json.loads(reader.communicate(timeout=120)[0])
    assert seen and all(code == 0 for code, _ in seen), seen
    assert {total for _, total in seen} <= {10, 100_010}  # before or after, never half
