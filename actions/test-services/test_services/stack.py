"""The stack's life on the engine: up (reap, plan, lease, override, `docker compose up`, health wait,
env file), down, reap and list. Compose starts the stack, as users run it; the Docker SDK watches its
health and removes it, by our labels only, so a stack whose files are gone is still found and nothing
we did not create is ever touched.

`up` undoes what it did, in reverse, when any later part fails or the process is told to stop (SIGTERM,
as a cancelled job gets): containers, networks and volumes removed, then the ports released.
"""

from __future__ import annotations

import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, NotFound

from ci_actions import timing
from ci_actions.atomic import write_atomic
from ci_actions.compose import Compose, ComposeError
from test_services import endpoints, health, naming
from test_services.leases import Damaged, Holder, Lease, LeaseError, Leases
from test_services.plan import (
    COMPOSE_SERVICE_LABEL,
    EXPIRES_LABEL,
    LEASES_LABEL,
    LOOPBACK,
    PROJECT_LABEL,
    PublishedPort,
    StackPlan,
    labels,
    override,
    plan_stack,
)

Log = Callable[[str], None]
PORT_TAKEN = ("port is already allocated", "address already in use")
START_ATTEMPTS = 3  # a port taken by a process outside the leases between our check and compose's bind
COMPOSE_MARGIN = 120.0  # compose up's own bound beyond wait-timeout (creating containers, depends_on)
LOG_TAIL = 40


class UpError(Exception):
    """`up` failed and removed what it started; `details` are the lines that show why (health log,
    log tail)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class Cancelled(KeyboardInterrupt):
    """SIGTERM arrived (a cancelled job): unwind, undoing what was done."""


@dataclass(frozen=True)
class UpRequest:
    compose: Compose  # the user's files; its project is replaced by the stack's own
    services: list[str]
    prefix: str
    wait_timeout: float
    ttl: float
    port_range: tuple[int, int]
    state_dir: Path
    env: list[tuple[str, str]] = field(default_factory=list)
    env_prefix: str = ""
    run_id: str = "local"
    job: str = ""
    attempt: int = 1
    holder: Holder | None = None


@dataclass(frozen=True)
class Stack:
    project: str
    plan: StackPlan
    assignment: dict[PublishedPort, int]
    env: dict[str, str]
    env_file: Path
    ready: dict[str, float]  # service -> seconds from the start of `up` until its last container was ready
    seconds: float

    @property
    def endpoints(self) -> dict[str, endpoints.Endpoint]:
        return endpoints.endpoints(self.assignment)

    def outputs(self) -> dict:
        """What the step sets and the command prints: no URL (a URL may hold a password), only where
        the services are and where the env file is."""
        found = self.endpoints
        return {"project": self.project, "env-file": str(self.env_file),
                "services": {name: {"host": e.host, "port": e.port, "ports": e.ports}
                             for name, e in found.items()},
                "ready-seconds": {name: round(seconds, 3) for name, seconds in self.ready.items()},
                **endpoints.outputs(found)}


def stacks_dir(state_dir: Path) -> Path:
    return state_dir / "test-services" / "stacks"


def port_is_free(port: int) -> bool:
    """Whether Docker could publish 127.0.0.1:port (TCP and UDP) now: a bind test, as docker-proxy binds."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def published_by_docker(client: docker.DockerClient) -> set[int]:
    """Host ports any container publishes (seen even where no docker-proxy binds them)."""
    ports = set()
    for container in client.api.containers():
        for entry in container.get("Ports") or []:
            if entry.get("PublicPort"):
                ports.add(int(entry["PublicPort"]))
    return ports


# Removal: by our label only.

@dataclass
class Removed:
    containers: int = 0
    networks: int = 0
    volumes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)

    def describe(self) -> str:
        return f"{self.containers} container(s), {self.networks} network(s), {self.volumes} volume(s)"


def _remove_container(container) -> str:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        return ""
    except APIError as exc:
        if exc.status_code == 409 and "already in progress" in str(exc):
            return ""
        return f"container {container.name}: {exc.explanation or exc}"
    return ""


