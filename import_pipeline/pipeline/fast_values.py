"""The checks of decoded values in the fast way (`fast_lines.py`), and the values it can
prove pydantic stores as msgspec does: a date, datetime, URL or UUID msgspec decodes as a
string is kept only in the form pydantic writes back unchanged, a float only below 1e16 (at
and above it msgspec writes `1e16`, pydantic `1e+16`; below it, and for every integer and
string, both write the same). Any other value is `Refused`, and its line goes the pydantic
way. `tests/test_fast_lines.py` checks each form against pydantic itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import HttpUrl

Check = Callable[[Any], Any]


class Refused(Exception):
    """A value the fast way cannot prove the pydantic way stores alike."""


def compose(*checks: Check | None) -> Check | None:
    """The checks one after the other (None: no check)."""
    steps = [check for check in checks if check is not None]
    if len(steps) < 2:
        return steps[0] if steps else None
    if len(steps) == 2:  # most: a validator and a type (a call less than the loop below)
        first, second = steps
        return lambda value: second(first(value))

    def check(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return check


def each(check: Check | None) -> Check | None:
    """The check of each item of a list (in place: the list is the decoded one)."""
    if check is None:
        return None
    table: dict[Any, Check] | None = getattr(check, "by_type", None)

    def checked(items: list[Any]) -> list[Any]:
        for index, item in enumerate(items):
            items[index] = check(item)
        return items

    if table is None:
        return checked

    def chosen(items: list[Any]) -> list[Any]:  # a union's items: one call less each
        for index, item in enumerate(items):
            found = table.get(type(item))
            if found is not None:
                items[index] = found(item)
        return items

    return chosen


def unless_none(check: Check | None) -> Check | None:
    """The check of a value that may be null."""
    return None if check is None else lambda value: value if value is None else check(value)


def by_type(table: dict[Any, Check | None]) -> Check | None:
    """The check of a union's value, chosen by the type it was decoded into."""
    checks = {python: check for python, check in table.items() if check is not None}
    if not checks:
        return None

    def check(value: Any) -> Any:
        found = checks.get(type(value))
        return value if found is None else found(value)

    check.by_type = checks  # type: ignore[attr-defined]
    return check


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def date_as_sent(value: str) -> str:
    """A real day written YYYY-MM-DD (pydantic writes a date so)."""
    if not _DATE.fullmatch(value):
        raise Refused(value)
    date.fromisoformat(value)  # a real day, year 1 to 9999 (ValueError otherwise)
    return value


def datetime_as_sent(value: str) -> str:
    """A real time written as pydantic writes it: a `T`, whole seconds or six digits of
    fraction (not all zero), no offset, `Z` or an offset that is not zero (+00:00 is `Z`)."""
    match = _DATETIME.fullmatch(value)
    if match is None or match[1] == ".000000" or match[2] in ("+00:00", "-00:00"):
        raise Refused(value)
    datetime.fromisoformat(value)
    return value


def uuid_lowered(value: str) -> str:
    """A UUID written with hyphens, which pydantic writes in lower case."""
    if not _UUID.fullmatch(value):
        raise Refused(value)
    return value.lower()


def url_as_sent(constraints: Any) -> Check:
    """URLs (of `constraints`' schemes and length) the WHATWG parser pydantic uses keeps as
    they are: a lower-case host of names, the last starting with a letter (a number would be
    an IPv4 address), none an IDNA label; no port, no user; a path; only characters strict
    parsing neither refuses nor percent-encodes; no dot segment (it would be resolved)."""
    schemes = "|".join(re.escape(scheme) for scheme in constraints.allowed_schemes)
    char = r"(?:[A-Za-z0-9\-._~!$&()*+,;=:@]|%[0-9A-Fa-f]{2})"
    label = r"(?!xn--)[a-z0-9_-]+"
    whole = re.compile(
        rf"(?:{schemes})://(?:{label}\.)*(?!xn--)[a-z][a-z0-9_-]*"
        rf"/(?:{char}|['/])*(?:\?(?:{char}|[?/])*)?(?:#(?:{char}|[?/])*)?"
    )
    dots = re.compile(r"/\.\.?(?:[/?#]|$)|%2[eE]")
    longest = constraints.max_length

    def check(value: str) -> str:
        if len(value) > longest or not whole.fullmatch(value) or dots.search(value):
            raise Refused(value)
        return value

    return check


def as_sent_checks() -> dict[Any, Check]:
    """The check of each type msgspec decodes as a string, by the model's type."""
    constraints = getattr(HttpUrl, "_constraints", None)  # pydantic's own, since 2.10
    if constraints is None:
        raise ValueError("HttpUrl has no constraints the URL check can read")
    if any(
        getattr(constraints, name) is not None
        for name in set(vars(constraints)) - {"max_length", "allowed_schemes"}
    ):
        raise ValueError(f"HttpUrl has constraints the URL check does not know: {constraints}")
    return {
        date: date_as_sent,
        datetime: datetime_as_sent,
        uuid.UUID: uuid_lowered,
        HttpUrl: url_as_sent(constraints),
    }


#: msgspec writes a float at or above this as `1e16`, pydantic as `1e+16`.
LARGEST_FLOAT = 1e16


#: Free JSON (an `Any` field) nested deeper than this goes the pydantic way, which alone
#: refuses a line nested too deep (`validate.MAX_NESTING_DEPTH`, 64): the models' own
#: nesting above a free value is a few levels (`tests/test_fast_lines.py` holds it below
#: the difference), so a line the fast way takes is never too deep, and its text need not
#: be searched for brackets.
DEEPEST_FREE_JSON = 32


def _refused(value: Any, depth: int) -> bool:
    """Whether plain JSON holds a float pydantic writes otherwise, or nests deeper than
    `DEEPEST_FREE_JSON` (`depth`: the containers it is inside of)."""
    if type(value) is float:
        return not abs(value) < LARGEST_FLOAT
    if type(value) is dict:
        return depth >= DEEPEST_FREE_JSON or any(
            _refused(item, depth + 1) for item in value.values()
        )
    if type(value) is list:
        return depth >= DEEPEST_FREE_JSON or any(_refused(item, depth + 1) for item in value)
    return False


def small_float(value: float) -> float:
    """A float both write alike."""
    if not abs(value) < LARGEST_FLOAT:
        raise Refused(value)
    return value


def small_floats(value: Any) -> Any:
    """Plain JSON whose floats both write alike, not nested too deep."""
    if value and _refused(value, 0):
        raise Refused("a float pydantic writes otherwise, or JSON nested deep")
    return value
