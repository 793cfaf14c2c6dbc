"""test-services on the real engine, through `ci-actions services` as a shell would run it: parallel
stacks on their own leased ports, a job killed with -9 and reaped, a service that never turns healthy,
SIGTERM during `up`, and bad input. Each test has its own state dir; whatever carries its lease folder's
label is removed (and counted as a leak) when the test ends. Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from test_services.plan import EXPIRES_LABEL, LEASES_LABEL, PROJECT_LABEL
from tests.support.labelled import labelled, remove_labelled

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "tests" / "fixtures" / "services-app" / "compose.yml"
URLS = ["--env", "DATABASE_URL: postgresql://app:app@{postgres}/app", "--env", "REDIS_URL: redis://{redis}/0"]
UP_TIMEOUT = 240


def services(state: Path, *args: str, timeout: float = UP_TIMEOUT, **popen: object):
    argv = [sys.executable, "-m", "ci_actions", "services", *args, "--state-dir", str(state)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
                          **popen)


def up_argv(state: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ci_actions", "services", "up", "--compose-file", str(COMPOSE),
            "--state-dir", str(state), *args]


def up(state: Path, *args: str) -> dict:
    result = subprocess.run(up_argv(state, *args), capture_output=True, text=True, timeout=UP_TIMEOUT,
                            check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ours(client: docker.DockerClient, leases: str) -> dict[str, list[str]]:
    return labelled(client, f"{LEASES_LABEL}={leases}")


def nothing() -> dict[str, list[str]]:
    return {"containers": [], "networks": [], "volumes": []}


@pytest.fixture
def state(tmp_path, docker_client, service_images, busybox_image):
    """A state dir of the test's own; what is left under its label at the end is removed, then failed."""
    state_dir = tmp_path / "state"
    leases = str(state_dir / "test-services" / "leases")
    yield state_dir
    left = ours(docker_client, leases)
    remove_labelled(docker_client, f"{LEASES_LABEL}={leases}")
    assert left == nothing(), "the test left these behind"


def lease_files(state: Path) -> list[str]:
    root = state / "test-services" / "leases"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".lock")


def psql(port: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "app", "-d", "app", "-XAtq",
                           "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PGPASSWORD": "app", "PGCONNECT_TIMEOUT": "5"})


def redis(port: str, *command: str) -> str:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, *command], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()


def env_of(path: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines())


