"""Compiles a pydantic model's JSON Schema into one DuckDB SQL predicate over a JSON value.

The predicate is a *screen*: whatever it accepts, pydantic accepts too, so valid items never
pay pydantic; whatever it cannot prove valid it leaves to pydantic, which then decides and
explains. Soundness comes from being conservative: a schema keyword it does not understand,
or a model with Python validators (invisible in JSON Schema), compiles to FALSE.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$"
_HTTP_URL = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(:[0-9]{1,4})?(/[!-~]*)?$"
)
_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
# Character classes, anchors and plain characters: no \d, \w, \s (Unicode-aware in one engine
# and not the other), no backreferences or lookaround.
_PORTABLE_PATTERN = re.compile(r"[\^$\[\]A-Za-z0-9 _:/.+*?-]*")
_INTEGER_TYPES = "('UBIGINT', 'BIGINT')"
_NUMBER_TYPES = "('UBIGINT', 'BIGINT', 'DOUBLE')"
# Keywords that say nothing about validity.
_ANNOTATIONS = {"title", "description", "default", "examples", "discriminator"}


def _raw_data_not_empty(x: str) -> str:
    v = f"json_extract({x}, '$.data')"
    return (
        f"NOT (json_type({v}) = 'NULL' OR {v}::VARCHAR = 'false'"
        f" OR (json_type({v}) IN {_NUMBER_TYPES} AND TRY_CAST({v}::VARCHAR AS DOUBLE) = 0)"
        f" OR (json_type({v}) = 'VARCHAR' AND json_extract_string({v}, '$') = '')"
        f" OR (json_type({v}) = 'ARRAY' AND json_array_length({v}) = 0)"
        f" OR (json_type({v}) = 'OBJECT' AND len(json_keys({v})) = 0))"
    )


#: SQL twins of Python validators, per model: with one, the model is screened (its JSON Schema
#: check AND the twin) instead of always going to pydantic. The soundness test covers them.
SQL_TWINS: dict[str, Any] = {"RawEnhancement": _raw_data_not_empty}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path(name: str) -> str:
    return _literal("$." + json.dumps(name))


def _models_with_python_validators(model: type[BaseModel]) -> set[str]:
    """Names (JSON Schema titles) of models whose validity JSON Schema cannot express."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def visit(cls: type[BaseModel]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        decorators = cls.__pydantic_decorators__
        has_validators = decorators.field_validators or decorators.model_validators
        if has_validators and cls.__name__ not in SQL_TWINS:
            found.add(cls.__name__)
        for field in cls.model_fields.values():
            for candidate in _model_classes(field.annotation):
                visit(candidate)
            if field.metadata and any(
                type(m).__name__.endswith("Validator") for m in field.metadata
            ):
                found.add(cls.__name__)

    visit(model)
    return found


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for argument in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_classes(argument))
    for item in getattr(annotation, "__metadata__", ()) or ():
        found.extend(_model_classes(item))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        found.extend(_model_classes(origin))
    return found


