"""The vectorised screen: a pydantic model's JSON Schema checked against many JSON items at once.

The schema is compiled into a table of rules, one per path an item may have
(`$.content{abstract}.process`: `{tag}` marks the variant of a discriminated union). DuckDB's
`json_tree` turns a chunk of items into one row per node in a single parse each, and a few
joins find every node that breaks a rule. An item with no such node is valid; pydantic never
sees it. The screen is *sound*, not complete: whatever it cannot prove valid it leaves to
pydantic, which then decides and explains. A schema keyword it does not understand, or a model
with Python validators (invisible in JSON Schema) and no SQL twin, makes every item of that
model (or variant) go to pydantic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl
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
_JSON_TYPES = {
    "object": ["OBJECT"],
    "array": ["ARRAY"],
    "string": ["VARCHAR"],
    "integer": ["UBIGINT", "BIGINT"],
    "number": ["UBIGINT", "BIGINT", "DOUBLE"],
    "boolean": ["BOOLEAN"],
    "null": ["NULL"],
}
_KNOWN = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "enum", "const", "minLength", "maxLength", "format", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "pattern", "anyOf", "oneOf", "discriminator", "$ref",
    "title", "description", "default", "examples",
}  # fmt: skip

#: Models whose Python validator has a rule twin: (model name, property) → rule flag.
TRUTHY_TWINS = {("RawEnhancement", "data")}


class Unscreenable(Exception):
    """A schema part the screen cannot express: its items go to pydantic."""


@dataclass
class Rule:
    """What a node at one path may be."""

    path: str
    types: set[str] = field(default_factory=set)
    enum: list[str] | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    required: list[str] = field(default_factory=list)
    min_items: int | None = None
    max_items: int | None = None
    truthy: bool = False
    anything_below: bool = False  # Any / dict[str, Any]: children are not checked
    open_object: list[str] | None = None  # extra keys allowed; these are the declared ones


@dataclass
class UnionPoint:
    """A discriminated union at `path`: `{tag}` is inserted after it for every node below."""

    path: str
    discriminator: str
    concrete: str  # a regex matching the concrete fullkey of a node at `path`


@dataclass
class CompiledScreen:
    rules: list[Rule]
    unions: list[UnionPoint]
    opaque: list[str]  # variant paths whose items always go to pydantic


def _models_with_python_validators(model: type[BaseModel]) -> set[str]:
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def visit(cls: type[BaseModel]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        decorators = cls.__pydantic_decorators__
        validated = {d.info.fields for d in decorators.field_validators.values()}
        fields = {f for group in validated for f in group}
        twins = {prop for name, prop in TRUTHY_TWINS if name == cls.__name__}
        if decorators.model_validators or fields - twins:
            found.add(cls.__name__)
        for info in cls.model_fields.values():
            if info.metadata and any(type(m).__name__.endswith("Validator") for m in info.metadata):
                found.add(cls.__name__)
            for candidate in _model_classes(info.annotation):
                visit(candidate)

    visit(model)
    return found


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_classes(argument))
    for item in getattr(annotation, "__metadata__", ()) or ():
        found.extend(_model_classes(item))
    return found


def _concrete_regex(path: str) -> str:
    """`$.a{x}.b[*]` → a regex for concrete full keys such as `$.a.b[3]`."""
    plain = re.sub(r"\{[^}]*\}", "", path)
    return "^" + re.escape(plain).replace(r"\[\*\]", r"\[[0-9]+\]")


class _Compiler:
    def __init__(self, schema: dict[str, Any], opaque_models: set[str]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.opaque_models = opaque_models
        self.rules: list[Rule] = []
        self.unions: list[UnionPoint] = []
        self.opaque: list[str] = []

    def walk(self, schema: dict[str, Any], path: str, model: str | None = None) -> None:
        """Adds the rules for a node at `path` (and below) described by `schema`."""
        try:
            self._walk(schema, path, model)
        except Unscreenable:
            self.opaque.append(path)

    def _walk(self, schema: dict[str, Any], path: str, model: str | None) -> None:
        if set(schema) - _KNOWN:
            raise Unscreenable(path)
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in self.opaque_models:
                raise Unscreenable(path)
            self._walk(self.defs[name], path, name)
            return
        mapping = (schema.get("discriminator") or {}).get("mapping")
        if mapping:
            prop = schema["discriminator"]["propertyName"]
            self.rules.append(Rule(path=path, types={"OBJECT"}))
            self.unions.append(UnionPoint(path, prop, _concrete_regex(path)))
            for tag, ref in mapping.items():
                self.walk({"$ref": ref}, f"{path}{{{tag}}}")
            return
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            self._any_of(branches, path, model)
            return
        rule = Rule(path=path)
        self._typed(schema, rule, path, model)
        self.rules.append(rule)

    def _any_of(self, branches: list[dict[str, Any]], path: str, model: str | None) -> None:
        """`X | None` and unions of scalars: one rule with several types. A union of two
        structured schemas cannot be told apart node by node: unscreenable."""
        rule = Rule(path=path)
        structured = 0
        for branch in branches:
            resolved = branch
            while "$ref" in resolved:
                name = resolved["$ref"].rsplit("/", 1)[-1]
                if name in self.opaque_models:
                    raise Unscreenable(path)
                resolved = self.defs[name]
            kind = resolved.get("type")
            if kind in ("object", "array") or "anyOf" in resolved or "discriminator" in resolved:
                structured += 1
                if structured > 1:
                    raise Unscreenable(path)
                self._typed(resolved, rule, path, model)
            elif kind in _JSON_TYPES or "enum" in resolved or "const" in resolved:
                if (
                    resolved.get("format")
                    or "enum" in resolved
                    or "const" in resolved
                    or (
                        resolved.keys()
                        & {"pattern", "minLength", "maxLength", "minimum", "maximum"}
                    )
                ):
                    if any(t in rule.types for t in _JSON_TYPES.get(kind or "string", [])):
                        raise Unscreenable(path)  # two constrained branches of one type
                self._typed(resolved, rule, path, model)
            elif not (resolved.keys() - {"title", "description", "default"}):
                rule.anything_below = True
                rule.types |= set(sum(_JSON_TYPES.values(), []))
            else:
                raise Unscreenable(path)
        self.rules.append(rule)

    def _typed(self, schema: dict[str, Any], rule: Rule, path: str, model: str | None) -> None:
        if set(schema) - _KNOWN:
            raise Unscreenable(path)
        kind = schema.get("type")
        if kind is None and ("enum" in schema or "const" in schema):
            kind = "string"
        if kind is None:
            if schema.keys() - {"title", "description", "default", "examples"}:
                raise Unscreenable(path)
            rule.anything_below = True
            rule.types |= set(sum(_JSON_TYPES.values(), []))
            return
        if kind not in _JSON_TYPES:
            raise Unscreenable(path)
        rule.types |= set(_JSON_TYPES[kind])
        if "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            if not all(isinstance(v, str) for v in values):
                raise Unscreenable(path)
            rule.enum = [str(v) for v in values]
        rule.min_length = schema.get("minLength", rule.min_length)
        rule.max_length = schema.get("maxLength", rule.max_length)
        if "pattern" in schema:
            if not _PORTABLE_PATTERN.fullmatch(schema["pattern"]):
                raise Unscreenable(path)
            rule.pattern = schema["pattern"]
        if "format" in schema:
            if schema["format"] not in _FORMATS:
                raise Unscreenable(path)
            rule.pattern = _FORMATS[schema["format"]]
        for key, attr in (
            ("minimum", "minimum"), ("maximum", "maximum"),
            ("exclusiveMinimum", "exclusive_minimum"), ("exclusiveMaximum", "exclusive_maximum"),
        ):  # fmt: skip
            if key in schema:
                setattr(rule, attr, float(schema[key]))
        if kind == "array":
            rule.min_items = schema.get("minItems")
            rule.max_items = schema.get("maxItems")
            items = schema.get("items", {})
            if items.keys() - {"title", "description"}:
                self.walk(items, f"{path}[*]", model)
            else:
                rule.anything_below = True
        if kind == "object":
            properties: dict[str, Any] = schema.get("properties", {})
            extra = schema.get("additionalProperties", True)
            if not properties and extra is True:
                rule.anything_below = True  # dict[str, Any]
                return
            if extra is True:
                rule.open_object = list(properties)
            elif extra is not False:
                raise Unscreenable(path)  # dict[str, X]: value schemas not expressed
            rule.required = list(schema.get("required", []))
            for name, sub in properties.items():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise Unscreenable(path)
                child = f"{path}.{name}"
                self.walk(sub, child, model)
                if model and (model, name) in TRUTHY_TWINS:
                    for candidate in self.rules:
                        if candidate.path == child:
                            candidate.truthy = True


def compile_screen(model: type[BaseModel]) -> CompiledScreen:
    """The rule table of `model`'s JSON Schema, for items rooted at `$`."""
    schema = model.model_json_schema()
    opaque_models = _models_with_python_validators(model)
    compiler = _Compiler(schema, opaque_models)
    root = {k: v for k, v in schema.items() if k != "$defs"}
    if model.__name__ in opaque_models:
        return CompiledScreen(rules=[], unions=[], opaque=["$"])
    compiler.walk(root, "$", model.__name__)
    return CompiledScreen(rules=compiler.rules, unions=compiler.unions, opaque=compiler.opaque)