def test_two_stacks_at_once_get_their_own_ports_and_both_work(state, docker_client):
    started = [subprocess.Popen(up_argv(state, "--service", "postgres", "--service", "redis", *URLS,
                                        "--job", f"job{n}"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
               for n in (1, 2)]
    results = [(p.communicate(timeout=UP_TIMEOUT), p.returncode) for p in started]
    assert [code for _, code in results] == [0, 0], [err for (_, err), _ in results]
    one, two = (json.loads(out) for (out, _), _ in results)
    ports = [int(s[f"{name}-port"]) for s in (one, two) for name in ("postgres", "redis")]
    assert len(set(ports)) == 4 and all(20000 <= p <= 29999 for p in ports), ports
    assert one["project"] != two["project"] and one["project"].startswith("ci-local-job1-1-")
    for n, stack in enumerate((one, two)):
        env = env_of(stack["env-file"])
        pg, cache = stack["postgres-port"], stack["redis-port"]
        assert env["DATABASE_URL"] == f"postgresql://app:app@127.0.0.1:{pg}/app"
        assert env["REDIS_URL"] == f"redis://127.0.0.1:{cache}/0" and env["POSTGRES_PORT"] == pg
        assert oct(Path(stack["env-file"]).stat().st_mode & 0o777) == "0o600"
        assert psql(pg, f"CREATE TABLE job{n} (id int); INSERT INTO job{n} VALUES ({n});").returncode == 0
        assert redis(cache, "SET", "job", str(n)) == "OK"
        container = docker_client.containers.get(f"{stack['project']}-postgres-1")
        published = container.attrs["HostConfig"]["PortBindings"]
        assert published == {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": pg}]}
    # each job sees only its own data
    assert psql(one["postgres-port"], "SELECT * FROM job0").stdout.strip() == "0"
    assert "does not exist" in psql(one["postgres-port"], "SELECT * FROM job1").stderr
    assert [redis(one["redis-port"], "GET", "job"), redis(two["redis-port"], "GET", "job")] == ["0", "1"]
    listed = services(state, "list")
    assert listed.returncode == 0 and listed.stdout.count(" live ") == 2, listed.stdout
    for stack in (one, two):
        down = services(state, "down", "--project", stack["project"])
        assert down.returncode == 0, down.stderr
        assert json.loads(down.stdout) == {"project": stack["project"], "containers": 2, "networks": 1,
                                           "volumes": 0}
    assert ours(docker_client, str(state / "test-services" / "leases")) == nothing()
    assert lease_files(state) == [] and not any((state / "test-services" / "stacks").iterdir())


def test_a_job_killed_with_kill_9_is_reaped_by_the_next_up_and_by_reap(state, docker_client, tmp_path):
    """The job (a shell that ran `up` and then its suite) dies with SIGKILL: no teardown ran."""
    leases = str(state / "test-services" / "leases")
    outputs = []
    jobs = []
    for n in range(2):
        out = tmp_path / f"up{n}.json"
        script = f'{" ".join(map(repr, up_argv(state, "--service", "redis")))} > {out} && exec sleep 300'
        jobs.append(subprocess.Popen(["bash", "-c", script], cwd=REPO, start_new_session=True))
        outputs.append(out)
    deadline = time.monotonic() + UP_TIMEOUT
    while not all(o.exists() and o.read_text().strip() for o in outputs) and time.monotonic() < deadline:
        time.sleep(0.2)
    stacks = [json.loads(o.read_text()) for o in outputs]
    assert len(ours(docker_client, leases)["containers"]) == 2
    for job in jobs:
        os.killpg(job.pid, signal.SIGKILL)  # the job and its suite (`sleep`), both started here
        job.wait(timeout=30)
    # the next `up` on the machine reaps both before it leases
    result = subprocess.run(up_argv(state, "--service", "redis"), capture_output=True, text=True, cwd=REPO,
                            timeout=UP_TIMEOUT, check=False)
    assert result.returncode == 0, result.stderr
    for stack in stacks:
        assert f"reaped {stack['project']} (its holder (pid " in result.stderr
        assert not any(stack["project"] in f for f in lease_files(state))
    survivor = json.loads(result.stdout)["project"]
    assert ours(docker_client, leases)["containers"] == [f"{survivor}-redis-1"]
    # `reap` alone: the survivor's holder (this test's process) still lives, so it stays...
    reaped = services(state, "reap")
    assert reaped.returncode == 0 and json.loads(reaped.stdout)["reaped"] == []
    # ...until it is killed too
    holder = subprocess.Popen(["sleep", "300"], start_new_session=True)
    third = json.loads(subprocess.run(up_argv(state, "--service", "redis", "--holder-pid", str(holder.pid)),
                                      capture_output=True, text=True, cwd=REPO, timeout=UP_TIMEOUT,
                                      check=True).stdout)
    holder.kill()
    holder.wait()
    reaped = services(state, "reap")
    assert reaped.returncode == 0, reaped.stderr
    assert [r["project"] for r in json.loads(reaped.stdout)["reaped"]] == [third["project"]]
    assert ours(docker_client, leases)["containers"] == [f"{survivor}-redis-1"]
    assert services(state, "down", "--project", survivor).returncode == 0
    assert lease_files(state) == []


def test_a_service_that_never_turns_healthy_shows_its_health_log_and_log_tail_and_leaves_nothing(
        state, docker_client):
    result = subprocess.run(up_argv(state, "--service", "never-healthy", "--service", "redis",
                                    "--wait-timeout", "60s"),
                            capture_output=True, text=True, cwd=REPO, timeout=UP_TIMEOUT, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert "error: service never-healthy turned unhealthy (the stack was removed)" in result.stderr
    assert "never-healthy health log (last 2 probes):" in result.stderr
    assert "exit 1: probe: connection refused" in result.stderr
    assert "| listening on nothing" in result.stderr and "Traceback" not in result.stderr
    assert ours(docker_client, str(state / "test-services" / "leases")) == nothing()
    assert lease_files(state) == []


def test_sigterm_during_up_removes_what_it_started(state, docker_client):
    leases = str(state / "test-services" / "leases")
    process = subprocess.Popen(up_argv(state, "--service", "postgres"), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ours(docker_client, leases)["containers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == "", err
    assert "stopped; the stack was removed" in err
    assert ours(docker_client, leases) == nothing() and lease_files(state) == []


def test_a_dependency_starts_too_and_down_removes_its_volume(state, docker_client):
    leases = str(state / "test-services" / "leases")
    stack = up(state, "--service", "worker")
    assert set(stack["services"]) == {"postgres"}  # worker publishes nothing; postgres came as its dependency
    found = ours(docker_client, leases)
    assert found["containers"] == [f"{stack['project']}-postgres-1", f"{stack['project']}-worker-1"]
    assert found["volumes"] == [f"{stack['project']}_scratch"]
    removed = json.loads(services(state, "down", "--project", stack["project"]).stdout)
    assert removed == {"project": stack["project"], "containers": 2, "networks": 1, "volumes": 1}
    assert ours(docker_client, leases) == nothing()


def test_bad_input_is_one_message_and_starts_nothing(state, docker_client, tmp_path):
    leases = str(state / "test-services" / "leases")
    unknown = subprocess.run(up_argv(state, "--service", "postgres", "--service", "mysql"),
                             capture_output=True, text=True, cwd=REPO, timeout=60)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (f"error: services: 'mysql' is not defined in {COMPOSE} "
                                      "(defined: never-healthy, postgres, redis, worker)")
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  db:\n    image: x\n   ports: [\n")
    result = subprocess.run([*up_argv(state)[:-4], "--compose-file", str(broken), "--state-dir", str(state)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and str(broken) in result.stderr
    assert "did not find expected key" in result.stderr  # compose's own words
    bad_url = subprocess.run(up_argv(state, "--service", "redis", "--env", "URL: {postgres}"),
                             capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad_url.returncode == 2 and "env: URL names {postgres}, but postgres is not a started service" \
        in bad_url.stderr
    bad_flag = subprocess.run(up_argv(state, "--port-range", "99-1"), capture_output=True, text=True,
                              cwd=REPO, timeout=60)
    assert bad_flag.returncode == 2 and "argument --port-range: is '99-1'" in bad_flag.stderr
    assert ours(docker_client, leases) == nothing() and lease_files(state) == []


def test_no_free_port_is_a_clear_error_and_nothing_runs(state, docker_client):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(up_argv(state, "--service", "redis", "--port-range", f"{port}-{port}"),
                                capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no free port: the stack publishes 1 port(s) and only 0 of {port}-{port} are free (0 leased "
        "to other stacks, 1 in use on this machine). Widen port-range, or see who holds them with "
        "`ci-actions services list` (`reap` frees the ports of dead jobs)")
    assert ours(docker_client, str(state / "test-services" / "leases")) == nothing()
    assert lease_files(state) == []


def test_the_reaper_removes_only_what_carries_its_labels(state, docker_client):
    leases = state / "test-services" / "leases"
    leases.mkdir(parents=True, mode=0o700)
    (leases.parent).chmod(0o700)
    run = uuid.uuid4().hex[:8]
    stray = state / "test-services" / "stacks" / f"ci-stray-{run}"  # a teardown cut short left its folder
    stray.mkdir(parents=True)
    (stray / "env").write_text("DATABASE_URL=postgresql://app:app@127.0.0.1:1/app\n")
    orphan = docker_client.networks.create(f"ci-orphan-{run}_default", labels={
        PROJECT_LABEL: f"ci-orphan-{run}", LEASES_LABEL: str(leases)})
    # a compose project of the same shape that test-services did not make, and another state dir's stack
    theirs = docker_client.networks.create(f"ci-theirs-{run}_default",
                                           labels={"com.docker.compose.project": f"ci-theirs-{run}"})
    other = docker_client.networks.create(f"ci-other-{run}_default", labels={
        PROJECT_LABEL: f"ci-other-{run}", LEASES_LABEL: "/elsewhere/leases",
        EXPIRES_LABEL: str(int(time.time()) + 3600)})
    expired = docker_client.networks.create(f"ci-expired-{run}_default", labels={
        PROJECT_LABEL: f"ci-expired-{run}", LEASES_LABEL: "/elsewhere/leases",
        EXPIRES_LABEL: str(int(time.time()) - 1)})
    try:
        reaped = services(state, "reap")
        assert reaped.returncode == 0, reaped.stderr
        assert sorted(json.loads(reaped.stdout)["reaped"], key=lambda r: r["project"]) == [
            {"project": f"ci-expired-{run}", "why": "past its expiry", "containers": 0, "networks": 1,
             "volumes": 0},
            {"project": f"ci-orphan-{run}", "why": "no lease holds it (a teardown was cut short)",
             "containers": 0, "networks": 1, "volumes": 0}]
        for gone in (orphan, expired):
            with pytest.raises(NotFound):
                docker_client.networks.get(gone.id)
        assert docker_client.networks.get(theirs.id) and docker_client.networks.get(other.id)
        assert not stray.exists()
    finally:
        for network in (theirs, other, expired):
            with contextlib.suppress(NotFound):
                network.remove()
