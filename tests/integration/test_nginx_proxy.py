"""NginxProxy against a real nginx: switches under load, backup failover, rejected configs."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from hotswap_deploy.proxy import NginxProxy, ProxyError, Upstream
from tests.support.loadgen import LoadGenerator
from tests.support.nginx import NGINX, NamedServer, NginxServer, private_nginx, start_private

PROJECT = "demo"
SERVICE = "web"


def get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return response.read().decode()


def answers(url: str, count: int = 20) -> set[str]:
    return {get(url) for _ in range(count)}


@pytest.fixture
def two(upstream_factory: Callable[[str], NamedServer]) -> tuple[NamedServer, NamedServer]:
    return upstream_factory("A"), upstream_factory("B")


def test_current_and_switch(nginx_factory: Callable[..., NginxServer], two) -> None:
    a, b = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[a.address], backup=[])})
    proxy = nginx.proxy()
    assert proxy.current(SERVICE) == Upstream(primary=[a.address], backup=[])
    assert answers(nginx.url(SERVICE)) == {"A"}
    proxy.switch(SERVICE, Upstream(primary=[b.address], backup=[a.address]))
    assert proxy.current(SERVICE) == Upstream(primary=[b.address], backup=[a.address])
    assert answers(nginx.url(SERVICE)) == {"B"}  # switch returns once new workers run the new config
    assert proxy.current("other") is None


def test_switch_under_load_loses_no_request(nginx_factory: Callable[..., NginxServer], two) -> None:
    a, b = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[a.address], backup=[])})
    proxy = nginx.proxy()
    with LoadGenerator(nginx.url(SERVICE), rate=150, max_seconds=30) as load:
        time.sleep(1)
        proxy.switch(SERVICE, Upstream(primary=[b.address], backup=[a.address]))  # blue-green switch
        time.sleep(0.7)
        proxy.switch(SERVICE, Upstream(primary=[b.address], backup=[]))  # end of the watch window
        time.sleep(0.7)
        a.stop()  # the old container retires
        time.sleep(1)
    report = load.stop()
    assert report.failed == 0, report.summary()
    assert report.total >= 400 and report.rate >= 100, report.summary()
    assert set(report.bodies) == {"A", "B"}
    assert answers(nginx.url(SERVICE)) == {"B"}


def test_dead_primary_falls_back_to_backup(nginx_factory: Callable[..., NginxServer], two) -> None:
    old, new = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[old.address], backup=[])})
    nginx.proxy().switch(SERVICE, Upstream(primary=[new.address], backup=[old.address]))
    with LoadGenerator(nginx.url(SERVICE), rate=150, max_seconds=30) as load:
        time.sleep(1)
        new.stop()  # the new container dies during the watch window
        time.sleep(1.5)
    report = load.stop()
    assert report.failed == 0, report.summary()
    assert report.rate >= 100, report.summary()
    assert set(report.bodies) == {"A", "B"}
    assert answers(nginx.url(SERVICE)) == {"A"}


def test_rejected_config_keeps_the_old_upstream(nginx_factory: Callable[..., NginxServer], two) -> None:
    a, _b = two
    live = Upstream(primary=[a.address], backup=[])
    nginx = nginx_factory(PROJECT, {SERVICE: live})
    proxy = nginx.proxy()
    path = proxy.path(SERVICE)
    before = path.read_text()
    workers = nginx.workers()
    with pytest.raises(ProxyError) as info:  # nginx cannot resolve this name: `nginx -t` fails
        proxy.switch(SERVICE, Upstream(primary=["no-such-host.invalid:80"], backup=[a.address]))
    message = str(info.value)
    assert "host not found in upstream" in message and "no-such-host.invalid" in message
    assert "not reloaded" in message
    assert path.read_text() == before
    assert proxy.current(SERVICE) == live
    assert nginx.workers() == workers  # no reload: the same workers
    assert "reconfiguring" not in nginx.error_log()
    assert answers(nginx.url(SERVICE)) == {"A"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_rejected_config_for_a_new_service_leaves_no_file(nginx_factory: Callable[..., NginxServer],
                                                          two) -> None:
    a, _b = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[a.address], backup=[])})
    proxy = nginx.proxy()
    with pytest.raises(ProxyError, match="host not found"):
        proxy.switch("api", Upstream(primary=["no-such-host.invalid:80"], backup=[]))
    assert not proxy.path("api").exists()
    assert proxy.current("api") is None


def test_broken_main_config(nginx_factory: Callable[..., NginxServer], two) -> None:
    a, b = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[a.address], backup=[])})
    broken = nginx.root / "broken.conf"
    broken.write_text(nginx.config.read_text().replace("events {", "events { bogus_directive on;"))
    proxy = NginxProxy(broken, nginx.upstream_dir, PROJECT, nginx=nginx.proxy().nginx)
    path = proxy.path(SERVICE)
    before = path.read_text()
    workers = nginx.workers()
    with pytest.raises(ProxyError, match='unknown directive "bogus_directive"'):
        proxy.switch(SERVICE, Upstream(primary=[b.address], backup=[]))
    assert path.read_text() == before
    assert nginx.workers() == workers
    assert answers(nginx.url(SERVICE)) == {"A"}


def test_reload_failure_puts_the_file_back(nginx_factory: Callable[..., NginxServer], two) -> None:
    a, b = two
    nginx = nginx_factory(PROJECT, {SERVICE: Upstream(primary=[a.address], backup=[])})
    proxy = nginx.proxy()
    before = proxy.path(SERVICE).read_text()
    nginx.stop()  # nothing to reload: the pid file names a process that is gone
    with pytest.raises(ProxyError, match="reload"):
        proxy.switch(SERVICE, Upstream(primary=[b.address], backup=[]))
    assert proxy.path(SERVICE).read_text() == before


def test_missing_upstream_dir(tmp_path) -> None:
    proxy = NginxProxy(tmp_path / "nginx.conf", tmp_path / "absent", PROJECT)
    with pytest.raises(ProxyError, match="does not exist"):
        proxy.switch(SERVICE, Upstream(primary=["127.0.0.1:1"], backup=[]))


# deploy setup against a private nginx (`-p` prefix, every path relative)

SERVICES = ("backend", "frontend")


def setup_cli(nginx: NginxServer, compose_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    port = next(iter(nginx.ports.values()))
    argv = [sys.executable, "-m", "ci_actions", "deploy", "setup", "--compose-file", str(compose_file),
            "--project-name", nginx.project, *(a for s in SERVICES for a in ("--service", s)),
            "--route", "backend: /api/", "--route", "frontend: /", "--listen", f"127.0.0.1:{port}",
            "--nginx-config", str(nginx.config), "--upstream-dir", str(nginx.upstream_dir),
            "--nginx", NGINX, "--nginx-prefix", str(nginx.root), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def compose_file(tmp_path: Path) -> Path:
    path = tmp_path / "app" / "compose.yml"
    path.parent.mkdir()
    path.write_text("services:\n  backend:\n    image: b\n  frontend:\n    image: f\n")
    return path


@pytest.fixture
def private(tmp_path: Path):
    made: list[NginxServer] = []

    def make(include: bool = True) -> NginxServer:
        made.append(private_nginx(tmp_path / f"nginx{len(made)}", PROJECT, SERVICES, include=include))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def status_and_body(url: str) -> tuple[int, str]:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_setup_makes_a_private_nginx_answer_503_from_the_placeholder_on_every_route(private, compose_file):
    nginx = private()
    plan = setup_cli(nginx, compose_file, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert not nginx.upstream_dir.exists()  # a dry run touches nothing
    assert f"write {nginx.upstream_dir}/demo.placeholder.conf" in plan.stdout
    first = setup_cli(nginx, compose_file)
    assert first.returncode == 0, first.stderr
    assert f"nginx is not running; start it: {NGINX} -p {nginx.root} -c {nginx.config}" in first.stdout
    start_private(nginx)
    for path in ("/api/health", "/", "/index.html"):
        assert status_and_body(nginx.url("backend", path)) == (503, "no release of demo is live\n")
    proxy = NginxProxy(nginx.config, nginx.upstream_dir, PROJECT, NGINX, prefix=nginx.root)
    assert proxy.current("backend") == proxy.placeholder()
    assert proxy.master() == nginx.master_pid()  # the relative `pid` found under the prefix
    # again, with nginx running: upstream files that route traffic are kept, nginx reloads
    proxy.switch("backend", Upstream(["127.0.0.1:9"], []))
    again = setup_cli(nginx, compose_file)
    assert again.returncode == 0, again.stderr
    assert f"kept {proxy.path('backend')}" in again.stdout and f"reloaded nginx (pid {nginx.master_pid()})" \
        in again.stdout
    assert proxy.current("backend") == Upstream(["127.0.0.1:9"], [])


def test_setup_against_an_nginx_that_does_not_include_the_files_shows_the_line_to_add(private, compose_file):
    nginx = private(include=False)
    result = setup_cli(nginx, compose_file)
    assert result.returncode == 1
    assert f"nginx does not include {nginx.upstream_dir}/demo.placeholder.conf" in result.stderr
    assert f"add this line inside the http {{ }} block of {nginx.config}" in result.stderr
    assert f"    include {nginx.upstream_dir}/*.conf;" in result.stderr
    assert not nginx.upstream_dir.exists()  # every file it wrote was taken back


@pytest.mark.parametrize(("args", "message"), [
    (["--listen", "80; include /etc/passwd"], "listen: '80; include /etc/passwd' is not a port"),
    (["--route", "backend: /api/ { }"], "routes: backend's path '/api/ { }' must start with /"),
    (["--route", "nobody: /x/"], "routes: entry 3 is not `service: /path/` for one of backend, frontend"),
])
def test_setup_refuses_bad_inputs_naming_them(private, compose_file, args, message):
    nginx = private()
    result = setup_cli(nginx, compose_file, *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not nginx.upstream_dir.exists()
