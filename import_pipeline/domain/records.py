"""`record.json`: what a processor says about an import (contract section 2)."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from import_pipeline.domain.formats import FORMATS
from import_pipeline.domain.strategies import CollisionStrategy


def _known_format(value: str) -> str:
    if value not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def _known_encoding(value: str) -> str:
    try:
        codec: codecs.CodecInfo | None = codecs.lookup(value)
    except LookupError:
        codec = None
    # Not "hex" or "base64": codecs of bytes to bytes decode no text.
    if codec is None or not getattr(codec, "_is_text_encoding", True):
        raise ValueError(
            f"encoding {value!r} is not a text encoding Python knows (e.g. cp1252, latin-1)"
        )
    return value


def _assume_utc_and_past(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > datetime.now(UTC):
        raise ValueError("searched_at must not be in the future")
    return value


class ImportRecordInput(BaseModel):
    """The fields of `record.json`: what a processor says about an import."""

    model_config = ConfigDict(extra="forbid")

    source_name: str = Field(
        min_length=1, description="The source of the references being imported (eg. OpenAlex)."
    )
    processor_name: str = Field(
        min_length=1, description="The name of the processor that is importing the data."
    )
    processor_version: str = Field(
        min_length=1, description="The version of the processor that is importing the data."
    )
    expected_reference_count: int = Field(
        ge=-1,
        description="Number of references expected in this import; -1 if unknown.",
    )
    search_string: str | None = Field(
        default=None, description="The search string used to produce this import."
    )
    searched_at: Annotated[datetime, AfterValidator(_assume_utc_and_past)] | None = Field(
        default=None,
        description="When the search that produced this import ran (ISO 8601). "
        "No timezone means UTC; it may not be in the future.",
    )
    notes: str | None = Field(default=None, description="Free-text notes about the import.")
    collision_strategy: CollisionStrategy = Field(
        default=CollisionStrategy.MERGE_DEFENSIVE,
        description="What a line matching one stored reference does to it.",
    )
    format: Annotated[str, AfterValidator(_known_format)] | None = Field(
        default=None,
        description="The format of every batch of the record (jsonl, ris, medline, bibtex, "
        "endnote, csv, eppi_json, wos); by default each batch's extension tells it.",
    )
    encoding: Annotated[str, AfterValidator(_known_encoding)] | None = Field(
        default=None,
        description="The encoding of the record's export batches when they carry no byte order "
        "mark (default UTF-8), e.g. cp1252.",
    )