def remove_stack(client: docker.DockerClient, project: str, *, attempts: int = 10) -> Removed:
    """Every container (with its anonymous volumes), network and volume labelled as the project's."""
    label = {"label": f"{PROJECT_LABEL}={project}"}
    removed = Removed()
    containers = client.containers.list(all=True, filters=label)
    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            problems = [p for p in pool.map(_remove_container, containers) if p]
        removed.containers = len(containers) - len(problems)
        removed.problems += problems
    for network in client.networks.list(filters=label):
        for attempt in range(attempts):  # an endpoint can linger a moment after its container is gone
            try:
                network.remove()
                removed.networks += 1
                break
            except NotFound:
                break
            except APIError as exc:
                if attempt == attempts - 1:
                    removed.problems.append(f"network {network.name}: {exc.explanation or exc}")
                time.sleep(0.2)
    for volume in client.volumes.list(filters=label):
        try:
            volume.remove(force=True)
            removed.volumes += 1
        except NotFound:
            pass
        except APIError as exc:
            removed.problems.append(f"volume {volume.name}: {exc.explanation or exc}")
    return removed


def labelled_stacks(client: docker.DockerClient) -> dict[str, dict[str, str]]:
    """Project -> its labels, for every object of ours on the engine (any state dir's)."""
    found: dict[str, dict[str, str]] = {}
    listed = [c.labels for c in client.containers.list(all=True, filters={"label": PROJECT_LABEL})]
    listed += [n.attrs.get("Labels") or {} for n in client.networks.list(filters={"label": PROJECT_LABEL})]
    listed += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters={"label": PROJECT_LABEL})]
    for labels_of in listed:
        found.setdefault(labels_of.get(PROJECT_LABEL, ""), labels_of)
    found.pop("", None)
    return found


# The reaper.

@dataclass
class Reaped:
    project: str
    why: str
    removed: Removed


@dataclass
class ReapReport:
    reaped: list[Reaped] = field(default_factory=list)
    freed_claims: list[int] = field(default_factory=list)


def _expired(stack_labels: dict[str, str], now: float) -> bool:
    try:
        return float(stack_labels.get(EXPIRES_LABEL, "")) < now
    except ValueError:
        return False


def reap(client: docker.DockerClient, leases: Leases, *, now: float | None = None) -> ReapReport:
    """Remove the stacks whose job is over and release their leases: a lease whose holder is gone or
    whose ttl passed, a damaged one, a stack of this lease folder that no lease holds (a teardown cut
    short), and any state dir's stack past its expiry label. Stack folders no lease holds go too.

    The engine and the folders are listed before the leases: a lease is written before its stack and
    folder exist, so one seen without a lease is never one whose `up` is still running."""
    now = time.time() if now is None else now
    on_engine = labelled_stacks(client)
    folders = leases.root.parent / "stacks"
    listed = [p for p in folders.iterdir() if p.is_dir()] if folders.is_dir() else []
    records = {lease.project: lease for lease in leases.all()}
    doomed: dict[str, str] = {}
    for project, lease in records.items():
        why = lease.stale_because(now)
        if why:
            doomed[project] = why
    for project, stack_labels in on_engine.items():
        if project in records or project in doomed:
            continue
        if stack_labels.get(LEASES_LABEL) == str(leases.root):
            doomed[project] = "no lease holds it (a teardown was cut short)"
        elif _expired(stack_labels, now):
            doomed[project] = "past its expiry"
    report = ReapReport()
    for project, why in doomed.items():
        removed = remove_stack(client, project)
        if project in records:
            leases.release(project, if_unchanged=records[project])
        with suppress(OSError):
            shutil.rmtree(leases.root.parent / "stacks" / project)
        report.reaped.append(Reaped(project, why, removed))
    report.freed_claims = leases.free_unowned_claims()
    for folder in listed:  # made after its lease: one without a lease outlived a teardown cut short
        if folder.name not in records and folder.name not in doomed:
            shutil.rmtree(folder, ignore_errors=True)
    return report


# up

