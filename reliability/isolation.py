"""tenant_isolation: every portal page and API endpoint, generated from the URL conf, requested as tenant
B's user (session) or token with tenant A's object ids: the answer must be 401/403/404/405 or a redirect
to a login page, never A's data; every list page as B must not mention A's names. A pattern whose
parameters the generator cannot fill is reported as uncovered (and fails the suite)."""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta

from reliability.base import Context
from reliability.urlwalk import Endpoint, build, endpoints, is_object_param, model_for, model_index

ALLOWED = {401, 403, 404, 405}


def tenant_world(tag: str, *, password: str = "ignored", staff: bool = False) -> dict:
    """A tenant with one object of every type, all named after `tag` (the markers searched for)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_q.models import OrmQ, Schedule, Task

    from alerts.models import Alert
    from connectors.models import Connection
    from onboarding.models import WizardJob
    from syncs.models import (
        RecordLink,
        SyncRecord,
        SyncRun,
        WebhookEvent,
        WebhookRejection,
        WritebackAction,
        WritebackLink,
    )
    from syncs.services import flow_create
    from tenants.models import Invite, Membership, Tenant
    from tenants.services import api_token_create

    tenant = Tenant.objects.create(name=f"{tag} Ltd", slug=tag.lower())
    user = get_user_model().objects.create_user(username=f"{tag.lower()}@example.com",
                                                email=f"{tag.lower()}@example.com", password=password,
                                                is_staff=staff)
    membership = Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    # a discard port on loopback: nothing here is ever meant to answer
    sage = Connection.objects.create(tenant=tenant, system="sage300", name=f"{tag} Sage",
                                     base_url="http://127.0.0.1:9/Sage300WebApi/v1.0",
                                     options={"company": "SAMLTD", "user": "ADMIN"},
                                     credentials={"password": f"{tag}-password"})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name=f"{tag} Pipedrive",
                                          base_url="http://127.0.0.1:9", options={"auth": "api_token"},
                                          credentials={"api_token": f"{tag}-token"})
    flow = flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                       name=f"{tag} Flow")
    run = SyncRun.objects.create(tenant=tenant, flow=flow, trigger="manual", status="partial",
                                 error=f"{tag} run error", finished=timezone.now())
    record = SyncRecord.objects.create(tenant=tenant, run=run, flow=flow, external_id=f"{tag}-EXT",
                                       source_object="customers", target_object="organizations", action="create",
                                       outcome="failed", error_kind="permanent", error_message=f"{tag} failed")
    link = RecordLink.objects.create(tenant=tenant, source_connection=sage, target_connection=pipedrive,
                                     source_object="customers", external_id=f"{tag}-LINKED",
                                     target_object="organizations", target_id=1)
    writeback = WritebackLink.objects.create(tenant=tenant, flow=flow, deal_id="1", document_id=f"{tag}-DOC")
    stage_action = WritebackAction.objects.create(tenant=tenant, flow=flow, deal_id="1", stage_id=3,
                                                  changed_at="2026-11-29T10:00:00+00:00", action="Release",
                                                  document_id=f"{tag}-ORDER")
    api_token = api_token_create(user=user, name=f"{tag} token")
    event = WebhookEvent.objects.create(connection=pipedrive, delivery_id=f"{tag}-delivery", version="2",
                                        body={"meta": {"id": f"{tag}-delivery"}}, object="deal", action="change",
                                        entity_id="1", auth_result="basic")
    rejection = WebhookRejection.objects.create(connection=pipedrive, status=401, reason=f"{tag} bad auth")
    now = timezone.now()
    alert = Alert.objects.create(tenant=tenant, subject=f"flow:{flow.pk}", kind="flow_failing", level="problem",
                                 title=f"{tag} flow failing", text=f"{tag} alert text")
    job = WizardJob.objects.create(tenant=tenant, kind="estimate", flow=flow, status="done",
                                   result={"note": f"{tag} estimate"})
    invite = Invite.objects.create(tenant=tenant, email=f"{tag.lower()}-invitee@example.com", role="viewer",
                                   token_hash=secrets.token_hex(32), invited_by=user,
                                   expires_at=now + timedelta(days=7))
    schedule = Schedule.objects.create(name=f"{tag} schedule", func="syncs.tasks.health_task", args="1")
    task = Task.objects.create(id=secrets.token_hex(16), name=f"{tag} task", func="syncs.tasks.health_task",
                               started=now, stopped=now, success=True)
    failure = Task.objects.create(id=secrets.token_hex(16), name=f"{tag} failed task",
                                  func="syncs.tasks.health_task", started=now, stopped=now, success=False)
    group = Group.objects.create(name=f"{tag} group")
    queued = OrmQ.objects.create(key=f"{tag} queue", payload="x", lock=None)
    objects = {}
    for obj in (tenant, user, membership, sage, flow, run, record, link, writeback, stage_action, api_token, event,
                rejection, schedule, queued, task, group, alert, job, invite):
        objects.setdefault(type(obj), obj)
    objects["Failure"] = failure
    return {"tag": tag, "tenant": tenant, "user": user, "objects": objects, "token": api_token_create(user=user).key,
            "connections": [sage, pipedrive], "flow": flow, "markers": [tag]}


def _object_for(model, world: dict):
    objs = world["objects"]
    if model in objs:
        return objs[model]
    for cls, obj in objs.items():  # proxies (django_q Success/Failure are Task)
        if isinstance(cls, type) and issubclass(model, cls) or (
                isinstance(cls, type) and model._meta.concrete_model is cls):
            if model.__name__ == "Failure":
                return objs["Failure"]
            return obj
    return None


def value_sets(endpoint: Endpoint, world: dict, index) -> list[dict] | None:
    """Every combination of parameter values to try, or None when a parameter cannot be filled."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    named = {"system": ["sage300", "pipedrive"], "action": ["run", "pause", "resume", "resync"],
             "uidb64": [urlsafe_base64_encode(force_bytes(world["user"].pk))], "token": ["set-password"],
             "url": ["nothing-here/"], "format": ["json"], "key": ["erp_id", "pipedrive_id"],
             # the webhook receiver authenticates by the connection's Basic credentials, not a session
             "connection_uuid": [str(c.uuid) for c in world["connections"]]}
    options: dict[str, list[str]] = {}
    if "content_type_id" in endpoint.params:
        conn = world["connections"][0]
        options["content_type_id"] = [str(ContentType.objects.get_for_model(conn).pk)]
        options["object_id"] = [str(conn.pk)]
    for param in endpoint.params:
        if param in options:
            continue
        if param in endpoint.choices:
            options[param] = endpoint.choices[param][:1]
        elif param in named:
            options[param] = named[param]
        elif is_object_param(param):
            model = model_for(endpoint, param, index)
            obj = _object_for(model, world) if model is not None else None
            if obj is None:
                return None
            options[param] = [str(obj.pk)]
        else:
            return None
    keys = list(options)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(options[k] for k in keys))]


