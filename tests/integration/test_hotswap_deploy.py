"""hotswap-deploy end to end: the example app's real images, real nginx on the host, the real compose
CLI, and a bounded load generator on 127.0.0.1 at 100+ requests per second through the proxy for the
whole operation. Any non-2xx or connection error counts as a failed request.

The images are built once per module with build-images (commits A, B and C differ only in their
revision label: the deploy gives each container its commit as GIT_SHA, which /api/health reports); the
"bad releases" are B's image with one env var baked in (FORCE_UNHEALTHY, CRASH_AFTER_MS, MIGRATE_FAIL),
so the code under test is the same everywhere. Each test deploys its own compose project
and its own nginx, with the project's own Postgres and Redis started first (as production keeps
them); every deploy runs the release's migrations (the first one creates the schema, later ones find
nothing to apply). tests/integration/test_deploy_migrations.py deploys a release with a new migration.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound, NotFound
from filelock import FileLock

from build_images.plan import PROJECT_LABEL, REVISION_LABEL
from ci_actions import ledger
from ci_actions.compose import Compose
from hotswap_deploy import envfile
from hotswap_deploy.proxy import NginxProxy, Upstream
from tests.support.example_app import MIGRATE, built_app, compose_args, start_data_services
from tests.support.loadgen import LoadGenerator
from tests.support.nginx import NginxServer, free_port, private_nginx, start_private
from tests.support.production import remove_project

A, B, C = ("a" * 40), ("b" * 40), ("c" * 40)
UNHEALTHY, CRASHING, MIGRATE_FAILS = ("d" * 40), ("e" * 40), ("f" * 40)
RATE = 120.0
PLACEHOLDER = Upstream(["127.0.0.1:9"], [])  # what serves before the first deploy: nothing


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_actions", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory, docker_client: docker.DockerClient, node_image, busybox_image, service_images):
    """{sha: {service: ref}} for the good releases A, B, C and the bad ones (made from B)."""
    app = built_app(tmp_path_factory.mktemp("app"))
    state = tmp_path_factory.mktemp("build-state")
    project = f"hdimg-{uuid.uuid4().hex[:6]}"
    refs: dict[str, dict[str, str]] = {}
    try:
        for sha in (A, B, C):
            result = cli("images", "build", *compose_args(app), "--project-name", project, "--sha", sha,
                         "--state-dir", str(state), "--keep", "10", timeout=900)
            assert result.returncode == 0, result.stderr
            refs[sha] = json.loads(result.stdout)["images"]
        for sha, env in ((UNHEALTHY, "FORCE_UNHEALTHY=1"), (CRASHING, "CRASH_AFTER_MS=5000"),
                         (MIGRATE_FAILS, "MIGRATE_FAIL=1")):
            backend = refs[B]["backend"].rsplit(":", 1)[0]
            dockerfile = f"FROM {refs[B]['backend']}\nENV {env}\n".encode()
            docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{backend}:{sha}",
                                       labels={PROJECT_LABEL: project, REVISION_LABEL: sha}, rm=True)
            frontend = refs[B]["frontend"].rsplit(":", 1)[0]
            docker_client.images.get(refs[B]["frontend"]).tag(frontend, sha)
            refs[sha] = {"backend": f"{backend}:{sha}", "frontend": f"{frontend}:{sha}"}
        yield app, refs
    finally:
        for image in docker_client.images.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
            for tag in image.tags:
                with contextlib.suppress(ImageNotFound):
                    docker_client.images.remove(tag, force=True)


@dataclass
class Site:
    """One deployed compose project behind its own nginx."""

    app: Path
    refs: dict[str, dict[str, str]]
    project: str
    state: Path
    nginx: NginxServer

    def run_args(self, sha: str, *extra: str, images: bool = True) -> list[str]:
        return ["deploy", "run", *compose_args(self.app), "--project-name", self.project,
                "--service", "backend", "--service", "frontend",
                *(["--images", json.dumps(self.refs[sha])] if images else ["--sha", sha]),
                "--nginx-config", str(self.nginx.config), "--upstream-dir", str(self.nginx.upstream_dir),
                "--health-url", "backend: http://localhost/api/health", "--health-match", "backend: {sha}",
                "--health-url", "frontend: http://localhost/", "--health-interval", "0.25",
                "--health-timeout", "30", "--migrate-command", MIGRATE, "--state-dir", str(self.state),
                "--watch-seconds", "0", *extra]  # no watch (the input's 30 s) unless a test asks for one

    def deploy(self, sha: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return cli(*self.run_args(sha, *extra))

    def releases(self) -> list[ledger.Release]:
        return ledger.Ledger(self.state, self.project).releases()

    def live_commit(self) -> str:
        """The commit the backend reports through the proxy."""
        with urllib.request.urlopen(self.nginx.url("backend", "/api/health"), timeout=5) as response:
            return json.loads(response.read())["commit"]

    def containers(self, client: docker.DockerClient, service: str = "backend") -> list:
        labels = [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]
        return client.containers.list(all=True, filters={"label": labels})


@pytest.fixture
def idle_site(images, nginx_factory, tmp_path):
    """A project behind its nginx whose data services never started: for deploys that must be refused
    before they touch anything (so they need no database, and the test spares starting one)."""
    app, refs = images
    project = f"hd-{uuid.uuid4().hex[:8]}"
    nginx = nginx_factory(project, {"backend": PLACEHOLDER, "frontend": PLACEHOLDER})
    try:
        yield Site(app, refs, project, tmp_path / "state", nginx)
    finally:
        remove_project(project)


@pytest.fixture
def site(idle_site):
    """The production host before a first deploy: Postgres and Redis up."""
    start_data_services(idle_site.app, idle_site.project)
    return idle_site


def done(release: ledger.Release) -> list[dict]:
    """The operations the ledger records as completed, in order."""
    return [release.operations[index] for index in release.done]


def switched(release: ledger.Release, service: str, *, backup: bool = True) -> bool:
    """Whether the ledger records `service`'s switch (with the old containers as backup, or without)."""
    return any(op["op"] == "switch" and op["service"] == service and op["backup"] == backup
               for op in done(release))


