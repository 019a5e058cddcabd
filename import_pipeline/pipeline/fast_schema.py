"""The line model as msgspec Structs, derived from the pydantic models field by field, for the
fast way of validation (`fast_lines.py`); no second copy of the schema.

Each model reachable from the line model becomes a Struct with the same fields in the same
order, required or not (a field left out stays `UNSET`, so that what was sent is known, as
pydantic's fields set is), its union tag (a discriminated union of models becomes a tagged
union; a union a function chooses from is asked the member of each JSON kind), and unknown
keys refused. Lengths and bounds become msgspec constraints, which check as pydantic does;
a pattern (Rust's regex in pydantic, not Python's) is checked by pydantic itself. The
model's own validators run on the decoded values (`Derived.checks`), before-validators on
the JSON value as sent, as in pydantic. Dates, datetimes, URLs and UUIDs are decoded as
strings and kept only in the forms `fast_values.py` proves pydantic writes back unchanged;
floats only where both write them alike.

A model with anything else (another config, serializers, model validators, aliases, unions
of models without a tag, other constraints or types) raises `Unsupported`: it has no fast way.
"""

from __future__ import annotations

import functools
import inspect
import keyword
import types
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Tag,
    TypeAdapter,
)
from pydantic.fields import FieldInfo

from import_pipeline.pipeline.fast_values import (
    Check,
    Refused,
    as_sent_checks,
    by_type,
    compose,
    each,
    small_float,
    small_floats,
    unless_none,
)
from import_pipeline.pipeline.line_parts import default_of

UNSET = msgspec.UNSET


class Unsupported(Exception):
    """The line model has something the derivation does not translate: no fast way."""


#: Constraints msgspec checks as pydantic does, by the name both give them.
_NATIVE = {
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
    annotated_types.Ge: "ge",
    annotated_types.Gt: "gt",
    annotated_types.Le: "le",
    annotated_types.Lt: "lt",
}
#: The JSON kinds each plain type accepts (in strict pydantic and in msgspec alike).
_SCALARS: dict[Any, set[str]] = {
    str: {"string"}, int: {"integer"}, bool: {"boolean"}, type(None): {"null"},
}  # fmt: skip
_KINDS = {**_SCALARS, float: {"integer", "number"}}
#: A value of each JSON kind, for a function that chooses a union's member.
_PROBES: dict[str, tuple[Any, ...]] = {
    "object": ({}, {"a": 1}),
    "array": ([], [{}]),
    "string": ("", "x"),
    "integer": (0, 7),
    "number": (0.5,),
    "boolean": (True, False),
    "null": (None,),
}
_CONFIG = {"strict", "extra", "use_enum_values", "title", "json_schema_extra"}


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _union(members: list[Any]) -> Any:
    return Union[tuple(members)]  # noqa: UP007 (built from a list)


def _kinds(decode: Any) -> set[str]:
    """The JSON kinds a msgspec type accepts."""
    origin = get_origin(decode)
    if origin is Annotated:
        return _kinds(get_args(decode)[0])
    if _is_union(decode):
        return set().union(*(_kinds(member) for member in get_args(decode)))
    if decode is Any:
        return set(_PROBES)
    if decode in _KINDS or decode is None:
        return _KINDS[type(None) if decode is None else decode]
    if origin is Literal:
        return {"string"}
    if origin is list:
        return {"array"}
    if origin is dict or (isinstance(decode, type) and issubclass(decode, msgspec.Struct)):
        return {"object"}
    raise Unsupported(f"the kinds of {decode}")


def _plain(decode: Any) -> bool:
    """Whether a decoded value is the value pydantic validates too (plain JSON, no Struct)."""
    origin = get_origin(decode)
    if origin is Annotated:
        return _plain(get_args(decode)[0])
    if origin in (list, dict) or _is_union(decode):
        return all(_plain(arg) for arg in get_args(decode))
    return decode is Any or decode is None or decode in _KINDS or origin is Literal


