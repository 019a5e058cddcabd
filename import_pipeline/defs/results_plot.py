"""Results per status for each record as one picture: a bar per record, its length the
record's results (one scale for all, so records compare at a glance), split by status, with
the record's failing lines in red. An SVG written here (no plotting library for twelve
rectangles), shown in the UI as a Markdown image."""

from __future__ import annotations

import base64
from html import escape

from import_pipeline.domain.statuses import ImportResultStatus

#: Status → colour (colour-blind safe: Okabe–Ito), in the order the bars are split.
COLOURS = {
    ImportResultStatus.COMPLETED.value: "#009E73",
    ImportResultStatus.CREATED.value: "#56B4E9",
    ImportResultStatus.PARTIALLY_FAILED.value: "#E69F00",
    ImportResultStatus.FAILED.value: "#D55E00",
    ImportResultStatus.RETRYING.value: "#CC79A7",
    ImportResultStatus.STARTED.value: "#999999",
}
_WIDTH, _LABEL, _BAR, _ROW, _TOP = 900, 220, 560, 26, 44
#: Records drawn at most (the ones with the most results); the rest are counted below.
MAX_RECORDS = 40


def results_svg(counts: dict[str, dict[str, int]]) -> str:
    """The picture of `counts` (record → status → results)."""
    records = sorted(counts, key=lambda key: (-sum(counts[key].values()), key))
    shown = records[:MAX_RECORDS]
    largest = max([sum(counts[key].values()) for key in shown] + [1])
    height = _TOP + _ROW * len(shown) + (30 if len(records) > len(shown) else 10)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        *_legend(),
    ]
    for row, key in enumerate(shown):
        parts += _bar(key, counts[key], largest, _TOP + row * _ROW)
    if len(records) > len(shown):
        y = _TOP + len(shown) * _ROW + 16
        parts.append(f'<text x="8" y="{y}">… and {len(records) - len(shown)} more record(s)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> list[str]:
    parts, x = [], 8
    for status, colour in COLOURS.items():
        parts.append(f'<rect x="{x}" y="10" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="21">{status}</text>')
        x += 24 + 8 * len(status)
    return parts


def _bar(key: str, statuses: dict[str, int], largest: int, y: int) -> list[str]:
    total = sum(statuses.values())
    failing = statuses.get("failed", 0) + statuses.get("partially_failed", 0)
    label = key if len(key) <= 28 else key[:27] + "…"
    parts = [f'<text x="8" y="{y + 15}">{escape(label)}</text>']
    x = float(_LABEL)
    for status, colour in COLOURS.items():
        width = _BAR * statuses.get(status, 0) / largest
        if width > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(width, 1):.1f}" height="16" '
                f'fill="{colour}"><title>{escape(key)}: {statuses[status]} {status}</title></rect>'
            )
            x += width
    note = f"{total:,}" + (f" · {failing:,} failing" if failing else "")
    colour = COLOURS["failed"] if failing else "black"
    parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" fill="{colour}">{note}</text>')
    return parts


def as_markdown_image(svg: str) -> str:
    encoded = base64.b64encode(svg.encode()).decode()
    return f"![Results per status for each record](data:image/svg+xml;base64,{encoded})"