def done_at(book: ledger.Ledger, release: ledger.Release, op: dict) -> float:
    """When the ledger recorded `op` of `release` as done (seconds since the epoch)."""
    index = release.operations.index(op)
    return next(datetime.fromisoformat(e["at"]).timestamp() for e in book.events()
                if e["type"] == "done" and e["release"] == release.id and e["op"] == index)


def load(site: Site) -> LoadGenerator:
    return LoadGenerator(site.nginx.url("backend", "/api/health"), rate=RATE, max_seconds=240)


def live_site(site: Site, *shas: str) -> None:
    for sha in shas:
        result = site.deploy(sha)
        assert result.returncode == 0, result.stderr
    assert site.live_commit() == shas[-1]


def test_good_deploy_of_backend_and_frontend_drops_nothing(site, docker_client):
    live_site(site, A)
    with load(site) as generator:
        result = site.deploy(B, "--watch-seconds", "3")
        time.sleep(1)
    report = generator.stop()
    assert result.returncode == 0, result.stderr
    assert report.failed == 0 and report.rate >= 100, report.summary()
    assert site.live_commit() == B
    deployed = json.loads(result.stdout)
    timings = deployed["timings"]
    print(f"\ngood deploy: {report.summary()}; timings {timings}")
    # from start to the switch, at most the new container's own start-to-healthy time plus 2 s
    assert timings["backend.switched_after"] <= timings["backend.healthy_after"] + 2
    assert [c.status for c in site.containers(docker_client)] == ["running"]  # the old one is retired
    releases = site.releases()
    assert [(r.sha, r.outcome) for r in releases] == [(A, "live"), (B, "live")]
    assert releases[-1].rollback_targets == [releases[0].id]
    upstream = site.nginx.proxy().current("backend")
    assert upstream.backup == [] and len(upstream.primary) == 1


