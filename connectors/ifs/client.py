"""IFS Cloud client: customers and customer orders read incrementally from the OData V4 projections;
order status changes through bound actions, for the stage write-back.

Wire facts (docs/wire/erps.md §4): a bearer token from IFS IAM (Keycloak) by client credentials at
`{origin}/auth/realms/<namespace>/protocol/openid-connect/token` lives 180 s by default; it is kept in
the connection's encrypted credentials, shared by every worker and refreshed under a row lock shortly
before expiry (connectors.auth.ClientCredentials), and once more on a 401. Entities live under
`/main/ifsapplications/projection/v1/<Projection>.svc/<EntitySet>`; enum values in `$filter` are
type-qualified (`IfsApp.CustomerOrderHandling.CustomerOrderState'Released'`), dates bare V4 literals.
`Objstate` is read-only: a status changes through a bound action
`CustomerOrderSet(OrderNo='X')/IfsApp.CustomerOrderHandling.CustomerOrder_<Action>` sent with
`If-Match: <@odata.etag>` (412 when someone changed the order since we read it). IFS publishes no rate
limits; a 429 is waited out (Retry-After, with jitter) by the toolkit's retry loop.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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
from connectors.http import RetryPolicy, retry_after_seconds, session_build, status_error, url_check

SYSTEM = "IFS Cloud"
API_PATH = "/main/ifsapplications/projection/v1"
PAGE_SIZE = 200
TIME_OVERLAP = timedelta(minutes=5)  # our clock vs. IFS's, and writes committing late
TOKEN_REJECTED = "token_rejected"
ORDER_PROJECTION = "CustomerOrderHandling"
ORDER_STATE_TYPE = f"IfsApp.{ORDER_PROJECTION}.CustomerOrderState"
# A 429 asks us to wait up to a minute-long window: waited out here rather than failing records.
IFS_POLICY = RetryPolicy(retries=8, base_s=0.5, cap_s=8.0, max_retry_after=120.0)
# A person waits on Test connection: one retry, and a busy server's Retry-After only when short.
PING_POLICY = RetryPolicy(retries=1, base_s=0.5, cap_s=2.0, max_retry_after=5.0)


@dataclass(frozen=True)
class Entity:
    projection: str
    entity_set: str
    key: str
    changed_field: str  # the modified timestamp used for change detection

    @property
    def path(self) -> str:
        return f"{self.projection}.svc/{self.entity_set}"

    def key_path(self, value: Any) -> str:
        return f"{self.path}({self.key}={quote(odata.quote_string(value), safe=chr(39))})"


OBJECTS = {
    "customers": Entity("CustomerHandling", "CustomerInfoSet", "CustomerId", "ChangedDate"),
    "sales_orders": Entity(ORDER_PROJECTION, "CustomerOrderSet", "OrderNo", "ChangedDate"),
}


class IfsClient(ErpClient):
    """One client per run (or per write-back batch); the token is the connection's, shared."""

    system = SYSTEM
    objects = OBJECTS

    def __init__(self, *, base_url: str, namespace: str, client_id: str, client_secret: str,
                 token_store: TokenStore | None = None, ca_bundle_pem: str = "", pinned_sha256: str = "",
                 session: requests.Session | None = None, timeout: Any = None, policy: RetryPolicy = IFS_POLICY,
                 sleep: Callable[[float], None] = time.sleep, page_size: int | None = None):
        base_url = (base_url or "").strip().rstrip("/")
        url_check(base_url)
        parts = urlsplit(base_url)
        # Whatever the customer pasted (the system URL or a projection's), we need the origin.
        self.origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.base_url = self.origin + API_PATH
        if not (namespace or "").strip() or not (client_id or "").strip():
            raise ConnectorError("The IFS Cloud namespace and client ID are required.", permanent=True)
        self.namespace = namespace.strip()
        self.client_id = client_id.strip()
        self._secret = client_secret or ""
        self.session = session or session_build(ca_bundle_pem=ca_bundle_pem, pinned_sha256=pinned_sha256)
        self.session.headers.update({"Accept": "application/json"})
        self.timeout = timeout
        self.policy = policy
        self.sleep = sleep
        self.page_size = page_size or PAGE_SIZE
        self._rng = random.Random()
        scope = hashlib.sha256(f"{self.origin}|{self.namespace}|{self.client_id}|{self._secret}".encode()).hexdigest()
        self.credentials = ClientCredentials(fetch=self._token_fetch,
                                             store=ScopedTokenStore(token_store or MemoryTokenStore(), scope[:16] + " "))

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> IfsClient:
        options = connection.options or {}
        credentials = connection.credentials or {}
        store = ConnectionTokenStore(connection.pk) if connection.pk else MemoryTokenStore()
        return cls(base_url=connection.base_url, namespace=options.get("namespace", ""),
                   client_id=options.get("client_id", ""), client_secret=credentials.get("client_secret", ""),
                   token_store=kwargs.pop("token_store", store), ca_bundle_pem=connection.tls_ca_bundle or "",
                   pinned_sha256=connection.tls_pinned_sha256 or "", **kwargs)

    # --- token ------------------------------------------------------------------------------------
    def _token_fetch(self) -> tuple[str, float]:
        url = f"{self.origin}/auth/realms/{quote(self.namespace, safe='')}/protocol/openid-connect/token"
        resp = self._send("POST", url, classify=self._classify_token, idempotent=True,
                          data={"grant_type": "client_credentials", "client_id": self.client_id,
                          "client_secret": self._secret, "scope": "openid microprofile-jwt"})
        return token_of(self._json(resp), default_lifetime=180.0,
                        missing=f"{SYSTEM} IAM answered without an access token.")

    def _classify_token(self, resp: requests.Response) -> ConnectorError | None:
        if resp.status_code < 300:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and isinstance(body.get("error"), dict):  # IFS's envelope (a proxy's 5xx)
            code, text = odata.error_message(body)
        else:  # Keycloak's {"error", "error_description"}
            code = str(body.get("error") or "") if isinstance(body, dict) else ""
            text = str(body.get("error_description") or code) if isinstance(body, dict) else ""
        if resp.status_code in (400, 401) and code in ("invalid_client", "unauthorized_client", "invalid_grant",
                                                       "unauthorized", ""):
            return ConnectorError(
                f"{SYSTEM} IAM rejected client {self.client_id} in namespace {self.namespace}: "
                f"{self._scrub(text) or 'invalid client credentials'} (check the namespace, client ID and secret).",
                auth=True, status=resp.status_code, code=code)
        if resp.status_code == 404:
            return ConnectorError(f"{SYSTEM} has no IAM realm {self.namespace!r} at this address (check the "
                                  "namespace).", permanent=True, status=404)
        return status_error(f"{SYSTEM} IAM", resp.status_code, self._scrub(text) or resp.reason or "",
                            retry_after=retry_after_seconds(resp.headers.get("Retry-After")), code=code)

    # --- calls -------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        """One projection call with the shared token; a 401 gets one new token and one retry."""
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

        def attempt(token: str) -> requests.Response:
            return self._send(method, url, classify=self._classify, params=params, json=json,
                              headers={**(headers or {}), "Authorization": f"Bearer {token}"})

        try:
            return self.credentials.call(attempt, rejected=lambda exc: exc.code == TOKEN_REJECTED)
        except ConnectorError as exc:
            if exc.code == TOKEN_REJECTED:  # the new token was refused too
                raise ConnectorError(f"{SYSTEM} refused a new access token for client {self.client_id} (check "
                                     "the client's roles in IFS IAM).", auth=True, status=401) from exc
            raise

    # --- ErpConnector ------------------------------------------------------------------------------
    def test_connection(self) -> PingResult:
        details: dict[str, Any] = {"namespace": self.namespace, "client_id": self.client_id, "base_url": self.origin}
        saved, self.policy = self.policy, PING_POLICY
        try:
            entity = OBJECTS["customers"]
            body = self._json(self.call("GET", entity.path, params={"$select": entity.key, "$top": "1",
                                                                    "$count": "true"}))
            count = odata.count_of(body)
        except ConnectorError as exc:
            return PingResult(False, exc.message, details | {"kind": exc.kind, "status": exc.status, "code": exc.code})
        finally:
            self.policy = saved
        text = "customer count not reported" if count is None else f"{count:,} customers"
        return PingResult(True, f"Connected to IFS Cloud namespace {self.namespace} ({text})",
                          details | {"customers": count})

    def count(self, obj: str) -> int | None:
        """How many records of `obj` the projection holds (`$count=true`), None when not reported."""
        entity = self._object(obj)
        params = {"$select": entity.key, "$top": "1", "$count": "true"}
        return odata.count_of(self._json(self.call("GET", entity.path, params=params)))

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Pages of `obj` changed at or after the cursor's time less an overlap, in key order, paged by
        key (`OrderNo gt 'last'`) so a record changed mid-read neither hides another nor shows twice.
        Pages but the last carry {"since", "after", "max_seen"}; the last carries the next run's start."""
        entity = self._object(obj)
        cursor = cursor or {}
        since = odata.parse_datetime(cursor.get("since"))
        max_seen = odata.parse_datetime(cursor.get("max_seen"))
        after = cursor.get("after")
        start = since - TIME_OVERLAP if since else None
        base = f"{entity.changed_field} ge {odata.literal_datetime_v4(start)}" if start else ""
        horizon = datetime.now(UTC) + timedelta(days=1)
        while True:
            key_clause = f"{entity.key} gt {odata.quote_string(after)}" if after not in (None, "") else ""
            query = odata.Query(filter=odata.all_of(base, key_clause), orderby=entity.key, top=self.page_size,
                                count="v4")
            body = self._json(self.call("GET", entity.path, params=query.params(),
                                        headers={"Prefer": f"odata.maxpagesize={self.page_size}"}))
            rows = [r for r in odata.rows_of(body, system=SYSTEM) if isinstance(r, dict)]
            records = []
            for row in rows:
                record = odata.strip_metadata(row)
                record["ETag"] = odata.etag_of(row)
                records.append(record)
                moment = odata.parse_datetime(row.get(entity.changed_field))
                if moment and moment <= horizon and (max_seen is None or moment > max_seen):
                    max_seen = moment
            remaining = odata.count_of(body)
            keys = [r.get(entity.key) for r in rows if r.get(entity.key) not in (None, "")]
            # A server page cap under our $top shows as a next link: the rest is read by key all the same.
            if keys and (len(rows) >= self.page_size or odata.next_link(body, base_url=self.base_url + "/")):
                after = max(keys)
                page_cursor = {"after": after}
                if since:
                    page_cursor["since"] = since.isoformat()
                if max_seen:
                    page_cursor["max_seen"] = max_seen.isoformat()
                yield Page(records=records, cursor=page_cursor, remaining=remaining)
                continue
            latest = max((m for m in (since, max_seen) if m), default=None)
            yield Page(records=records, cursor={"since": latest.isoformat()} if latest else {}, remaining=remaining)
            return

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        entity = self._object(obj)
        try:
            resp = self.call("GET", entity.key_path(key))
        except NotFound:
            return None
        body = self._json(resp)
        record = odata.strip_metadata(body)
        record["ETag"] = odata.etag_of(body) or resp.headers.get("ETag", "")
        return record

    # --- write-back: order status through bound actions ----------------------------------------------
    def order_get(self, *, order_no: str) -> dict[str, Any] | None:
        """The order as IFS has it now, with its ETag under "ETag"; None when it does not exist."""
        return self.read_one("sales_orders", order_no)

    def order_action(self, *, order_no: str, action: str, done_state: str = "") -> dict[str, Any]:
        """Run bound action `CustomerOrder_<action>` with the ETag of a fresh read. Returns
        {"order": the order read before, "ran": False} when it is already in `done_state`; a 412 (the order
        changed in IFS since our read) reads again and tries once more, then fails in plain words."""
        entity = self._object("sales_orders")
        path = f"{entity.key_path(order_no)}/IfsApp.{ORDER_PROJECTION}.CustomerOrder_{action}"
        outcome: dict[str, Any] = {"ran": False}

        def read() -> tuple[str, Any]:
            order = self.order_get(order_no=order_no)
            if order is None:
                raise ConnectorError(f"{SYSTEM} has no customer order {order_no}.", permanent=True, status=404)
            return order.get("ETag", ""), order

        def write(etag: str, order: dict[str, Any]) -> dict[str, Any]:
            outcome["order"] = order
            if done_state and order.get("Objstate") == done_state:
                return outcome  # already there (our earlier attempt, or someone in IFS): nothing to send
            # An action is not idempotent, but IFS refuses a second one with the old ETag (412), so a lost
            # answer is safe to retry after a fresh read: the re-read shows the new state.
            self.call("POST", path, json={}, headers={"If-Match": etag} if etag else None)
            outcome["ran"] = True
            return outcome

        try:
            return odata.update_with_etag(read=read, write=write, system=SYSTEM, what=f"order {order_no}")
        except ConnectorError as exc:
            if exc.status != 412:
                raise
            raise ConnectorError(f"{SYSTEM}: order {order_no} was changed in IFS meanwhile (twice while we tried "
                                 f"to {action} it); nothing was changed. It is tried again later.",
                                 permanent=False, status=412, code="changed_meanwhile") from exc

    # --- helpers ----------------------------------------------------------------------------------
    def _json(self, resp: requests.Response) -> dict[str, Any]:
        return json_object(resp, system=SYSTEM, not_json=f"{SYSTEM} answered with something other than JSON (is "
                           "the address the IFS system URL?).")

    def _classify(self, resp: requests.Response) -> ConnectorError | None:
        status = resp.status_code
        if status < 300:
            return None
        code, message = odata.error_of(resp)
        message = self._scrub(message)
        if status == 401:
            # permanent for the retry loop: `call` fetches one new token and tries once more
            return ConnectorError(f"{SYSTEM} did not accept the access token.", permanent=True, status=401,
                                  code=TOKEN_REJECTED)
        if status == 403:
            return ConnectorError(f"{SYSTEM} refused client {self.client_id} access: {message} (grant its IAM "
                                  "client the projection's permission set).", auth=True, status=403, code=code)
        return status_answer(resp, system=SYSTEM, message=message, code=code)

    def _secrets(self) -> tuple[str, ...]:
        return (self._secret,)


def state_literal(state: str) -> str:
    """IFS's typed enum literal for a customer order state, for $filter."""
    return f"{ORDER_STATE_TYPE}{odata.quote_string(state)}"
