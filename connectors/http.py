"""The one HTTP session shape every client uses: timeouts always, TLS per connection, SSRF guard,
and the mapping of transport failures onto ConnectorError."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import tempfile
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from connectors.base import ConnectorError

DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read


def timeout_default() -> tuple[float, float]:
    """(connect, read) seconds for calls to external systems, from settings (HTTP_*_TIMEOUT_S)."""
    return (float(getattr(settings, "HTTP_CONNECT_TIMEOUT_S", DEFAULT_TIMEOUT[0])),
            float(getattr(settings, "HTTP_READ_TIMEOUT_S", DEFAULT_TIMEOUT[1])))


def url_check(url: str, *, allow_private: bool | None = None) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts resolving to private/loopback/link-local
    addresses (cloud metadata endpoints live there)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(f"The URL must start with http:// or https:// (got {url!r}).", permanent=True)
    if allow_private is None:
        allow_private = settings.ALLOW_PRIVATE_NETWORKS
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConnectorError(f"Cannot resolve host {parts.hostname!r}.", permanent=True) from exc
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise ConnectorError(
                f"{parts.hostname} resolves to a private or local address ({ip}); "
                "this deployment does not allow private networks.",
                permanent=True,
            )


class PinnedFingerprintAdapter(HTTPAdapter):
    """Accept exactly one server certificate, by SHA-256 fingerprint (self-signed ERP servers)."""

    def __init__(self, fingerprint: str, **kwargs: Any):
        self.fingerprint = fingerprint.replace(":", "").lower()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self.fingerprint
        kwargs["cert_reqs"] = ssl.CERT_NONE  # the fingerprint check replaces chain validation
        super().init_poolmanager(*args, **kwargs)


def session_build(*, ca_bundle_pem: str = "", pinned_sha256: str = "", pool_size: int = 16) -> requests.Session:
    session = requests.Session()
    adapter: HTTPAdapter
    if pinned_sha256:
        adapter = PinnedFingerprintAdapter(pinned_sha256, pool_connections=pool_size, pool_maxsize=pool_size)
    else:
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size))
    if ca_bundle_pem:
        # requests wants a path; the PEM lives encrypted-at-rest-free (it is public data) in a temp file
        handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
        handle.write(ca_bundle_pem)
        handle.close()
        session.verify = handle.name
    session.headers["User-Agent"] = "ml-connector/0.1"
    # Proxies come from settings, not from each request re-reading the environment (and ~/.netrc):
    # that per-request lookup cost a third of a call's CPU on the hot path.
    session.trust_env = False
    proxy = getattr(settings, "OUTBOUND_PROXY", "")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    return session


def fingerprint_of(pem_or_der: bytes) -> str:
    return hashlib.sha256(pem_or_der).hexdigest()


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
    """Send one request; transport failures become transient ConnectorErrors with plain words."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.SSLError as exc:
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
