"""The bundled sample records, built from the real data in `demo_data/`."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from import_pipeline.landing import LandingZone

DEMO_DATA = Path(str(resources.files("import_pipeline") / "demo_data"))
DESTINY = DEMO_DATA / "destiny"
SYNERGY = DEMO_DATA / "synergy"
EXPORTS = DEMO_DATA / "exports"

_SYNERGY_COLUMNS = {"doi": "doi", "pmid": "pm_id", "openalex_id": "open_alex"}


def synergy_lines(csv_path: Path) -> Iterator[str]:
    """One batch line per row of a SYNERGY `<review>_ids.csv` (read by header name).

    A row's non-empty PubMed, DOI and OpenAlex URLs become identifiers (normalised by the
    pipeline, like any input); whether the review included the work becomes an annotation.
    A row with no identifier gives a line with none, which fails, as such a row should.
    """
    review = csv_path.name.removesuffix("_ids.csv")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            identifiers = [
                {"identifier_type": kind, "identifier": row[column].strip()}
                for column, kind in _SYNERGY_COLUMNS.items()
                if (row.get(column) or "").strip()
            ]
            line = {"identifiers": identifiers, "enhancements": []}
            if (row.get("label_included") or "").strip() in ("0", "1"):
                line["enhancements"].append(
                    {
                        "source": f"synergy:{review}",
                        "visibility": "public",
                        "content": {
                            "enhancement_type": "annotation",
                            "annotations": [
                                {
                                    "annotation_type": "boolean",
                                    "scheme": "synergy:included",
                                    "label": review,
                                    "value": row["label_included"].strip() == "1",
                                }
                            ],
                        },
                    }
                )
            yield json.dumps(line, ensure_ascii=False)


def _record(source: str, processor: str, expected: int, notes: str) -> dict[str, object]:
    return {
        "source_name": source,
        "processor_name": processor,
        "processor_version": "1.0",
        "expected_reference_count": expected,
        "notes": notes,
    }


def _with_errors() -> str:
    """Four real EPPI lines with faulty lines among them: what a user sees when lines fail."""
    good = (DESTINY / "eppi_import.jsonl").read_text(encoding="utf-8").splitlines()
    bad = [
        '{"identifiers": [{"identifier_type": "doi", "identifier": "not-a-doi"}]}',
        '{"identifiers": [{"identifier_type": "doi", "identifier": "10.1016/j.vaccine.2019.12.013"}],'
        ' "title": "a top-level key the format does not have"}',
        '{"identifiers": [{"identifier_type": "pm_id", "identifier": "PMID:31879129"}], "enhancements": '
        '[{"source": "demo", "content": {"enhancement_type": "bibliographic", "publication_year": "2020"}}]}',
        '{"identifiers": [',
    ]
    return (
        "\n".join([good[0], bad[0], good[1], bad[1], "", good[2], bad[2], good[3], bad[3]]) + "\n"
    )


def demo_records() -> dict[str, dict[str, object]]:
    """Record key → {"record": record.json, "batches": {name: source path or text}}."""
    return {
        "eppi-hpv-vaccination": {
            "record": _record(
                "EPPI-Reviewer",
                "eppi-export",
                12,  # lines: three exports of the same four works
                "HPV vaccination papers: three exports of the same four works.",
            ),
            "batches": {
                name: DESTINY / name
                for name in (
                    "eppi_import.jsonl",
                    "eppi_import_with_annotations.jsonl",
                    "eppi_import_with_raw.jsonl",
                )
            },
        },
        "openalex-sample": {
            "record": _record(
                "OpenAlex", "openalex-robot", 10, "Production references built from OpenAlex."
            ),
            "batches": {"openalex_references.jsonl": DESTINY / "openalex_references.jsonl"},
        },
        "synergy-cohen-2006": {
            "record": _record(
                "SYNERGY", "synergy-csv", -1, "Cohen 2006 drug-class reviews: overlapping works."
            ),
            "batches": {
                f"{path.name.removesuffix('_ids.csv')}.jsonl": "\n".join(synergy_lines(path)) + "\n"
                for path in sorted(SYNERGY.glob("Cohen_2006_*_ids.csv"))
            },
        },
        "database-exports": {
            "record": _record(
                "database exports",
                "export-files",
                -1,
                "Real exports as databases write them: Embase, Scopus and Ovid PsycINFO RIS; "
                "PubMed through EndNote; ERIC's MEDLINE text.",
            ),
            "batches": {
                name: EXPORTS / folder / name
                for folder, name in (
                    ("asreview", "embase.ris"),
                    ("asreview", "scopus.ris"),
                    ("asreview", "ovid_psycinfo.ris"),
                    ("asreview", "pubmed_endnote.txt"),
                    ("colrev", "eric_nbib.nbib"),
                )
            },
        },
        "eppi-with-errors": {
            "record": _record(
                "EPPI-Reviewer", "eppi-export", -1, "Real lines with faulty lines among them."
            ),
            "batches": {"eppi_with_errors.jsonl": _with_errors()},
        },
    }


def install_demo(landing: LandingZone, *, finalise: bool = True) -> list[str]:
    """Puts the sample records into the landing zone (record.json first, then batches)."""
    keys = []
    with tempfile.TemporaryDirectory() as scratch:
        for key, spec in demo_records().items():
            record_file = Path(scratch) / f"{key}.record.json"
            record_file.write_text(json.dumps(spec["record"], indent=2), encoding="utf-8")
            landing.put_file(str(record_file), key, "record.json")
            for name, source in spec["batches"].items():  # type: ignore[attr-defined]
                if isinstance(source, Path):
                    landing.put_file(str(source), key, name)
                else:
                    staged = Path(scratch) / name
                    staged.write_text(source, encoding="utf-8")
                    landing.put_file(str(staged), key, name)
            if finalise:
                marker = Path(scratch) / "_finalised"
                marker.write_text("", encoding="utf-8")
                landing.put_file(str(marker), key, "_finalised")
            keys.append(key)
    return keys
