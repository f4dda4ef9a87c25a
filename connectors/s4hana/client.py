"""SAP S/4HANA client: business partners read from API_BUSINESS_PARTNER (OData V2), incrementally.

Wire facts (docs/wire/erps.md §5): the service is `{host}/sap/opu/odata/sap/API_BUSINESS_PARTNER/`;
OAuth2 client credentials at `{host}/sap/bc/sec/oauth2/token` (client id and secret as Basic, answer
`expires_in`), or Basic with a communication user on every call. Collections are `{"d": {"results",
"__next", "__count"}}`, dates `/Date(ms)/`, times `PT14H30M00S`, navigations not expanded
`{"__deferred"}`. Changes are found with `LastChangeDate`/`LastChangeTime` (`datetime'…'` without a
zone, `time'…'`); a partner never changed since it was created has no LastChangeDate, so creation
counts too. A_Customer/A_Supplier have no change date: roles and numbers come from the partner.

Reads follow the server's `__next` links (same origin only: the token never leaves the host) in key
order; each page's cursor resumes after its last key, so a crash re-reads at most one page. A contact
person's name lives on its own person partner: when that changes, its organization is read again. The time
filter overlaps by five minutes (our clock vs. the server's, writes committing late): the engine's
hashes make the re-read free downstream. The client never writes, so it never fetches a CSRF token.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors import odata
from connectors.auth import (
    ClientCredentials,
    ConnectionTokenStore,
    MemoryTokenStore,
    ScopedTokenStore,
    TokenStore,
    token_of,
)
from connectors.base import ConnectorError, NotFound, Page, PingResult
from connectors.client import ErpClient, json_object, status_answer
from connectors.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    session_build,
    url_check,
)
from connectors.s4hana.records import (
    CONTACT_RELATIONSHIP,
    change_filter,
    moment_of,
    partner_flatten,
    record_moment,
)

SYSTEM = "SAP S/4HANA"
SERVICE_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
TOKEN_PATH = "/sap/bc/sec/oauth2/token"
TIME_OVERLAP = timedelta(minutes=5)
NAME_BATCH = 40  # partner numbers per `or` filter when looking up contact persons (URL length)


@dataclass(frozen=True)
class Source:
    category: str  # BusinessPartnerCategory: '2' organizations, '1' persons
    expand: tuple[str, ...]


OBJECTS = {
    "business_partners": Source(
        "2",
        (
            "to_BusinessPartnerRole",
            "to_BusinessPartnerAddress/to_EmailAddress",
            "to_BusinessPartnerAddress/to_PhoneNumber",
            "to_BusinessPartnerContact/to_ContactRelationship",
        ),
    ),
    "person_partners": Source(
        "1", ("to_BusinessPartnerAddress/to_EmailAddress", "to_BusinessPartnerAddress/to_PhoneNumber")
    ),
}


class S4HanaClient(ErpClient):
    """One client per run; its threads and every other worker of the connection share one OAuth token
    (through the connection row), refreshed 30 s before it expires or once after a 401."""

    system = SYSTEM
    objects = OBJECTS

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        auth: str = "oauth",
        token_store: TokenStore | None = None,
        session: requests.Session | None = None,
        timeout: Any = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        ca_bundle_pem: str = "",
        pinned_sha256: str = "",
    ):
        base_url = (base_url or "").strip().rstrip("/")
        url_check(base_url)
        parts = urlsplit(base_url)
        path = parts.path.rstrip("/")
        if path and path + "/" != SERVICE_PATH.rstrip("/") + "/" and path not in ("/sap/opu/odata/sap",):
            raise ConnectorError(
                "The SAP S/4HANA address must be the API host (https://my123456-api.s4hana.cloud.sap) "
                "or its API_BUSINESS_PARTNER service URL.",
                permanent=True,
            )
        if not (client_id or "").strip() or not client_secret:
            raise ConnectorError(
                "The SAP S/4HANA client ID (or communication user) and secret are required.", permanent=True
            )
        if auth not in ("oauth", "basic"):
            raise ConnectorError(
                f"Unknown SAP S/4HANA sign-in method {auth!r} (oauth or basic).", permanent=True
            )
        self.host = f"{parts.scheme}://{parts.netloc}"
        self.service = self.host + SERVICE_PATH
        self.client_id = client_id.strip()
        self._secret = client_secret
        self.auth = auth
        self.session = session or session_build(ca_bundle_pem=ca_bundle_pem, pinned_sha256=pinned_sha256)
        self.session.headers.update({"Accept": "application/json"})
        self.timeout, self.policy, self.sleep = timeout, policy or DEFAULT_POLICY, sleep
        self._rng = random.Random()
        tag = hashlib.sha256(f"{self.host}\n{self.client_id}".encode()).hexdigest()[:16]
        self.credentials = ClientCredentials(
            # tagged with the host and client id: a connection moved to another system or account never
            # sends the old one's token
            fetch=self._token_fetch,
            store=ScopedTokenStore(token_store or MemoryTokenStore(), tag + "|"),
        )

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> S4HanaClient:
        options = connection.options or {}
        credentials = connection.credentials or {}
        store = ConnectionTokenStore(connection.pk) if getattr(connection, "pk", None) else MemoryTokenStore()
        return cls(
            base_url=connection.base_url,
            client_id=options.get("client_id", ""),
            client_secret=credentials.get("client_secret", ""),
            auth=options.get("auth") or "oauth",
            token_store=store,
            ca_bundle_pem=getattr(connection, "tls_ca_bundle", "") or "",
            pinned_sha256=getattr(connection, "tls_pinned_sha256", "") or "",
            **kwargs,
        )

    # --- auth ---------------------------------------------------------------------------------------
    def _token_fetch(self) -> tuple[str, float]:
        resp = self._send(
            "POST",
            self.host + TOKEN_PATH,
            classify=self._classify_token,
            idempotent=True,
            auth=(self.client_id, self._secret),
            data={"grant_type": "client_credentials"},
        )
        return token_of(
            self._json(resp),
            default_lifetime=3600.0,
            missing=f"{SYSTEM} accepted the client credentials but sent no access token.",
        )

    def _classify_token(self, resp: requests.Response) -> ConnectorError | None:
        if resp.status_code < 300:
            return None
        if resp.status_code in (400, 401, 403):
            return ConnectorError(
                f"{SYSTEM} refused the client ID or secret at its OAuth token endpoint "
                f"(HTTP {resp.status_code}); check the communication arrangement's credentials.",
                auth=True,
                status=resp.status_code,
            )
        return self._classify(resp)

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._json(self.fetch(url, params))

    def fetch(self, url: str, params: dict[str, str] | None = None, *, accept: str = "") -> requests.Response:
        """One GET on the service; with OAuth a rejected token is replaced once (by whichever worker of
        the connection gets there first) and the call repeated."""
        if not url.startswith(self.service):
            raise ConnectorError(
                f"{SYSTEM} pointed the read at another address ({urlsplit(url).netloc}); stopping "
                "the read rather than sending the credentials there.",
                permanent=True,
            )

        def attempt(token: str | None) -> requests.Response:
            headers = {"Accept": accept} if accept else {}
            kwargs: dict[str, Any] = {"auth": (self.client_id, self._secret)} if token is None else {}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            return self._send(
                "GET",
                url,
                classify=self._classify,
                params=params,
                headers=headers,
                **kwargs,
            )

        if self.auth == "basic":
            return attempt(None)
        return self.credentials.call(attempt, rejected=lambda exc: exc.status == 401)

    # --- ErpConnector ------------------------------------------------------------------------------
    def test_connection(self) -> PingResult:
        details: dict[str, Any] = {"base_url": self.service, "auth": self.auth, "client_id": self.client_id}
        try:
            self._metadata_check()
            body = self.get(
                self.service + "A_BusinessPartner",
                {"$top": "1", "$select": "BusinessPartner", "$inlinecount": "allpages"},
            )
            odata.rows_of(body, system=SYSTEM)
            count = odata.count_of(body)
        except ConnectorError as exc:
            return PingResult(False, exc.message, details | {"kind": exc.kind, "status": exc.status})
        text = "partner count not reported" if count is None else f"{count:,} business partners"
        return PingResult(
            True,
            f"Connected to SAP S/4HANA API_BUSINESS_PARTNER ({text})",
            details | {"business_partners": count},
        )

    def _metadata_check(self) -> None:
        """`$metadata` must be the business partner service's EDMX (entity sets we do not use are fine)."""
        resp = self.fetch(self.service + "$metadata", accept="application/xml")
        if "EntitySet" not in resp.text or 'Name="A_BusinessPartner"' not in resp.text:
            raise ConnectorError(
                f"{SYSTEM} answered, but not with the API_BUSINESS_PARTNER service description; "
                "is the communication arrangement for business partners (SAP_COM_0008) active?",
                permanent=True,
                status=resp.status_code,
            )

    def count(self, obj: str) -> int | None:
        """How many partners of `obj`'s category the system holds (`$inlinecount=allpages`, V2's count),
        None when not reported."""
        source = self._object(obj)
        body = self.get(
            self.service + "A_BusinessPartner",
            {
                "$filter": f"BusinessPartnerCategory eq '{source.category}'",
                "$top": "1",
                "$select": "BusinessPartner",
                "$inlinecount": "allpages",
            },
        )
        return odata.count_of(body)

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Pages of partners changed (or created) at or after the cursor's moment less an overlap, in key
        order, following `__next`. Pages but the last carry {"after", "since", "time", "max_seen", ...} to
        resume after that page; the last carries the next run's start."""
        source = self._object(obj)
        cursor = cursor or {}
        since = moment_of(cursor.get("since"), cursor.get("time"))
        max_seen = moment_of(cursor.get("max_seen"), cursor.get("max_seen_time"))
        after = str(cursor.get("after") or "")
        start = since - TIME_OVERLAP if since else None
        query = odata.Query(
            filter=odata.all_of(
                f"BusinessPartnerCategory eq '{source.category}'",
                change_filter(start),
                f"BusinessPartner gt {odata.quote_string(after)}" if after else "",
            ),
            expand=source.expand,
            orderby="BusinessPartner",
            count="v2",
        )
        horizon = datetime.now(UTC) + timedelta(days=1)
        url, params, seen, read = self.service + "A_BusinessPartner", query.params(), set(), 0
        while True:
            body = self.get(url, params)
            rows = [
                odata.strip_metadata(r) for r in odata.rows_of(body, system=SYSTEM) if isinstance(r, dict)
            ]
            records = self._enrich(obj, rows)
            for row in records:
                moment = record_moment(row)
                if moment and moment <= horizon and (max_seen is None or moment > max_seen):
                    max_seen = moment
            total = odata.count_of(body)
            remaining = None if total is None else max(total - read, len(rows))
            read += len(rows)
            following = odata.next_link(body, base_url=url)
            keys = [str(r.get("BusinessPartner") or "") for r in rows if r.get("BusinessPartner")]
            if following and keys:
                if following in seen:
                    raise ConnectorError(
                        f"{SYSTEM} sent the same next-page link twice; stopping the read.", permanent=True
                    )
                seen.add(following)
                page_cursor = {
                    "after": max(keys),
                    **odata.moment_fields(max_seen, "max_seen", "max_seen_time"),
                    **odata.moment_fields(since, "since", "time"),
                }
                yield Page(records=records, cursor=page_cursor, remaining=remaining)
                url, params = following, None
                continue
            if obj == "business_partners" and start is not None:
                again, person_latest = self._organizations_of_changed_contacts(start, horizon)
                here = {r.get("BusinessPartner") for r in records}
                records += [r for r in again if r.get("BusinessPartner") not in here]
                if person_latest and (max_seen is None or person_latest > max_seen):
                    max_seen = person_latest
            latest = max((m for m in (since, max_seen) if m), default=None)
            yield Page(
                records=records, cursor=odata.moment_fields(latest, "since", "time"), remaining=remaining
            )
            return

    def _organizations_of_changed_contacts(
        self, start: datetime, horizon: datetime
    ) -> tuple[list[dict[str, Any]], datetime | None]:
        """Organizations whose contact person's own partner record changed since `start`: the name lives
        there, not in the relationship, so the organization is read again for its child person to follow.
        Also the latest such change, so the cursor moves past it."""
        query = odata.Query(
            filter=odata.all_of("BusinessPartnerCategory eq '1'", change_filter(start)),
            select=("BusinessPartner", "CreationDate", "CreationTime", "LastChangeDate", "LastChangeTime"),
        )
        people, latest = [], None
        for rows, _ in odata.pages(self.get, self.service + "A_BusinessPartner", query, system=SYSTEM):
            for row in rows:
                moment = record_moment(row)
                if moment and moment <= horizon and (latest is None or moment > latest):
                    latest = moment
                if row.get("BusinessPartner"):
                    people.append(str(row["BusinessPartner"]))
        relations = self._batched("A_BusinessPartnerContact", "BusinessPartnerPerson", people, "")
        orgs = sorted(
            {
                str(r.get("BusinessPartnerCompany") or "")
                for r in relations
                if r.get("RelationshipCategory") == CONTACT_RELATIONSHIP
            }
            - {""}
        )
        rows = list(
            self._batched(
                "A_BusinessPartner", "BusinessPartner", orgs, "", expand=OBJECTS["business_partners"].expand
            )
        )
        return self._enrich("business_partners", rows), latest

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        source = self._object(obj)
        url = f"{self.service}A_BusinessPartner({quote(odata.quote_string(key), safe=chr(39))})"
        try:
            body = self.get(url, {"$expand": ",".join(source.expand)})
        except NotFound:
            return None
        row = body.get("d") if isinstance(body.get("d"), dict) else None
        if row is None:
            raise ConnectorError(f"{SYSTEM} answered without the business partner.", permanent=True)
        return self._enrich(obj, [odata.strip_metadata(row)])[0]

    # --- records ------------------------------------------------------------------------------------
    def _enrich(self, obj: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Flatten what the flows map: roles, default email and phone, contact persons (names looked up on
        their person partners) or, for persons, their relationships to organizations."""
        records = [partner_flatten(r) for r in rows]
        if obj == "business_partners":
            people = sorted({c["BusinessPartnerPerson"] for r in records for c in r["ContactPersons"]})
            names = {
                p["BusinessPartner"]: p
                for p in self._partners(people, "BusinessPartner,FirstName,LastName,BusinessPartnerFullName")
            }
            for record in records:
                for contact in record["ContactPersons"]:
                    person = names.get(contact["BusinessPartnerPerson"], {})
                    contact["Name"] = (
                        person.get("BusinessPartnerFullName")
                        or f"{person.get('FirstName') or ''} {person.get('LastName') or ''}".strip()
                        or f"Contact {contact['BusinessPartnerPerson']}"
                    )
        else:
            keys = [r["BusinessPartner"] for r in records if r.get("BusinessPartner")]
            relations: dict[str, list[dict[str, Any]]] = {}
            for row in self._batched("A_BusinessPartnerContact", "BusinessPartnerPerson", keys, ""):
                relations.setdefault(str(row.get("BusinessPartnerPerson")), []).append(row)
            for record in records:
                mine = relations.get(record.get("BusinessPartner") or "", [])
                contact = [r for r in mine if r.get("RelationshipCategory") == CONTACT_RELATIONSHIP]
                other = sorted(
                    (r for r in mine if r.get("RelationshipCategory") != CONTACT_RELATIONSHIP),
                    key=lambda r: str(r.get("RelationshipNumber") or ""),
                )
                record["ContactPersonOf"] = (
                    str(contact[0].get("BusinessPartnerCompany") or "") if contact else ""
                )
                record["RelatedOrganization"] = (
                    str(other[0].get("BusinessPartnerCompany") or "") if other else ""
                )
        return records

    def _partners(self, keys: list[str], select: str) -> list[dict[str, Any]]:
        return list(self._batched("A_BusinessPartner", "BusinessPartner", keys, select))

    def _batched(
        self, entity: str, field: str, keys: list[str], select: str, *, expand: tuple[str, ...] = ()
    ) -> Iterator[dict[str, Any]]:
        for i in range(0, len(keys), NAME_BATCH):
            chunk = keys[i : i + NAME_BATCH]
            query = odata.Query(
                filter=" or ".join(f"{field} eq {odata.quote_string(k)}" for k in chunk),
                select=tuple(s for s in select.split(",") if s),
                expand=expand,
            )
            for rows, _ in odata.pages(self.get, self.service + entity, query, system=SYSTEM):
                yield from (odata.strip_metadata(r) for r in rows if isinstance(r, dict))

    # --- helpers ----------------------------------------------------------------------------------
    def _json(self, resp: requests.Response) -> dict[str, Any]:
        return json_object(
            resp,
            system=SYSTEM,
            not_json=f"{SYSTEM} answered with something other than JSON (is the address the S/4HANA API host?).",
            allow_empty=False,  # every S/4 answer read here is a document; an empty one is the wrong address
        )

    def _classify(self, resp: requests.Response) -> ConnectorError | None:
        status = resp.status_code
        if status < 300:
            return None
        if status < 400:
            return ConnectorError(
                f"{SYSTEM} answered with a redirect (often a login page); enter the API host, "
                "not the Fiori launchpad.",
                permanent=True,
                status=status,
            )
        code, message = odata.error_of(resp)
        message = self._scrub(message)
        if status == 401:
            return ConnectorError(
                f"{SYSTEM} rejected the sign-in for {self.client_id}: {message}. Check the "
                "communication user or client credentials.",
                auth=True,
                status=status,
                code=code,
            )
        if status == 403:
            return ConnectorError(
                f"{SYSTEM} does not let {self.client_id} read business partners ({message}); the "
                "communication arrangement needs scenario SAP_COM_0008.",
                auth=True,
                status=status,
                code=code,
            )
        return status_answer(resp, system=SYSTEM, message=message, code=code)

    def _secrets(self) -> tuple[str, ...]:
        return (self._secret,)
