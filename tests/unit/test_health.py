"""Health probing against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hotswap_deploy.health import (
    HealthCheck,
    HealthError,
    probe,
    validate_health_url,
    wait_healthy,
    with_port,
)


class App:
    """A server whose status and body the test changes while it runs."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"ok"
        self.headers: dict[str, str] = {}
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(app.status)
                for key, value in app.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(app.body)))
                self.end_headers()
                self.wfile.write(app.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def app() -> Iterator[App]:
    server = App()
    yield server
    server.close()


@pytest.mark.parametrize("url", ["http://localhost/health", "http://127.0.0.1:3000/health",
                                 "https://127.0.0.1:8443/", "http://[::1]:3000/up?x=1",
                                 " http://localhost:1/ "])
def test_validate_accepts_loopback(url: str) -> None:
    assert validate_health_url(url, name="health-url") == url.strip()


@pytest.mark.parametrize(("url", "why"), [
    ("", "required"),
    ("ftp://127.0.0.1/", "http:// or https://"),
    ("127.0.0.1:3000/health", "http:// or https://"),
    ("http://example.com/health", "this machine"),
    ("http://10.0.0.5:3000/", "this machine"),
    ("http://127.0.0.1.nip.io/", "this machine"),
    ("http://localhost@evil.example/", "user info"),
    ("http://user:pw@127.0.0.1/", "user info"),
    ("http://127.0.0.1:99999/", "invalid port"),
    ("http://127.0.0.1:abc/", "invalid port"),
])
def test_validate_rejects_with_the_input_name(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="health-url") as info:
        validate_health_url(url, name="health-url")
    assert why in str(info.value)


def test_with_port() -> None:
    assert with_port("http://127.0.0.1:3000/health?v=1", 49153) == "http://127.0.0.1:49153/health?v=1"
    assert with_port("http://localhost/up", 8080) == "http://localhost:8080/up"
    assert with_port("http://[::1]:3000/up", 49153) == "http://[::1]:49153/up"
    with pytest.raises(ValueError):
        with_port("http://localhost/", 0)


def test_probe_ok_and_body_match(app: App) -> None:
    app.body = b'{"status":"ok","version":"abc1234"}'
    assert probe(HealthCheck(app.url)).ok
    assert probe(HealthCheck(app.url, body_match="abc1234")).ok
    wrong = probe(HealthCheck(app.url, body_match="def5678"))
    assert not wrong.ok and wrong.status == 200 and "lacks 'def5678'" in wrong.detail


def test_probe_status_and_redirects_are_not_followed(app: App) -> None:
    app.status = 503
    result = probe(HealthCheck(app.url))
    assert (result.ok, result.status) == (False, 503)
    assert probe(HealthCheck(app.url, expect_status=503)).ok
    app.status, app.headers = 302, {"Location": "http://127.0.0.1:1/elsewhere"}
    result = probe(HealthCheck(app.url))
    assert (result.ok, result.status) == (False, 302)


def test_probe_connection_refused(app: App) -> None:
    url = app.url
    app.close()
    result = probe(HealthCheck(url))
    assert not result.ok and result.status is None and "no response" in result.detail


def test_probe_ignores_environment_proxies(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:1")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert probe(HealthCheck(app.url)).ok


def test_wrong_body_is_never_healthy(app: App) -> None:
    app.body = b"unhealthy: old version v1"  # a 200 from the old version
    with pytest.raises(HealthError) as info:
        wait_healthy(HealthCheck(app.url, body_match="v2", timeout=0.6, interval=0.1))
    assert len(info.value.probes) >= 3
    assert not any(p.ok for p in info.value.probes)
    assert "not healthy within 0.6 s" in str(info.value) and "lacks 'v2'" in str(info.value)


def test_wait_healthy_until_the_new_version_answers(app: App) -> None:
    app.status, app.body = 503, b"starting"

    def become_ready() -> None:
        time.sleep(0.4)
        app.status, app.body = 200, b"ok v2"

    threading.Thread(target=become_ready, daemon=True).start()
    probes = wait_healthy(HealthCheck(app.url, body_match="v2", timeout=10, interval=0.1))
    assert probes[-1].ok and not any(p.ok for p in probes[:-1]) and len(probes) >= 2


def test_gives_up_on_a_dead_port(app: App) -> None:
    url = app.url
    app.close()
    started = time.monotonic()
    with pytest.raises(HealthError, match="no response") as info:
        wait_healthy(HealthCheck(url, timeout=0.5, interval=0.1))
    assert time.monotonic() - started < 3
    assert info.value.probes and all(p.status is None for p in info.value.probes)


def test_stops_early_when_the_container_dies(app: App) -> None:
    app.status = 503
    calls = []

    def alive() -> str | None:
        calls.append(1)
        return "container exited with code 1 (OOMKilled=false)" if len(calls) >= 3 else None

    started = time.monotonic()
    with pytest.raises(HealthError, match="gave up waiting for it to be healthy: container exited") as info:
        wait_healthy(HealthCheck(app.url, timeout=60, interval=0.05), alive=alive)
    assert time.monotonic() - started < 5
    assert len(info.value.probes) == 2


def test_health_check_rejects_nonsense_timings() -> None:
    with pytest.raises(ValueError, match="interval"):
        HealthCheck("http://127.0.0.1/", interval=0)


def test_an_unhealthy_healthcheck_is_not_called_a_stop(app: App) -> None:
    app.status = 503
    with pytest.raises(HealthError) as info:
        wait_healthy(HealthCheck(app.url, timeout=60, interval=0.05),
                     alive=lambda: "its HEALTHCHECK reports unhealthy")
    assert "gave up waiting for it to be healthy: its HEALTHCHECK reports unhealthy" in str(info.value)
    assert "stopped" not in str(info.value)


@pytest.fixture
def trickle() -> Iterator[str]:
    """A server that sends its status line at once, then one body byte every 0.2 s (for 20 s)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
            for _ in range(100):
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/health"
    stop.set()
    server.close()


def test_a_trickling_body_cannot_stretch_a_probe(trickle: str) -> None:
    started = time.monotonic()
    result = probe(HealthCheck(trickle, body_match="never", request_timeout=1))
    assert time.monotonic() - started < 1.5
    assert not result.ok and result.status == 200 and "body was not read within 1 s" in result.detail


def test_the_health_timeout_is_a_total_deadline(trickle: str) -> None:
    started = time.monotonic()
    with pytest.raises(HealthError, match="was not healthy within 2 s"):
        wait_healthy(HealthCheck(trickle, body_match="never", timeout=2, interval=0.1))
    assert time.monotonic() - started < 2.6