# List filters that take an object id as a query parameter (by URL name): probed with A's ids as B.
QUERY_PROBES = {
    "run_list": {"flow": "flow"}, "record_list": {"flow": "flow", "run": "run"},
    "webhook_event_list": {"connection": "pipedrive"},
    "api-runs": {"flow": "flow"}, "api-records": {"flow": "flow", "run": "run"},
    "api-webhook-events": {"connection": "pipedrive"},
}
# Writes whose body names objects: A's ids posted as B must change nothing of A's.
BODY_PROBES = {"records_replay_selection": ("form", {"record": "record"}),
               "api-records-replay": ("json", {"records": "record", "flow": "flow"})}


def _probe_ids(world: dict) -> dict[str, int]:
    from syncs.models import SyncRecord, SyncRun

    return {"flow": world["flow"].pk, "run": world["objects"][SyncRun].pk,
            "record": world["objects"][SyncRecord].pk, "pipedrive": world["connections"][1].pk}


def probe_filters_and_bodies(a: dict, session, api) -> tuple[list[str], list[str], int]:
    """GET every id-taking list filter and POST every id-taking body with A's ids, as B: no marker of
    A in any answer, and no replay queued for A's flow. Returns (leaks, unexpected, requests)."""
    import json

    from django.urls import reverse

    from syncs.models import SyncRun

    ids = _probe_ids(a)
    leaks, unexpected, sent = [], [], 0
    replays_before = SyncRun.objects.filter(flow=a["flow"], trigger="replay").count()
    for name, params in QUERY_PROBES.items():
        client = api if name.startswith("api-") else session
        for param, what in params.items():
            path = f"{reverse(name)}?{param}={ids[what]}"
            resp = client.get(path)
            sent += 1
            if any(marker in resp.content.decode("utf-8", "replace") for marker in a["markers"]):
                leaks.append(f"GET {path} → {resp.status_code}")
            elif resp.status_code >= 500:
                unexpected.append(f"GET {path} → {resp.status_code}")
    for name, (kind, fields) in BODY_PROBES.items():
        client = api if kind == "json" else session
        for field, what in fields.items():
            value = [ids[what]] if field in ("record", "records") else ids[what]
            if kind == "json":
                resp = client.post(reverse(name), data=json.dumps({field: value}), content_type="application/json")
            else:
                resp = client.post(reverse(name), {field: value})
            sent += 1
            if any(marker in resp.content.decode("utf-8", "replace") for marker in a["markers"]):
                leaks.append(f"POST {reverse(name)} {field} → {resp.status_code}")
            elif resp.status_code >= 500:
                unexpected.append(f"POST {reverse(name)} {field} → {resp.status_code}")
    if SyncRun.objects.filter(flow=a["flow"], trigger="replay").count() != replays_before:
        leaks.append("a replay of A's records was queued by B")
    return leaks, unexpected, sent


