"""The one HTTP session shape every client uses: timeouts always, TLS per connection, SSRF guard,
and the mapping of transport failures onto ConnectorError.

SSRF guard: tenants choose the URLs we call, so every new connection resolves its host once, checks
every address it got, and connects to exactly those checked addresses (no second lookup a rebinding
DNS server could answer differently). Host header, TLS SNI and certificate checks stay on the name.
Redirects are never followed. The check runs at call time, per new connection, on top of the
save-time `url_check`."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import random
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from connectors.base import ConnectorError

DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges `is_global` lets through (or that hide another address) which no ERP lives on.
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8",         # "this network"; 0.0.0.0 reaches the local host on Linux
    "100.64.0.0/10",     # carrier-grade NAT; holds Alibaba Cloud's metadata address 100.100.100.200
    "192.0.0.0/24",      # IETF protocol assignments
    "198.18.0.0/15",     # benchmarking
    "224.0.0.0/4",       # multicast
    "240.0.0.0/4",       # reserved, and broadcast
    "2002::/16",         # 6to4: wraps an IPv4 address the relay would reach for us
    "2001::/32",         # Teredo: the same, for a client behind NAT
    "64:ff9b::/96",      # NAT64 well-known prefix: wraps any IPv4 address, private ones too
    "64:ff9b:1::/48",    # NAT64 local-use prefix
    "fc00::/7",          # unique local, holds AWS's IPv6 metadata address fd00:ec2::254
    "fe80::/10",         # link-local
    "fec0::/10",         # site-local (deprecated)
    "ff00::/8",          # multicast
))


class AddressNotAllowed(ConnectorError):
    """The URL's host is, or resolves to, an address this deployment does not call. The message
    names the host as the tenant typed it, never the address it resolved to (that would let a
    tenant map internal host names)."""

    def __init__(self, host: str):
        super().__init__(
            f"The server address {host} is not allowed: it points to a private, local or reserved "
            "network, and this service only connects to public internet addresses.",
            permanent=True, code="address_not_allowed")


# --- address policy ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _extra_allowed() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """settings.OUTBOUND_ALLOWED_NETWORKS: networks the operator declares reachable although not
    public (an on-premises ERP over a VPN, or a test's loopback "public" server)."""
    return _networks(tuple(getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ()) or ()))


def address_allowed(ip: IPAddress, *, allow_private: bool | None = None) -> bool:
    """True when `ip` is globally routable (or the deployment allows private networks)."""
    if allow_private is None:
        allow_private = settings.ALLOW_PRIVATE_NETWORKS
    if allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.compressed.split("%")[0])
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            return address_allowed(ip.ipv4_mapped, allow_private=False)
    if any(ip in net for net in _extra_allowed()):
        return True
    if any(ip in net for net in _REFUSED_NETWORKS):
        return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


