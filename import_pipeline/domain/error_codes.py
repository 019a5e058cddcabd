"""The codes of a result's errors (contract section 4) and the shape of one error."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes of a result (commercetools ErrorObject style)."""

    INVALID_JSON_INPUT = "InvalidJsonInput"
    REQUIRED_FIELD = "RequiredField"
    INVALID_FIELD = "InvalidField"
    UNKNOWN_FIELD = "UnknownField"
    INVALID_INPUT = "InvalidInput"
    LINE_TOO_LONG = "LineTooLong"
    IDENTIFIER_COLLISION = "IdentifierCollision"
    DUPLICATE_REFERENCE = "DuplicateReference"
    UNRESOLVED_REFERENCE = "UnresolvedReference"
    GENERIC = "Generic"


#: The keys of one error of a result, in the order they are written: `field` is a path such as
#: ``identifiers[1].identifier``, or null when the error is about the whole line.
ERROR_KEYS = ("code", "message", "field")