class _Undo:
    """What `up` did, undone in reverse when a later part fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, name: str, undo: Callable[[], object]) -> None:
        self.steps.append((name, undo))

    def run(self) -> list[str]:
        problems = []
        for name, undo in reversed(self.steps):
            try:
                result = undo()
            except Exception as exc:  # keep undoing: one failure must not leave the rest behind
                problems.append(f"{name}: {exc}")
                continue
            if isinstance(result, Removed):
                problems += result.problems
        self.steps.clear()
        return problems


@contextmanager
def cancellable() -> Iterator[None]:
    """SIGTERM raises Cancelled while `up` runs, so a cancelled job unwinds through the undo."""
    def stop(signum, frame):
        raise Cancelled(f"stopped by signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: the caller handles signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _services_of(client: docker.DockerClient, project: str) -> dict[str, str]:
    """Container id -> service, for the project's containers."""
    containers = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    return {c.id: c.labels.get(COMPOSE_SERVICE_LABEL, c.name) for c in containers}


def _failing(client: docker.DockerClient, project: str) -> health.NotReady | None:
    """The first container of the project that will never be ready (compose gave up on a dependency)."""
    for container, service in _services_of(client, project).items():
        with suppress(APIError, NotFound):
            attrs = client.api.inspect_container(container)
            verdict = health.judge(attrs)
            if verdict.failed:
                return health.NotReady(verdict.failed, service, container, attrs)
    return None


def _diagnose(client: docker.DockerClient, failure: health.NotReady) -> list[str]:
    lines = []
    probes = health.health_log(failure.state)
    if probes:
        lines += [f"{failure.service} health log (last {len(probes)} probes):", *(f"  {p}" for p in probes)]
    try:
        tail = client.containers.get(failure.container).logs(tail=LOG_TAIL).decode(errors="replace")
    except (APIError, NotFound) as exc:
        tail = f"(logs unavailable: {exc})"
    tail_lines = tail.rstrip().splitlines()
    lines += [f"{failure.service} log (last {len(tail_lines)} lines):", *(f"  | {t}" for t in tail_lines)]
    return lines


def plan_for(request: UpRequest, project: str) -> tuple[Compose, StackPlan]:
    """Compose's own model of the files (every profile, so any defined service can be named) and the
    stack planned from it; PlanError or ComposeError (with compose's message and the files) on bad input."""
    compose = Compose(request.compose.files, project, {**request.compose.env, "COMPOSE_PROFILES": "*"},
                      request.compose.env_files)
    plan = plan_stack(compose.config(), project, tuple(str(f) for f in compose.files), request.services)
    endpoints.check_templates(request.env, plan.ports)
    return compose, plan


def up(request: UpRequest, client: docker.DockerClient, log: Log, *,
       on_project: Callable[[str], None] = lambda _: None) -> Stack:
    """Start the stack; `on_project` hears its name before anything exists (the post step's state)."""
    began = time.monotonic()
    leases = Leases.at(request.state_dir)
    with cancellable():
        try:
            swept = reap(client, leases)
        except (APIError, LeaseError, OSError) as exc:
            log(f"warning: the reaper could not run: {exc}")
        else:
            for item in swept.reaped:
                log(f"reaped {item.project} ({item.why}): removed {item.removed.describe()}")
        for _ in range(START_ATTEMPTS):
            project = naming.project_name(request.prefix, request.run_id, request.job, request.attempt,
                                          naming.suffix())
            on_project(project)
            compose, plan = plan_for(request, project)
            stack = _start(request, plan, compose, client, leases, log, began)
            if stack is not None:
                return stack
        raise UpError(f"ports kept being taken by processes outside the leases ({START_ATTEMPTS} attempts); "
                      "see `ss -ltnp` for who listens in port-range")


