"""The local service images ci-actions/postgres:local and ci-actions/redis:local, on the real engine.

scripts/build-base-images.sh makes them from Debian's own postgresql-N and redis-server and their
libraries (no registry). The session fixture runs it, so the tests check the images the script makes
now (a second run must find them up to date). Each image is started on a loopback-published free port
and must turn healthy through its own HEALTHCHECK, do real work, run as a non-root user and stop on
SIGTERM (`docker stop`) in well under the stop timeout. Everything made here carries this run's label
and is removed at the end: containers, volumes, the network and the compose project.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import docker
import pytest
from docker.errors import NotFound
from docker.models.containers import Container

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "build-base-images.sh"
POSTGRES_IMAGE = "ci-actions/postgres:local"
REDIS_IMAGE = "ci-actions/redis:local"
RUN = uuid.uuid4().hex[:10]
LABELS = {"ci-actions.test": "service-images", "ci-actions.test.run": RUN}
RUN_FILTER = {"label": f"ci-actions.test.run={RUN}"}
SERVICE_UID = "999"
STOP_TIMEOUT = 30  # seconds docker waits before SIGKILL; a clean stop must take a fraction of it
PGDATA = "/var/lib/postgresql/data"


def _unique(prefix: str) -> str:
    return f"ci-actions-test-{prefix}-{RUN}-{uuid.uuid4().hex[:6]}"


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv: list[str], timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def _ok_stderr(result: subprocess.CompletedProcess[str]) -> str:
    _ok(result)
    return result.stderr


def _remove_run_leftovers(client: docker.DockerClient) -> None:
    """Everything this run labelled: containers first (they hold volumes and the network)."""
    for container in client.containers.list(all=True, filters=RUN_FILTER):
        with contextlib.suppress(NotFound):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters=RUN_FILTER):
        with contextlib.suppress(NotFound):
            volume.remove(force=True)
    for network in client.networks.list(filters=RUN_FILTER):
        with contextlib.suppress(NotFound):
            network.remove()


@pytest.fixture(scope="session")
def service_images(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Build (or find up to date) both images with the script; then, at the end, remove what we made."""
    built = _run([str(BUILD), "postgres", "redis"], timeout=600)
    if built.returncode != 0:
        pytest.fail(f"{BUILD.name} postgres redis failed (run scripts/setup first):\n{built.stderr}",
                    pytrace=False)
    try:
        yield {name: docker_client.images.get(tag).id
               for name, tag in (("postgres", POSTGRES_IMAGE), ("redis", REDIS_IMAGE))}
    finally:
        _remove_run_leftovers(docker_client)


@pytest.fixture(scope="session")
def network(docker_client: docker.DockerClient, service_images: dict[str, str]) -> str:
    """A bridge network of this run's own (published ports work on it as on the default bridge)."""
    return docker_client.networks.create(_unique("net"), driver="bridge", labels=LABELS).name


def _start(client: docker.DockerClient, image: str, network: str, port: int, container_port: int,
           env: dict[str, str] | None = None, volumes: dict[str, dict[str, str]] | None = None) -> Container:
    return client.containers.run(
        image, detach=True, name=_unique(image.split("/")[1].split(":")[0]), labels=LABELS,
        environment=env or {}, network=network, volumes=volumes or {},
        ports={f"{container_port}/tcp": ("127.0.0.1", port)},
    )


def _wait_healthy(container: Container, within: float = 180) -> float:
    """Seconds until the image's own health check reports healthy; fails with its log otherwise."""
    start = time.monotonic()
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health") or {}
        status = health.get("Status")
        if status == "healthy":
            return time.monotonic() - start
        ended = state["Status"] in ("exited", "dead")
        if status == "unhealthy" or ended or time.monotonic() - start > within:
            checks = [(h.get("ExitCode"), h.get("Output", "").strip()) for h in health.get("Log", [])]
            logs = container.logs(tail=40).decode(errors="replace")
            pytest.fail(f"{container.name} did not turn healthy (state {state['Status']}, health {status}):"
                        f"\nchecks: {checks}\nlogs:\n{logs}", pytrace=False)
        time.sleep(0.25)