class _Compiler:
    def __init__(self, schema: dict[str, Any], opaque: set[str]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.opaque = opaque
        self.depth = 0

    def compile(self, schema: dict[str, Any], x: str) -> str:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in self.opaque:
                return "FALSE"
            compiled = self.compile(self.defs[name], x)
            if name in SQL_TWINS:
                compiled = f"({compiled} AND {SQL_TWINS[name](x)})"
            return compiled
        if "anyOf" in schema or "oneOf" in schema:
            branches = schema.get("anyOf") or schema.get("oneOf")
            mapping = (schema.get("discriminator") or {}).get("mapping")
            if mapping:
                prop = schema["discriminator"]["propertyName"]
                tag = f"json_extract_string({x}, {_path(prop)})"
                cases = " ".join(
                    f"WHEN {_literal(value)} THEN ({self.compile({'$ref': ref}, x)})"
                    for value, ref in mapping.items()
                )
                return f"(json_type({x}) = 'OBJECT' AND CASE {tag} {cases} ELSE FALSE END)"
            return "(" + " OR ".join(f"({self.compile(b, x)})" for b in branches) + ")"
        unknown = set(schema) - _ANNOTATIONS - {
            "type", "properties", "required", "additionalProperties", "items", "minItems",
            "maxItems", "enum", "const", "minLength", "maxLength", "format", "minimum",
            "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern",
        }  # fmt: skip
        if unknown:
            return "FALSE"
        kind = schema.get("type")
        if kind is None:
            if "enum" in schema or "const" in schema:
                return self._string(schema, x)
            return "TRUE" if not schema.keys() - _ANNOTATIONS else "FALSE"
        checks = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, v: f"json_type({v}) = 'BOOLEAN'",
            "null": lambda s, v: f"json_type({v}) = 'NULL'",
        }
        if not isinstance(kind, str) or kind not in checks:
            return "FALSE"
        return checks[kind](schema, x)

    def _object(self, schema: dict[str, Any], x: str) -> str:
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        parts = [f"json_type({x}) = 'OBJECT'"]
        keys = f"json_keys({x})"
        for name in schema.get("required", []):
            parts.append(f"list_contains({keys}, {_literal(name)})")
        if extra is False:
            allowed = "[" + ", ".join(_literal(n) for n in properties) + "]::VARCHAR[]"
            parts.append(f"list_has_all({allowed}, {keys})")
        elif extra is not True:
            return "FALSE"
        if properties:
            self.depth += 1
            v = f"v{self.depth}"
            names = list(properties)
            paths = "[" + ", ".join(_path(n) for n in names) + "]"
            checks = [
                f"({v}[{i + 1}] IS NULL OR ({self.compile(properties[n], f'{v}[{i + 1}]')}))"
                for i, n in enumerate(names)
            ]
            self.depth -= 1
            bound = f"list_transform([json_extract({x}, {paths})], lambda {v}: {' AND '.join(checks)})[1]"
            parts.append(f"COALESCE({bound}, FALSE)")
        return "(" + " AND ".join(parts) + ")"

    def _array(self, schema: dict[str, Any], x: str) -> str:
        parts = [f"json_type({x}) = 'ARRAY'"]
        if "minItems" in schema:
            parts.append(f"json_array_length({x}) >= {int(schema['minItems'])}")
        if "maxItems" in schema:
            parts.append(f"json_array_length({x}) <= {int(schema['maxItems'])}")
        items = schema.get("items", {})
        if items and items.keys() - _ANNOTATIONS:
            self.depth += 1
            e = f"e{self.depth}"
            inner = self.compile(items, e)
            self.depth -= 1
            parts.append(
                f"COALESCE(list_bool_and(list_transform(json_extract({x}, '$[*]'), "
                f"lambda {e}: COALESCE({inner}, FALSE))), TRUE)"
            )
        return "(" + " AND ".join(parts) + ")"

    def _string(self, schema: dict[str, Any], x: str) -> str:
        s = f"json_extract_string({x}, '$')"
        parts = [f"json_type({x}) = 'VARCHAR'"]
        if "enum" in schema:
            parts.append(f"{s} IN ({', '.join(_literal(str(v)) for v in schema['enum'])})")
        if "const" in schema:
            parts.append(f"{s} = {_literal(str(schema['const']))}")
        if "minLength" in schema:
            parts.append(f"length({s}) >= {int(schema['minLength'])}")
        if "maxLength" in schema:
            parts.append(f"length({s}) <= {int(schema['maxLength'])}")
        if "pattern" in schema:
            if not _PORTABLE_PATTERN.fullmatch(schema["pattern"]):
                return "FALSE"  # only patterns that mean the same to RE2 and pydantic's engine
            # pydantic searches (unanchored) like regexp_matches.
            parts.append(f"regexp_matches({s}, {_literal(schema['pattern'])})")
        fmt = schema.get("format")
        if fmt == "date":
            parts.append(
                f"regexp_full_match({s}, {_literal(_DATE)}) AND {s} >= '0001' "
                f"AND TRY_CAST({s} AS DATE) IS NOT NULL"
            )
        elif fmt == "date-time":
            parts.append(
                f"regexp_full_match({s}, {_literal(_DATE_TIME)}) AND {s} >= '0001' "
                f"AND TRY_CAST({s} AS TIMESTAMPTZ) IS NOT NULL"
            )
        elif fmt == "uri":
            parts.append(f"regexp_full_match({s}, {_literal(_HTTP_URL)})")
        elif fmt == "uuid":
            parts.append(f"regexp_full_match({s}, {_literal(_UUID)})")
        elif fmt is not None:
            return "FALSE"
        return "(" + " AND ".join(parts) + ")"

    def _integer(self, schema: dict[str, Any], x: str) -> str:
        return self._bounded(schema, x, _INTEGER_TYPES, "BIGINT")

    def _number(self, schema: dict[str, Any], x: str) -> str:
        return self._bounded(schema, x, _NUMBER_TYPES, "DOUBLE")

    def _bounded(self, schema: dict[str, Any], x: str, types: str, cast: str) -> str:
        n = f"TRY_CAST(json_extract_string({x}, '$') AS {cast})"
        parts = [f"json_type({x}) IN {types}"]
        if cast == "DOUBLE":
            # NaN and infinities are JSON extensions pydantic treats specially: leave them to it.
            parts.append(f"isfinite({n})")
        for keyword, op in (
            ("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<"),
        ):  # fmt: skip
            if keyword in schema:
                parts.append(
                    f"{n} {op} {float(schema[keyword]) if cast == 'DOUBLE' else int(schema[keyword])}"
                )
        return "(" + " AND ".join(parts) + ")"


def compile_screen(model: type[BaseModel], x: str = "x") -> str:
    """A DuckDB boolean expression over the JSON value `x`: TRUE only if `model` accepts it."""
    schema = model.model_json_schema()
    opaque = _models_with_python_validators(model)
    if model.__name__ in opaque:
        return "FALSE"
    root = {k: v for k, v in schema.items() if k != "$defs"}
    return f"COALESCE({_Compiler(schema, opaque).compile(root, x)}, FALSE)"