_INET_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` denotes when it is an IP literal in any form the C resolver accepts
    (inet_aton): 127.0.0.1, 2130706433, 0177.0.0.1, 0x7f.0.0.1, 127.1, or IPv6. None for a name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_PART.fullmatch(part) for part in parts):
        return None
    numbers = [int(part[2:] or "0", 16) if part[:2].lower() == "0x" else int(part, 8 if part.startswith("0")
                                                                            else 10) for part in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def host_resolve(host: str, port: int) -> list[str]:
    """The addresses of `host` (the one DNS lookup of a connection). Tests replace this, or
    socket.getaddrinfo, with a stub: no test resolves a real name."""
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def host_addresses(host: str, port: int, *, allow_private: bool | None = None) -> list[IPAddress]:
    """Every address of `host`, each checked; raises AddressNotAllowed if any one is refused (a
    name with one public and one internal address is refused whole), socket.gaierror when the
    name does not resolve."""
    literal = ip_literal(host)
    addresses = [literal] if literal is not None else [ipaddress.ip_address(a) for a in host_resolve(host, port)]
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    if not all(address_allowed(ip, allow_private=allow_private) for ip in addresses):
        raise AddressNotAllowed(host)
    return addresses


def timeout_default() -> tuple[float, float]:
    """(connect, read) seconds for calls to external systems, from settings (HTTP_*_TIMEOUT_S)."""
    return (float(getattr(settings, "HTTP_CONNECT_TIMEOUT_S", DEFAULT_TIMEOUT[0])),
            float(getattr(settings, "HTTP_READ_TIMEOUT_S", DEFAULT_TIMEOUT[1])))


def url_check(url: str, *, allow_private: bool | None = None) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts that are or resolve to addresses that are
    not globally routable (private, loopback, link-local, metadata endpoints, ...). Save time and
    client build use this for a clear early error; each connection checks again when it is made."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(f"The URL must start with http:// or https:// (got {url!r}).", permanent=True)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConnectorError("The URL has an invalid port number.", permanent=True) from None
    if allow_private is None:
        allow_private = settings.ALLOW_PRIVATE_NETWORKS
    if allow_private:
        return
    try:
        host_addresses(parts.hostname, port, allow_private=False)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ConnectorError(f"Cannot resolve host {parts.hostname!r}.", permanent=True) from exc


# --- guarded transport ------------------------------------------------------------------------------

class _GuardedConnectionMixin:
    """Connects to the checked addresses of the host instead of letting the socket layer look the
    name up again. Runs once per new connection; pooled keep-alive connections are reused as usual."""

    def __init__(self, *args: Any, allow_private: bool | None = None, **kwargs: Any):
        self._allow_private = allow_private
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        try:
            addresses = host_addresses(self._dns_host, self.port, allow_private=self._allow_private)
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for ip in addresses:
            sock = None
            try:
                family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect((str(ip), self.port))
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
            except OSError as exc:
                error = exc
                if sock is not None:
                    sock.close()
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def ca_bundle_context(pem: str) -> ssl.SSLContext:
    """A verifying TLS context trusting exactly the PEM certificates given (no temporary file)."""
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ConnectorError("The CA bundle could not be read; paste PEM certificates "
                             "(-----BEGIN CERTIFICATE----- ...).", permanent=True) from exc


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools connect through the SSRF guard and whose TLS is one of: the
    system CAs (default), a CA bundle (only those CAs, hostname checked), or a pinned SHA-256
    fingerprint (exactly that certificate, self-signed fine, hostname not checked)."""

    def __init__(self, *, ca_bundle_pem: str = "", pinned_sha256: str = "", allow_private: bool | None = None,
                 **kwargs: Any):
        self._allow_private = allow_private
        self._fingerprint = pinned_sha256.replace(":", "").replace(" ", "").lower()
        self._ca_context = ca_bundle_context(ca_bundle_pem) if ca_bundle_pem and not self._fingerprint else None
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard = {"allow_private": self._allow_private}
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(GuardedHTTPConnectionPool, **guard),
            "https": functools.partial(GuardedHTTPSConnectionPool, **guard),
        }

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # requests would put chain verification back on (and add certifi) for every request.
        if self._fingerprint:
            pool_kwargs.update(cert_reqs="CERT_NONE", assert_fingerprint=self._fingerprint)
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
        elif self._ca_context is not None:
            pool_kwargs.update(cert_reqs="CERT_REQUIRED", ssl_context=self._ca_context)
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if not (self._fingerprint or self._ca_context is not None):
            return super().cert_verify(conn, url, verify, cert)
        conn.cert_reqs = "CERT_NONE" if self._fingerprint else "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class GuardedSession(requests.Session):
    """A session that never follows a redirect, whoever calls it: a redirect is where an allowed
    host would send us to an internal one. `request()` turns a 3xx into a plain error."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


def session_build(*, ca_bundle_pem: str = "", pinned_sha256: str = "", pool_size: int = 16,
                  allow_private: bool | None = None) -> requests.Session:
    """A session for one connection. `allow_private` None means settings.ALLOW_PRIVATE_NETWORKS,
    read when each connection is made."""
    session = GuardedSession()
    tls = {"ca_bundle_pem": ca_bundle_pem, "pinned_sha256": pinned_sha256}
    pools = {"pool_connections": pool_size, "pool_maxsize": pool_size, "allow_private": allow_private}
    session.mount("https://", GuardedAdapter(**tls, **pools))
    session.mount("http://", GuardedAdapter(**pools))
    session.headers["User-Agent"] = "ml-connector/0.1"
    # Proxies come from settings, not from each request re-reading the environment (and ~/.netrc):
    # that per-request lookup cost a third of a call's CPU on the hot path.
    session.trust_env = False
    proxy = getattr(settings, "OUTBOUND_PROXY", "")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    return session


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint (hex) of a DER certificate, the form a pinned fingerprint compares to."""
    return hashlib.sha256(der).hexdigest()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from django.utils import timezone

        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def request(session: requests.Session, method: str, url: str, *, system: str, timeout=DEFAULT_TIMEOUT,
            **kwargs: Any) -> requests.Response:
    """Send one request; transport failures become ConnectorErrors with plain words. Redirects
    are not followed: a 3xx is a permanent error (the base URL should be the final one)."""
    kwargs["allow_redirects"] = False
    if session.proxies:
        url_check(url)  # through a proxy the proxy connects; refuse what we can see from here
    try:
        resp = session.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.SSLError as exc:
        if "fingerprint" in str(exc).lower():
            raise ConnectorError(
                f"{system}: the server's TLS certificate does not match the pinned fingerprint.",
                permanent=True) from exc
        raise ConnectorError(
            f"{system}: the server's TLS certificate was not accepted (check the CA bundle or pinned "
            "fingerprint).",
            permanent=True,
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise ConnectorError(f"{system} did not answer in time.", permanent=False) from exc
    except requests.exceptions.ConnectionError as exc:
        raise ConnectorError(f"Cannot reach {system} (connection failed or was dropped).",
                             permanent=False) from exc
    if 300 <= resp.status_code < 400 and resp.status_code != 304:
        status = resp.status_code
        resp.close()  # where it points is never fetched, and this answer's body is not passed on
        raise ConnectorError(f"{system}: the server answered with a redirect (HTTP {status}); use the final "
                             "URL as the base URL.", permanent=True, status=status, code="redirect")
    return resp


def status_error(system: str, status: int, message: str, *, retry_after: float | None = None,
                 code: str = "") -> ConnectorError:
    """Classify an HTTP error status the way the engine guarantees: 401 auth, 408/409/429/5xx
    transient, other 4xx permanent."""
    if status == 401:
        return ConnectorError(f"{system} rejected the credentials: {message}", auth=True, status=status, code=code)
    if status in (408, 409, 425, 429) or status >= 500:
        return ConnectorError(f"{system} is busy or failing ({status}): {message}", permanent=False,
                              retry_after=retry_after, status=status, code=code)
    return ConnectorError(f"{system} refused the request ({status}): {message}", permanent=True,
                          status=status, code=code)


# --- the one retry loop every ERP client uses -------------------------------------------------------
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient failures: full-jitter exponential backoff, the server's Retry-After
    honoured up to `max_retry_after` (a longer wait is the engine's to schedule, not a worker's to sleep)."""

    retries: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        return max(rng.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt)), retry_after or 0.0)


DEFAULT_POLICY = RetryPolicy()


def never_sent(exc: BaseException) -> bool:
    """True when the transport failed before any byte of the request could reach the server."""
    cause = exc.__cause__ if isinstance(exc, ConnectorError) else exc
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, ConnectTimeoutError)  # includes NewConnectionError (refused, DNS)
    return False


def send(session: requests.Session, method: str, url: str, *, system: str,
         classify: Callable[[requests.Response], ConnectorError | None],
         policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
         rng: random.Random | None = None, timeout=None, idempotent: bool | None = None,
         **kwargs: Any) -> requests.Response:
    """One call with the retry loop. `classify(resp)` returns None for an answer to hand back, or the
    ConnectorError it means. A non-idempotent call (POST, PATCH) is never repeated once it may have
    reached the server: the error comes back with `ambiguous = True` for the caller to look first."""
    method = method.upper()
    policy = policy or DEFAULT_POLICY
    timeout = timeout or timeout_default()
    if idempotent is None:
        idempotent = method in IDEMPOTENT_METHODS
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            resp = request(session, method, url, system=system, timeout=timeout, **kwargs)
            error = classify(resp)
            if error is None:
                return resp
            raise error
        except ConnectorError as exc:
            if exc.permanent or attempt >= policy.retries:
                raise
            if not idempotent and not never_sent(exc) and exc.status != 429:
                exc.ambiguous = True
                raise
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
                raise
            sleep(policy.delay(attempt, exc.retry_after, rng))
            attempt += 1
