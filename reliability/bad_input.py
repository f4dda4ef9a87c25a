"""bad_input: hypothesis-generated ERP records (any JSON type in any field, control characters, NULs,
huge and odd numbers, odd keys) stored raw in the Sage sandbox beside good customers, then scheduled
runs: 0 crashed runs, every bad record either accepted or failed alone with a message, every good
record in Pipedrive once. Then hypothesis-generated webhook bodies (any JSON, v1/v2 look-alikes with odd
values, broken JSON, binary) posted with valid credentials to the receiver of a connection that has a
write-back flow: no 5xx, every stored event processed without an internal error."""

from __future__ import annotations

import base64
import json

from reliability.base import Context, PipedriveCompany

FIELDS = ("CustomerName", "AddressLine1", "City", "StateProvince", "Country", "ContactName", "PhoneNumber",
          "Email", "WebSite", "Terms", "GroupCode", "Status", "CurrencyCode", "CreditLimitCustomerCurrency")
KEY_SUFFIXES = ("", "'Q", " SP", "É", "/", "%20", "?x", "&", "#", "''", "\\", ")")


def generated_records(count: int, seed: int) -> list[dict]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    anything = st.one_of(
        st.none(), st.text(max_size=40), st.text(max_size=400), st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        st.sampled_from(["", " ", "\x00", "null", "NaN", "-0", "1e309", "<script>x</script>", "\u202e"]),
    )
    record = st.fixed_dictionaries({}, optional={name: anything for name in FIELDS})
    examples: list[dict] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(record, st.sampled_from(KEY_SUFFIXES))
    def collect(rec, suffix):
        if len(examples) < count:
            examples.append({**rec, "CustomerNumber": f"H{len(examples):04d}{suffix}"[:12]})

    collect()
    return examples


def generated_webhook_bodies(count: int, seed: int) -> list[bytes]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
                     st.floats(allow_nan=False), st.text(max_size=30),
                     st.sampled_from(["won", "lost", "open", "deleted", "deal", "change", "\x00", ""]))
    anything = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                            max_leaves=8)
    deal = st.dictionaries(st.sampled_from(["id", "status", "stage_id", "org_id", "title", "value",
                                            "custom_fields", "is_deleted", "update_time"]), anything, max_size=6)
    v2 = st.fixed_dictionaries({
        "meta": st.fixed_dictionaries({"id": st.one_of(st.uuids().map(str), anything),
                                       "entity": st.sampled_from(["deal", "person", "product", ""]) | anything,
                                       "action": st.sampled_from(["change", "create", "delete"]) | anything,
                                       "entity_id": anything, "version": st.just("2.0") | anything}),
        "data": deal | anything, "previous": deal | anything})
    v1 = st.fixed_dictionaries({
        "meta": st.fixed_dictionaries({"object": st.sampled_from(["deal", "person"]) | anything,
                                       "action": st.sampled_from(["updated", "added", "deleted"]) | anything,
                                       "id": anything, "v": st.just(1) | anything, "timestamp": anything}),
        "current": deal | anything, "previous": deal | anything})
    # well-formed envelopes around odd deals: these are stored and reach the write-back
    v2_deal = st.fixed_dictionaries({
        "meta": st.fixed_dictionaries({"id": st.uuids().map(str), "entity": st.just("deal"),
                                       "action": st.sampled_from(["change", "create"]),
                                       "entity_id": st.integers(min_value=1, max_value=10**6).map(str),
                                       "version": st.just("2.0")}),
        "data": deal | anything, "previous": deal | anything})
    body = st.one_of(v2_deal.map(lambda b: json.dumps(b).encode()), v2.map(lambda b: json.dumps(b).encode()), v1.map(lambda b: json.dumps(b).encode()),
                     anything.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200),
                     st.text(max_size=60).map(str.encode))
    examples: list[bytes] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(body)
    def collect(raw):
        if len(examples) < count:
            examples.append(raw)

    collect()
    return examples