def _fields_check(checks: dict[str, Check]) -> Check:
    """The check of a Struct: each checked field that was sent, checked, in straight-line code
    (a loop over the fields costs twice as much, and this runs for every Struct decoded)."""
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in checks):
        raise Unsupported(f"field names {list(checks)}")
    lines = ["def check(value):"]
    for index, name in enumerate(checks):
        lines += [
            f"    found = value.{name}",
            "    if found is not UNSET:",
            f"        value.{name} = check_{index}(found)",
        ]
    namespace: dict[str, Any] = {f"check_{i}": c for i, c in enumerate(checks.values())}
    namespace["UNSET"] = UNSET
    exec("\n".join([*lines, "    return value"]), namespace)
    check: Check = namespace["check"]
    return check


def _scalar_check(annotation: Any, constraints: list[Any]) -> Check:
    """The strict check of what a before-validator returned, against the field's type."""
    members = get_args(annotation) if _is_union(annotation) else (annotation,)
    if not all(member in _SCALARS for member in members):
        raise Unsupported(f"a before-validator on {annotation}")
    if constraints:
        return _pydantic_check(Annotated[annotation, *constraints])
    allowed = frozenset(members)

    def check(value: Any) -> Any:
        if type(value) not in allowed:
            raise Refused(value)
        return value

    return check


def _pydantic_check(annotation: Any) -> Check:
    """Constraints checked by pydantic itself (the model's engine), results cached."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=ConfigDict(strict=True))
    return functools.lru_cache(maxsize=4096)(adapter.validate_python)


def _split(metadata: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """Constraints msgspec checks as pydantic does, and those pydantic checks itself."""
    native, by_pydantic = {}, []
    for item in metadata:
        name = _NATIVE.get(type(item))
        if name is not None:
            native[name] = getattr(item, name)
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            by_pydantic.append(item)
        else:
            raise Unsupported(f"metadata {item!r}")
    return native, by_pydantic


def _supported_model(model: type[BaseModel]) -> None:
    config = model.model_config
    if config.get("strict") is not True or config.get("extra") != "forbid" or set(config) - _CONFIG:
        raise Unsupported(f"{model.__name__}'s config {config}")
    found = model.__pydantic_decorators__
    others = (found.validators, found.root_validators, found.field_serializers)
    if any(others) or found.model_serializers or found.model_validators or found.computed_fields:
        raise Unsupported(f"{model.__name__}'s validators or serializers")
    if model.__pydantic_post_init__ is not None or model.__pydantic_root_model__:
        raise Unsupported(model.__name__)


def _supported_field(info: FieldInfo) -> None:
    renamed = info.alias or info.validation_alias or info.serialization_alias
    if renamed or info.exclude or info.validate_default or getattr(info, "exclude_if", None):
        raise Unsupported(f"field {info}")


def _one_argument(func: Any) -> Any:
    parameters = inspect.signature(func).parameters.values()
    if len([p for p in parameters if p.default is inspect.Parameter.empty]) != 1:
        raise Unsupported(f"validator {func} takes more than the value")
    return func


def _validators(
    model: type[BaseModel], name: str, info: FieldInfo
) -> tuple[Check | None, Check | None]:
    """The field's before- and after-validator (at most one each), the model's own."""
    found: dict[str, list[Any]] = {"before": [], "after": []}
    for item in info.metadata:
        if isinstance(item, BeforeValidator | AfterValidator):
            found["before" if isinstance(item, BeforeValidator) else "after"].append(item.func)
    for decorator in model.__pydantic_decorators__.field_validators.values():
        if name in decorator.info.fields or "*" in decorator.info.fields:
            if decorator.info.mode not in found:
                raise Unsupported(f"a {decorator.info.mode} validator on {name}")
            found[decorator.info.mode].append(decorator.func)
    if any(len(funcs) > 1 for funcs in found.values()):
        raise Unsupported(f"validators on {name}")
    before, after = ([_one_argument(f) for f in found[mode]] or [None] for mode in found)
    return before[0], after[0]


def _expand(extra: list[Any], discriminator: Any) -> tuple[list[Any], Any]:
    """An `Annotated`'s metadata, with that of a `FieldInfo` in it spread out."""
    metadata = []
    for item in extra:
        if isinstance(item, FieldInfo):
            _supported_field(item)
            metadata += item.metadata
            discriminator = item.discriminator or discriminator
        elif isinstance(item, Discriminator):
            discriminator = item
        else:
            metadata.append(item)
    return metadata, discriminator


