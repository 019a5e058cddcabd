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
    text = str(value).replace("\n", " ")
    return text if len(text) <= 100 else text[:97] + "..."


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
    rows = [
        {"batch": b["name"], "status": b["status"], **b["results"],
         "failure": b["failure_details"] if isinstance(b["failure_details"], str)
         else f"{len(b['failure_details'] or [])} failing line(s)"}
        for b in doc["batches"]
    ]  # fmt: skip
    rows.append({"batch": "(all)", "status": "", **doc["results"], "failure": ""})
    return head + "\n\n" + table(rows, ["batch", "status", *statuses, "failure"])


def _page(doc: dict[str, Any], noun: str, columns: list[str]) -> str:
    """A listing's page (`readers.page`): which rows of how many, then the rows."""
    head = f"{noun} {doc['offset'] + 1}-{doc['offset'] + doc['count']} of {doc['total']}"
    return head + "\n\n" + table(doc["results"], columns)


def render_results(doc: dict[str, Any]) -> str:
    return _page(doc, "results", ["line_number", "status", "reference_id", "failure_details"])


def render_reference(doc: dict[str, Any]) -> str:
    lines = [f"reference {doc['id']}  visibility {doc['visibility']}", "", "identifiers:"]
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
    if doc.get("duplicate_decision"):
        target = f" of {doc['duplicate_of']}" if doc.get("duplicate_of") else ""
        lines += ["", f"duplicate decision: {doc['duplicate_decision']}{target}"]
        lines += [f"  duplicate: {ref}" for ref in doc.get("duplicates", [])]
    return "\n".join(lines)


def emit(doc: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False) if as_json else render(doc))


def render_duplicates(doc: dict[str, Any]) -> str:
    columns = ["reference_id", "decision", "duplicate_of", "score", "decided_by", "evidence"]
    return _page(doc, "decisions", columns)


def render_decision(doc: dict[str, Any]) -> str:
    target = f" of {doc['duplicate_of']}" if doc.get("duplicate_of") else ""
    return f"reference {doc['reference_id']}: {doc['decision']}{target} (decided by a person)"