def _rules_frame(screen: CompiledScreen) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "vpath": r.path,
                "types": sorted(r.types),
                "enum": r.enum,
                "min_length": r.min_length,
                "max_length": r.max_length,
                "pattern": r.pattern,
                "minimum": r.minimum,
                "maximum": r.maximum,
                "exclusive_minimum": r.exclusive_minimum,
                "exclusive_maximum": r.exclusive_maximum,
                "required": r.required,
                "min_items": r.min_items,
                "max_items": r.max_items,
                "truthy": r.truthy,
            }
            for r in screen.rules
        ],
        schema={
            "vpath": pl.String,
            "types": pl.List(pl.String),
            "enum": pl.List(pl.String),
            "min_length": pl.Int64,
            "max_length": pl.Int64,
            "pattern": pl.String,
            "minimum": pl.Float64,
            "maximum": pl.Float64,
            "exclusive_minimum": pl.Float64,
            "exclusive_maximum": pl.Float64,
            "required": pl.List(pl.String),
            "min_items": pl.Int64,
            "max_items": pl.Int64,
            "truthy": pl.Boolean,
        },
    )


def screen_items(
    engine: duckdb.DuckDBPyConnection, screen: CompiledScreen, items: pl.DataFrame
) -> pl.Series:
    """For each row of `items` (`item`: JSON text), whether it is certainly valid."""
    if items.is_empty():
        return pl.Series("screen_ok", [], dtype=pl.Boolean)
    if "$" in screen.opaque:
        return pl.Series("screen_ok", [False] * items.height, dtype=pl.Boolean)
    frame = items.select(item=pl.col("item")).with_row_index("item_id")
    engine.register("screen_items", frame)
    engine.register("screen_rules", _rules_frame(screen))
    try:
        # One parse per item: every node, its generic path ([*] for indices).
        engine.execute(
            r"""
            CREATE OR REPLACE TEMP TABLE screen_nodes AS
            SELECT i.item_id, t.id, t.parent, t.key, t.type, t.atom, t.fullkey,
                regexp_replace(t.fullkey, '\[[0-9]+\]', '[*]', 'g') AS vpath
            FROM screen_items i, json_tree(i.item) t
            """
        )
        # Discriminated unions: below a union point, paths carry the variant's tag.
        for union in screen.unions:
            # A union at a fixed path has one tag per item; one inside an array, one per element.
            per_item = "[*]" not in union.path
            under = (
                "(n.vpath = $path OR starts_with(n.vpath, $path || '.') "
                "OR starts_with(n.vpath, $path || '['))"
            )
            prefix = (
                "''"
                if per_item
                else f"CASE WHEN {under} THEN regexp_extract(n.fullkey, $concrete) END"
            )
            engine.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE screen_tags AS
                SELECT n.item_id, {prefix} AS prefix, n.atom ->> '$' AS tag
                FROM screen_nodes n
                WHERE n.vpath = $path || '.' || $discriminator AND n.type = 'VARCHAR'
                """,
                {"path": union.path, "discriminator": union.discriminator}
                | ({} if per_item else {"concrete": union.concrete}),
            )
            engine.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE screen_next AS
                SELECT n.* EXCLUDE (prefix) REPLACE (
                    CASE WHEN {under}
                        THEN $path || '{{' || COALESCE(t.tag, '?') || '}}' || substr(n.vpath, length($path) + 1)
                        ELSE n.vpath END AS vpath)
                FROM (SELECT n.*, {prefix} AS prefix FROM screen_nodes n) n
                LEFT JOIN screen_tags t ON t.item_id = n.item_id AND t.prefix = n.prefix
                """,
                {"path": union.path} | ({} if per_item else {"concrete": union.concrete}),
            )
            engine.execute(
                "DROP TABLE screen_nodes; ALTER TABLE screen_next RENAME TO screen_nodes"
            )
        bad = engine.execute(
            """
            SELECT DISTINCT item_id FROM (
            WITH children AS (
                SELECT item_id, parent, count(*) AS n, count(DISTINCT key) AS distinct_keys,
                    list(key) AS keys
                FROM screen_nodes WHERE parent IS NOT NULL GROUP BY item_id, parent
            ), judged AS (
                SELECT n.item_id, n.vpath, n.type, n.atom, r.* EXCLUDE (vpath),
                    COALESCE(c.n, 0) AS child_count, c.distinct_keys, c.keys
                FROM screen_nodes n
                LEFT JOIN screen_rules r ON r.vpath = n.vpath
                LEFT JOIN children c ON c.item_id = n.item_id AND c.parent = n.id
            )
            SELECT DISTINCT j.item_id FROM judged j
            WHERE (
                (j.types IS NULL AND NOT (
                    -- Below an Any / dict[str, Any], or an extra key of an open object.
                    list_bool_or(list_transform($below, lambda p: starts_with(j.vpath, p || '.')
                        OR starts_with(j.vpath, p || '[')))
                    OR list_bool_or(list_transform($open, lambda o: starts_with(j.vpath, o.path || '.')
                        AND NOT list_contains(o.declared,
                            regexp_extract(substr(j.vpath, length(o.path) + 2), '^[A-Za-z0-9_]+'))))))
                OR (j.types IS NOT NULL AND NOT list_contains(j.types, j.type))
                OR (j.type = 'OBJECT' AND j.distinct_keys IS NOT NULL AND j.distinct_keys <> j.child_count)
                OR (j.type = 'OBJECT' AND len(j.required) > 0
                    AND NOT list_has_all(COALESCE(j.keys, []::VARCHAR[]), j.required))
                OR (j.type = 'ARRAY' AND j.min_items IS NOT NULL AND j.child_count < j.min_items)
                OR (j.type = 'ARRAY' AND j.max_items IS NOT NULL AND j.child_count > j.max_items)
                OR (j.type = 'VARCHAR' AND (
                    (j.enum IS NOT NULL AND NOT list_contains(j.enum, j.atom ->> '$'))
                    OR (j.min_length IS NOT NULL AND length(j.atom ->> '$') < j.min_length)
                    OR (j.max_length IS NOT NULL AND length(j.atom ->> '$') > j.max_length)
                    OR (j.pattern IS NOT NULL AND NOT regexp_matches(j.atom ->> '$', j.pattern))
                    OR (j.pattern IS NOT NULL AND j.pattern = $date
                        AND (TRY_CAST(j.atom ->> '$' AS DATE) IS NULL OR (j.atom ->> '$') < '0001'))
                    OR (j.pattern IS NOT NULL AND j.pattern = $date_time
                        AND (TRY_CAST(j.atom ->> '$' AS TIMESTAMPTZ) IS NULL OR (j.atom ->> '$') < '0001'))))
                OR (j.type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND (
                    NOT isfinite(TRY_CAST(j.atom::VARCHAR AS DOUBLE))
                    OR (j.minimum IS NOT NULL AND TRY_CAST(j.atom::VARCHAR AS DOUBLE) < j.minimum)
                    OR (j.maximum IS NOT NULL AND TRY_CAST(j.atom::VARCHAR AS DOUBLE) > j.maximum)
                    OR (j.exclusive_minimum IS NOT NULL AND TRY_CAST(j.atom::VARCHAR AS DOUBLE) <= j.exclusive_minimum)
                    OR (j.exclusive_maximum IS NOT NULL AND TRY_CAST(j.atom::VARCHAR AS DOUBLE) >= j.exclusive_maximum)))
                OR (j.truthy AND (j.type = 'NULL' OR j.atom::VARCHAR = 'false'
                    OR (j.type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND TRY_CAST(j.atom::VARCHAR AS DOUBLE) = 0)
                    OR (j.type = 'VARCHAR' AND (j.atom ->> '$') = '')
                    OR (j.type IN ('ARRAY', 'OBJECT') AND j.child_count = 0)))
                OR list_contains($opaque, j.vpath)
            ))
            """,
            {
                "date": _DATE,
                "date_time": _DATE_TIME,
                "opaque": screen.opaque,
                "below": [r.path for r in screen.rules if r.anything_below] or [""],
                "open": [
                    {"path": r.path, "declared": r.open_object}
                    for r in screen.rules
                    if r.open_object is not None
                ]
                or [{"path": "\x00", "declared": []}],
            },
        ).fetchall()
    finally:
        engine.unregister("screen_items")
        engine.unregister("screen_rules")
        engine.execute("DROP TABLE IF EXISTS screen_nodes; DROP TABLE IF EXISTS screen_tags")
    failing = pl.Series([row[0] for row in bad], dtype=pl.UInt32)
    return ~frame["item_id"].is_in(failing.implode())
