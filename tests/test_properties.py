"""Property-based: batches mixing valid, invalid and blank lines keep the store's invariants."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from import_pipeline import store
from import_pipeline.landing import LandingZone
from import_pipeline.settings import Settings

from .conftest import import_directly, write_batch, write_record
from .test_hostile_input import LINE_CASES

# A small pool of already-normalised identifiers, so lines overlap, chain and collide.
POOL = (
    [("doi", f"10.7777/w{i}") for i in range(12)]
    + [("pm_id", str(100 + i)) for i in range(12)]
    + [("open_alex", f"W{900 + i}") for i in range(12)]
)

valid_line = st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True).map(
    lambda ids: json.dumps(
        {
            "identifiers": [{"identifier_type": t, "identifier": v} for t, v in ids],
            "enhancements": [
                {
                    "source": "prop",
                    "visibility": "public",
                    "content": {
                        "enhancement_type": "abstract",
                        "process": "other",
                        "abstract": "|".join(v for _, v in ids),
                    },
                }
            ],
        }
    )
)
invalid_line = st.sampled_from([case[1] for case in LINE_CASES])
any_line = st.one_of(valid_line, valid_line, invalid_line, st.just(""), st.just("   "))
batches = st.lists(st.lists(any_line, min_size=1, max_size=12), min_size=1, max_size=3)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches)
def test_invariants_hold_for_any_mix_of_lines(batches: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({"IMPORT_PIPELINE_HOME": home})
        Path(settings.landing).mkdir(parents=True)
        landing = LandingZone(settings.landing)
        write_record(landing, "rec")
        for index, lines in enumerate(batches):
            write_batch(landing, "rec", f"b{index}.jsonl", "\n".join(lines) + "\n")
            import_directly(settings, landing, "rec", [f"b{index}.jsonl"])

        with store.connect(settings.store, read_only=True) as conn:
            results = conn.execute(
                """
                SELECT b.name, r.line_number, r.status, r.reference_id::VARCHAR, ref.id IS NOT NULL
                FROM import_results r JOIN import_batches b ON b.id = r.import_batch_id
                LEFT JOIN reference ref ON ref.id = r.reference_id
                """
            ).fetchall()
            stored_identifiers = set(
                conn.execute(
                    "SELECT identifier_type, identifier FROM reference_identifier"
                ).fetchall()
            )
            shared = store.identifiers_on_two_references(conn)
            batch_statuses = dict(
                conn.execute("SELECT name, status FROM import_batches").fetchall()
            )

    for index, lines in enumerate(batches):
        name = f"b{index}.jsonl"
        expected = [n for n, text in enumerate(lines, start=1) if text.strip()]
        got = sorted(line for batch, line, *_ in results if batch == name)
        if expected:
            assert got == expected  # one result per non-blank line
        else:
            assert got == [] and batch_statuses[name] == "failed"  # only blank lines
    written_by = set()
    for batch, line, status, reference_id, exists in results:
        if status in ("completed", "partially_failed", "retrying"):
            assert reference_id is not None and exists
            text = batches[int(batch[1:-6])][line - 1]
            written_by |= {
                (i["identifier_type"], str(i["identifier"]))
                for i in json.loads(text)["identifiers"]
            }
        elif status == "failed":
            assert reference_id is None
        else:
            raise AssertionError(f"transient status {status} left behind")
    # What a failed line brought is not in the store unless a written line brought it too.
    assert stored_identifiers <= written_by
    assert shared == []