def _allowed(resp) -> bool:
    if resp.status_code in ALLOWED:
        return True
    return 300 <= resp.status_code < 400 and "login" in resp.get("Location", "")


def run(ctx: Context) -> dict:
    from django.test import Client
    from django.test.utils import override_settings

    index = model_index()
    a = tenant_world(ctx.name("Aardvark", 14))
    b = tenant_world(ctx.name("Badger", 12))
    session = Client(raise_request_exception=False)
    session.force_login(b["user"])
    api = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {b['token']}")
    leaks, unexpected, uncovered = [], [], []
    covered = requests_sent = 0
    with override_settings(ALLOWED_HOSTS=["*"]):
        for endpoint in endpoints():
            combos = value_sets(endpoint, a, index)
            paths = [build(endpoint, values) for values in combos] if combos is not None else [None]
            if not paths or None in paths:
                uncovered.append(endpoint.route)
                continue
            covered += 1
            client = api if endpoint.is_api else session
            probing = bool(endpoint.object_params())
            methods = ["get"] + (["post"] + (["put", "patch", "delete"] if endpoint.is_api else [])
                                 if probing else [])
            for path in paths:
                for method in methods:
                    kwargs = {"content_type": "application/json", "data": "{}"} if method != "get" else {}
                    resp = getattr(client, method)(path, **kwargs)
                    requests_sent += 1
                    body = resp.content.decode("utf-8", "replace")
                    where = f"{method.upper()} {path} → {resp.status_code}"
                    if any(marker in body for marker in a["markers"]):
                        leaks.append(where)
                    elif probing and not _allowed(resp):
                        unexpected.append(where)
                    elif resp.status_code >= 500:
                        unexpected.append(where)
        more_leaks, more_unexpected, more_sent = probe_filters_and_bodies(a, session, api)
        leaks += more_leaks
        unexpected += more_unexpected
        requests_sent += more_sent
    return {"ok": not leaks and not unexpected and not uncovered, "leaks": len(leaks),
            "unexpected_answers": len(unexpected), "patterns_covered": covered, "uncovered": uncovered,
            "requests": requests_sent, "leak_samples": leaks[:10], "unexpected_samples": unexpected[:10]}