def test_unhealthy_release_rolls_back_automatically_and_drops_nothing(site, docker_client):
    live_site(site, B)
    with load(site) as generator:
        result = site.deploy(UNHEALTHY, "--health-timeout", "6")
    report = generator.stop()
    assert result.returncode == 1
    assert "deploy of dddddddddddd failed and was rolled back" in result.stderr
    assert "was not healthy within 6 s" in result.stderr and "HTTP 503" in result.stderr
    assert "last" in result.stderr and "log lines" in result.stderr  # the diagnosis: state and log tail
    assert report.failed == 0, report.summary()
    assert site.live_commit() == B
    assert len(site.containers(docker_client)) == 1
    assert [r.outcome for r in site.releases()] == ["live", "rolled-back"]


def test_crash_inside_the_watch_window_rolls_back_and_drops_nothing(site, docker_client):
    live_site(site, B)
    with load(site) as generator:
        result = site.deploy(CRASHING, "--watch-seconds", "10")
        time.sleep(1)
    report = generator.stop()
    assert result.returncode == 1
    # seen as it exits, or after the prod override's `restart: unless-stopped` brought it back
    assert re.search(r"backend failed in the watch window: (restarted 1 time|\w+ \(exit code 70\))",
                     result.stderr), result.stderr
    assert "crashing on purpose" in result.stderr  # the log tail of the crashed container
    assert report.failed == 0, report.summary()
    assert site.live_commit() == B
    book = ledger.Ledger(site.state, site.project)
    release = site.releases()[-1]
    watch = next(op for op in release.operations if op["op"] == "watch")
    assert watch not in done(release) and release.outcome == "rolled-back"
    last_switch = done(release)[-1]  # the watch began once the frontend was switched in
    assert last_switch == next(op for op in release.operations if op["op"] == "switch"
                               and op["service"] == "frontend")
    finished = next(datetime.fromisoformat(e["at"]).timestamp() for e in book.events()
                    if e["type"] == "finished" and e["release"] == release.id)
    after = finished - done_at(book, release, last_switch)
    print(f"\ncrash in watch: {report.summary()}; rolled back {after:.2f} s after the watch began")
    assert after <= 10 + 2


def test_failed_migration_aborts_before_any_switch(site, docker_client):
    live_site(site, B)
    with load(site) as generator:
        result = site.deploy(MIGRATE_FAILS)
    report = generator.stop()
    assert result.returncode == 1
    assert "migration failed (exit 1): migrate " in result.stderr
    assert "failing on purpose (MIGRATE_FAIL is set); nothing was switched" in result.stderr
    assert report.failed == 0, report.summary()
    assert site.live_commit() == B
    assert len(site.containers(docker_client)) == 1
    last = site.releases()[-1]
    assert last.outcome == "aborted" and "failing on purpose (MIGRATE_FAIL is set)" in last.reason