def _exec(container: Container, argv: list[str], env: dict[str, str] | None = None) -> str:
    code, out = container.exec_run(argv, environment=env or {}, demux=False)
    text = out.decode(errors="replace")
    assert code == 0, f"{argv} in {container.name} exited {code}: {text}"
    return text


def _uids(container: Container, pid: str) -> list[str]:
    status = _exec(container, ["cat", f"/proc/{pid}/status"])
    match = re.search(r"^Uid:\s+(.*)$", status, re.M)
    assert match, status
    return match.group(1).split()


def _timed_stop(container: Container) -> float:
    start = time.monotonic()
    container.stop(timeout=STOP_TIMEOUT)
    elapsed = time.monotonic() - start
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, (
        container.attrs["State"], container.logs(tail=20).decode(errors="replace"))
    assert elapsed < STOP_TIMEOUT / 3, f"docker stop took {elapsed:.1f}s (timeout {STOP_TIMEOUT}s)"
    return elapsed


def _host_psql() -> str:
    """The host's psql (from postgresql-client-N, which scripts/setup's postgresql pulls in)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if not found:
        pytest.fail("no psql on the host (/usr/lib/postgresql/N/bin/psql): run scripts/setup", pytrace=False)
    return found[-1]


def _psql(port: int, user: str, password: str | None, db: str, sql: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    if password is not None:
        env["PGPASSWORD"] = password
    return _run([_host_psql(), "-X", "-w", "-v", "ON_ERROR_STOP=1", "-At", "-h", "127.0.0.1", "-p", str(port),
                 "-U", user, "-d", db, "-c", sql], env=env, timeout=60)


def _published(container: Container, container_port: int) -> list[dict[str, str]]:
    container.reload()
    return container.attrs["NetworkSettings"]["Ports"][f"{container_port}/tcp"]


def _password() -> str:
    return f"pw'\"$ {secrets.token_hex(8)}"  # quotes, a dollar and a space: nothing is shell-expanded


def test_a_second_build_finds_both_images_up_to_date(
    docker_client: docker.DockerClient, service_images: dict[str, str]
) -> None:
    again = _ok_stderr(_run([str(BUILD), "postgres", "redis"], timeout=120))
    assert f"{POSTGRES_IMAGE} is up to date" in again and f"{REDIS_IMAGE} is up to date" in again, again
    assert "building" not in again, again
    for name, tag in (("postgres", POSTGRES_IMAGE), ("redis", REDIS_IMAGE)):
        assert docker_client.images.get(tag).id == service_images[name], f"{tag} was rebuilt"


def test_images_are_small_and_declare_health_checks_and_a_non_root_user(
    docker_client: docker.DockerClient, service_images: dict[str, str]
) -> None:
    postgres = docker_client.images.get(POSTGRES_IMAGE).attrs
    redis = docker_client.images.get(REDIS_IMAGE).attrs
    # Well below the official images (≈400 MB and ≈130 MB); the LLVM JIT alone would add ≈130 MB.
    assert postgres["Size"] < 150_000_000, postgres["Size"]
    assert redis["Size"] < 40_000_000, redis["Size"]
    for attrs, probe in ((postgres, "pg_isready"), (redis, "redis-cli")):
        config = attrs["Config"]
        assert config["User"] == f"{SERVICE_UID}:{SERVICE_UID}", config["User"]
        assert config["Healthcheck"]["Test"][0] == "CMD-SHELL", config["Healthcheck"]
        assert probe in config["Healthcheck"]["Test"][1], config["Healthcheck"]
        assert config.get("StopSignal") in (None, "", "SIGTERM"), config.get("StopSignal")
        assert not config.get("Volumes"), "an image VOLUME leaves anonymous volumes behind in CI"
    version = postgres["Config"]["Labels"]["ci-actions.base.postgres-version"]
    out = docker_client.containers.run(POSTGRES_IMAGE, ["postgres", "--version"], remove=True,
                                       network_mode="none", labels=LABELS).decode()
    assert f"(PostgreSQL) {version} (Debian" in out, out


def test_postgres_initialises_serves_sql_with_password_auth_and_stops_fast(
    docker_client: docker.DockerClient, network: str
) -> None:
    port, password = _free_loopback_port(), _password()
    env = {"POSTGRES_USER": "loyalty", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "loyalty_test"}
    pg = _start(docker_client, POSTGRES_IMAGE, network, port, 5432, env=env)
    try:
        _wait_healthy(pg)
        assert _published(pg, 5432) == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]

        # Real work from the host through the published port, logged in with the password (SCRAM).
        sql = ("CREATE TABLE members (id serial PRIMARY KEY, email text UNIQUE NOT NULL, points int);"
               "INSERT INTO members (email, points) VALUES ('ada@example.com', 250), ('bob@example.com', 40);"
               "UPDATE members SET points = points + 10 WHERE email = 'bob@example.com';"
               "SELECT email || ':' || points FROM members ORDER BY id;")
        assert _ok(_psql(port, "loyalty", password, "loyalty_test", sql)).splitlines() == [
            "CREATE TABLE", "INSERT 0 2", "UPDATE 1", "ada@example.com:250", "bob@example.com:50"]
        facts = _ok(_psql(port, "loyalty", password, "loyalty_test",
                          "SELECT pg_get_userbyid(datdba) FROM pg_database "
                          "WHERE datname = current_database(); SHOW server_encoding; "
                          "SHOW password_encryption; SELECT rolsuper FROM pg_roles "
                          "WHERE rolname = current_user;")).split()
        assert facts == ["loyalty", "UTF8", "scram-sha-256", "t"], facts

        # TCP without the password, or with a wrong one, is refused; the socket inside trusts.
        for wrong in (None, "not-the-password"):
            refused = _psql(port, "loyalty", wrong, "loyalty_test", "SELECT 1")
            assert refused.returncode != 0, refused
            assert "password" in refused.stderr, refused.stderr
        code, out = pg.exec_run(["psql", "-X", "-w", "-h", "127.0.0.1", "-U", "loyalty", "-d", "loyalty_test",
                                 "-c", "SELECT 1"])
        assert code != 0 and b"password" in out, out
        assert _exec(pg, ["psql", "-X", "-At", "-U", "loyalty", "-d", "loyalty_test", "-c",
                          "SELECT count(*) FROM members"]).strip() == "2"

        # Non-root: the entrypoint (PID 1), the postmaster and `docker exec` all run as uid 999.
        postmaster = _exec(pg, ["head", "-n", "1", f"{PGDATA}/postmaster.pid"]).strip()
        assert _uids(pg, "1") == [SERVICE_UID] * 4
        assert _uids(pg, postmaster) == [SERVICE_UID] * 4
        assert _exec(pg, ["id", "-u"]).strip() == SERVICE_UID

        # SIGTERM with a client in a long query: a fast shutdown, not a wait for the client.
        pg.exec_run(["psql", "-X", "-U", "loyalty", "-d", "loyalty_test", "-c", "SELECT pg_sleep(600)"],
                    detach=True)
        deadline = time.monotonic() + 30
        while "pg_sleep" not in _exec(pg, ["psql", "-X", "-At", "-U", "loyalty", "-d", "loyalty_test", "-c",
                                           "SELECT string_agg(query, ' ') FROM pg_stat_activity "
                                           "WHERE pid <> pg_backend_pid()"]):
            assert time.monotonic() < deadline, "the pg_sleep client never showed up"
            time.sleep(0.2)
        _timed_stop(pg)
        logs = pg.logs().decode(errors="replace")
        assert "received fast shutdown request" in logs and "database system is shut down" in logs, logs
    finally:
        pg.remove(force=True, v=True)


def test_postgres_keeps_its_data_in_a_named_volume_across_containers(
    docker_client: docker.DockerClient, network: str
) -> None:
    volume = docker_client.volumes.create(_unique("pgdata"), labels=LABELS).name
    mount = {volume: {"bind": PGDATA, "mode": "rw"}}
    password = _password()
    env = {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password,
           "POSTGRES_INITDB_ARGS": "--no-sync"}  # a throwaway database: skip initdb's fsyncs
    port = _free_loopback_port()
    first = _start(docker_client, POSTGRES_IMAGE, network, port, 5432, env=env, volumes=mount)
    try:
        _wait_healthy(first)
        assert "initialising" in first.logs().decode(errors="replace")
        _ok(_psql(port, "app", password, "app",
                  "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before the restart')"))
        _timed_stop(first)
    finally:
        first.remove(force=True)

    # A new container on the same volume: no second initdb, the data and the first password stand
    # (POSTGRES_* only apply to an empty data directory, as with the official image).
    port = _free_loopback_port()
    second = _start(docker_client, POSTGRES_IMAGE, network, port, 5432, volumes=mount,
                    env={**env, "POSTGRES_PASSWORD": "ignored-now"})
    try:
        _wait_healthy(second)
        logs = second.logs().decode(errors="replace")
        assert "initialising" not in logs, logs
        assert _ok(_psql(port, "app", password, "app", "SELECT note FROM kept")).strip() == (
            "written before the restart")
        assert _psql(port, "app", "ignored-now", "app", "SELECT 1").returncode != 0
        # And `docker restart` of that same container keeps it too.
        second.restart(timeout=STOP_TIMEOUT)
        _wait_healthy(second)
        assert _ok(_psql(port, "app", password, "app", "SELECT count(*) FROM kept")).strip() == "1"
        _timed_stop(second)
    finally:
        second.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_postgres_without_a_password_exits_with_a_message(
    docker_client: docker.DockerClient, service_images: dict[str, str]
) -> None:
    container = docker_client.containers.run(POSTGRES_IMAGE, detach=True, name=_unique("pg-nopw"),
                                             labels=LABELS, network_mode="none")
    try:
        result = container.wait(timeout=60)
        logs = container.logs().decode(errors="replace")
        assert result["StatusCode"] == 1, (result, logs)
        assert "POSTGRES_PASSWORD is empty" in logs and "POSTGRES_HOST_AUTH_METHOD=trust" in logs, logs
    finally:
        container.remove(force=True)


def _read_reply(replies: BinaryIO) -> object:
    """One RESP2 reply: str for +status, ValueError for -error, int, bytes | None for bulk, list."""
    line = replies.readline()
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return ValueError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else replies.read(size + 2)[:-2]
    if kind == b"*":
        return [_read_reply(replies) for _ in range(int(rest))]
    raise AssertionError(f"not a RESP reply: {line!r}")


def _resp(port: int, *commands: list[str]) -> list[object]:
    """Send RESP commands to 127.0.0.1:port from the host (no client library); one reply each."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, sock.makefile("rb") as replies:
        for command in commands:
            parts = [f"*{len(command)}\r\n".encode()]
            for word in command:
                data = word.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
            sock.sendall(b"".join(parts))
        return [_read_reply(replies) for _ in commands]


