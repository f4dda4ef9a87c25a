"""What every suite gets (the sandbox, the database URL for child processes, the size) and the sandbox
read-outs they share. Counts come from the sandbox, never from the engine's own counters."""

from __future__ import annotations

import json
import random
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

EXTERNAL_ID_FIELD = "Sage 300 customer number"


@dataclass
class Context:
    sandbox: Any  # testkit.harness.SandboxProcess (or the tests' sandbox fixture)
    database_url: str  # what child processes (manage.py sync, qcluster) connect to
    size: str = "small"  # "small" (CI) or "full" (`make reliability`)
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self, small, full):
        return full if self.size == "full" else small

    def name(self, prefix: str, length: int = 6) -> str:
        """A fresh Sage company / slug name: suites share one sandbox and one database, and the sandbox
        is never reset under them (a reset would reuse Pipedrive company ids that caches remember)."""
        digits = max(length - len(prefix), 4)  # Sage company codes: at most 6 letters or digits
        return f"{prefix}{self.rng.randrange(16**digits):0{digits}X}"


class PipedriveCompany:
    """One sandbox Pipedrive company, read through the free control API."""

    def __init__(self, sandbox, company_id: int):
        self.sandbox, self.company_id = sandbox, company_id

    def ctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def organizations(self) -> list[dict]:
        return self.ctl("GET", "records/organizations?include_deleted=0")["records"]

    def field_names(self) -> dict[str, str]:
        return {f["field_code"]: f["field_name"] for f in self.ctl("GET", "fields/organizations")["fields"]}

    def stats(self) -> dict:
        return self.ctl("GET", "stats")

    def by_external_id(self) -> Counter:
        names = self.field_names()
        return Counter(_custom(o, names).get(EXTERNAL_ID_FIELD) for o in self.organizations())

    def duplicate_fields(self) -> list[str]:
        names = Counter(self.field_names().values())
        return sorted(name for name, n in names.items() if n > 1)

    def state(self, mapped: list[str]) -> set[tuple]:
        """{(external id, mapped values)}: what a salesperson would see, comparable across companies
        (custom-field keys differ per company, so custom values are keyed by field name)."""
        names = self.field_names()
        rows = set()
        for org in self.organizations():
            custom = _custom(org, names)
            values = []
            for target in mapped:
                if target.startswith("custom:"):
                    values.append((target, json.dumps(custom.get(target[7:].strip()), sort_keys=True)))
                else:
                    values.append((target, json.dumps(org.get(target), sort_keys=True)))
            rows.add((custom.get(EXTERNAL_ID_FIELD), tuple(values)))
        return rows


def _custom(org: dict, names: dict[str, str]) -> dict:
    """Custom values by field name; when a name exists twice (a field created twice), the set value wins."""
    out: dict = {}
    for code, value in (org.get("custom_fields") or {}).items():
        name = names.get(code, code)
        if value is not None or name not in out:
            out[name] = value
    return out


def lost_and_duplicated(expected: set[str], counts: Counter) -> tuple[int, int, int]:
    """(lost, duplicated, strangers): ERP records with no organization, extra copies, organizations
    that match no ERP record."""
    lost = len(expected - set(counts))
    duplicated = sum(n - 1 for key, n in counts.items() if key in expected and n > 1)
    strangers = sum(n for key, n in counts.items() if key not in expected)
    return lost, duplicated, strangers


def mapped_targets(flow) -> list[str]:
    return sorted(m.target for m in flow.mappings.all())


def sage_customer_numbers(sandbox, company: str) -> set[str]:
    """Every customer key Sage holds, read through the real OData API (faults must be off)."""
    from connectors.models import Connection
    from connectors.sage300.client import Sage300Client

    conn = Connection.objects.filter(system="sage300", options__company=company).first()
    client = Sage300Client.from_connection(conn)
    return {r["CustomerNumber"] for page in client.changed_since("customers", {}) for r in page.records}


NO_FAULTS = {"error_5xx": 0, "rate_429": 0, "drop": 0, "slow": 0}


def faults_off(sandbox) -> None:
    for system in ("sage300", "pipedrive"):
        sandbox.control("POST", f"{system}/faults", json=NO_FAULTS)
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0})


@contextmanager
def read_timeout(seconds: float):
    """Clamp every HTTP read timeout, so the sandbox's 'slow' fault becomes a real client timeout
    without waiting out the production 60 s."""
    from requests.adapters import HTTPAdapter

    original = HTTPAdapter.send

    def send(self, request, timeout=None, **kwargs):
        connect = timeout[0] if isinstance(timeout, tuple) else timeout
        return original(self, request, timeout=(connect, seconds), **kwargs)

    HTTPAdapter.send = send
    try:
        yield
    finally:
        HTTPAdapter.send = original