def _start(request: UpRequest, plan: StackPlan, compose: Compose, client: docker.DockerClient, leases: Leases,
           log: Log, began: float) -> Stack | None:
    """One attempt; None when a port was taken under us (everything undone, try other ports)."""
    undo = _Undo()
    project = plan.project
    try:
        taken = published_by_docker(client)
        lease = leases.acquire(project, len(plan.ports), request.port_range, request.holder, request.ttl,
                               lambda port: port not in taken and port_is_free(port),
                               files=[str(f) for f in compose.files])
        undo.push("release the ports", lambda: leases.release(project))
        assignment = dict(zip(plan.ports, lease.ports, strict=True))
        for line in plan.describe(assignment):
            log(line)
        folder = stacks_dir(request.state_dir) / project
        folder.mkdir(mode=0o700, parents=True, exist_ok=False)
        undo.push("remove the stack folder", lambda: shutil.rmtree(folder, ignore_errors=True))
        own = labels(plan, str(leases.root), int(lease.expires))
        override_file = folder / "override.yml"
        write_atomic(override_file, override(plan, assignment, own), mode=0o600)
        undo.push("remove the stack", lambda: remove_stack(client, project))
        try:
            with timing.phase("services up", services=list(plan.services)):
                compose.check("up", "--detach", "--no-color", *plan.services, overrides=(override_file,),
                              timeout=request.wait_timeout + COMPOSE_MARGIN)
        except ComposeError as exc:
            if any(words in str(exc) for words in PORT_TAKEN):
                log(f"a leased port was taken outside the leases; trying others ({exc})")
                problems = undo.run()
                for problem in problems:
                    log(f"warning: cleanup: {problem}")
                return None
            failing = _failing(client, project)
            raise UpError(str(exc) + " (the stack was removed)",
                          _diagnose(client, failing) if failing else []) from None
        compose_done = time.monotonic()
        containers = _services_of(client, project)
        missing = [s for s in plan.services if s not in containers.values()]
        if missing:
            raise UpError(f"compose started no container for {', '.join(missing)}")
        remaining = max(request.wait_timeout - (compose_done - began), 1.0)
        try:
            with timing.phase("health wait"):
                ready_at = health.wait_ready(containers, lambda cid: client.api.inspect_container(cid),
                                             remaining)
        except health.NotReady as failure:
            raise UpError(str(failure) + " (the stack was removed)", _diagnose(client, failure)) from None
        ready: dict[str, float] = {}
        for container, (seconds, note) in ready_at.items():
            service = containers[container]
            ready[service] = max(ready.get(service, 0.0), compose_done - began + seconds)
            if note:
                log(f"warning: service {service} {note}")
        env = endpoints.variables(endpoints.endpoints(assignment), request.env, request.env_prefix)
        env_file = folder / "env"
        write_atomic(env_file, endpoints.env_file(env), mode=0o600)
    except BaseException as exc:
        problems = undo.run()
        if problems:
            message = f"{exc}; and cleaning up failed: " + "; ".join(problems)
            details = getattr(exc, "details", [])
            raise UpError(message, details) from exc
        raise
    return Stack(project, plan, assignment, env, env_file, ready, time.monotonic() - began)


# down and list

def down(client: docker.DockerClient, state_dir: Path, project: str) -> Removed:
    """Remove the stack and its folder, then release its ports (never the other way round: a port is
    free only once nothing of the stack can hold it)."""
    removed = remove_stack(client, project)
    shutil.rmtree(stacks_dir(state_dir) / project, ignore_errors=True)
    if not removed.problems:
        Leases.at(state_dir).release(project)
    return removed


@dataclass(frozen=True)
class Listed:
    project: str
    lease: Lease | Damaged | None
    containers: dict[str, str]  # name -> status
    stale: str


def listing(client: docker.DockerClient, state_dir: Path, *, now: float | None = None) -> list[Listed]:
    now = time.time() if now is None else now
    leases = Leases.at(state_dir)
    records = {lease.project: lease for lease in leases.all()}
    containers: dict[str, dict[str, str]] = {}
    for container in client.containers.list(all=True, filters={"label": PROJECT_LABEL}):
        containers.setdefault(container.labels[PROJECT_LABEL], {})[container.name] = container.status
    mine = set(records) | {project for project, found in labelled_stacks(client).items()
                           if found.get(LEASES_LABEL) == str(leases.root)}
    return [Listed(p, records.get(p), containers.get(p, {}),
                   records[p].stale_because(now) if p in records else "no lease holds it")
            for p in sorted(mine)]
