"""Token cost per operation: the specs' `x-token-cost`, read once at startup (wire doc §1.2, §3).

The table maps (method, api, path template) to (operationId, cost); `api` is "v2" for `/api/v2`
and "v1" for `/v1` and `/api/v1`. Templates are the spec's own (`/organizations/{id}`).
Without PyYAML or the spec files, the built-in copy below (the same numbers) is used.
"""

from __future__ import annotations

import os
from pathlib import Path

SPECS_ENV = "PIPEDRIVE_SPECS_DIR"
Key = tuple[str, str, str]

# The operations this simulator serves, as the specs price them (checked by the tests).
BUILTIN: dict[Key, tuple[str, int]] = {
    ("GET", "v2", "/organizations"): ("getOrganizations", 10),
    ("POST", "v2", "/organizations"): ("addOrganization", 5),
    ("GET", "v2", "/organizations/{id}"): ("getOrganization", 1),
    ("PATCH", "v2", "/organizations/{id}"): ("updateOrganization", 5),
    ("DELETE", "v2", "/organizations/{id}"): ("deleteOrganization", 3),
    ("GET", "v2", "/persons"): ("getPersons", 10),
    ("POST", "v2", "/persons"): ("addPerson", 5),
    ("GET", "v2", "/persons/{id}"): ("getPerson", 1),
    ("PATCH", "v2", "/persons/{id}"): ("updatePerson", 5),
    ("DELETE", "v2", "/persons/{id}"): ("deletePerson", 3),
    ("GET", "v2", "/deals"): ("getDeals", 10),
    ("POST", "v2", "/deals"): ("addDeal", 5),
    ("GET", "v2", "/deals/{id}"): ("getDeal", 1),
    ("PATCH", "v2", "/deals/{id}"): ("updateDeal", 5),
    ("DELETE", "v2", "/deals/{id}"): ("deleteDeal", 3),
    ("GET", "v2", "/products"): ("getProducts", 10),
    ("POST", "v2", "/products"): ("addProduct", 5),
    ("GET", "v2", "/products/{id}"): ("getProduct", 1),
    ("PATCH", "v2", "/products/{id}"): ("updateProduct", 5),
    ("DELETE", "v2", "/products/{id}"): ("deleteProduct", 3),
    ("GET", "v2", "/activities"): ("getActivities", 10),
    ("POST", "v2", "/activities"): ("addActivity", 5),
    ("GET", "v2", "/activities/{id}"): ("getActivity", 1),
    ("PATCH", "v2", "/activities/{id}"): ("updateActivity", 5),
    ("DELETE", "v2", "/activities/{id}"): ("deleteActivity", 3),
    ("GET", "v2", "/organizations/search"): ("searchOrganization", 20),
    ("GET", "v2", "/persons/search"): ("searchPersons", 20),
    ("GET", "v2", "/deals/search"): ("searchDeals", 20),
    ("GET", "v2", "/products/search"): ("searchProducts", 20),
    ("GET", "v2", "/deals/{id}/products"): ("getDealProducts", 10),
    ("POST", "v2", "/deals/{id}/products"): ("addDealProduct", 5),
    ("DELETE", "v2", "/deals/{id}/products"): ("deleteManyDealProducts", 15),
    ("POST", "v2", "/deals/{id}/products/bulk"): ("addManyDealProducts", 25),
    ("PATCH", "v2", "/deals/{id}/products/{product_attachment_id}"): ("updateDealProduct", 5),
    ("DELETE", "v2", "/deals/{id}/products/{product_attachment_id}"): ("deleteDealProduct", 3),
    ("GET", "v2", "/itemSearch"): ("searchItem", 20),
    ("GET", "v2", "/itemSearch/field"): ("searchItemByField", 20),
    ("GET", "v2", "/activityFields"): ("getActivityFields", 10),
    ("GET", "v2", "/activityFields/{field_code}"): ("getActivityField", 1),
    ("GET", "v1", "/users/me"): ("getCurrentUser", 2),
    ("GET", "v1", "/notes"): ("getNotes", 20),
    ("POST", "v1", "/notes"): ("addNote", 10),
    ("GET", "v1", "/notes/{id}"): ("getNote", 2),
    ("PUT", "v1", "/notes/{id}"): ("updateNote", 10),
    ("DELETE", "v1", "/notes/{id}"): ("deleteNote", 6),
    ("GET", "v1", "/webhooks"): ("getWebhooks", 10),
    ("POST", "v1", "/webhooks"): ("addWebhook", 10),
    ("DELETE", "v1", "/webhooks/{id}"): ("deleteWebhook", 6),
}
for _entity in ("organization", "person", "deal", "product"):
    _cap = _entity[0].upper() + _entity[1:]
    _base = f"/{_entity}Fields"
    BUILTIN.update({
        ("GET", "v2", _base): (f"get{_cap}Fields", 10),
        ("POST", "v2", _base): (f"add{_cap}Field", 5),
        ("GET", "v2", _base + "/{field_code}"): (f"get{_cap}Field", 1),
        ("PATCH", "v2", _base + "/{field_code}"): (f"update{_cap}Field", 5),
        ("DELETE", "v2", _base + "/{field_code}"): (f"delete{_cap}Field", 3),
        ("POST", "v2", _base + "/{field_code}/options"): (f"add{_cap}FieldOptions", 5),
        ("PATCH", "v2", _base + "/{field_code}/options"): (f"update{_cap}FieldOptions", 5),
        ("DELETE", "v2", _base + "/{field_code}/options"): (f"delete{_cap}FieldOptions", 3),
    })


def default_specs_dir() -> Path:
    env = os.environ.get(SPECS_ENV)
    if env:
        return Path(env)
    # sandbox/pipedrive/costs.py -> <checkout>/sandbox -> <checkout> -> its parent, which holds shared/
    return Path(__file__).resolve().parents[3] / "shared" / "specs" / "pipedrive"


def load_costs(specs_dir: Path | None = None) -> tuple[dict[Key, tuple[str, int]], str]:
    """(table, source): every priced operation of both specs, or the built-in table as fallback."""
    table = dict(BUILTIN)
    try:
        import yaml
    except ImportError:
        return table, "builtin (PyYAML not installed)"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    specs_dir = specs_dir or default_specs_dir()
    sources = []
    for api, filename in (("v2", "openapi-v2.yml"), ("v1", "openapi-v1.yml")):
        path = specs_dir / filename
        if not path.is_file():
            sources.append(f"{api}: builtin ({path} missing)")
            continue
        with path.open("rb") as fh:
            spec = yaml.load(fh, Loader=loader)
        for template, item in (spec.get("paths") or {}).items():
            for method, op in item.items():
                if isinstance(op, dict) and "x-token-cost" in op:
                    table[(method.upper(), api, template)] = (op.get("operationId", ""), int(op["x-token-cost"]))
        sources.append(f"{api}: {path}")
        del spec
    return table, "; ".join(sources)
