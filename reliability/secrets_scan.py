"""secrets_scan: known secrets set as credentials (Sage password, Pipedrive API token), then a full run
with a failing ping and a failed record, then a search of every text column of every table, the logs
(captured to a file at DEBUG), the audit rows, the admin HTML of every page for those objects (as a
superuser) and every API and portal answer (as the tenant's owner). found must be 0."""

from __future__ import annotations

import base64
import logging
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from reliability.base import Context
from reliability.isolation import value_sets
from reliability.urlwalk import build, endpoints, model_index


def needles(*plain: str, user: str = "ADMIN") -> list[str]:
    """The secrets and the forms they travel in: case-folded, URL-quoted, inside a Basic auth header."""
    out: set[str] = set()
    for value in plain:
        for form in (value, value.upper(), value.lower()):
            out.update({form, quote(form, safe=""),
                        base64.b64encode(f"{user}:{form}".encode()).decode()})
    return sorted(out)


@contextmanager
def captured_logs():
    """Every logger at DEBUG into a file for the duration (as a production log shipper would see it)."""
    handle = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    handle.close()
    handler = logging.FileHandler(handle.name)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(args)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in [*logging.root.manager.loggerDict, ""]}
    quiet = [(h, h.level) for h in root.handlers]
    for h, _ in quiet:  # the console keeps its usual level; only the file gets everything
        h.setLevel(max(h.level, logging.INFO))
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield Path(handle.name)
    finally:
        root.removeHandler(handler)
        handler.close()
        for h, level in quiet:
            h.setLevel(level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def database_text() -> list[tuple[str, str]]:
    """(table, row as text) for every row of every table."""
    from django.db import connection

    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            name = connection.ops.quote_name(table)
            if connection.vendor == "postgresql":
                cursor.execute(f"SELECT t::text FROM {name} t")  # noqa: S608 — table names from introspection
                rows += [(table, r[0]) for r in cursor.fetchall()]
            else:
                cursor.execute(f"SELECT * FROM {name}")  # noqa: S608
                rows += [(table, repr(r)) for r in cursor.fetchall()]
    return rows


def hits(text: str, words: list[str]) -> int:
    return sum(text.count(w) for w in words)


def run(ctx: Context) -> dict:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from connectors.models import Connection
    from connectors.services import connection_ping
    from syncs.models import RecordLink, SyncRecord, SyncRun
    from syncs.services import flow_run
    from tenants.models import Membership
    from tenants.services import api_token_create
    from testkit.harness import wire_tenant

    erp_password = f"Erp-{secrets.token_hex(10)}"
    pd_token = secrets.token_hex(20)
    words = needles(erp_password, pd_token)
    sage_company = ctx.name("S")
    found: dict[str, int] = {}
    with captured_logs() as log_path:
        flow, _ = wire_tenant(ctx.sandbox, customers=30, slug=ctx.name("secrets-", 16), seed=ctx.seed,
                              sage_company=sage_company, sage_password=erp_password, api_token=pd_token)
        tenant = flow.tenant
        sage, pipedrive = flow.source, flow.target
        ctx.sandbox.control("POST", f"sage300/companies/{sage_company}/malformed", json={"kinds": ["missing_name"]})
        pings = [connection_ping(connection=sage).ok, connection_ping(connection=pipedrive).ok]
        # failing pings with the secrets in hand: a user the ERP rejects, a server answering 500s
        wrong_user = Connection.objects.create(tenant=tenant, system="sage300", name="Wrong user",
                                               base_url=sage.base_url,
                                               options={"company": sage_company, "user": "NOBODY"},
                                               credentials={"password": erp_password})
        pings.append(connection_ping(connection=wrong_user).ok)
        ctx.sandbox.control("POST", "sage300/faults", json={"error_5xx": 1.0})
        ctx.sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 1.0})
        try:
            pings += [connection_ping(connection=sage).ok, connection_ping(connection=pipedrive).ok]
        finally:
            ctx.sandbox.control("POST", "sage300/faults", json={"error_5xx": 0})
            ctx.sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 0})
        result = flow_run(flow=flow)
        failed_records = SyncRecord.objects.filter(flow=flow, outcome="failed").count()

        owner = get_user_model().objects.create_user(username=f"{tenant.slug}@example.com", password="x")
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
        token = api_token_create(user=owner).key
        superuser = get_user_model().objects.create_superuser(username=f"root-{tenant.slug}", password="x")
        portal = Client(raise_request_exception=False)
        portal.force_login(owner)
        api = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {token}")
        root = Client(raise_request_exception=False)
        root.force_login(superuser)
        world = {"user": owner, "connections": [sage, pipedrive, wrong_user],
                 "objects": {type(tenant): tenant, type(owner): owner, Connection: sage, type(flow): flow,
                             SyncRun: result, SyncRecord: SyncRecord.objects.filter(flow=flow).first(),
                             RecordLink: RecordLink.objects.filter(tenant=tenant).first(),
                             Membership: Membership.objects.filter(tenant=tenant).first()}}
        found["api_responses"] = found["portal_pages"] = 0
        pages = 0
        index = model_index()
        with override_settings(ALLOWED_HOSTS=["*"]):
            for endpoint in endpoints():
                if endpoint.is_admin:
                    continue
                for values in value_sets(endpoint, world, index) or []:
                    path = build(endpoint, values)
                    if path is None or "logout" in path:
                        continue
                    resp = (api if endpoint.is_api else portal).get(path)
                    pages += 1
                    found["api_responses" if endpoint.is_api else "portal_pages"] += hits(
                        resp.content.decode("utf-8", "replace"), words)
            # every admin changelist, and the change page of every object of this tenant
            found["admin_html"] = 0
            explicit = {type(tenant): [tenant], type(owner): [owner, superuser]}
            for model in admin.site._registry:
                prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
                if model in explicit:
                    objects = explicit[model]
                elif any(f.name == "tenant" for f in model._meta.get_fields()):
                    objects = list(model.objects.filter(tenant=tenant)[:30])
                else:
                    objects = []
                urls = [reverse(f"{prefix}_changelist")] + [reverse(f"{prefix}_change", args=[o.pk]) for o in objects]
                for url in urls:
                    resp = root.get(url)
                    pages += 1
                    found["admin_html"] += hits(resp.content.decode("utf-8", "replace"), words)
    found["logs"] = hits(log_path.read_text(errors="replace"), words)
    log_path.unlink()
    audit = [repr(r) for r in SyncRecord.objects.filter(flow=flow).values()] + [
        repr(r) for r in SyncRun.objects.filter(flow=flow).values()]
    found["audit_rows"] = hits("\n".join(audit), words)
    rows = database_text()
    tables = sorted({t for t, text in rows if hits(text, words)})
    found["database"] = sum(hits(text, words) for _, text in rows)
    total = sum(found.values())
    sanity = pings[:2] == [True, True] and not any(pings[2:]) and failed_records >= 1
    return {"ok": total == 0 and sanity, "found": total, "found_by_place": found, "tables_with_secrets": tables,
            "pages_searched": pages, "database_rows_searched": len(rows), "pings_ok": pings,
            "failed_records": failed_records, "run_status": result.status if result else "busy"}