def test_redis_serves_set_and_get_as_non_root_and_stops_fast(
    docker_client: docker.DockerClient, network: str
) -> None:
    port = _free_loopback_port()
    redis = _start(docker_client, REDIS_IMAGE, network, port, 6379)
    try:
        _wait_healthy(redis)
        assert _published(redis, 6379) == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert _exec(redis, ["redis-cli", "SET", "leaderboard:top", "ada"]).strip() == "OK"
        assert _exec(redis, ["redis-cli", "GET", "leaderboard:top"]).strip() == "ada"
        assert _exec(redis, ["redis-cli", "INCRBY", "points:ada", "250"]).strip() == "250"
        # From the host through the published port too; no persistence configured.
        assert _resp(port, ["PING"], ["GET", "leaderboard:top"], ["CONFIG", "GET", "save"]) == [
            "PONG", b"ada", [b"save", b""]]
        assert _uids(redis, "1") == [SERVICE_UID] * 4
        assert "redis-server" in _exec(redis, ["cat", "/proc/1/cmdline"])
        _timed_stop(redis)
        assert "Redis is now ready to exit" in redis.logs().decode(errors="replace")
    finally:
        redis.remove(force=True, v=True)


def test_redis_with_a_password_stays_healthy_and_refuses_anonymous_clients(
    docker_client: docker.DockerClient, network: str
) -> None:
    port, password = _free_loopback_port(), _password() + "\\"
    redis = _start(docker_client, REDIS_IMAGE, network, port, 6379, env={"REDIS_PASSWORD": password})
    try:
        _wait_healthy(redis)  # the health check authenticates with REDIS_PASSWORD
        refused = _resp(port, ["PING"])[0]
        assert isinstance(refused, ValueError) and str(refused).startswith("NOAUTH"), refused
        assert _resp(port, ["AUTH", password], ["SET", "k", "v"], ["GET", "k"]) == ["OK", "OK", b"v"]
        assert _exec(redis, ["redis-cli", "GET", "k"], env={"REDISCLI_AUTH": password}).strip() == "v"
        # The password is in no process's command line (ps on the host shows those to every user).
        for process in redis.top(ps_args="-o pid,args")["Processes"]:
            assert password not in process[-1], process
    finally:
        redis.remove(force=True, v=True)


