"""What the Dagster UI shows of a record run's duplicate decisions: the `duplicate_decisions`
materialization's tables of the references decided duplicate (beside their canonical) and of
the maybe pairs, the first 20 of each with their totals, through the real job."""

from __future__ import annotations

import dagster as dg
import pytest

from import_pipeline.defs import build_defs
from import_pipeline.defs.duplicates import SHOWN_PAIRS, pairs_markdown
from import_pipeline.defs.jobs import import_record_job, run_config_for
from import_pipeline.defs.partitions import import_records
from import_pipeline.domain.duplicates import Decision

from .conftest import write_batch, write_record
from .test_duplicate_decisions import TITLE, _line

COPIES = SHOWN_PAIRS + 2  # one canonical and more duplicates than a table shows
MAYBE_TITLES = (  # the first with what a Markdown table would break on: a `|`, a line break
    ("n1", "Vitamin D supplementation | and fracture\nrisk in older women", 2010, "20"),
    ("n2", "Vitamin D supplementation and the fracture risk of older women", 2011, "70"),
)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _materialization(settings, landing, instance) -> dict:
    write_record(landing, "rec")
    lines = [_line(f"c{n}", TITLE) for n in range(COPIES)]
    lines += [_line(i, t, y, {"volume": "3", "first_page": p}) for i, t, y, p in MAYBE_TITLES]
    write_batch(landing, "rec", "works.jsonl", "\n".join(lines) + "\n")
    instance.add_dynamic_partitions(import_records.name, ["rec"])
    result = (
        build_defs(settings)
        .resolve_job_def(import_record_job.name)
        .execute_in_process(partition_key="rec", instance=instance, run_config=run_config_for([]))
    )
    assert result.success
    (event,) = [
        e for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.asset_key.to_user_string() == "duplicate_decisions"
    ]  # fmt: skip
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_record_runs_duplicates_and_maybe_pairs_are_shown_side_by_side(
    settings, landing, instance
) -> None:
    metadata = _materialization(settings, landing, instance)
    assert metadata["duplicate"] == COPIES - 1 and metadata["maybe"] == 2
    duplicates = metadata["duplicates_decided"].splitlines()
    assert duplicates[0] == (
        f"{SHOWN_PAIRS} of {COPIES - 1} duplicate decisions of this run's references, "
        "best score first."
    )
    assert duplicates[2] == "| title | canonical title | score | evidence |"
    rows = [line for line in duplicates[4:] if line.startswith("| ")]
    assert len(rows) == SHOWN_PAIRS
    assert all(line.startswith(f"| {TITLE} | {TITLE} | ") for line in rows)
    assert all("title" in line.split(" | ")[3] for line in rows)  # the evidence
    maybes = metadata["maybe_pairs"].splitlines()
    assert maybes[0] == "2 of 2 maybe decisions of this run's references, best score first."
    assert maybes[2] == "| title | candidate title | score |"
    # Each pair on one line: the title's `|` escaped, its line break a space.
    hostile = "Vitamin D supplementation \\| and fracture risk in older women"
    other = "Vitamin D supplementation and the fracture risk of older women"
    assert {tuple(line.split(" | ")[:2]) for line in maybes[4:6]} == {
        (f"| {hostile}", other), (f"| {other}", hostile)
    }  # fmt: skip
    assert (
        "import-pipeline duplicates --decision maybe --record rec --export maybe.csv" in maybes[-1]
    )


def test_a_title_is_escaped_and_cut_in_its_cell() -> None:
    pair = {"title": "a | b\nc *d* [e](f) <g>", "other_title": "x" * 200, "score": 0.91234,
            "evidence": ["title", "year"]}  # fmt: skip
    table = pairs_markdown(Decision.DUPLICATE, [pair], 7, "rec").splitlines()
    assert table[0].startswith("1 of 7 duplicate decisions")
    assert table[-1] == (
        "| a \\| b c \\*d\\* \\[e\\](f) \\<g\\> | " + "x" * 79 + "… | 0.912 | title, year |"
    )
    assert pairs_markdown(Decision.MAYBE, [], 0, "rec") == (
        "No maybe decisions among this run's references."
    )
