"""The Dagster UI in a real browser: from the front page to a failing line's error message.

Starts the real `dagster dev`, imports a record with failing lines through the sensor, then
drives Debian's Chromium with Playwright. Screenshots go to $IMPORT_PIPELINE_SCREENSHOTS
(default tests/artifacts/screenshots); docs/operating.md shows them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from import_pipeline.landing import LandingZone
from import_pipeline.landing.demo import demo_records

from .dagster_dev import dagster_dev

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(
    os.environ.get("IMPORT_PIPELINE_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots")
)
RECORD = "eppi-with-errors"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed with apt when missing (skipped only where apt is not)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.skip("the browser test needs Debian's chromium and this machine has no apt-get")
        done = subprocess.run(
            [str(ROOT / "scripts" / "install-chromium")], capture_output=True, text=True
        )
        assert done.returncode == 0 and CHROMIUM.exists(), done.stderr
    return CHROMIUM


def _skip_community_dialog(page) -> None:
    """The UI asks first-time visitors to join the community, a moment after loading."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
    except PlaywrightTimeout:
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=10_000)


def test_from_the_front_page_to_a_failing_line(tmp_path: Path, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with dagster_dev(tmp_path) as server:
        landing = LandingZone(str(server.home / "landing"))
        spec = demo_records()[RECORD]
        record_file = tmp_path / "record.json"
        record_file.write_text(json.dumps(spec["record"]))
        landing.put_file(str(record_file), RECORD, "record.json")
        for name, text in spec["batches"].items():
            (tmp_path / name).write_text(text)
            landing.put_file(str(tmp_path / name), RECORD, name)
        server.wait_for_run(RECORD)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
            try:
                # 1600 px: the failing lines must read without sideways scrolling there.
                page = browser.new_page(viewport={"width": 1600, "height": 1100})
                page.goto(server.url + "/")
                page.wait_for_load_state("networkidle")
                _skip_community_dialog(page)

                # Icon names are part of link names ("column_lineage Jobs"): match the end.
                page.get_by_role("link", name=re.compile(r"Lineage$")).click()
                expect(page.get_by_text("landing_zone").first).to_be_visible(timeout=30_000)
                expect(page.get_by_text("reference_store").first).to_be_visible()
                page.wait_for_timeout(1500)
                page.screenshot(path=SCREENSHOTS / "asset-graph.png")

                # From the front page to a failing line's message, counting the clicks.
                page.goto(server.url + "/")
                page.wait_for_load_state("networkidle")
                clicks = 0
                page.get_by_role("link", name=re.compile(r"Catalog$")).click()
                clicks += 1
                page.locator('a[href^="/assets/import_results"]').first.click()
                clicks += 1
                page.get_by_text("Partitions", exact=True).first.click()
                clicks += 1
                page.get_by_text(RECORD, exact=True).first.click()
                clicks += 1
                failing = page.get_by_role("row", name=re.compile(r"^failing_lines "))
                expect(failing).to_be_visible(timeout=30_000)
                page.screenshot(path=SCREENSHOTS / "record-partition.png")
                failing.get_by_text("Show Markdown").click()  # too long to show in the row
                clicks += 1
                _sees_every_error_of_a_failing_line(page, expect)
                page.wait_for_timeout(500)
                page.screenshot(path=SCREENSHOTS / "failing-lines.png")
                (SCREENSHOTS / "clicks.txt").write_text(f"{clicks}\n")
                assert clicks <= 5
                page.keyboard.press("Escape")

                _sees_the_record_not_clean(page, expect, server.url)
                _sees_results_per_record(page, expect, server.url)
            finally:
                browser.close()


#: The whole message of the demo's bad DOI, as the UI must show it (nothing cut).
WHOLE_MESSAGE = (
    "not a valid doi: expected 10.<4-9 digits>/<suffix>, optionally prefixed doi:, doi.org/, "
    "dx.doi.org/ or an http(s) doi.org URL"
)


def _sees_every_error_of_a_failing_line(page, expect) -> None:
    expect(page.get_by_text("line(s) failed").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text(WHOLE_MESSAGE).first).to_be_visible()
    expect(page.get_by_text('offending value: "not-a-doi"').first).to_be_visible()
    # A line's second error is shown too, not "(+1 more)".
    expect(page.get_by_text("no valid identifier is left").first).to_be_visible()
    expect(page.get_by_text("unknown field 'title'").first).to_be_visible()
    expect(
        page.get_by_text('offending value: "a top-level key the format does not have"').first
    ).to_be_visible()
    expect(
        page.get_by_text(f"import-pipeline failures {RECORD} --out fix.jsonl").first
    ).to_be_visible()
    # Readable at 1600 px: nothing around the failing lines scrolls sideways.
    overflowing = page.evaluate(
        """(text) => {
            const start = [...document.querySelectorAll("li")].find(
                (e) => e.textContent.includes(text));
            const wide = [];
            for (let node = start; node; node = node.parentElement) {
                if (node.scrollWidth > node.clientWidth + 1) wide.push(node.tagName);
            }
            return wide;
        }""",
        "not a valid doi",
    )
    assert overflowing == [], overflowing


def _sees_the_record_not_clean(page, expect, url: str) -> None:
    """The failing check on the partition, and the failed-line count on the run."""
    page.get_by_role("tab", name="Checks").or_(page.get_by_text("Checks", exact=True)).first.click()
    for check in (
        "every_line_has_one_result",
        "results_point_at_references",
        "every_line_imported",
    ):
        expect(page.get_by_text(check).first).to_be_visible(timeout=30_000)
    failed = page.get_by_text("every_line_imported", exact=True).first.locator(
        "xpath=ancestor::*[contains(., 'Failed')][1]"
    )
    expect(failed).to_be_visible()
    page.locator('text="every_line_imported" >> visible=true').first.click()
    expect(page.get_by_text("failing_lines_by_batch").first).to_be_visible(timeout=30_000)
    expect(
        page.get_by_text(f"import-pipeline failures {RECORD} --out fix.jsonl").first
    ).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "checks.png")
    page.goto(url + "/runs")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text("import_pipeline/failed_lines: 4").first).to_be_visible(timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "runs.png")


def _sees_results_per_record(page, expect, url: str) -> None:
    page.goto(url + "/assets/reference_store?view=partitions")
    page.wait_for_load_state("networkidle")
    page.get_by_text(RECORD, exact=True).first.click()
    row = page.get_by_role("row", name=re.compile(r"^results_by_record "))
    row.get_by_text("Show Markdown").click()
    picture = page.get_by_alt_text("Results per status for each record").first
    expect(picture).to_be_visible(timeout=30_000)
    assert picture.evaluate("(img) => img.naturalWidth") > 0
    picture.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "results-by-record.png")
