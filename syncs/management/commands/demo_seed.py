"""`make run`'s demo: a tenant wired to the local sandbox (Sage 300 → Pipedrive), idempotent."""

import secrets

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connectors.models import Connection
from syncs.models import Flow
from syncs.services import flow_create
from tenants.models import Membership, Tenant

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-connector-2026"


class Command(BaseCommand):
    help = "Create (or refresh) the demo tenant, its sandbox connections and a flow."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox", default="http://127.0.0.1:8100", help="Base URL of `python -m sandbox`")
        parser.add_argument("--customers", type=int, default=250)

    def control(self, base: str, path: str, payload: dict) -> dict:
        try:
            resp = requests.post(f"{base}/_sandbox/{path}", json=payload, timeout=60)
        except requests.ConnectionError:
            raise CommandError(f"The sandbox is not answering at {base}; start it with `python -m sandbox`.") from None
        if resp.status_code >= 400:
            raise CommandError(f"The sandbox refused {path}: {resp.text[:200]}")
        return resp.json()

    def pipedrive_company(self, base: str, token: str) -> dict:
        """The sandbox company answering to `token` (created when this sandbox has not seen it yet)."""
        known = requests.get(f"{base}/_sandbox/pipedrive/companies", timeout=30).json()["companies"]
        for company in known:
            if company["api_token"] == token:
                return company
        return self.control(base, "pipedrive/companies", {"name": "Demo CRM", "plan": "growth", "seats": 3,
                                                           "api_token": token})

    @transaction.atomic
    def handle(self, *args, sandbox, customers, **options):
        if not settings.DEBUG:
            # It creates a user with a published password: never on a real deployment.
            raise CommandError("demo_seed creates a demo login with a well-known password, so it only runs "
                               "in development (DEBUG=1). Nothing was changed.")
        base = sandbox.rstrip("/")
        tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo Manufacturing Ltd"})
        User = get_user_model()
        user, created = User.objects.get_or_create(username=DEMO_EMAIL, defaults={"email": DEMO_EMAIL})
        if created:
            user.set_password(DEMO_PASSWORD)
        user.is_staff = user.is_superuser = True
        user.save()
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.OWNER})

        self.control(base, "sage300/companies", {"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN",
                                                  "customers": customers, "seed": 42})
        sage, _ = Connection.objects.update_or_create(
            tenant=tenant, system="sage300", name="Sage 300 (sandbox)",
            defaults={"base_url": f"{base}/Sage300WebApi/v1.0", "options": {"company": "SAMLTD", "user": "ADMIN"},
                      "credentials": {"password": "ADMIN"}},
        )
        pipedrive = Connection.objects.filter(tenant=tenant, system="pipedrive", name="Pipedrive (sandbox)").first()
        token = (pipedrive.credentials or {}).get("api_token") if pipedrive else None
        company = self.pipedrive_company(base, token or secrets.token_hex(20))
        pipedrive, _ = Connection.objects.update_or_create(
            tenant=tenant, system="pipedrive", name="Pipedrive (sandbox)",
            defaults={"base_url": base, "credentials": {"api_token": company["api_token"]},
                      "options": {"auth": "api_token", "plan": "growth", "seats": 3,
                                  "company_id": company["company_id"]}},
        )
        if not Flow.objects.filter(tenant=tenant, source=sage, target=pipedrive).exists():
            flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                        interval_minutes=5)
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}  (tenant '{tenant.name}', also admin)")