def webhooks_run(ctx: Context, pipedrive_connection) -> dict:
    """Bad bodies with good credentials: each refused (400/413) or stored and processed cleanly."""
    from django.test import Client, override_settings

    from connectors.models import Connection
    from syncs.models import WebhookEvent
    from syncs.services import flow_create
    from syncs.webhook_registration import webhook_credentials_ensure
    from syncs.webhooks import webhook_event_process

    b1 = Connection.objects.create(tenant=pipedrive_connection.tenant, system="sap_b1", name="B1 (bad input)",
                                   base_url=f"{ctx.sandbox.url}/b1s/v1", options={"company_db": "NONE", "user": "u"},
                                   credentials={"password": "bad-input-pw"})
    flow_create(tenant=pipedrive_connection.tenant, source=b1, target=pipedrive_connection,
                kind="deal_won_to_sales_order")
    user, password = webhook_credentials_ensure(connection=pipedrive_connection)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    url = f"/hooks/pipedrive/{pipedrive_connection.uuid}/"
    client = Client(raise_request_exception=False)
    answers: dict[int, int] = {}
    server_errors = []
    bodies = generated_webhook_bodies(ctx.pick(150, 1000), ctx.seed)
    with override_settings(ALLOWED_HOSTS=["*"]):
        for raw in bodies:
            resp = client.post(url, data=raw, content_type="application/json", HTTP_AUTHORIZATION=auth)
            answers[resp.status_code] = answers.get(resp.status_code, 0) + 1
            if resp.status_code >= 500:
                server_errors.append(raw[:120].decode("utf-8", "replace"))
    events = list(WebhookEvent.objects.filter(connection=pipedrive_connection).values_list("pk", flat=True))
    for pk in events:
        webhook_event_process(event_id=pk)
    internal = list(WebhookEvent.objects.filter(connection=pipedrive_connection, error__startswith="internal error")
                    .values_list("error", flat=True)[:3])
    unprocessed = WebhookEvent.objects.filter(connection=pipedrive_connection, status=WebhookEvent.Status.STORED).count()
    return {"bodies": len(bodies), "answers": {str(k): v for k, v in sorted(answers.items())},
            "server_errors": len(server_errors), "server_error_samples": server_errors[:3],
            "stored": len(events), "internal_errors": len(internal), "internal_error_samples": internal,
            "left_unprocessed": unprocessed}


def run(ctx: Context) -> dict:
    from syncs.models import SyncRecord, SyncRun
    from syncs.services import flow_run
    from testkit.harness import wire_tenant

    count = ctx.pick(60, 500)
    good = ctx.pick(40, 200)
    company = ctx.name("B")
    flow, info = wire_tenant(ctx.sandbox, customers=good, slug=ctx.name("badinput-", 16), seed=ctx.seed,
                             sage_company=company)
    bad = generated_records(count, ctx.seed)
    # NaN and ±Infinity are part of the bad input: sent as Python's json writes them (requests refuses them)
    ctx.sandbox.control("POST", f"sage300/companies/{company}/raw_customers", data=json.dumps({"records": bad}),
                        headers={"Content-Type": "application/json"})
    bad_keys = {r["CustomerNumber"] for r in bad}
    crashed, statuses, errors = 0, [], []
    for _ in range(3):  # the first run and two scheduled retries of whatever failed transiently
        flow.refresh_from_db()
        try:
            result = flow_run(flow=flow, trigger=SyncRun.Trigger.SCHEDULE)
        except Exception as exc:  # a crash is what this suite counts
            crashed += 1
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        statuses.append(result.status if result else "busy")
        if result is not None and result.status == SyncRun.Status.FAILED:
            crashed += 1
            errors.append(result.error[:300])
    latest: dict[str, SyncRecord] = {}
    for row in SyncRecord.objects.filter(flow=flow).order_by("id"):
        latest[row.external_id] = row
    accepted = sum(1 for k in bad_keys if k in latest and latest[k].outcome == "ok")
    with_message = sum(1 for k in bad_keys if k in latest and latest[k].outcome == "failed"
                       and latest[k].error_message.strip())
    silent = sorted(k for k in bad_keys if k not in latest or latest[k].outcome not in ("ok", "failed")
                    or (latest[k].outcome == "failed" and not latest[k].error_message.strip()))
    counts = PipedriveCompany(ctx.sandbox, info["company_id"]).by_external_id()
    good_keys = {r.external_id for r in SyncRecord.objects.filter(flow=flow)} - bad_keys
    good_wrong = sorted(k for k in good_keys if counts.get(k) != 1)
    from connectors.models import Connection

    hooks = webhooks_run(ctx, Connection.objects.get(pk=flow.target_id))
    hooks_ok = hooks["server_errors"] == 0 and hooks["internal_errors"] == 0 and hooks["left_unprocessed"] == 0
    return {
        "ok": crashed == 0 and not silent and not good_wrong and len(good_keys) == good and hooks_ok,
        "crashed_runs": crashed, "generated_records": len(bad), "accepted": accepted,
        "failed_with_message": with_message, "unaccounted_or_silent": len(silent), "silent_samples": silent[:5],
        "good_records": good, "good_records_not_once_in_pipedrive": len(good_wrong), "run_statuses": statuses,
        "crash_errors": errors[:3],
        "webhooks": hooks,
    }
