"""Check Pipedrive HTTP traffic against the official OpenAPI 3.0 files (read in place, never copied).

    spec = load_spec(shared_dir / "specs/pipedrive/openapi-v2.yml")
    op = operation_for("PATCH", "/api/v2/deals/12", spec)
    problems = validate_request(op, {"include_fields": "x"}, body) + validate_response(op, 200, resp_json)

Every function returns a list of human-readable problems (empty = conforms). Schemas are converted
to JSON Schema Draft 4 (`nullable: true` becomes a type union) and checked with jsonschema.
Request bodies are checked strictly at the top level (undeclared parameters are problems), because
the real API refuses them (wire doc §1.4, §7). The spec is wrong in a few known places (wire doc §9);
those are handled explicitly and listed in KNOWN_SPEC_ERRORS below, each with its reason.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

HASH_KEY = re.compile(r"^[0-9a-f]{40}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
V1_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
METHODS = ("get", "post", "put", "patch", "delete")
COMMA_LIST = re.compile(r"comma[\s-]separated", re.I)


@dataclass(frozen=True)
class SpecFix:
    """One known spec error and how it is handled. `path` is dotted within the JSON body; `*` is
    array item (or any property). `fix`: "nullable", "not-required:<name>", "required:<name>",
    "type:<t1>|<t2>" or "unwrap:<property>" (replace the schema by that property's schema)."""

    section: str  # wire doc reference
    operations: str  # fnmatch pattern over operationId
    where: str  # "request" | "response"
    path: str
    fix: str
    reason: str


KNOWN_SPEC_ERRORS: tuple[SpecFix, ...] = (
    SpecFix("§9.1", "addOrganization", "request", "", "not-required:title",
            "addOrganization marks `title` as required, but the property is `name`"),
    SpecFix("§9.1", "addOrganization", "request", "", "required:name",
            "...and the API does require `name`"),
    SpecFix("§9.2", "*", "response", "additional_data.next_cursor", "nullable",
            "next_cursor is null on the last page; the spec declares a non-null string"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.person_id", "nullable", "a deal without a person"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.org_id", "nullable", "a deal without an organization"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.stage_change_time", "nullable", "stage never changed"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.won_time", "nullable", "deal not won"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.lost_time", "nullable", "deal not lost"),
    SpecFix("§9.6", "getDeal*", "response", "data.*.expected_close_date", "nullable", "no close date set"),
    SpecFix("§9.6", "*Deal", "response", "data.person_id", "nullable", "a deal without a person"),
    SpecFix("§9.6", "*Deal", "response", "data.org_id", "nullable", "a deal without an organization"),
    SpecFix("§9.6", "*Deal", "response", "data.stage_change_time", "nullable", "stage never changed"),
    SpecFix("§9.6", "*Deal", "response", "data.won_time", "nullable", "deal not won"),
    SpecFix("§9.6", "*Deal", "response", "data.lost_time", "nullable", "deal not lost"),
    SpecFix("§9.6", "*Deal", "response", "data.expected_close_date", "nullable", "no close date set"),
    SpecFix("§9.6", "*Organization*", "response", "data.address", "nullable", "an organization without address"),
    SpecFix("§9.6", "*Organization*", "response", "data.*.address", "nullable", "an organization without address"),
    SpecFix("§9.6", "*Organization*", "response", "data.address.*", "nullable", "address parts not given are null"),
    SpecFix("§9.6", "*Organization*", "response", "data.*.address.*", "nullable",
            "address parts not given are null"),
    SpecFix("§9.6", "*Person*", "response", "data.org_id", "nullable", "a person without organization"),
    SpecFix("§9.6", "*Person*", "response", "data.*.org_id", "nullable", "a person without organization"),
    SpecFix("§9.6", "*Person*", "response", "data.picture_id", "nullable", "a person without picture"),
    SpecFix("§9.6", "*Person*", "response", "data.*.picture_id", "nullable", "a person without picture"),
    SpecFix("§9.6", "*Person*", "response", "data.last_name", "nullable", "a one-word name has no last name"),
    SpecFix("§9.6", "*Person*", "response", "data.*.last_name", "nullable", "a one-word name has no last name"),
    SpecFix("§9", "getProducts", "response", "data.*", "unwrap:data",
            "the list items are declared as whole GetProductResponse envelopes {success, data}; "
            "the API returns the products themselves"),
    SpecFix("§9.6", "*Product*", "response", "data.code", "nullable", "a product without code"),
    SpecFix("§9.6", "*Product*", "response", "data.*.code", "nullable", "a product without code"),
    SpecFix("§9.6", "*Product*", "response", "data.unit", "nullable", "a product without unit"),
    SpecFix("§9.6", "*Product*", "response", "data.*.unit", "nullable", "a product without unit"),
    SpecFix("§9.6", "*DealField", "response", "data.description", "nullable",
            "a field created without a description has none (the spec requires a string)"),
    SpecFix("§9.6", "getDealFields", "response", "data.*.description", "nullable",
            "a field created without a description has none (the spec requires a string)"),
    SpecFix("§9.6", "*Activity", "response", "data.*", "nullable",
            "an activity's unset properties (person_id, location, note, duration...) are null"),
    SpecFix("§9.6", "getActivities", "response", "data.*.*", "nullable",
            "an activity's unset properties (person_id, location, note, duration...) are null"),
    SpecFix("§9.6", "searchOrganization", "response", "data.items.*.item.address", "nullable",
            "an organization without address"),
    SpecFix("§9.6", "searchProducts", "response", "data.items.*.item.code", "type:string|integer|null",
            "product codes are strings (the spec says integer) and may be unset"),
    # v1 (openapi-v1.yml)
    SpecFix("§9.6", "*Note", "response", "data.*", "nullable",
            "a note's unset links (deal_id, person_id, lead_id...) and their objects are null"),
    SpecFix("§9.6", "getNotes", "response", "data.*.*", "nullable",
            "a note's unset links (deal_id, person_id, lead_id...) and their objects are null"),
    SpecFix("§9.6", "*Note*", "response", "data.user.icon_url", "nullable", "a user without picture"),
    SpecFix("§9.6", "getNotes", "response", "data.*.user.icon_url", "nullable", "a user without picture"),
    SpecFix("§9.6", "getCurrentUser", "response", "data.*", "nullable",
            "unset profile values (phone, icon_url, company_industry...) are null"),
)
# Handled in code rather than by patching schemas:
#   §9.3 v1 `date-time` values in `YYYY-MM-DD HH:MM:SS` are accepted for v1 operations;
#   §9.4 `format: YYYY-MM-DD` is treated as `date`;
#   §9.5 query parameters described as comma separated are split and each item checked;
#   §9.7 undocumented error statuses are checked against the error envelope of §1.3.


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    op: dict[str, Any]
    path_params: dict[str, str]
    spec: dict[str, Any]
    api: str  # "v1" | "v2"


@functools.lru_cache(maxsize=8)
def load_spec(path: str | Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as fh:
        return yaml.load(fh, Loader=loader)


def _api_of(spec: dict[str, Any]) -> str:
    server = (spec.get("servers") or [{}])[0].get("url", "")
    return "v2" if "/api/v2" in server else "v1"


@functools.lru_cache(maxsize=8)
def _templates(spec_id: int) -> list[tuple[str, tuple[str | None, ...], tuple[str, ...]]]:
    spec = _SPECS[spec_id]
    out = []
    for template in spec.get("paths", {}):
        parts = template.strip("/").split("/")
        segments = tuple(None if p.startswith("{") else p for p in parts)
        names = tuple(p[1:-1] for p in parts if p.startswith("{"))
        out.append((template, segments, names))
    out.sort(key=lambda t: len(t[2]))  # literal paths win over templated ones
    return out


_SPECS: dict[int, dict[str, Any]] = {}


def operation_for(method: str, path: str, spec: dict[str, Any]) -> Operation | None:
    """The spec operation serving `method path` (a path or full URL, with or without /api/v2, /v1)."""
    _SPECS[id(spec)] = spec
    path = urlsplit(path).path
    api = _api_of(spec)
    prefixes = ("/api/v2",) if api == "v2" else ("/api/v1", "/v1")
    for prefix in prefixes:
        if path.startswith(prefix + "/"):
            path = path[len(prefix):]
            break
    parts = path.strip("/").split("/")
    for template, segments, names in _templates(id(spec)):
        if len(segments) != len(parts):
            continue
        values = [got for want, got in zip(segments, parts, strict=True) if want is None]
        if all(want is None or want == got for want, got in zip(segments, parts, strict=True)):
            op = spec["paths"][template].get(method.lower())
            if op is None:
                continue
            return Operation(method.upper(), template, op.get("operationId", ""), op, dict(zip(names, values, strict=True)),
                             spec, api)
    return None


# -- schema conversion ------------------------------------------------------------------------------

_DROP = {"example", "examples", "description", "title", "deprecated", "readOnly", "writeOnly", "xml",
         "externalDocs", "discriminator", "default"}


def to_draft4(schema: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema Draft 4."""
    if isinstance(schema, list):
        return [to_draft4(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP or key.startswith("x-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_draft4(sub) for name, sub in value.items()}
        elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
            out[key] = to_draft4(value)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [to_draft4(s) for s in value]
        elif key == "format":
            out[key] = "date" if value == "YYYY-MM-DD" else value  # §9.4
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _merge_allof(schema: dict[str, Any]) -> dict[str, Any]:
    """Fold top-level allOf object branches into one object schema (to forbid extra properties)."""
    branches = [schema] + [b for b in schema.get("allOf", []) if isinstance(b, dict)]
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for branch in branches:
        nested = _merge_allof(branch) if branch is not schema and "allOf" in branch else branch
        merged["properties"].update(nested.get("properties", {}))
        merged["required"] += [r for r in nested.get("required", []) if r not in merged["required"]]
    if not merged["required"]:
        del merged["required"]
    return merged


def _locate(schema: Any, parts: list[str]) -> list[dict[str, Any]]:
    """Every sub-schema reached by following `parts` (through allOf/oneOf/anyOf; `*` = items)."""
    if not isinstance(schema, dict):
        return []
    found: list[dict[str, Any]] = []
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in schema.get(key, []):
            found += _locate(branch, parts)
    if not parts:
        return found + [schema]
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(schema.get("items"), dict):
            found += _locate(schema["items"], rest)
        for sub in (schema.get("properties") or {}).values():
            found += _locate(sub, rest)
    elif head in (schema.get("properties") or {}):
        found += _locate(schema["properties"][head], rest)
    return found


def _apply_fixes(schema: dict[str, Any], operation_id: str, where: str, upto: int | None = None) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    for fix in KNOWN_SPEC_ERRORS[:upto]:
        if fix.where != where or not fnmatch.fnmatchcase(operation_id, fix.operations):
            continue
        targets = _locate(schema, fix.path.split(".") if fix.path else [])
        for target in targets:
            if fix.fix == "nullable":
                target["nullable"] = True
            elif fix.fix.startswith("not-required:"):
                name = fix.fix.split(":", 1)[1]
                if name in target.get("required", []):
                    target["required"] = [r for r in target["required"] if r != name]
                    if not target["required"]:
                        del target["required"]
            elif fix.fix.startswith("required:"):
                name = fix.fix.split(":", 1)[1]
                if name in (target.get("properties") or {}) and name not in target.get("required", []):
                    target["required"] = [*target.get("required", []), name]
            elif fix.fix.startswith("unwrap:"):
                inner = (target.get("properties") or {}).get(fix.fix.split(":", 1)[1])
                if isinstance(inner, dict):
                    target.clear()
                    target.update(copy.deepcopy(inner))
            elif fix.fix.startswith("type:"):
                target.pop("nullable", None)
                target["type"] = fix.fix.split(":", 1)[1].split("|")
    return schema


def _format_checker(api: str) -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date")
    def _date(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return len(value) == 10

    @checker.checks("date-time")
    def _datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return bool(RFC3339.match(value) or (api == "v1" and V1_DATETIME.match(value)))  # §9.3

    @checker.checks("uuid")
    def _uuid(value: object) -> bool:
        return not isinstance(value, str) or bool(UUID.match(value))

    return checker


@functools.lru_cache(maxsize=1024)
def _validator(spec_id: int, operation_id: str, where: str, key: str, api: str) -> jsonschema.Draft4Validator | None:
    op = _op_by_id(spec_id, operation_id)
    if where == "request":
        content = (op.get("requestBody") or {}).get("content", {})
        schema = (content.get("application/json") or next(iter(content.values()), {})).get("schema")
        if schema is None:
            return None
        schema = _apply_fixes(schema, operation_id, where)
        draft = to_draft4(schema)
        if draft.get("type") == "object" or "allOf" in draft or "properties" in draft:
            if draft.get("additionalProperties") is None:
                draft = _merge_allof(draft)
                draft["additionalProperties"] = False  # the API refuses undeclared parameters
    else:
        response = op.get("responses", {}).get(key, {})
        schema = (response.get("content", {}).get("application/json") or {}).get("schema")
        if schema is None:
            return None
        draft = to_draft4(_apply_fixes(schema, operation_id, where))
    return jsonschema.Draft4Validator(draft, format_checker=_format_checker(api))


@functools.lru_cache(maxsize=8)
def _ops_index(spec_id: int) -> dict[str, dict[str, Any]]:
    spec = _SPECS[spec_id]
    return {op["operationId"]: op for item in spec["paths"].values() for m, op in item.items()
            if m in METHODS and isinstance(op, dict) and "operationId" in op}


def _op_by_id(spec_id: int, operation_id: str) -> dict[str, Any]:
    return _ops_index(spec_id)[operation_id]


def _problems(validator: jsonschema.Draft4Validator, instance: Any, label: str) -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        if error.context:
            error = jsonschema.exceptions.best_match(error.context) or error
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        out.append(f"{label} {where}: {error.message[:300]}")
    return out


# -- requests -------------------------------------------------------------------------------------

def _check_scalar(name: str, raw: str, schema: dict[str, Any], comma_list: bool) -> list[str]:
    items = [p.strip() for p in raw.split(",")] if comma_list else [raw]
    kind = schema.get("type", "string")
    problems = []
    enum = schema.get("enum")
    atoms = {a for value in enum for a in str(value).split(",")} if enum and comma_list else None
    for item in items:
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", item):
                problems.append(f"query {name}: {item!r} is not an integer")
                continue
            value: Any = int(item)
        elif kind == "number":
            try:
                value = float(item)
            except ValueError:
                problems.append(f"query {name}: {item!r} is not a number")
                continue
        elif kind == "boolean":
            if item not in ("true", "false"):
                problems.append(f"query {name}: {item!r} is not true/false")
            continue
        else:
            value = item
        if enum:
            allowed = atoms if atoms is not None else set(enum)
            if (str(value) if atoms is not None else value) not in allowed:
                problems.append(f"query {name}: {item!r} is not one of {sorted(map(str, allowed))}")
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"query {name}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"query {name}: {value} > maximum {schema['maximum']}")
    return problems


def validate_request(op: Operation, params: dict[str, Any] | None, body: Any = None) -> list[str]:
    """Problems with the query parameters, path parameters and JSON body of a request to `op`."""
    problems: list[str] = []
    _SPECS[id(op.spec)] = op.spec
    declared = {p["name"]: p for p in op.op.get("parameters", [])}
    params = dict(params or {})
    for name, param in declared.items():
        where = param.get("in")
        if where == "path":
            raw = op.path_params.get(name)
            if raw is None:
                problems.append(f"path {name}: missing")
            else:
                problems += [p.replace("query", "path", 1) for p in
                             _check_scalar(name, raw, param.get("schema", {}), False)]
        elif where == "query":
            if name not in params or params[name] is None:
                if param.get("required"):
                    problems.append(f"query {name}: required but missing")
                continue
            raw_value = params[name]
            values = raw_value if isinstance(raw_value, (list, tuple)) else [raw_value]
            comma = bool(COMMA_LIST.search(param.get("description") or ""))  # §9.5
            for value in values:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                problems += _check_scalar(name, text, param.get("schema", {}), comma)
    for name in params:
        if name not in declared or declared[name].get("in") != "query":
            problems.append(f"query {name}: not a parameter of {op.operation_id}")
    has_body = "requestBody" in op.op
    if body is not None and not has_body:
        problems.append(f"body: {op.operation_id} takes no request body")
    if has_body:
        if body is None:
            if op.op["requestBody"].get("required"):
                problems.append("body: required but missing")
        else:
            validator = _validator(id(op.spec), op.operation_id, "request", "", op.api)
            if validator is not None:
                problems += _problems(validator, body, "body")
            if isinstance(body, dict):
                for key in body:
                    if HASH_KEY.match(key):
                        problems.append(f"body {key}: custom field hash at the top level; v2 wants it "
                                        "inside custom_fields (wire doc §1.4)")
                custom = body.get("custom_fields")
                if isinstance(custom, dict):
                    for key, value in custom.items():
                        if not HASH_KEY.match(key):
                            problems.append(f"body custom_fields/{key}: not a 40-character custom field key")
                        if value == []:
                            problems.append(f"body custom_fields/{key}: [] is refused for set fields; send null")
    return problems


# -- responses ------------------------------------------------------------------------------------

def validate_response(op: Operation, status: int, body: Any) -> list[str]:
    """Problems with a response of `op`: an undocumented 2xx status, or a body off its schema."""
    _SPECS[id(op.spec)] = op.spec
    responses = op.op.get("responses", {})
    key = str(status)
    if key not in responses:
        if f"{key[0]}XX" in responses:
            key = f"{key[0]}XX"
        elif 200 <= status < 300:
            return [f"status {status} is not documented for {op.operation_id} (documented: {sorted(responses)})"]
        elif "default" in responses:
            key = "default"
        else:
            return _error_envelope(status, body)  # §9.7
    validator = _validator(id(op.spec), op.operation_id, "response", key, op.api)
    if validator is None:
        return []
    return _problems(validator, body, f"response {status}")


def _error_envelope(status: int, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"response {status}: error body is not a JSON object"]
    problems = []
    if body.get("success") is not False:
        problems.append(f"response {status}: error body lacks success=false")
    if not isinstance(body.get("error"), str) and not isinstance(body.get("errors"), dict):
        problems.append(f"response {status}: error body lacks an `error` message")
    return problems


def fix_targets(spec: dict[str, Any], fix: SpecFix) -> int:
    """How many schemas of `spec` a KNOWN_SPEC_ERRORS entry applies to (0 means it went stale)."""
    _SPECS[id(spec)] = spec
    count = 0
    position = KNOWN_SPEC_ERRORS.index(fix)
    for operation_id, op in _ops_index(id(spec)).items():
        if not fnmatch.fnmatchcase(operation_id, fix.operations):
            continue
        if fix.where == "request":
            content = (op.get("requestBody") or {}).get("content", {})
            schemas = [c.get("schema") for c in content.values()]
        else:
            schemas = [c.get("schema") for r in op.get("responses", {}).values()
                       for c in (r.get("content") or {}).values()]
        for schema in schemas:
            if isinstance(schema, dict):
                schema = _apply_fixes(schema, operation_id, fix.where, upto=position)
                count += len(_locate(schema, fix.path.split(".") if fix.path else []))
    return count
