"""Every URL pattern of the project, from the URL conf, with its parameters filled in: the generator
behind tenant_isolation and secrets_scan, so a new endpoint is covered without editing a suite."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

ROUTE_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
REGEX_PARAM = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")


@dataclass
class Endpoint:
    route: str  # the pattern as written, prefixes included
    params: list[str]
    callback: Any
    name: str = ""
    choices: dict[str, list[str]] = field(default_factory=dict)  # regex alternations, e.g. admin app labels

    @property
    def is_api(self) -> bool:
        return self.route.lstrip("^").startswith("api/")

    @property
    def is_admin(self) -> bool:
        return self.route.lstrip("^").startswith("admin/")

    @property
    def model_admin(self):
        return getattr(self.callback, "model_admin", None)

    def object_params(self) -> list[str]:
        return [p for p in self.params if is_object_param(p)]


def is_object_param(name: str) -> bool:
    return name in ("id", "pk", "object_id") or name.endswith("_id") or "uuid" in name


def endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            text = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, text)
            elif isinstance(p, URLPattern):
                params = [m["name"] for m in REGEX_PARAM.finditer(text)] + [
                    m["name"] for m in ROUTE_PARAM.finditer(REGEX_PARAM.sub("", text))]
                choices = {m["name"]: m["body"].split("|") for m in REGEX_PARAM.finditer(text) if "|" in m["body"]}
                out.append(Endpoint(text, params, p.callback, p.name or "", choices))

    walk(get_resolver().url_patterns, "")
    return out


def build(endpoint: Endpoint, values: dict[str, str]) -> str | None:
    """The path for these parameter values, or None when it does not resolve back to the endpoint."""
    try:
        text = REGEX_PARAM.sub(lambda m: str(values[m["name"]]), endpoint.route)
        text = ROUTE_PARAM.sub(lambda m: str(values[m["name"]]), text)
    except KeyError:
        return None
    path = "/" + text.replace("^", "").replace("$", "").replace("\\", "")
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return path if match.func is endpoint.callback else None


def model_index() -> dict[str, type]:
    from django.apps import apps

    index = {m._meta.model_name: m for m in apps.get_models()}
    index.update({"run": index["syncrun"], "record": index["syncrecord"], "link": index["recordlink"],
                  "job": index["wizardjob"], "member": index["membership"]})
    return index


def model_for(endpoint: Endpoint, param: str, index: dict[str, type]):
    """Which model an id parameter names: the admin's own model, a `<model>_id` name, or the path
    segment before it (`connections/<int:id>/` → Connection)."""
    if endpoint.model_admin is not None and param == "object_id":
        return endpoint.model_admin.model
    if param == "content_type_id":
        return index["contenttype"]
    if param.endswith("_id") and param[:-3] in index:
        return index[param[:-3]]
    head = re.split(r"<[^>]*>|\(\?P<", endpoint.route)[0] if param in ("id", "pk") else ""
    segments = [s for s in head.replace("^", "").split("/") if s]
    if segments:
        word = segments[-1].replace("-", "")  # settings/api-token/<id>/ → apitoken
        for candidate in (word, word.rstrip("s"), word[:-3] + "y" if word.endswith("ies") else word):
            if candidate in index:
                return index[candidate]
    return None
