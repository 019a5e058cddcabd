"""The landing zone (contract section 2): `zone` reads folders and files behind one
fsspec-shaped interface, `records` reads `record.json` and finds what is still to import,
`demo` writes the bundled sample records. The names below are its public face."""

from import_pipeline.landing.zone import (
    BATCH_SUFFIXES,
    FINALISED_MARKER,
    RECORD_FILE,
    RECORD_KEY_PATTERN,
    BatchFile,
    LandingScan,
    LandingZone,
    RecordFolder,
    batch_name_problem,
    is_valid_record_key,
    record_key_problem,
)

__all__ = [
    "BATCH_SUFFIXES",
    "FINALISED_MARKER",
    "RECORD_FILE",
    "RECORD_KEY_PATTERN",
    "BatchFile",
    "LandingScan",
    "LandingZone",
    "RecordFolder",
    "batch_name_problem",
    "is_valid_record_key",
    "record_key_problem",
]