def _tag(model: type[BaseModel], name: str, info: FieldInfo, first: bool) -> str:
    """The value of a model's tag field (msgspec writes the tag first: it must be first)."""
    values = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
    if not first or len(values) != 1 or type(values[0]) is not str or not info.is_required():
        raise Unsupported(f"tag {name} of {model.__name__}")
    if info.metadata or _validators(model, name, info) != (None, None):
        raise Unsupported(f"tag {name} of {model.__name__}")
    return str(values[0])


def _python_types(decode: Any) -> list[Any]:
    """The Python types a member of a chosen union decodes into."""
    if _is_union(decode):
        return [python for member in get_args(decode) for python in _python_types(member)]
    if decode is str or (isinstance(decode, type) and issubclass(decode, msgspec.Struct)):
        return [decode]
    raise Unsupported(f"union member {decode}")


class Derived:
    """The Structs of a line model (`line`, the decoded line) and, by Struct, the check of
    its decoded values (`checks`), its union tag (`tags`), its fields' defaults."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.checks: dict[Any, Check] = {}
        self.tags: dict[Any, str] = {}
        self.defaults: dict[Any, dict[str, Callable[[], Any]]] = {}
        self._structs: dict[tuple[type[BaseModel], str | None], Any] = {}
        self._building: set[tuple[type[BaseModel], str | None]] = set()
        try:
            self._as_sent = as_sent_checks()
        except ValueError as exc:
            raise Unsupported(str(exc)) from None
        self.line = self.struct(model)

    def struct(self, model: type[BaseModel], tag_field: str | None = None) -> Any:
        """The Struct of `model` (tagged by the value of its field `tag_field`)."""
        key = (model, tag_field)
        if key in self._structs:
            return self._structs[key]
        if key in self._building:
            raise Unsupported(f"{model.__name__} contains itself")
        self._building.add(key)
        _supported_model(model)
        fields: list[Any] = []
        checks: dict[str, Check] = {}
        defaults: dict[str, Callable[[], Any]] = {}
        tag = None
        for index, (name, info) in enumerate(model.model_fields.items()):
            _supported_field(info)
            if name == tag_field:
                tag = _tag(model, name, info, index == 0)
                continue
            decode, check = self.field(model, name, info)
            if info.is_required():
                fields.append((name, decode))
            else:
                fields.append((name, decode | msgspec.UnsetType, UNSET))
                defaults[name] = default_of(model, name)
            if check is not None:
                checks[name] = check
        struct = msgspec.defstruct(
            f"Fast{model.__name__}", fields, tag_field=tag_field, tag=tag,
            forbid_unknown_fields=True, kw_only=True, gc=False,
        )  # fmt: skip
        self._structs[key], self.defaults[struct] = struct, defaults
        if tag is not None:
            self.tags[struct] = tag
        if checks:
            self.checks[struct] = _fields_check(checks)
        return struct

    def field(self, model: type[BaseModel], name: str, info: FieldInfo) -> tuple[Any, Check | None]:
        """A field's msgspec type and the check of its decoded value: its before-validator (on
        the JSON value as sent), its type and constraints, its after-validator."""
        before, after = _validators(model, name, info)
        metadata = [m for m in info.metadata if not isinstance(m, BeforeValidator | AfterValidator)]
        if before is not None:
            return Any, compose(before, _scalar_check(info.annotation, metadata), after)
        decode, check = self.type(info.annotation, metadata, info.discriminator)
        if after is None:
            return decode, check
        if not _plain(decode):
            raise Unsupported(f"an after-validator on {name}: {info.annotation}")
        # What the validator returns is stored: its floats are looked at again.
        return decode, compose(check, after, small_floats)

    def type(
        self, annotation: Any, metadata: list[Any] | None = None, discriminator: Any = None
    ) -> tuple[Any, Check | None]:
        """A type's msgspec type and the check of its decoded values."""
        metadata = metadata or []
        if get_origin(annotation) is Annotated:
            inner, *extra = get_args(annotation)
            more, discriminator = _expand(extra, discriminator)
            return self.type(inner, more + metadata, discriminator)
        if _is_union(annotation):
            return self.union(get_args(annotation), discriminator, metadata)
        if discriminator is not None:
            raise Unsupported(f"a discriminator on {annotation}")
        native, by_pydantic = _split(metadata)
        decode, check = self.single(annotation)
        if by_pydantic:
            if annotation not in _SCALARS:
                raise Unsupported(f"constraints {by_pydantic} on {annotation}")
            check = _pydantic_check(Annotated[annotation, *by_pydantic])
        if native:
            if annotation in self._as_sent:
                raise Unsupported(f"constraints on {annotation}")
            decode = Annotated[decode, msgspec.Meta(**native)]
        return decode, check

    def single(self, annotation: Any) -> tuple[Any, Check | None]:
        """A type that is neither a union nor annotated."""
        origin = get_origin(annotation)
        if annotation is float:
            return float, small_float
        if annotation is Any or (origin is dict and get_args(annotation) == (str, Any)):
            return annotation, small_floats
        if annotation in _SCALARS:
            return (None if annotation is type(None) else annotation), None
        if annotation in self._as_sent:
            return str, self._as_sent[annotation]
        if origin is Literal and all(type(arg) is str for arg in get_args(annotation)):
            return annotation, None
        if origin is list:
            item, check = self.type(get_args(annotation)[0])
            return list[item], each(check)  # type: ignore[valid-type]
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            values = tuple(member.value for member in annotation)
            if not all(type(value) is str for value in values):
                raise Unsupported(f"enum {annotation}")
            return Literal[values], None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            struct = self.struct(annotation)
            return struct, self.checks.get(struct)
        raise Unsupported(f"type {annotation}")

    def union(
        self, members: tuple[Any, ...], discriminator: Any, metadata: list[Any]
    ) -> tuple[Any, Check | None]:
        """A union's msgspec type; constraints apply to the member of an optional value."""
        others = [member for member in members if member is not type(None)]
        if metadata and len(others) != 1:
            raise Unsupported(f"constraints on a union {members}")
        if isinstance(discriminator, str):
            if not all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
                raise Unsupported(f"union {members}")
            structs = [self.struct(member, discriminator) for member in members]
            return _union(structs), by_type({s: self.checks.get(s) for s in structs})
        if isinstance(discriminator, Discriminator):
            return self.chosen(members, discriminator.discriminator)
        if discriminator is not None:
            raise Unsupported(f"discriminator {discriminator}")
        nullable = len(others) < len(members)
        if len(others) == 1:
            decode, check = self.type(others[0], metadata)
            return (decode | None if nullable else decode), unless_none(check)
        translated = [self.type(member) for member in others]
        decodes = [decode for decode, _ in translated]
        if any(check is not None or not _plain(decode) for decode, check in translated):
            raise Unsupported(f"union {members}")
        if {int, float} <= set(decodes):
            raise Unsupported(f"union of numbers {members}")
        return _union(decodes + [None] * nullable), None

    def chosen(self, members: tuple[Any, ...], function: Any) -> tuple[Any, Check | None]:
        """A union a function chooses from: each member must be the one msgspec decodes the
        JSON kinds it accepts into (the function is asked about a value of each kind)."""
        if not callable(function):
            raise Unsupported(f"discriminator {function}")
        decodes: list[Any] = []
        table: dict[Any, Check | None] = {}
        for member in members:
            inner, *extra = get_args(member) if get_origin(member) is Annotated else (member,)
            tags = [item.tag for item in extra if isinstance(item, Tag)]
            rest = [item for item in extra if not isinstance(item, Tag)]
            if len(tags) != 1:
                raise Unsupported(f"union member {member}")
            decode, check = self.type(Annotated[inner, *rest] if rest else inner)
            for kind in _kinds(decode):
                if any(function(probe) != tags[0] for probe in _PROBES[kind]):
                    raise Unsupported(f"the discriminator {function} on {kind}")
            for python in _python_types(decode):
                table[python] = check if python is str else self.checks.get(python)
            decodes += list(get_args(decode)) if _is_union(decode) else [decode]
        return _union(decodes), by_type(table)
