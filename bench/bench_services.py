"""test-services under parallel jobs: 4 jobs at once, each bringing up Postgres + Redis, running a small
real suite and tearing down, for N rounds; against the seed's way (fixed ports, `docker compose up --wait`).

Run: .venv/bin/python bench/bench_services.py [--rounds 10] [--jobs 4] [--baseline-rounds 1]
     (after scripts/build-base-images.sh; psql and redis-cli on PATH, as scripts/setup installs them)

Each job is what a CI job runs, as separate commands:

    python -m ci_actions services up --compose-file tests/fixtures/services-app/compose.yml \
        --service postgres --service redis --env 'DATABASE_URL: ...' --state-dir <tmp> --job benchN
    psql "$DATABASE_URL"  (a table, 1000 rows, a count)   redis-cli -p $REDIS_PORT  (SET, INCR x3, GET)
    python -m ci_actions services down --project <project>

Reported:
- port collisions: a host port given to two stacks of one round (target 0), and stacks whose containers
  do not publish the ports `up` reported;
- failed suites (target 0);
- leftovers after the last round: containers, volumes and networks carrying the bench's lease label, and
  lease files (target 0);
- readiness overhead: `up` returning (the `returned-at` of its JSON) minus the moment the slowest
  service's container turned healthy (the end of its first passing probe in `docker inspect`
  State.Health.Log), per job (target <= 1 s at the max).

The baseline is the seed's docker-compose.test.yml way on the same file: every job `docker compose -p
<own> up --wait` with the same fixed host ports (free ones picked at start, not 5435/6380: another
stack on this machine may use those), then the same suite and `down -v`. Its collisions show as jobs
that cannot start. Everything the baseline made carries the bench's label and is removed at the end.
Exit status 1 when a measure misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.labelled import labelled, remove_labelled  # noqa: E402

COMPOSE = REPO_ROOT / "tests" / "fixtures" / "services-app" / "compose.yml"
SERVICES = ("postgres", "redis")
LEASES_LABEL = "ci-actions.test-services.leases"
BASELINE_LABEL = "ci-actions.bench.services"
ROWS = 1000
COMMAND_TIMEOUT = 300


@dataclass
class Job:
    round: int
    index: int
    ok_up: bool = False
    ok_suite: bool = False
    ok_down: bool = False
    project: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    published_match: bool = True
    up_seconds: float = 0.0
    down_seconds: float = 0.0
    overhead: float | None = None
    error: str = ""


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
                          cwd=REPO_ROOT, **kwargs)


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, as epoch seconds."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def healthy_at(attrs: dict) -> float | None:
    """When the container turned healthy: the end of the first passing probe after the last failing one
    in the log Docker keeps (5 probes). None when the turn fell out of that window (long before)."""
    log = ((attrs.get("State") or {}).get("Health") or {}).get("Log") or []
    turned = None
    for index, probe in enumerate(log):
        if probe.get("ExitCode") == 0 and (index == 0 or log[index - 1].get("ExitCode") != 0):
            turned = probe
    if turned is None or (turned is log[0] and len(log) >= 5):
        return None
    return _epoch(turned["End"])


def overhead(client: docker.DockerClient, project_filter: dict, returned: float) -> float | None:
    times = []
    for container in client.containers.list(all=True, filters=project_filter):
        times.append(healthy_at(client.api.inspect_container(container.id)))
    known = [t for t in times if t is not None]
    return returned - max(known) if known and len(times) == len(SERVICES) else None


def suite(env: dict[str, str]) -> str:
    """A small real suite; '' when it passed, else what failed."""
    sql = (f"CREATE TABLE points (id int PRIMARY KEY, owner text); INSERT INTO points SELECT g, md5(g::text) "
           f"FROM generate_series(1, {ROWS}) g; SELECT count(*) FROM points;")
    result = _run(["psql", env["DATABASE_URL"], "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                  env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if result.returncode != 0 or result.stdout.strip() != str(ROWS):
        return f"psql: {result.stdout.strip()} {result.stderr.strip()}"
    cli = ["redis-cli", "-h", env["REDIS_HOST"], "-p", env["REDIS_PORT"]]
    steps = [(["SET", "reward", "coffee"], "OK"), (["INCR", "n"], "1"), (["INCR", "n"], "2"),
             (["INCR", "n"], "3"), (["GET", "reward"], "coffee")]
    for command, expected in steps:
        result = _run([*cli, *command])
        if result.stdout.strip() != expected:
            return f"redis-cli {' '.join(command)}: {result.stdout.strip()} {result.stderr.strip()}"
    return ""


def _env_file(path: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)


def ours_job(client: docker.DockerClient, state: Path, job: Job, start: threading.Barrier) -> Job:
    argv = [sys.executable, "-m", "ci_actions", "services", "up", "--compose-file", str(COMPOSE),
            *(arg for s in SERVICES for arg in ("--service", s)),
            "--env", "DATABASE_URL: postgresql://app:app@{postgres}/app", "--env", "REDIS_URL: redis://{redis}/0",
            "--state-dir", str(state), "--run-id", f"bench{job.round}", "--job", f"job{job.index}"]
    start.wait()
    began = time.time()
    result = _run(argv)
    job.up_seconds = time.time() - began
    if result.returncode != 0:
        job.error = f"up: {result.stderr.strip()[-2000:]}"
        return job
    outputs = json.loads(result.stdout)
    job.ok_up, job.project = True, outputs["project"]
    job.ports = {s: int(outputs[f"{s}-port"]) for s in SERVICES}
    label = {"label": f"ci-actions.test-services.project={job.project}"}
    job.overhead = overhead(client, label, outputs["returned-at"])
    for container in client.containers.list(filters=label):
        service = container.labels["com.docker.compose.service"]
        bindings = container.attrs["HostConfig"]["PortBindings"]
        host_ports = [int(b["HostPort"]) for entries in bindings.values() for b in entries]
        job.published_match &= host_ports == [job.ports[service]]
    failure = suite(_env_file(outputs["env-file"]))
    job.ok_suite, job.error = not failure, failure
    began = time.time()
    down = _run([sys.executable, "-m", "ci_actions", "services", "down", "--project", job.project,
                 "--state-dir", str(state)])
    job.down_seconds = time.time() - began
    job.ok_down = down.returncode == 0
    if not job.ok_down:
        job.error += f" down: {down.stderr.strip()}"
    return job


def baseline_job(client: docker.DockerClient, ports: dict[str, int], job: Job, start: threading.Barrier,
                 run: str) -> Job:
    """The seed's way: its own project name, the file's fixed ports, compose's own --wait."""
    project = f"bench-seed-{run}-{job.round}-{job.index}"
    override = Path(tempfile.mkdtemp(prefix="bench-seed-")) / "labels.yml"
    labels = json.dumps({BASELINE_LABEL: run})
    override.write_text(json.dumps({"services": {s: {"labels": json.loads(labels)} for s in SERVICES},
                                    "networks": {"default": {"labels": json.loads(labels)}}}))
    compose = ["docker", "compose", "-p", project, "-f", str(COMPOSE), "-f", str(override)]
    env = {**os.environ, "POSTGRES_PORT": str(ports["postgres"]), "REDIS_PORT": str(ports["redis"])}
    start.wait()
    began = time.time()
    result = _run([*compose, "up", "--wait", "--wait-timeout", "120", *SERVICES], env=env)
    returned = time.time()
    job.up_seconds = returned - began
    job.project, job.ports = project, dict(ports)
    if result.returncode == 0:
        job.ok_up = True
        job.overhead = overhead(client, {"label": f"com.docker.compose.project={project}"}, returned)
        failure = suite({"DATABASE_URL": f"postgresql://app:app@127.0.0.1:{ports['postgres']}/app",
                         "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(ports["redis"])})
        job.ok_suite, job.error = not failure, failure
    else:
        job.error = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "up failed"
    began = time.time()
    job.ok_down = _run([*compose, "down", "-v", "-t", "0"], env=env).returncode == 0
    job.down_seconds = time.time() - began
    override.unlink()
    override.parent.rmdir()
    return job


def killed_mid_suite(client: docker.DockerClient, state: Path, label: str) -> tuple[bool, str]:
    """A job (a shell: `up`, then its suite) killed with -9 while its suite runs a query; then the next
    `up` on the machine. True when that `up` reaped the stack and nothing of it or its lease is left."""
    out = state.parent / "killed.json"
    up = [sys.executable, "-m", "ci_actions", "services", "up", "--compose-file", str(COMPOSE), "--service",
          "postgres", "--env", "DATABASE_URL: postgresql://app:app@{postgres}/app", "--state-dir", str(state),
          "--job", "killed"]
    env_file = f"$(sed -n 's/.*\"env-file\": \"\\([^\"]*\\)\".*/\\1/p' {out})"
    script = (f"{' '.join(map(shlex.quote, up))} > {out} && set -a && . \"{env_file}\" && set +a && "
              "exec psql \"$DATABASE_URL\" -XAtq -c 'SELECT pg_sleep(300)'")
    job = subprocess.Popen(["bash", "-c", script], cwd=REPO_ROOT, start_new_session=True,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline and job.poll() is None:
        if out.exists() and out.read_text().strip():
            break
        time.sleep(0.2)
    if not out.exists() or not out.read_text().strip():
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        return False, "its `up` did not finish"
    project = json.loads(out.read_text())["project"]
    time.sleep(2)  # the suite's query is running
    os.killpg(job.pid, signal.SIGKILL)  # the job and its psql, both started here
    job.wait()
    began = time.time()
    result = _run([*up[:7], "--service", "redis", "--state-dir", str(state), "--job", "next"])
    took = time.time() - began
    if result.returncode != 0:
        return False, f"the next up failed: {result.stderr.strip()[-500:]}"
    left = leftovers(client, f"ci-actions.test-services.project={project}")
    lease = (state / "test-services" / "leases" / "projects" / f"{project}.json").exists()
    survivor = json.loads(result.stdout)["project"]
    _run([sys.executable, "-m", "ci_actions", "services", "down", "--project", survivor,
          "--state-dir", str(state)])
    reaped = f"reaped {project} (its holder" in result.stderr
    return reaped and not any(left.values()) and not lease, (
        f"the next up ({took:.1f}s) {'reaped' if reaped else 'did NOT reap'} {project}; left: "
        f"{left['containers']} containers, {left['volumes']} volumes, {left['networks']} networks, "
        f"lease {'still there' if lease else 'gone'}")


def leftovers(client: docker.DockerClient, label: str) -> dict[str, int]:
    return {kind: len(names) for kind, names in labelled(client, label).items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.2f}s  p95 {p95:.2f}s  max {ordered[-1]:.2f}s"


def collisions(jobs: list[Job]) -> int:
    """Host ports given to more than one stack of the same round."""
    count = 0
    for round_number in {j.round for j in jobs}:
        used = Counter(p for j in jobs if j.round == round_number and j.ok_up for p in j.ports.values())
        count += sum(n - 1 for n in used.values() if n > 1)
    return count


def rounds(workers: int, count: int, job: callable) -> list[Job]:
    done = []
    for round_number in range(count):
        barrier = threading.Barrier(workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(job, Job(round_number, i), barrier) for i in range(workers)]
            finished = [f.result() for f in futures]
        done += finished
        failed = [j for j in finished if not (j.ok_up and j.ok_suite and j.ok_down)]
        print(f"  round {round_number + 1}/{count}: {workers - len(failed)}/{workers} jobs passed"
              + "".join(f"\n    job {j.index}: {j.error[:300]}" for j in failed), flush=True)
    return done


def report(title: str, jobs: list[Job], left: dict[str, int], lease_files: int | None) -> None:
    passed = [j for j in jobs if j.ok_up and j.ok_suite]
    overheads = [j.overhead for j in jobs if j.overhead is not None]
    print(f"\n{title}")
    print(f"  jobs                  {len(jobs)} ({len(passed)} passed their suite)")
    print(f"  failed to start       {sum(not j.ok_up for j in jobs)}")
    print(f"  port collisions       {collisions(jobs)}"
          + (f" (+{sum(not j.published_match for j in jobs)} stacks publishing other ports than reported)"
             if any(not j.published_match for j in jobs) else ""))
    print(f"  failed suites         {sum(j.ok_up and not j.ok_suite for j in jobs)}")
    files = f", {lease_files} lease files" if lease_files is not None else ""
    print(f"  leftovers             {left['containers']} containers, {left['volumes']} volumes, "
          f"{left['networks']} networks{files}")
    print(f"  up (whole command)    {_quantiles([j.up_seconds for j in jobs if j.ok_up])}")
    print(f"  readiness overhead    {_quantiles(overheads)}  ({len(overheads)} of {len(passed)} measured)")
    print(f"  down                  {_quantiles([j.down_seconds for j in jobs if j.ok_down])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--baseline-rounds", type=int, default=1)
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-services-") as tmp:
        state = Path(tmp) / "state"
        label = f"{LEASES_LABEL}={state / 'test-services' / 'leases'}"
        try:
            print(f"test-services: {args.jobs} jobs at once x {args.rounds} rounds (Postgres + Redis each)")
            ours = rounds(args.jobs, args.rounds, lambda job, barrier: ours_job(client, state, job, barrier))
            left = leftovers(client, label)
            leases = state / "test-services" / "leases"
            files = [p for p in leases.rglob("*") if p.is_file() and p.name != ".lock"]
            report("test-services (leased ports, health wait, down)", ours, left, len(files))
            killed_ok, killed = killed_mid_suite(client, state, label)
            print(f"  kill -9 mid-suite     {killed}")
            if args.baseline_rounds:
                ports = {"postgres": free_port(), "redis": free_port()}
                print(f"\nseed's way: {args.jobs} jobs at once x {args.baseline_rounds} round(s), fixed "
                      f"ports {ports['postgres']}/{ports['redis']}, `docker compose -p <own> up --wait`")
                seed = rounds(args.jobs, args.baseline_rounds,
                              lambda job, barrier: baseline_job(client, ports, job, barrier, run))
                report("seed's way (fixed ports, compose --wait, down -v)", seed,
                       leftovers(client, f"{BASELINE_LABEL}={run}"), None)
        finally:
            remove_labelled(client, label)
            remove_labelled(client, f"{BASELINE_LABEL}={run}")
    overheads = [j.overhead for j in ours if j.overhead is not None]
    misses = [collisions(ours), sum(not j.published_match for j in ours),
              sum(not (j.ok_up and j.ok_suite and j.ok_down) for j in ours), sum(left.values()), len(files),
              int(bool(overheads) and max(overheads) > 1.0), int(not killed_ok)]
    return 1 if any(misses) else 0


if __name__ == "__main__":
    sys.exit(main())
