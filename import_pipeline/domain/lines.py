"""The batch line: DESTINY's `ReferenceFileInput`, its identifiers and enhancements.

Pure pydantic. These models are the schema's source of truth: the JSON Schema
(`import-pipeline schema`), every line's verdict and its precise error messages
(`pipeline/validate.py`) all come from here. They follow the DESTINY SDK's models field by
field; where they differ on purpose, `docs/decisions.md` says why.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from import_pipeline.domain.identifiers import (
    ACCEPTED_FORMS,
    WHITESPACE,
    IdentifierType,
    normalise_identifier,
)

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


class Visibility(StrEnum):
    PUBLIC = "public"
    RESTRICTED = "restricted"
    HIDDEN = "hidden"


class _Strict(BaseModel):
    # Strict: "2024" is not a year and 1 is not a string. Unknown keys are errors. Enum fields
    # hold their values (plain strings): cheaper to read a million times.
    model_config = ConfigDict(strict=True, extra="forbid", use_enum_values=True)


def _normalising(identifier_type: IdentifierType) -> BeforeValidator:
    """The identifier's value replaced by its normalised form, or one error naming the forms
    the type accepts (never one message per branch of a union)."""
    message = f"not a valid {identifier_type}: expected {ACCEPTED_FORMS[identifier_type]}"

    def normalise(value: object) -> str:
        normalised = normalise_identifier(identifier_type, value)
        if normalised is None:
            raise ValueError(message)
        return normalised

    return BeforeValidator(normalise)


def _identifier_field(identifier_type: IdentifierType) -> Any:
    return Field(description=ACCEPTED_FORMS[identifier_type])


class DOIIdentifier(_Strict):
    identifier_type: Literal["doi"] = Field(description="A Digital Object Identifier.")
    identifier: Annotated[str, _normalising(IdentifierType.DOI)] = _identifier_field(
        IdentifierType.DOI
    )


class PubMedIdentifier(_Strict):
    identifier_type: Literal["pm_id"] = Field(description="A PubMed id.")
    # A JSON integer or a string on input; the decimal string once validated.
    identifier: Annotated[int | str, _normalising(IdentifierType.PM_ID)] = _identifier_field(
        IdentifierType.PM_ID
    )


class OpenAlexIdentifier(_Strict):
    identifier_type: Literal["open_alex"] = Field(description="An OpenAlex work id.")
    identifier: Annotated[str, _normalising(IdentifierType.OPEN_ALEX)] = _identifier_field(
        IdentifierType.OPEN_ALEX
    )


class ERICIdentifier(_Strict):
    identifier_type: Literal["eric"] = Field(description="An ERIC accession number.")
    identifier: Annotated[str, _normalising(IdentifierType.ERIC)] = _identifier_field(
        IdentifierType.ERIC
    )


class ProQuestIdentifier(_Strict):
    identifier_type: Literal["pro_quest"] = Field(description="A ProQuest document id.")
    identifier: Annotated[str, _normalising(IdentifierType.PRO_QUEST)] = _identifier_field(
        IdentifierType.PRO_QUEST
    )


class OtherIdentifier(_Strict):
    identifier_type: Literal["other"] = Field(description="Any other identifier.")
    identifier: Annotated[str, _normalising(IdentifierType.OTHER)] = _identifier_field(
        IdentifierType.OTHER
    )
    other_identifier_name: str = Field(min_length=1, description="What kind of identifier it is.")

    @field_validator("other_identifier_name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip(WHITESPACE):
            raise ValueError("other_identifier_name must not be blank")
        return value.strip(WHITESPACE)


ExternalIdentifier = Annotated[
    DOIIdentifier
    | PubMedIdentifier
    | OpenAlexIdentifier
    | ERICIdentifier
    | ProQuestIdentifier
    | OtherIdentifier,
    Field(discriminator="identifier_type"),
]


# -- enhancement contents (the DESTINY SDK's enhancement models) --------------------------------


class AuthorPosition(StrEnum):
    FIRST = "first"
    MIDDLE = "middle"
    LAST = "last"


class Authorship(_Strict):
    display_name: str = Field(description="The author's name as displayed.")
    orcid: str | None = Field(default=None, description="The author's ORCID.")
    position: AuthorPosition = Field(description="Where the author stands in the author list.")


def _blank_to_none(value: object) -> object:
    # As the DESTINY SDK: NBSP is a space, the value is trimmed, and nothing left is null.
    if isinstance(value, str):
        value = value.replace("\u00a0", " ").strip()
        return value or None
    return value


_PaginationString = Annotated[str | None, BeforeValidator(_blank_to_none)]


class Pagination(_Strict):
    """Volume, issue and pages, as strings (OpenAlex has "Spring" and "A1" among them)."""

    volume: _PaginationString = None
    issue: _PaginationString = None
    first_page: _PaginationString = None
    last_page: _PaginationString = None


class PublicationVenueType(StrEnum):
    JOURNAL = "journal"
    REPOSITORY = "repository"
    CONFERENCE = "conference"
    EBOOK_PLATFORM = "ebook_platform"
    BOOK_SERIES = "book_series"
    OTHER = "other"


class PublicationVenue(_Strict):
    display_name: str | None = None
    venue_type: PublicationVenueType | None = None
    issn: list[str] | None = None
    issn_l: str | None = None
    host_organization_name: str | None = None


class BibliographicMetadataEnhancement(_Strict):
    """Bibliographic metadata: authors, dates, title, publisher."""

    enhancement_type: Literal["bibliographic"]
    authorship: list[Authorship] | None = Field(default=None, description="The authors.")
    cited_by_count: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="How many works cite this one."
    )
    created_date: date | None = Field(default=None, description="When the record was created.")
    updated_date: date | None = Field(default=None, description="When the record was updated.")
    publication_date: date | None = Field(default=None, description="When it was published.")
    publication_year: int | None = Field(default=None, description="The year of publication.")
    publisher: str | None = Field(default=None, description="The publisher.")
    title: str | None = Field(default=None, description="The title.")
    pagination: Pagination | None = Field(default=None, description="Volume, issue and pages.")
    publication_venue: PublicationVenue | None = Field(
        default=None, description="Where it appeared."
    )


class AbstractProcessType(StrEnum):
    UNINVERTED = "uninverted"
    CLOSED_API = "closed_api"
    OTHER = "other"


class AbstractContentEnhancement(_Strict):
    """The abstract of a work and how it was obtained."""

    enhancement_type: Literal["abstract"]
    process: AbstractProcessType = Field(description="How the abstract was obtained.")
    abstract: str = Field(description="The abstract.")


_SCHEME = r"^[^/]+$"  # a scheme has no slash: "<scheme>/<label>" is an annotation's full name


class BooleanAnnotation(_Strict):
    annotation_type: Literal["boolean"]
    scheme: str = Field(pattern=_SCHEME, description="The annotation scheme, e.g. openalex:topic.")
    label: str = Field(min_length=1, description="The label within the scheme.")
    value: bool = Field(description="Whether the label applies.")
    score: float | None = Field(default=None, description="A confidence score.")
    data: dict[str, Any] = Field(default_factory=dict, description="Free-form details.")


class ScoreAnnotation(_Strict):
    annotation_type: Literal["score"]
    scheme: str = Field(pattern=_SCHEME)
    label: str = Field(min_length=1)
    score: float = Field(description="The score.")
    data: dict[str, Any] = Field(default_factory=dict)


Annotation = Annotated[BooleanAnnotation | ScoreAnnotation, Field(discriminator="annotation_type")]


class AnnotationEnhancement(_Strict):
    """Labels from a scheme (classifiers, topics, screening decisions)."""

    enhancement_type: Literal["annotation"]
    annotations: list[Annotation] = Field(min_length=1, description="The annotations.")


class DriverVersion(StrEnum):
    PUBLISHED = "publishedVersion"
    ACCEPTED = "acceptedVersion"
    SUBMITTED = "submittedVersion"
    OTHER = "other"


class Location(_Strict):
    is_oa: bool | None = Field(default=None, description="Whether it is open access.")
    version: DriverVersion | None = Field(default=None, description="Which version is hosted.")
    landing_page_url: HttpUrl | None = Field(default=None, description="The landing page.")
    pdf_url: HttpUrl | None = Field(default=None, description="The PDF.")
    license: str | None = Field(default=None, description="The licence.")
    extra: dict[str, Any] | None = Field(default=None, description="Free-form details.")


class LocationEnhancement(_Strict):
    """Where a work can be found."""

    enhancement_type: Literal["location"]
    locations: list[Location] = Field(min_length=1, description="The locations.")


class ReferenceAssociationType(StrEnum):
    CITES = "cites"
    IS_CITED_BY = "is_cited_by"
    IS_SIMILAR_TO = "is_similar_to"


def _target_kind(value: Any) -> str:
    # An object is an external identifier, anything else a reference UUID: one branch decides,
    # so a refused target gets that branch's errors, not one per branch of the union.
    # (Tags named as no key of an identifier, so error locations walk through them.)
    return "external_identifier" if isinstance(value, dict | BaseModel) else "reference_uuid"


#: A target of an association: an external identifier, or a reference's UUID.
AssociatedReference = Annotated[
    Annotated[ExternalIdentifier, Tag("external_identifier")]
    | Annotated[uuid.UUID, Tag("reference_uuid")],
    Discriminator(_target_kind),
]


class ReferenceAssociationEnhancement(_Strict):
    """Links to other references, by external identifier or reference id."""

    enhancement_type: Literal["reference_association"]
    associated_reference_ids: list[AssociatedReference] = Field(
        min_length=1, description="The associated references."
    )
    association_type: ReferenceAssociationType = Field(description="How they are associated.")


class LinkedDataEnhancement(_Strict):
    """Linked-data statements about the work (a JSON-LD document)."""

    enhancement_type: Literal["linked_data"]
    vocabulary_uri: HttpUrl = Field(description="The vocabulary the data uses.")
    data: dict[str, Any] = Field(description="The JSON-LD document; needs an @context URL.")

    @field_validator("data")
    @classmethod
    def _has_context(cls, value: dict[str, Any]) -> dict[str, Any]:
        context = value.get("@context")
        try:
            _HTTP_URL.validate_python(context)
        except ValidationError:
            raise ValueError("data needs an '@context' that is an http(s) URL") from None
        return value


class FullTextEnhancement(_Strict):
    """Where the full text of a work is, and what it is."""

    enhancement_type: Literal["full_text"]
    file_url: HttpUrl = Field(description="Where the full text file is.")
    byte_size: Annotated[int, Field(ge=0)] | None = Field(default=None, description="Its size.")
    sha256_checksum: str | None = Field(default=None, description="Its SHA-256.")
    mime_type: str = Field(default="application/pdf", description="Its media type.")
    version: DriverVersion | None = Field(default=None, description="Which version it is.")
    is_oa: bool | None = Field(default=None, description="Whether it is open access.")
    license: str | None = Field(default=None, description="Its licence.")
    source: str | None = Field(default=None, description="Where it was found.")
    source_url: HttpUrl | None = Field(default=None, description="The page it was found on.")
    retrieved_at: datetime | None = Field(default=None, description="When it was retrieved.")


class RawEnhancement(_Strict):
    """The source record as exported, kept verbatim."""

    enhancement_type: Literal["raw"]
    source_export_date: datetime = Field(description="When the source exported the record.")
    description: str = Field(description="What the raw data is.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="About the export.")
    data: Any = Field(description="The raw record; not empty.")

    @field_validator("data")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if not value:
            raise ValueError('raw data must not be empty (null, false, 0, "", [] or {})')
        return value


EnhancementContent = Annotated[
    BibliographicMetadataEnhancement
    | AbstractContentEnhancement
    | AnnotationEnhancement
    | LocationEnhancement
    | ReferenceAssociationEnhancement
    | LinkedDataEnhancement
    | FullTextEnhancement
    | RawEnhancement,
    Field(discriminator="enhancement_type"),
]


class EnhancementFileInput(_Strict):
    """One enhancement of a reference as it appears in a batch line."""

    id: Any = Field(default=None, description="Ignored: written by a repository's export.")
    reference_id: Any = Field(
        default=None, description="Ignored: written by a repository's export."
    )
    derived_from: Any = Field(
        default=None, description="Ignored: written by a repository's export."
    )
    created_at: Any = Field(default=None, description="Ignored: written by a repository's export.")

    source: str = Field(min_length=1, description="Who produced the enhancement.")
    visibility: Visibility = Field(description="Who may see the enhancement.")
    robot_version: str | None = Field(default=None, description="The producing robot's version.")
    processor_version: str | None = Field(
        default=None, description="The producing processor's version (robot_version's newer name)."
    )
    content: EnhancementContent


class ReferenceFileInput(_Strict):
    """One line of a batch file: a reference with its identifiers and enhancements."""

    id: Any = Field(
        default=None, description="Ignored: files exported from a repository re-import."
    )
    visibility: Visibility = Field(default=Visibility.PUBLIC)
    identifiers: list[ExternalIdentifier] = Field(
        min_length=1, description="At least one external identifier."
    )
    enhancements: list[EnhancementFileInput] = Field(default_factory=list)


def batch_line_json_schema() -> dict[str, Any]:
    """The JSON Schema of one batch line."""
    return ReferenceFileInput.model_json_schema()
