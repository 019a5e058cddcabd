"""The picture of results per status for each record: one scale for all records, failing
lines named, every status drawn in its colour, many records bounded."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

from import_pipeline.defs.results_plot import (
    COLOURS,
    MAX_RECORDS,
    as_markdown_image,
    results_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> dict[str, float]:
    """(record, status) → bar width, read back from the picture."""
    widths = {}
    for rect in ET.fromstring(svg).iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None:
            record, rest = title.text.split(": ")
            widths[(record, rest.split(" ", 1)[1])] = float(rect.get("width"))
    return widths


def test_records_share_one_scale_and_failing_lines_are_named() -> None:
    svg = results_svg({"small": {"completed": 10, "failed": 2}, "big <&>": {"completed": 100}})
    widths = bars(svg)
    assert widths[("big <&>", "completed")] == 10 * widths[("small", "completed")]
    assert widths[("small", "failed")] == widths[("small", "completed")] / 5
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "12 · 2 failing" in texts and "100" in texts
    assert texts.index("big <&>") < texts.index("small")  # the largest first
    fill = {r.get("fill") for r in ET.fromstring(svg).iter(f"{SVG}rect")}
    assert set(COLOURS.values()) <= fill  # the legend draws every status


def test_many_records_are_bounded_and_counted() -> None:
    counts = {f"r{n:03}": {"completed": n + 1} for n in range(MAX_RECORDS + 5)}
    svg = results_svg(counts)
    assert len({record for record, _ in bars(svg)}) == MAX_RECORDS
    assert "… and 5 more record(s)" in svg


def test_an_empty_store_draws_an_empty_picture_and_the_image_is_inline() -> None:
    svg = results_svg({})
    assert bars(svg) == {}
    image = as_markdown_image(svg)
    encoded = re.fullmatch(r"!\[[^]]+\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", image)
    assert encoded and base64.b64decode(encoded.group(1)).decode() == svg
