"""A real nginx for tests, plus tiny named HTTP upstreams.

`start_nginx(root, project, services)` writes a main config shaped like docs/nginx-setup.md (include of
the upstream dir at http level; per service one `listen 127.0.0.1:<free port>` server that proxies to
`http://<project>_<service>` with `proxy_next_upstream` and keep-alive upstream connections), writes an
initial upstream file per service, starts nginx daemonised with every path under `root`, and waits until
it answers. `NginxServer.stop()` ends it by the PID in its pid file. The pytest fixtures `nginx_factory`
and `upstream_factory` stop what they started at teardown; conftest files import them from here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hotswap_deploy.proxy import NginxProxy, Upstream, active_workers, render, upstream_name

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main_config(root: Path, upstream_dir: Path, project: str, ports: dict[str, int]) -> str:
    """A main nginx.conf as the docs tell users to write it, with every path under `root`."""
    servers = "".join(f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream_name(project, service)};
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_connect_timeout 2s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}""" for service, port in ports.items())
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {root}/temp/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}daemon on;
master_process on;
worker_processes {WORKERS};
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log {root}/access.log;
{temp}
    include {upstream_dir}/*.conf;
{servers}
}}
"""


@dataclass
class NginxServer:
    root: Path
    config: Path
    upstream_dir: Path
    project: str
    ports: dict[str, int]
    pid_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pid_file = self.root / "nginx.pid"

    def url(self, service: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def proxy(self) -> NginxProxy:
        return NginxProxy(self.config, self.upstream_dir, self.project, nginx=NGINX)

    def master_pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def workers(self) -> set[int]:
        """The workers that take new requests (not old ones shutting down after a reload)."""
        return active_workers(self.master_pid())

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """SIGQUIT (graceful) by the pid file, then SIGTERM, then SIGKILL; waits until it is gone."""
        try:
            pid = self.master_pid()
        except (OSError, ValueError):
            return
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _running(pid):
                    return
                time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start_nginx(root: Path, project: str, upstreams: dict[str, Upstream]) -> NginxServer:
    """Start nginx serving each service of `upstreams` on its own free loopback port."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "temp").mkdir(exist_ok=True)
    upstream_dir = root / "upstreams"
    upstream_dir.mkdir(exist_ok=True)
    ports = {service: free_port() for service in upstreams}
    config = root / "nginx.conf"
    config.write_text(main_config(root, upstream_dir, project, ports))
    server = NginxServer(root=root, config=config, upstream_dir=upstream_dir, project=project, ports=ports)
    for service, upstream in upstreams.items():
        (upstream_dir / f"{project}-{service}.conf").write_text(render(project, service, upstream))
    result = subprocess.run([NGINX, "-c", str(config)], capture_output=True, text=True, timeout=30,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"nginx did not start: {result.stderr.strip()}", pytrace=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if len(server.workers()) < WORKERS:
                raise OSError("workers are starting")
            for port in ports.values():
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except (OSError, ValueError):
            time.sleep(0.05)
    server.stop()
    pytest.fail(f"nginx did not answer within 10 s; error log:\n{server.error_log()}", pytrace=False)


def private_config(include: bool = True) -> str:
    """A private nginx's main config, every path relative (pid, logs and temp under the `-p` prefix, the
    include beside the config): what `deploy setup --nginx-prefix` must handle."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"    {kind}_temp_path temp/{kind};" for kind in kinds)
    return (f"{user}daemon on;\nmaster_process on;\nworker_processes {WORKERS};\npid nginx.pid;\n"
            f"error_log error.log notice;\nevents {{ worker_connections 1024; }}\nhttp {{\n"
            f"    access_log access.log;\n{temp}\n" + ("    include ci-actions/*.conf;\n" if include else "")
            + "}\n")


def private_nginx(prefix: Path, project: str, services: tuple[str, ...], *,
                  include: bool = True) -> NginxServer:
    """A private nginx's prefix and config (not started): the site is at `ports[<any service>]`."""
    (prefix / "conf").mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    config = prefix / "conf" / "nginx.conf"
    config.write_text(private_config(include))
    site = free_port()
    return NginxServer(root=prefix, config=config, upstream_dir=prefix / "conf" / "ci-actions",
                       project=project, ports=dict.fromkeys(services, site))


def start_private(server: NginxServer) -> None:
    """Start a private nginx as its docs say (`nginx -p <prefix> -c <config>`) and wait for its site."""
    result = subprocess.run([NGINX, "-p", str(server.root), "-c", str(server.config)], capture_output=True,
                            text=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.fail(f"nginx did not start: {result.stderr.strip()}", pytrace=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", next(iter(server.ports.values()))), timeout=1).close()
            if len(server.workers()) >= WORKERS:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"nginx did not answer within 10 s; error log:\n{server.error_log()}", pytrace=False)


class NamedServer:
    """An HTTP server on 127.0.0.1 in a thread, answering every GET with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        body = name.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"upstream-{name}", daemon=True)
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop listening: later connections are refused."""
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
            self._thread.join(5)


@pytest.fixture
def upstream_factory() -> Iterator[Callable[[str], NamedServer]]:
    started: list[NamedServer] = []

    def make(name: str) -> NamedServer:
        server = NamedServer(name)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., NginxServer]]:
    started: list[NginxServer] = []

    def make(project: str, upstreams: dict[str, Upstream], name: str = "nginx") -> NginxServer:
        server = start_nginx(tmp_path / name, project, upstreams)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