def test_compose_waits_on_the_images_own_health_checks(
    docker_client: docker.DockerClient, service_images: dict[str, str], tmp_path: Path
) -> None:
    """As a compose file uses them: no healthcheck of its own, `depends_on: service_healthy`, `up --wait`."""
    project = f"ci-actions-svc-{RUN}"
    ports = {"POSTGRES_PORT": str(_free_loopback_port()), "REDIS_PORT": str(_free_loopback_port())}
    compose = {
        "services": {
            "postgres": {
                "image": POSTGRES_IMAGE, "labels": LABELS,
                "environment": {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "app", "POSTGRES_DB": "app",
                                "POSTGRES_INITDB_ARGS": "--no-sync"},
                "ports": ["127.0.0.1:${POSTGRES_PORT}:5432"],
                "volumes": ["pgdata:/var/lib/postgresql/data"],
            },
            "redis": {"image": REDIS_IMAGE, "labels": LABELS, "ports": ["127.0.0.1:${REDIS_PORT}:6379"]},
            # Clients that start only once both services are healthy, and use them by service name.
            "pg-client": {
                "image": POSTGRES_IMAGE, "labels": LABELS, "environment": {"PGPASSWORD": "app"},
                "entrypoint": ["sh", "-c"],
                "command": ["psql -X -w -At -h postgres -U app -d app -c 'SELECT 40 + 2' && exec sleep 600"],
                "depends_on": {"postgres": {"condition": "service_healthy"},
                               "redis": {"condition": "service_healthy"}},
                "healthcheck": {"disable": True},
            },
            "redis-client": {
                "image": REDIS_IMAGE, "labels": LABELS, "entrypoint": ["sh", "-c"],
                "command": ["redis-cli -h redis ping && exec sleep 600"],
                "depends_on": {"postgres": {"condition": "service_healthy"},
                               "redis": {"condition": "service_healthy"}},
                "healthcheck": {"disable": True},
            },
        },
        "volumes": {"pgdata": {"labels": LABELS}},
    }
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(json.dumps(compose, indent=2))  # JSON is YAML
    base = ["docker", "compose", "--project-name", project, "--file", str(compose_file)]
    env = {**os.environ, **ports}
    try:
        _ok(_run([*base, "up", "--detach", "--wait", "--wait-timeout", "180"], env=env, cwd=tmp_path))
        for service in ("postgres", "redis"):
            cid = _ok(_run([*base, "ps", "-q", service], env=env)).strip()
            health = docker_client.containers.get(cid).attrs["State"]["Health"]["Status"]
            assert health == "healthy", (service, health)
        for client, said in (("pg-client", "42"), ("redis-client", "PONG")):
            logs = _ok(_run([*base, "logs", "--no-log-prefix", client], env=env))
            assert logs.split() == [said], (client, logs)
        assert _resp(int(ports["REDIS_PORT"]), ["PING"]) == ["PONG"]
    finally:
        down = _run([*base, "down", "--volumes", "--timeout", "10"], env=env, cwd=tmp_path)
    _ok(down)
    label = {"label": f"com.docker.compose.project={project}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.volumes.list(filters=label) == []
