"""The vectorised screen: a pydantic model's JSON Schema checked against many JSON lines at once.

The schema is compiled into three things DuckDB evaluates per line, all vectorised:

- a *structure* for `json_transform`: objects become STRUCTs and lists of objects LISTs, every
  scalar (and every free-form value) stays a JSON leaf, so its JSON type is still visible;
- one SQL *check* over that struct: types, enums, patterns, lengths, formats, bounds, required
  fields, union variants;
- a *key count* of that struct, compared with the keys the raw line holds. `json_transform`
  silently drops unknown keys and repeated ones, so the line's own count (an over-count: every
  `"` followed by `:`) must equal the keys the struct accounts for, or the line is refused.

Null values of keys are replaced by a stand-in string before the transform (`json_transform`
turns null and missing alike into SQL NULL); a replacement that lands inside a string makes
the line invalid JSON, so it only ever reaches real nulls. A scalar where an object belongs
becomes an all-NULL struct: objects must show a field they require (or, if none is required,
any field) to be accepted.

The screen is *sound*, not complete: whatever it cannot prove valid it leaves to pydantic,
which then decides and explains. A schema keyword it does not understand, a Python validator
without an SQL twin, an open object's extra keys, nulls where a list or object is nullable: all
make the line go to pydantic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$"
_HTTP_URL = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(:[0-9]{1,4})?(/[!-~]*)?$"
)
_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_FORMATS = {"date": _DATE, "date-time": _DATE_TIME, "uri": _HTTP_URL, "uuid": _UUID}
# Patterns that mean the same to RE2 (DuckDB) and pydantic's engine: no \d \w \s (Unicode-aware
# in one and not the other), no backreferences or lookaround.
_PORTABLE_PATTERN = re.compile(r"[\^$\[\]A-Za-z0-9 _:/.+*?-]*")
# JSON number texts that are certainly finite and that pydantic reads as the same value.
_INTEGER_TEXT = r"-?(0|[1-9][0-9]{0,17})"
_NUMBER_TEXT = r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,2})?"
_KNOWN = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "enum", "const", "minLength", "maxLength", "format", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "pattern", "anyOf", "oneOf", "discriminator", "$ref",
    "title", "description", "default", "examples",
}  # fmt: skip

#: The stand-in for the null value of a key (see the module docstring); lines that hold this
#: text themselves are left to pydantic.
NULL_STAND_IN = '"\\u0000"'
#: A null value of a key, in a line's text (group 1 keeps the whitespace).
NULL_VALUE = r":([ \t\r\n]*)null"
#: Over-counts a line's keys: every key ends with `"` then `:` (strings may add more).
KEY_END = r'"[ \t\r\n]*:'
#: Python validators with an SQL twin: (model, field) → twin.
TWINS = {
    ("RawEnhancement", "data"): "truthy",
    ("OtherIdentifier", "other_identifier_name"): "not_blank",
}


class Unscreenable(Exception):
    """A schema part the screen cannot express: a line holding it goes to pydantic."""


@dataclass
class Scalar:
    """A JSON leaf: one or more scalar kinds (each with its constraints), or anything."""

    strings: dict[str, Any] | None = None  # constraints when a string is allowed
    integers: dict[str, Any] | None = None
    numbers: dict[str, Any] | None = None
    booleans: bool = False
    nullable: bool = False
    free: str | None = None  # "any" (Any) or "object" (dict[str, Any]): not looked into
    truthy: bool = False


@dataclass
class ScalarList:
    item: Scalar
    nullable: bool = False
    min_items: int | None = None
    max_items: int | None = None


@dataclass
class Object:
    fields: dict[str, Node]
    required: set[str]
    nullable: bool = False


@dataclass
class Union:
    discriminator: str
    variants: dict[str, Object | None]  # None: a variant the screen cannot check
    nullable: bool = False


@dataclass
class ObjectList:
    item: Object | Union
    nullable: bool = False
    min_items: int | None = None
    max_items: int | None = None


@dataclass
class Opaque:
    """Present → the line goes to pydantic."""


Node = Scalar | ScalarList | Object | Union | ObjectList | Opaque


# ---------------------------------------------------------------------------------------------
# JSON Schema → nodes
# ---------------------------------------------------------------------------------------------


def _field_validators(model: type[BaseModel]) -> tuple[bool, set[str]]:
    """Whether `model` has a model validator, and the fields with a Python validator."""
    decorators = model.__pydantic_decorators__
    fields = {f for d in decorators.field_validators.values() for f in d.info.fields}
    for name, info in model.model_fields.items():
        if any(type(m).__name__.endswith("Validator") for m in info.metadata):
            fields.add(name)
    return bool(decorators.model_validators), fields


def _models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                return
            found[annotation.__name__] = annotation
            for info in annotation.model_fields.values():
                visit(info.annotation)
            return
        for argument in getattr(annotation, "__args__", ()) or ():
            visit(argument)
        for item in getattr(annotation, "__metadata__", ()) or ():
            visit(item)

    visit(model)
    return found


class _Compiler:
    def __init__(
        self, schema: dict[str, Any], models: dict[str, type[BaseModel]], caller_checked: set[str]
    ) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.models = models
        self.caller_checked = caller_checked  # paths whose Python validators the caller twins

    def node(self, schema: dict[str, Any], path: str) -> Node:
        try:
            return self._node(schema, path)
        except Unscreenable:
            return Opaque()

    def _resolve(self, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        name = None
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = {**self.defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema, name

    def _node(self, schema: dict[str, Any], path: str) -> Node:
        if set(schema) - _KNOWN:
            raise Unscreenable(path)
        schema, model = self._resolve(schema)
        branches = schema.get("anyOf") or schema.get("oneOf")
        if schema.get("discriminator", {}).get("mapping"):
            return self._union(schema, path)
        if branches:
            resolved = [self._resolve(b) for b in branches]
            nullable = any(b.get("type") == "null" for b, _ in resolved)
            rest = [b for b in branches if self._resolve(b)[0].get("type") != "null"]
            if len(rest) == 1:
                inner = self._node(rest[0], path)
                if isinstance(inner, Opaque):
                    return inner
                inner.nullable = inner.nullable or nullable  # type: ignore[union-attr]
                return inner
            scalar = Scalar(nullable=nullable)
            for branch in rest:
                part = self._node(branch, path)
                if not isinstance(part, Scalar) or part.free or part.nullable:
                    raise Unscreenable(path)  # a union of structures: pydantic decides
                for kind in ("strings", "integers", "numbers"):
                    if getattr(part, kind) is not None:
                        if getattr(scalar, kind) is not None:
                            raise Unscreenable(path)  # two constrained branches of one kind
                        setattr(scalar, kind, getattr(part, kind))
                scalar.booleans = scalar.booleans or part.booleans
            return scalar
        kind = schema.get("type")
        if kind is None and ("enum" in schema or "const" in schema):
            kind = "string"
        if kind is None:
            if schema.keys() - {"title", "description", "default", "examples"}:
                raise Unscreenable(path)
            return Scalar(free="any", nullable=True)
        if kind == "object":
            return self._object(schema, path, model)
        if kind == "array":
            items = self.node(schema.get("items", {}), f"{path}[*]")
            bounds = {"min_items": schema.get("minItems"), "max_items": schema.get("maxItems")}
            if isinstance(items, Object | Union):
                return ObjectList(items, **bounds)
            if isinstance(items, Scalar) and not items.free:
                return ScalarList(items, **bounds)
            raise Unscreenable(path)
        if kind == "null":
            return Scalar(nullable=True)
        return self._scalar(schema, kind, path)

    def _scalar(self, schema: dict[str, Any], kind: str, path: str) -> Scalar:
        if kind == "boolean":
            return Scalar(booleans=True)
        if kind in ("integer", "number"):
            bounds = {
                key: float(schema[key])
                for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
                if key in schema
            }
            return Scalar(**{f"{kind}s": bounds})  # type: ignore[arg-type]
        if kind != "string":
            raise Unscreenable(path)
        rules: dict[str, Any] = {}
        if "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            if not all(isinstance(v, str) for v in values):
                raise Unscreenable(path)
            rules["enum"] = list(values)
        for key in ("minLength", "maxLength"):
            if key in schema:
                rules[key] = int(schema[key])
        patterns = []
        if "pattern" in schema:
            if not _PORTABLE_PATTERN.fullmatch(schema["pattern"]):
                raise Unscreenable(path)
            patterns.append(schema["pattern"])
        if "format" in schema:
            if schema["format"] not in _FORMATS:
                raise Unscreenable(path)
            patterns.append(_FORMATS[schema["format"]])
            rules["format"] = schema["format"]
        rules["patterns"] = patterns
        return Scalar(strings=rules)

    def _object(self, schema: dict[str, Any], path: str, model: str | None) -> Node:
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if not properties and extra is True:
            return Scalar(free="object")  # dict[str, Any]
        if extra is not False and extra is not True:
            raise Unscreenable(path)  # dict[str, X]: value schemas not expressed
        cls = self.models.get(model or "")
        model_validated, validated = _field_validators(cls) if cls else (False, set())
        if model_validated:
            raise Unscreenable(path)
        fields: dict[str, Node] = {}
        for name, sub in properties.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise Unscreenable(path)
            child_path = f"{path}.{name}"
            child = self.node(sub, child_path)
            if name in validated:
                twin = TWINS.get((model or "", name))
                if twin == "truthy" and isinstance(child, Scalar):
                    child.truthy = True
                elif twin == "not_blank" and isinstance(child, Scalar) and child.strings:
                    child.strings["not_blank"] = True
                elif child_path not in self.caller_checked:
                    child = Opaque()
            fields[name] = child
        # An open object's extra keys are not accounted for: lines holding any are refused by
        # the key count, which is what makes this sound.
        return Object(fields=fields, required=set(schema.get("required", [])))

    def _union(self, schema: dict[str, Any], path: str) -> Union:
        discriminator = schema["discriminator"]["propertyName"]
        variants: dict[str, Object | None] = {}
        for tag, ref in schema["discriminator"]["mapping"].items():
            variant = self.node({"$ref": ref}, path)
            variants[tag] = variant if isinstance(variant, Object) else None
        union = Union(discriminator, variants)
        _merged_fields(union)  # raises if two variants give one field two shapes
        return union


def _merged_fields(node: Object | Union) -> dict[str, Node]:
    """The struct fields of an object, or of every variant of a union (same name, same shape)."""
    if isinstance(node, Object):
        return dict(node.fields)
    merged: dict[str, Node] = {node.discriminator: Scalar(strings={"patterns": []})}
    for variant in node.variants.values():
        for name, child in (variant.fields if variant else {}).items():
            if name in merged and _structure(merged[name]) != _structure(child):
                raise Unscreenable(name)
            merged.setdefault(name, child)
    return merged


def _structure(node: Node) -> Any:
    """The `json_transform` structure of a node."""
    if isinstance(node, Object | Union):
        return {name: _structure(child) for name, child in _merged_fields(node).items()}
    if isinstance(node, ObjectList):
        return [_structure(node.item)]
    return "JSON"


# ---------------------------------------------------------------------------------------------
# Nodes → SQL
# ---------------------------------------------------------------------------------------------


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _json_text(value: str) -> str | None:
    """How DuckDB writes the JSON string `value`, when that is certain (plain ASCII)."""
    if re.fullmatch(r"[ !#-\[\]-~]*", value):
        return '"' + value + '"'
    return None


def _string_check(v: str, rules: dict[str, Any]) -> str:
    checks = [f"starts_with({v}, '\"')", f"{v} <> {sql_literal(NULL_STAND_IN)}"]
    if "enum" in rules:
        texts = [_json_text(e) for e in rules["enum"]]
        if not all(texts):
            return "FALSE"  # values DuckDB may write differently: pydantic decides
        checks.append(f"{v} IN ({', '.join(sql_literal(t) for t in texts if t)})")
    if rules.get("minLength") == 1 and "maxLength" not in rules:
        checks.append(f"{v} <> '\"\"'")
        rules = {k: w for k, w in rules.items() if k != "minLength"}
    # Other constraints read the value itself: the text between the quotes, when it holds no
    # escape (a value with one merely costs its line the slow path).
    value = f"substr({v}, 2, length({v}) - 2)"
    value_checks = []
    if "minLength" in rules:
        value_checks.append(f"length({value}) >= {rules['minLength']}")
    if "maxLength" in rules:
        value_checks.append(f"length({value}) <= {rules['maxLength']}")
    for pattern in rules["patterns"]:
        value_checks.append(f"regexp_matches({value}, {sql_literal(pattern)})")
    if rules.get("format") == "date":
        value_checks.append(f"TRY_CAST({value} AS DATE) IS NOT NULL AND {value} >= '0001'")
    if rules.get("format") == "date-time":
        value_checks.append(f"TRY_CAST({value} AS TIMESTAMPTZ) IS NOT NULL AND {value} >= '0001'")
    if rules.get("not_blank"):
        value_checks.append(f"regexp_matches({value}, '[!-~]')")  # surely not blank to Python
    if value_checks:
        checks += [f"NOT contains({v}, '\\')", *value_checks]
    return "(" + " AND ".join(checks) + ")"


def _number_check(v: str, text: str, bounds: dict[str, float]) -> str:
    checks = [f"regexp_full_match({v}, {sql_literal(text)})"]
    number = f"TRY_CAST({v} AS DOUBLE)"
    for key, op in (
        ("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<"),
    ):  # fmt: skip
        if key in bounds:
            checks.append(f"{number} {op} {bounds[key]!r}")
    return "(" + " AND ".join(checks) + ")"


def _outside_strings(v: str) -> str:
    """SQL: the JSON text `v` with its strings cut out (keys and values)."""
    return f"regexp_replace({v}, '\"(?:[^\"\\\\]|\\\\.)*\"', '', 'g')"


def _free_check(v: str, node: Scalar) -> str:
    # Strict JSON only: DuckDB's reader also takes nan, inf, Infinity... in any case. Outside
    # strings, a free value may hold no letter but those of true, false, null and exponents.
    literals = f"regexp_replace({_outside_strings(v)}, 'true|false|null', '', 'g')"
    checks = [f"NOT regexp_matches({literals}, '[A-DF-Za-df-z]')"]
    if node.free == "object":
        checks.append(f"starts_with({v}, '{{')")
    if node.truthy:
        checks.append(
            f"{v} NOT IN ({sql_literal(NULL_STAND_IN)}, 'false', '\"\"', '[]', '{{}}') "
            f"AND COALESCE(TRY_CAST({v} AS DOUBLE) <> 0, TRUE)"
        )
    return "(" + " AND ".join(checks) + ")"


def _scalar_check(v: str, node: Scalar) -> str:
    if node.free:
        body = _free_check(v, node)
        if node.free == "object" and node.nullable:
            return f"({v} = {sql_literal(NULL_STAND_IN)} OR {body})"
        return body
    options = []
    if node.nullable:
        options.append(f"{v} = {sql_literal(NULL_STAND_IN)}")
    if node.strings is not None:
        options.append(_string_check(v, node.strings))
    if node.integers is not None:
        options.append(_number_check(v, _INTEGER_TEXT, node.integers))
    if node.numbers is not None:
        options.append(_number_check(v, _NUMBER_TEXT, node.numbers))
    if node.booleans:
        options.append(f"{v} IN ('true', 'false')")
    return "(" + (" OR ".join(options) or "FALSE") + ")"


class _Sql:
    """Builds the check and key-count expressions; lambda names are unique per depth."""

    def __init__(self) -> None:
        self.depth = 0
        self.lists: list[tuple[str, Object | Union]] = []  # lists of objects met, by source

    def _variable(self) -> str:
        self.depth += 1
        return f"x{self.depth}"

    def check(self, v: str, node: Node) -> str:
        """`v` is present (not SQL NULL): is its value valid?"""
        if isinstance(node, Opaque):
            return "FALSE"
        if isinstance(node, Scalar):
            return _scalar_check(v, node)
        if isinstance(node, ScalarList):
            x = self._variable()
            items = f"json_transform({v}, '[\"JSON\"]')"
            element = f"{x} IS NOT NULL AND {_scalar_check(x, node.item)}"
            if node.item.nullable:
                element = f"{x} IS NULL OR {_scalar_check(x, node.item)}"
            body = [
                f"starts_with({v}, '[')",
                f"COALESCE(list_bool_and(list_transform({items}, lambda {x}: {element})), TRUE)",
            ]
            body += self._bounds(f"json_array_length({v})", node)
            checked = "(" + " AND ".join(body) + ")"
            if node.nullable:
                return f"({v} = {sql_literal(NULL_STAND_IN)} OR {checked})"
            return checked
        if isinstance(node, ObjectList):
            # Its elements are checked one level down, unnested (see `Level`).
            if (v, repr(node.item)) not in {(source, repr(item)) for source, item in self.lists}:
                self.lists.append((v, node.item))
            return "(" + (" AND ".join(self._bounds(f"len({v})", node)) or "TRUE") + ")"
        if isinstance(node, Object):
            fields = self._fields(v, node.fields, node.required)
            if node.required:
                return fields
            # `{}`, null and a scalar all become an all-NULL struct: only an object with a
            # field is told apart (the others cost their line the slow path).
            present = " OR ".join(f"{v}.{name} IS NOT NULL" for name in node.fields)
            return f"({fields} AND ({present or 'FALSE'}))"
        return self._union(v, node)

    def _bounds(self, length: str, node: ScalarList | ObjectList) -> list[str]:
        out = []
        if node.min_items is not None:
            out.append(f"{length} >= {node.min_items}")
        if node.max_items is not None:
            out.append(f"{length} <= {node.max_items}")
        return out

    def _fields(self, v: str, fields: dict[str, Node], required: set[str]) -> str:
        checks = []
        for name, child in fields.items():
            f = f"{v}.{name}"
            inner = self.check(f, child)
            if name in required:
                checks.append(f"({f} IS NOT NULL AND {inner})")
            else:
                checks.append(f"({f} IS NULL OR {inner})")
        return "(" + (" AND ".join(checks) or "TRUE") + ")"

    def _union(self, v: str, node: Union) -> str:
        tag = f"{v}.{node.discriminator}"
        tags = {
            value: text
            for value, variant in node.variants.items()
            if variant is not None and (text := _json_text(value)) is not None
        }
        # A field of the merged struct is only allowed in the variants that declare it.
        checks = []
        for name in _merged_fields(node):
            if name == node.discriminator:
                continue
            owners = [
                sql_literal(tags[value])
                for value, variant in node.variants.items()
                if value in tags and variant is not None and name in variant.fields
            ]
            allowed = f"{tag} IN ({', '.join(owners)})" if owners else "FALSE"
            checks.append(f"({v}.{name} IS NULL OR {allowed})")
        cases = []
        for value, text in tags.items():
            variant = node.variants[value]
            assert variant is not None
            own = {k: c for k, c in variant.fields.items() if k != node.discriminator}
            cases.append(f"WHEN {sql_literal(text)} THEN {self._fields(v, own, variant.required)}")
        checks.append("(CASE " + tag + " " + " ".join(cases) + " ELSE FALSE END)")
        return "(" + " AND ".join(checks) + ")"

    def keys(self, v: str, node: Node) -> str:
        """How many keys the value `v` holds (0 where `v` is NULL)."""
        if isinstance(node, Scalar) and node.free:
            stripped = _outside_strings(v)
            return (
                f"(CASE WHEN contains({v}, ':') THEN "
                f"length({stripped}) - length(replace({stripped}, ':', '')) ELSE 0 END)"
            )
        if isinstance(node, ObjectList):
            return "0"  # its elements' keys are counted one level down
        if isinstance(node, Object | Union):
            fields = _merged_fields(node)
            if isinstance(node, Union):
                # A field free-form in any variant is counted as such (keys inside a field that
                # must be a scalar are refused by the check anyway).
                for variant in node.variants.values():
                    for name, child in (variant.fields if variant else {}).items():
                        if isinstance(child, Scalar) and child.free:
                            fields[name] = child
            parts = [
                f"({v}.{name} IS NOT NULL)::INTEGER + COALESCE({self.keys(f'{v}.{name}', child)}, 0)"
                for name, child in fields.items()
            ]
            return "(" + " + ".join(parts) + ")"
        return "0"


@dataclass
class Level:
    """One level of objects: the line, or the elements of a list of objects one level up.

    Lambdas over lists are slow in DuckDB; unnested rows are not. Each level is a CTE whose
    rows are (line id, element `x`), checked and counted by SQL over `x`.
    """

    parent: int | None
    source: str  # SQL over the parent level's `x`: the list unnested here
    check: str
    keys: str


def _levels(root: Object) -> list[Level]:
    levels: list[Level] = []

    def add(parent: int | None, source: str, node: Object | Union) -> None:
        sql = _Sql()
        check = sql.check("x", node)
        if parent is not None:
            check = f"(x IS NOT NULL AND {check})"
        levels.append(Level(parent, source, check, sql.keys("x", node)))
        index = len(levels) - 1
        for list_source, item in sql.lists:
            add(index, list_source, item)

    add(None, "", root)
    return levels


@dataclass
class CompiledScreen:
    structure: str  # for json_transform
    levels: list[Level]

    def verdicts_sql(self, transformed: str) -> str:
        """SQL: per line of `transformed` (line_number, s), whether every check passes (`ok`)
        and how many keys the struct accounts for (`keys`)."""
        parents = {level.parent for level in self.levels}

        def cte(index: int, body: str) -> str:
            # A level others unnest from is computed once, not once per reader; the root is a
            # plain scan of `transformed`, which costs less to repeat than to copy (by half).
            if index == 0:
                return f"l0 AS NOT MATERIALIZED ({body})"
            materialized = "MATERIALIZED " if index in parents else ""
            return f"l{index} AS {materialized}({body})"

        ctes = [cte(0, f"SELECT line_number AS id, s AS x FROM {transformed}")]
        for index, level in enumerate(self.levels[1:], start=1):
            ctes.append(cte(index, f"SELECT id, unnest({level.source}) AS x FROM l{level.parent}"))
        verdicts = " UNION ALL ".join(
            f"SELECT id, {level.check} AS ok, {level.keys} AS keys FROM l{index}"
            for index, level in enumerate(self.levels)
        )
        return (
            "WITH " + ", ".join(ctes) + f", verdicts AS ({verdicts}) "
            "SELECT id AS line_number, bool_and(COALESCE(ok, FALSE)) AS ok, sum(keys) AS keys "
            "FROM verdicts GROUP BY id"
        )


def compile_screen(
    model: type[BaseModel], caller_checked: set[str] | None = None
) -> CompiledScreen:
    """The screen of `model`'s JSON Schema.

    `caller_checked`: paths (such as `$.identifiers[*].identifier`) whose Python validators the
    caller checks itself after the screen; anywhere else a validator without twin is opaque.
    """
    schema = model.model_json_schema()
    compiler = _Compiler(schema, _models(model), caller_checked or set())
    try:
        root: Node = compiler._object(schema, "$", model.__name__)
    except Unscreenable:
        root = Opaque()
    if not isinstance(root, Object):
        return CompiledScreen(structure="{}", levels=[Level(None, "", "FALSE", "0")])
    return CompiledScreen(
        structure=json.dumps(_structure(root)),
        levels=_levels(root),
    )
