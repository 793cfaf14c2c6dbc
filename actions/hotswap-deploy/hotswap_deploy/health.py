"""HTTP health probing of a candidate container, with the standard library only.

A probe passes only when the status is the expected one AND the body contains `body_match` (when
set): that is how the deploy proves it reached the NEW version rather than an old container still
answering (docker-rollout #15 passed too early by grepping "healthy" out of "unhealthy"). Probes go
only to loopback addresses, never through an environment proxy, and never follow redirects.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
BODY_LIMIT = 1 << 20  # bytes of a response body read for `body_match`
KEEP_PROBES = 5  # probe details quoted when giving up


class HealthError(Exception):
    """The service did not become healthy; `probes` holds every attempt."""

    def __init__(self, message: str, probes: list[Probe]) -> None:
        super().__init__(message)
        self.probes = probes


@dataclass(frozen=True)
class HealthCheck:
    url: str
    expect_status: int = 200
    body_match: str = ""
    timeout: float = 60
    interval: float = 1
    request_timeout: float = 5

    def __post_init__(self) -> None:
        for name in ("timeout", "interval", "request_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"health check {name} must be a positive number of seconds, "
                                 f"got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Probe:
    """One attempt: `detail` says what was seen, `seconds` how long it took."""

    ok: bool
    status: int | None
    detail: str
    seconds: float


def validate_health_url(url: str, *, name: str) -> str:
    """`url` when it is http(s) to localhost, 127.0.0.1 or [::1]; else ValueError naming `name`."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise ValueError(f"{name}: a health URL is required, e.g. http://127.0.0.1:3000/health")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{name}: {url!r} must start with http:// or https:// (got scheme "
                         f"{parts.scheme!r})")
    if "@" in parts.netloc:
        raise ValueError(f"{name}: {url!r} must not carry user info ('user@')")
    host = parts.hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"{name}: {url!r} must point at this machine (localhost, 127.0.0.1 or [::1]); "
                         f"got host {host!r}. The deploy probes containers on their published ports.")
    if host == "::1" and "[::1]" not in parts.netloc:
        raise ValueError(f"{name}: {url!r}: write an IPv6 host in brackets, http://[::1]:PORT/")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{name}: {url!r} has an invalid port ({exc})") from None
    return text


def with_port(url: str, port: int) -> str:
    """The same URL aimed at `port` (a candidate container's published port)."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def _unverified() -> ssl.SSLContext:
    # Loopback only, so TLS verification proves nothing here and a container's self-signed
    # certificate must not fail the probe.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _read_body(response: http.client.HTTPResponse, sock: socket.socket, deadline: float) -> bytes:
    """Up to BODY_LIMIT bytes, all by `deadline`: each read waits only for the time left, so a body
    that trickles in a byte at a time cannot stretch the probe."""
    body = b""
    while len(body) < BODY_LIMIT:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)
        chunk = response.read1(min(1 << 16, BODY_LIMIT - len(body)))
        if not chunk:
            break
        body += chunk
    return body


def probe(check: HealthCheck, *, timeout: float | None = None) -> Probe:
    """One GET of `check.url`, done within `timeout` (else the check's request timeout) in total:
    connect, status line and body. Plain http.client: no environment proxy, no redirect followed."""
    limit = timeout or check.request_timeout
    started = time.monotonic()
    parts = urlsplit(check.url)
    host, port = parts.hostname or "", parts.port
    connection = (http.client.HTTPSConnection(host, port, timeout=limit, context=_unverified())
                  if parts.scheme == "https" else http.client.HTTPConnection(host, port, timeout=limit))
    status: int | None = None
    try:
        connection.request("GET", urlunsplit(("", "", parts.path or "/", parts.query, "")),
                           headers={"User-Agent": "ci-actions-health", "Connection": "close"})
        sock = connection.sock
        sock.settimeout(max(0.001, started + limit - time.monotonic()))
        response = connection.getresponse()
        status = response.status
        body = _read_body(response, sock, started + limit)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        seconds = time.monotonic() - started
        if status is None:
            return Probe(False, None, f"no response: {exc}", seconds)
        return Probe(False, status, f"HTTP {status} but the body was not read within {limit:g} s ({exc})",
                     seconds)
    finally:
        connection.close()
    seconds = time.monotonic() - started
    if status != check.expect_status:
        return Probe(False, status, f"HTTP {status}, expected {check.expect_status}", seconds)
    if check.body_match and check.body_match not in body.decode("utf-8", "replace"):
        snippet = body[:80].decode("utf-8", "replace").replace("\n", " ")
        return Probe(False, status, f"HTTP {status} but the body lacks {check.body_match!r} "
                     f"(starts {snippet!r})", seconds)
    return Probe(True, status, f"HTTP {status}", seconds)


def wait_healthy(check: HealthCheck, *, alive: Callable[[], str | None] | None = None) -> list[Probe]:
    """Probe every `interval` until one passes or `timeout` runs out, a total deadline that every probe
    is cut to; stop at once when `alive()` returns a reason (the container died, restarted or its
    HEALTHCHECK says unhealthy). Returns every probe; raises HealthError on giving up."""
    probes: list[Probe] = []
    deadline = time.monotonic() + check.timeout
    while True:
        if alive is not None and (reason := alive()):
            raise HealthError(f"{check.url}: gave up waiting for it to be healthy: {reason}{_recent(probes)}",
                              probes)
        remaining = deadline - time.monotonic()
        result = probe(check, timeout=max(0.05, min(check.request_timeout, remaining)))
        probes.append(result)
        if result.ok:
            return probes
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HealthError(f"{check.url} was not healthy within {check.timeout:g} s "
                              f"({len(probes)} probes){_recent(probes)}", probes)
        time.sleep(min(check.interval, remaining))


def _recent(probes: list[Probe]) -> str:
    if not probes:
        return ""
    return "; last probes: " + " | ".join(p.detail for p in probes[-KEEP_PROBES:])