def test_dry_run_prints_the_whole_plan_with_the_commit_read_from_the_images(idle_site):
    result = cli(*idle_site.run_args(B, "--migrate-command", "node dist/migrate.js", "--watch-seconds", "5"),
                 "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"of {idle_site.project} at {B} (blue-green)" in lines[0]
    kinds = [" ".join(line.split(". ", 1)[1].split(":")[0].split()[:2]) for line in lines[1:]]
    assert kinds == ["migrate", "start-beside backend", "wait-healthy backend", "switch backend",
                     "start-beside frontend", "wait-healthy frontend", "switch frontend", "watch 5",
                     "switch backend", "switch frontend", "retire backend", "retire frontend"]
    # each switch prints exactly what the CLI's NginxProxy.switch runs (`--nginx` defaults to nginx)
    nginx = idle_site.nginx
    proxy = NginxProxy(nginx.config, nginx.upstream_dir, idle_site.project)
    commands = "; ".join(proxy.plan("backend").describe())
    assert f"write {nginx.upstream_dir}/{idle_site.project}-backend.conf; " in commands
    assert sum(commands in line for line in lines) == 2
    assert idle_site.releases() == []


def test_dry_run_refuses_blue_green_without_a_proxy(idle_site):
    args = idle_site.run_args(B)
    at = args.index("--nginx-config")
    args[at:at + 4] = ["--proxy", "none", "--strategy", "blue-green"]
    result = cli(*args, "--dry-run")
    assert result.returncode == 1 and "blue-green needs a proxy" in result.stderr


def test_manual_rollback_to_the_release_before_last_drops_nothing(site):
    live_site(site, A, B, C)
    with load(site) as generator:
        result = cli("deploy", "rollback", "--project", site.project, "--to", A[:7],
                     "--state-dir", str(site.state))
        time.sleep(1)
    report = generator.stop()
    assert result.returncode == 0, result.stderr
    assert report.failed == 0, report.summary()
    assert site.live_commit() == A
    last = site.releases()[-1]
    assert (last.kind, last.sha, last.outcome) == ("rollback", A, "live")
    history = cli("deploy", "history", "--project", site.project, "--state-dir", str(site.state)).stdout
    assert len(history.splitlines()) == 1 + 4 and "rollback" in history


def test_rollback_to_a_release_that_is_not_retained_lists_the_retained(site):
    live_site(site, A, B)
    result = cli("deploy", "rollback", "--project", site.project, "--to", "1234567",
                 "--state-dir", str(site.state))
    assert result.returncode == 1
    assert "release '1234567' is not retained for rollback; retained: aaaaaaaaaaaa" in result.stderr
    assert site.live_commit() == B and len(site.releases()) == 2


def test_two_deploys_at_once_are_serialised(site):
    live_site(site, A)
    first = subprocess.Popen([sys.executable, "-m", "ci_actions", *site.run_args(B, "--watch-seconds", "2")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = site.deploy(C)
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    releases = site.releases()
    assert [r.outcome for r in releases] == ["live", "live", "live"]
    assert not any(r.in_flight for r in releases)
    started = [r.sha for r in releases]
    assert started[0] == A and set(started[1:]) == {B, C}
    assert site.live_commit() == started[-1]


def test_a_deploy_killed_mid_switch_is_recovered_by_status(site, docker_client):
    live_site(site, B)
    with load(site) as generator:
        proc = subprocess.Popen([sys.executable, "-m", "ci_actions",
                                 *site.run_args(C, "--watch-seconds", "60")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not any(switched(r, "backend") for r in site.releases() if r.sha == C):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        status = cli("deploy", "status", "--project", site.project, "--state-dir", str(site.state))
    report = generator.stop()
    assert status.returncode == 0, status.stderr
    assert "was interrupted; back on the previous release" in status.stdout
    assert f"live {B[:12]}" in status.stdout
    assert report.failed == 0, report.summary()
    assert site.live_commit() == B
    assert len(site.containers(docker_client)) == 1
    assert [r.outcome for r in site.releases()] == ["live", "recovered"]
    assert site.nginx.proxy().current("backend").backup == []


def test_a_stopped_old_container_is_removed_not_restarted_by_the_next_deploy(site, docker_client):
    """Compose counts stopped containers for --scale and, with --no-recreate, would start the stopped
    one (no release label) instead of a new container."""
    live_site(site, A)
    [old] = site.containers(docker_client)
    old.stop(timeout=1)
    result = site.deploy(B)
    assert result.returncode == 0, result.stderr
    assert f"removed the stopped container {old.name} of backend (exited)" in result.stderr
    assert site.live_commit() == B
    [now] = site.containers(docker_client)
    assert now.id != old.id and now.status == "running"


def test_a_deploy_killed_while_retiring_is_recovered_forward_and_leaves_nothing_exited(site, docker_client):
    """Killed once the ledger says the release went live (every switch done): the test holds the
    ledger's lock while it looks, so the deploy cannot get further than retiring, then stops what is
    left of the old containers, as a retire killed between stop and remove leaves them."""
    live_site(site, B)
    old = [c for service in ("backend", "frontend") for c in site.containers(docker_client, service)]
    book = ledger.Ledger(site.state, site.project)
    with load(site) as generator:
        argv = [sys.executable, "-m", "ci_actions", *site.run_args(C, "--watch-seconds", "1")]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            with FileLock(book.directory / "ledger.lock"):
                release = next((r for r in site.releases() if r.sha == C), None)
                if release and switched(release, "frontend", backup=False):
                    assert release.in_flight
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        for container in old:
            with contextlib.suppress(NotFound):
                container.stop(timeout=1)
        status = cli("deploy", "status", "--project", site.project, "--state-dir", str(site.state))
    report = generator.stop()
    assert status.returncode == 0, status.stderr
    assert "after its new containers were switched in; they had passed their health checks and stay live" \
        in status.stdout
    assert report.failed == 0, report.summary()
    assert site.live_commit() == C
    release = site.releases()[-1]
    assert (release.sha, release.outcome) == (C, "live") and release.rollback_targets
    assert [op["op"] for op in done(release)[-2:]] == ["retire", "retire"]  # finished by the recovery
    for service in ("backend", "frontend"):
        [kept] = site.containers(docker_client, service)
        assert kept.labels["io.ci-actions.release"] == release.id and kept.status == "running"
        assert site.nginx.proxy().current(service).backup == []


def test_missing_image_is_refused_before_anything_is_touched(site, docker_client):
    live_site(site, B)
    site.refs["nope"] = {"backend": "loyalty-app-backend:does-not-exist",
                         "frontend": site.refs[B]["frontend"]}
    try:
        result = site.deploy("nope", "--sha", "1" * 40)
    finally:
        del site.refs["nope"]
    assert result.returncode == 1
    assert "loyalty-app-backend:does-not-exist (for backend)" in result.stderr
    assert "Nothing was touched" in result.stderr
    assert len(site.releases()) == 1 and len(site.containers(docker_client)) == 1


def test_a_proxy_config_that_fails_nginx_t_means_no_reload_and_no_switch(site, docker_client):
    live_site(site, B)
    workers = site.nginx.workers()
    site.nginx.config.write_text(site.nginx.config.read_text() + "\nthis is not nginx;\n")
    with load(site) as generator:
        result = site.deploy(C)
    report = generator.stop()
    assert result.returncode == 1
    assert "nginx rejected the configuration for backend" in result.stderr
    assert "unknown directive" in result.stderr
    assert report.failed == 0, report.summary()
    assert site.nginx.workers() == workers  # never reloaded
    assert site.live_commit() == B and len(site.containers(docker_client)) == 1


def test_bad_env_file_line_is_named_by_number_and_nothing_is_written(idle_site, tmp_path):
    env_file = tmp_path / "deploy.env"
    env_file.write_text("DATABASE_URL=postgres://u:hunter2@db/x\nthis line has hunter2 and no equals\n")
    result = idle_site.deploy(B, "--env-file", str(env_file))
    assert result.returncode == 1
    assert "env-file: line 2 is not KEY=VALUE" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert not (idle_site.app / ".env").exists() and idle_site.releases() == []


def test_env_file_lives_in_the_state_folder_0600_and_reaches_the_container_exactly(site, tmp_path):
    """The example's compose interpolates APP_VERSION, which /api/health reports: the value survives
    compose's dotenv reader and interpolation unchanged, and nothing is written into the checkout."""
    version = """v1 $HOME ${X} #not-a-comment 'q' "dq" a=b ü €"""
    env_file = tmp_path / "deploy.env"
    env_file.write_text(f"# secrets\nAPI_TOKEN=s3cr3t$value\nAPP_VERSION={version}\n")
    result = site.deploy(B, "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    written = site.state / site.project / "deploy.env"
    assert written.stat().st_mode & 0o777 == 0o600
    assert "API_TOKEN=" in written.read_text()
    assert not (site.app / ".env").exists()
    assert [p.name for p in site.state.iterdir()] == [site.project]  # the staged copy is gone
    with urllib.request.urlopen(site.nginx.url("backend", "/api/health"), timeout=5) as response:
        assert json.loads(response.read())["version"] == version
    # the next deploy without an env file reuses the installed one
    result = site.deploy(C)
    assert result.returncode == 0, result.stderr
    with urllib.request.urlopen(site.nginx.url("backend", "/api/health"), timeout=5) as response:
        assert json.loads(response.read())["version"] == version


def test_env_values_round_trip_through_compose_config(tmp_path):
    """Every value comes back from `docker compose config` as written (its JSON shows `$` as `$$`)."""
    values = {"DOLLAR": "pa$$word $HOME ${HOME} $", "HASH": "x #not a comment", "LEAD": " #",
              "SINGLE": "'single'", "DOUBLE": '"double"', "APOS": "it's", "EQUALS": "a=b=c",
              "SPACES": "  lead and trail  ", "UNICODE": "ü € 日本 🎉", "BACKSLASH": "back\\slash\\",
              "ESCAPED": "\\$ \\n \\\"", "TAB": "tab\there", "EMPTY": ""}
    compose_file = tmp_path / "compose.yml"
    environment = "".join(f"      {key}: ${{{key}}}\n" for key in values)
    compose_file.write_text(f"name: envtrip\nservices:\n  app:\n    image: busybox\n    environment:\n"
                            f"{environment}")
    staged = envfile.stage(tmp_path / "state", values)
    model = Compose((compose_file,), "").with_env_file(staged).config()
    got = {k: v.replace("$$", "$") for k, v in model["services"]["app"]["environment"].items()}
    assert got == values


def test_health_url_off_localhost_is_refused(idle_site):
    args = idle_site.run_args(B)
    args[args.index("backend: http://localhost/api/health")] = "backend: http://example.com/api/health"
    result = cli(*args)
    assert result.returncode == 1
    assert "health-url for backend" in result.stderr and "localhost" in result.stderr
    assert idle_site.releases() == []


@pytest.fixture
def fresh(images, tmp_path):
    """A project that never ran, behind a private nginx (`-p` prefix, relative paths) that `deploy setup`
    made ready: every route answers 503 from the placeholder."""
    app, refs = images
    project = f"hd-{uuid.uuid4().hex[:8]}"
    nginx = private_nginx(tmp_path / "nginx", project, ("backend", "frontend"))
    made = Site(app, refs, project, tmp_path / "state", nginx)
    ready = cli("deploy", "setup", *compose_args(app), "--project-name", project, "--service", "backend",
                "--service", "frontend", "--route", "backend: /api/", "--route", "frontend: /",
                "--listen", f"127.0.0.1:{nginx.ports['backend']}", "--nginx-config", str(nginx.config),
                "--upstream-dir", str(nginx.upstream_dir), "--nginx-prefix", str(nginx.root))
    assert ready.returncode == 0, ready.stderr
    start_private(nginx)
    try:
        start_data_services(app, project)
        assert status_of(nginx.url("backend", "/api/health")) == (503, f"no release of {project} is live\n")
        yield made
    finally:
        nginx.stop()
        remove_project(project)


def status_of(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_setup_then_a_first_deploy_from_zero_containers_fails_nothing_once_it_answers(fresh, docker_client):
    prefix = ("--nginx-prefix", str(fresh.nginx.root))
    with load(fresh) as generator:
        began = time.time()
        time.sleep(0.5)
        result = fresh.deploy(A, *prefix, "--watch-seconds", "2")
        time.sleep(1)
    report = generator.stop()
    assert result.returncode == 0, result.stderr
    assert fresh.live_commit() == A
    release = fresh.releases()[-1]
    switch = next(op for op in release.operations if op["op"] == "switch" and op["service"] == "backend")
    answered = done_at(ledger.Ledger(fresh.state, fresh.project), release, switch) - began  # nginx serves it
    print(f"\nfirst deploy: {report.summary()}; the backend was switched in at {answered:.2f}s")
    assert all(status == 503 and "no release of" in error for _, status, error in report.failures)
    assert report.last_failure is None or report.last_failure < answered, report.summary()
    assert report.total > report.failed and report.rate >= 100
    for service in ("backend", "frontend"):
        [container] = fresh.containers(docker_client, service)
        assert container.labels["io.ci-actions.release"] == release.id
    assert status_of(fresh.nginx.url("frontend", "/"))[0] == 200


def test_a_failed_first_deploy_leaves_nginx_answering_503_from_the_placeholder(fresh, docker_client):
    result = fresh.deploy(CRASHING, "--nginx-prefix", str(fresh.nginx.root), "--watch-seconds", "10")
    assert result.returncode == 1
    assert "failed and was rolled back (services switched back: backend, frontend)" in result.stderr
    placeholder = (503, f"no release of {fresh.project} is live\n")
    for url in (fresh.nginx.url("backend", "/api/health"), fresh.nginx.url("frontend", "/")):
        assert status_of(url) == placeholder
    proxy = fresh.nginx.proxy()
    assert proxy.current("backend") == proxy.current("frontend") == proxy.placeholder()
    assert fresh.containers(docker_client, "backend") == fresh.containers(docker_client, "frontend") == []
    assert [r.outcome for r in fresh.releases()] == ["rolled-back"]


class Recreate:
    """The seed's strategy for the backend alone, published on a fixed loopback port (no proxy)."""

    def __init__(self, site: Site, *extra: str) -> None:
        self.site, self.port = site, str(free_port())
        self.url = f"http://127.0.0.1:{self.port}/api/health"
        self.args = ["deploy", "run", *compose_args(site.app), "--project-name", site.project,
                     "--service", "backend", "--proxy", "none", "--health-url", f"backend: {self.url}",
                     "--migrate-command", MIGRATE, "--state-dir", str(site.state), *extra]

    def deploy(self, sha: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ci_actions", *self.args, "--images",
                               json.dumps({"backend": self.site.refs[sha]["backend"]})],
                              env={**os.environ, "BACKEND_PORT": self.port}, capture_output=True, text=True,
                              timeout=300, check=False)


def test_recreate_reports_its_downtime(site):
    """Compose stops the old container, then starts the new one. The load goes straight to the published
    port; failures are reported, not asserted away."""
    recreate = Recreate(site, "--health-interval", "0.1")
    first = recreate.deploy(A)
    assert first.returncode == 0, first.stderr
    with LoadGenerator(recreate.url, rate=RATE, max_seconds=120) as generator:
        time.sleep(0.5)
        second = recreate.deploy(B)
        time.sleep(0.5)
    report = generator.stop()
    assert second.returncode == 0, second.stderr
    downtime = json.loads(second.stdout)["downtime"]["backend"]
    print(f"\nrecreate: {report.summary()}; measured downtime {downtime:.2f}s")
    assert report.failed > 0 and downtime > 0  # what blue-green exists to avoid


def test_recreate_of_an_unhealthy_release_goes_back_to_the_previous_image(site):
    recreate = Recreate(site, "--health-interval", "0.2", "--health-timeout", "5")
    assert recreate.deploy(A).returncode == 0
    failed = recreate.deploy(UNHEALTHY)
    assert failed.returncode == 1
    assert "backend is not healthy after recreate" in failed.stderr
    assert f"recreated backend from {site.refs[A]['backend']}" in failed.stderr
    # the container recreated from A is not health-checked again: it may still be starting (connecting
    # to its database and Redis) when the deploy returns
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(recreate.url, timeout=5) as response:
                commit = json.loads(response.read())["commit"]
            break
        except (urllib.error.URLError, ConnectionError) as exc:
            assert time.monotonic() < deadline, f"{recreate.url} did not answer: {exc}"
            time.sleep(0.2)
    assert commit == A
    assert [r.outcome for r in site.releases()] == ["live", "rolled-back"]


def test_blue_green_without_a_proxy_is_refused_before_migrations(idle_site, docker_client):
    args = idle_site.run_args(B)
    at = args.index("--nginx-config")
    args[at:at + 4] = ["--proxy", "none", "--strategy", "blue-green"]  # blue-green asked for, no proxy
    result = cli(*args)
    assert result.returncode == 1
    assert "blue-green needs a proxy" in result.stderr and "Nothing was touched" in result.stderr
    assert idle_site.releases() == [] and idle_site.containers(docker_client) == []
