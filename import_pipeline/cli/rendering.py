"""What the command line prints: tables and each document's text form (`--json` prints the
document itself)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from import_pipeline.domain.statuses import ImportResultStatus


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return cut(str(value))


def render_summary(doc: dict[str, Any]) -> str:
    record = doc["record"]
    head = (
        f"record {record['record_key']}  status {record['status']}  source {record['source_name']}"
        f"  strategy {record['collision_strategy']}  expected {record['expected_reference_count']}"
        f"  results {doc['total']}"
    )
    if record.get("problem"):
        head += f"\nproblem: {record['problem']}"
    statuses = [s.value for s in ImportResultStatus]
    rows = [row for b in doc["batches"] for row in _batch_rows(b)]
    rows.append({"batch": "(all)", "status": "", **doc["results"], "failure": ""})
    return head + "\n\n" + table(rows, ["batch", "status", *statuses, "failure"])


def cut(text: str, width: int = 100) -> str:
    """`text` on one line, at most `width` characters: what is cut ends in "..."."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _batch_rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch's rows in the summary's table: its counts and its failure (the batch-level
    reason, or how many lines failed), then a row for each of the first failing lines with
    its first error (every cell cut to the table's width)."""
    row = {"batch": batch["name"], "status": batch["status"], **batch["results"]}
    if isinstance(batch["failure_details"], str):
        return [{**row, "failure": batch["failure_details"]}]
    failing = batch.get("failing_lines") or {"count": len(batch["failure_details"] or []),
                                             "lines": []}  # fmt: skip
    if not failing["count"]:
        return [{**row, "failure": ""}]
    shown = failing["lines"]
    head = f"{failing['count']} failing line(s)"
    if shown:
        head += f", the first {len(shown)}:" if failing["count"] > len(shown) else ":"
    rows = [{**row, "failure": head}]
    rows += [
        {"failure": f"  line {f['line']} {f['code']}"
                    f"{' at ' + f['field'] if f.get('field') else ''}: {f['message']}"}
        for f in shown
    ]  # fmt: skip
    return rows


def _page(doc: dict[str, Any], noun: str, columns: list[str]) -> str:
    """A listing's page (`readers.page`): which rows of how many, then the rows."""
    head = f"{noun} {doc['offset'] + 1}-{doc['offset'] + doc['count']} of {doc['total']}"
    return head + "\n\n" + table(doc["results"], columns)


def render_results(doc: dict[str, Any]) -> str:
    columns = ["batch", "line_number", "status", "reference_id", "failure_details"]
    return _page(doc, "results", columns)


def render_reference(doc: dict[str, Any]) -> str:
    lines = [f"reference {doc['id']}  visibility {doc['visibility']}"]
    lines += [f"title: {doc.get('title') or '(none)'}", "", "identifiers:"]
    lines += [
        f"  {i['identifier_type']}"
        + (f" ({i['other_identifier_name']})" if i.get("other_identifier_name") else "")
        + f": {i['identifier']}"
        for i in doc["identifiers"]
    ]
    lines += ["", "enhancements:"]
    lines += [
        f"  {e['content'].get('enhancement_type')}  source {e['source']}  {e['visibility']}"
        for e in doc["enhancements"]
    ]
    lines += ["", f"from ({doc.get('provenance_total', 0)} result(s)):"]
    lines += [
        f"  record {p['record_key']}  batch {p['batch']}  line {p['line_number']}  {p['status']}"
        for p in doc.get("provenance", [])
    ]
    if doc.get("provenance_total", 0) > len(doc.get("provenance", [])):
        lines.append(f"  … and {doc['provenance_total'] - len(doc['provenance'])} more")
    if doc.get("duplicate_decision"):
        target = f" of {doc['duplicate_of']}" if doc.get("duplicate_of") else ""
        lines += ["", f"duplicate decision: {doc['duplicate_decision']}{target}"]
        lines += [f"  duplicate: {ref}" for ref in doc.get("duplicates", [])]
    return "\n".join(lines)


def emit(doc: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False) if as_json else render(doc))


#: The width of a title in the duplicates' table, so that both fit beside the ids.
TITLE_WIDTH = 40


def render_duplicates(doc: dict[str, Any]) -> str:
    columns = ["reference_id", "title", "decision", "duplicate_of", "duplicate_of_title",
               "score", "decided_by", "evidence"]  # fmt: skip
    rows = [
        {**r, "title": cut(r.get("title") or "", TITLE_WIDTH),
         "duplicate_of_title": cut(r.get("duplicate_of_title") or "", TITLE_WIDTH)}
        for r in doc["results"]
    ]  # fmt: skip
    return _page({**doc, "results": rows}, "decisions", columns)


def render_decision(doc: dict[str, Any]) -> str:
    target = f" of {doc['duplicate_of']}" if doc.get("duplicate_of") else ""
    return f"reference {doc['reference_id']}: {doc['decision']}{target} (decided by a person)"
