"""Progress: what a stage reports, to whom, and how it is shown."""

from __future__ import annotations

import io

from import_pipeline.pipeline import progress


def test_a_stage_reports_to_the_listeners_of_its_thread() -> None:
    seen: list[progress.Progress] = []
    with progress.listening(seen.append):
        stage = progress.Stage("validate", 1000)
        stage.advance(250)
        stage.advance(750)
    progress.Stage("validate", 10).advance(10)  # nobody listens any more
    assert [(r.stage, r.done, r.total) for r in seen] == [
        ("validate", 250, 1000),
        ("validate", 1000, 1000),
    ]


def test_a_report_says_done_total_share_rate_and_time_left() -> None:
    report = progress.Progress("validate", 400_000, 1_000_000, "lines", 8.0)
    assert report.describe() == "validate 400,000/1,000,000 lines (40%) 50,000 lines/s, 12 s left"
    done = progress.Progress("load", 3_000_000, 3_000_000, "bytes", 2.0)
    assert done.describe() == "load 3/3 MB (100%) 2 MB/s"
    unknown = progress.Progress("load", 5_000_000, 0, "bytes", 1.0)
    assert unknown.describe() == "load 5/0 MB 5 MB/s"


def test_throttled_keeps_each_stage_end() -> None:
    seen: list[int] = []
    listener = progress.throttled(lambda r: seen.append(r.done), every_seconds=3600)
    for done in (1, 2, 3, 10):
        listener(progress.Progress("store", done, 10, "lines", 1.0))
    assert seen == [1, 10]


def test_throttled_shows_many_short_stages_once_a_period() -> None:
    seen: list[tuple[int, int]] = []
    listener = progress.throttled(lambda r: seen.append((r.done, r.total)), every_seconds=3600)
    for size in (5, 6, 7):  # three small files loaded in turn, each one report that ends it
        listener(progress.Progress("load", size, size, "bytes", 0.01))
    listener(progress.Progress("load", 4, 8, "bytes", 0.01))  # a big one: not due yet
    assert seen == [(5, 5)]


def test_not_a_terminal_gets_plain_lines() -> None:
    stream = io.StringIO()
    with progress.listening(progress.to_terminal(stream)):
        stage = progress.Stage("cluster", 2)
        stage.advance(1)
        stage.advance(1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("cluster 1/2 lines (50%)")
    assert lines[-1].startswith("cluster 2/2 lines (100%)")
    assert "\r" not in stream.getvalue()
