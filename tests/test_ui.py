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
                page = browser.new_page(viewport={"width": 1920, "height": 1200})
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
                table = page.locator("table").filter(has_text="identifiers[0].identifier")
                expect(table.first).to_be_visible(timeout=30_000)
                expect(page.get_by_text("not a valid doi").first).to_be_visible()
                expect(page.get_by_text("unknown field 'title'").first).to_be_visible()
                expect(
                    page.get_by_text(
                        "import-pipeline results eppi-with-errors --status failed"
                    ).first
                ).to_be_visible()
                page.screenshot(path=SCREENSHOTS / "record-partition.png")
                table.first.scroll_into_view_if_needed()
                page.mouse.wheel(0, 400)
                page.wait_for_timeout(500)
                page.screenshot(path=SCREENSHOTS / "failing-lines.png")

                page.get_by_role("tab", name="Checks").or_(
                    page.get_by_text("Checks", exact=True)
                ).first.click()
                for check in (
                    "every_line_has_one_result",
                    "results_point_at_references",
                    "expected_reference_count",
                ):
                    expect(page.get_by_text(check).first).to_be_visible(timeout=30_000)
                expect(page.get_by_text("Succeeded").first).to_be_visible()
                page.screenshot(path=SCREENSHOTS / "checks.png")
                (SCREENSHOTS / "clicks.txt").write_text(f"{clicks}\n")
                assert clicks <= 4
            finally:
                browser.close()
