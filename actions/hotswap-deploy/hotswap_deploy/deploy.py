"""Execute a deploy plan, and always land on a healthy version.

Blue-green, per service in order: start the new container beside the old ones (compose, image
changed only), wait until it answers its health URL with the new version, switch the proxy with the
old containers as nginx `backup` servers, and move on. Then watch every new container for the window;
the old ones stay alive, so a crash costs nothing (nginx retries on the backup) and the rollback is
one proxy switch. Any failure switches back every service already switched, removes the new
containers and fails with a diagnosis. Success retires the old containers and records the release.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from ci_actions import engine, ledger
from ci_actions.compose import Compose, ComposeError, write_override
from ci_actions.image_names import REVISION_LABEL
from hotswap_deploy import containers, envfile
from hotswap_deploy.health import HealthCheck, HealthError, probe, wait_healthy, with_port
from hotswap_deploy.lock import deploy_lock
from hotswap_deploy.plan import SHA_ENV, DeployPlan, ServiceTarget, plan_deploy
from hotswap_deploy.proxy import Proxy, ProxyError, Upstream
from hotswap_deploy.recover import recover
from hotswap_deploy.settings import Settings

WATCH_FAILURES = 3  # consecutive failed probes of a new container that end the watch


class DeployError(Exception):
    """The deploy did not go live; the system already serves the previous release again (`rolled_back`
    says whether anything had to be switched back to get there)."""

    def __init__(self, message: str, *, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


@dataclass(frozen=True)
class DeployRequest:
    settings: Settings
    images: dict[str, str] = field(default_factory=dict)
    sha: str = ""
    env_values: dict[str, str] | None = None
    kind: str = "deploy"
    run: str = ""
    actor: str = ""
    lock_timeout: float = 600.0


@dataclass
class Swap:
    """One service's switch: what served before, the new container, and how far it got."""

    target: ServiceTarget
    old: list[Container]
    previous: Upstream | None
    new: Container | None = None
    new_address: str = ""
    restarts: int = 0
    switched: bool = False


@dataclass(frozen=True)
class DeployReport:
    release: ledger.Release
    plan: DeployPlan
    timings: dict[str, float]
    recovered: str = ""
    downtime: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def new_release_id(sha: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{sha[:7]}-{secrets.token_hex(2)}"


def deploy(request: DeployRequest) -> DeployReport:
    """Guarded by the caller (guard.check); takes the project's lock, recovers an interrupted deploy,
    then deploys. Raises DeployError only after the system is back on a healthy version."""
    settings = request.settings
    client = engine.connect()
    staged = None if request.env_values is None else envfile.stage(settings.state_dir, request.env_values)
    try:
        return _deploy(request, client, staged)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def resolve_compose(compose: Compose, state_dir: Path, env_file: Path | None = None) -> tuple[Compose, dict]:
    """The project's compose, interpolating from `env_file` (else the env file the last deploy
    installed), with its project name resolved, and the model compose makes of it."""
    if env_file is None:
        project = compose.project or compose.config()["name"]
        installed = ledger.project_dir(state_dir, project) / envfile.NAME
        env_file = installed if installed.is_file() else None
    if env_file is not None:
        compose = compose.with_env_file(env_file)
    model = compose.config()
    return dataclasses.replace(compose, project=model["name"]), model


def _deploy(request: DeployRequest, client: docker.DockerClient, staged: Path | None) -> DeployReport:
    settings = request.settings
    compose, model = resolve_compose(settings.compose, settings.state_dir, staged)
    book = ledger.Ledger(settings.state_dir, compose.project)
    holder = {"sha": request.sha or "(from images)", "run": request.run or "local"}
    with deploy_lock(book.directory, timeout=request.lock_timeout, holder=holder):
        proxy = settings.proxy_for(compose.project)
        recovered = recover(client, book, proxy, model, settings.services, settings.keep)
        sha = resolve_sha(client, request)
        plan = _plan(request, model, sha)
        release_id = plan.release_id
        if plan.strategy == "blue-green" and proxy is None:
            raise DeployError("blue-green needs a proxy (nginx-config and upstream-dir); use strategy "
                              "recreate for services that publish a fixed host port. Nothing was touched.")
        images = _check_images(client, book, plan)
        settings.save(book.directory)
        if staged is not None:
            compose = compose.with_env_file(envfile.install(staged, book.directory))
        release = ledger.Release(release_id, sha, request.kind, images, _live_id(book), request.run,
                                 request.actor, ledger.now())
        book.start(release)
        runner = _Runner(client, compose, plan, proxy, request,
                         on_switched=lambda service: book.switched(release, service))
        try:
            timings = runner.run()
        except Exception as exc:  # whatever failed, the release is finished in the ledger, never left open
            failure = exc if isinstance(exc, DeployError) else DeployError(
                f"deploy of {sha[:12]} stopped by an unexpected error ({type(exc).__name__}: {exc}); "
                f"nothing was switched", rolled_back=False)
            outcome = "rolled-back" if failure.rolled_back else "aborted"
            book.finish(release, outcome, reason=str(failure).splitlines()[0], timings=runner.timings)
            if failure is exc:
                raise
            raise failure from exc
        targets = ledger.next_rollback_targets(book.releases(), sha, settings.keep)
        book.finish(release, ledger.LIVE, timings=timings, rollback_targets=targets)
        release = next(r for r in book.releases() if r.id == release_id)
    return DeployReport(release, plan, timings, recovered, runner.downtime, runner.warnings)


def plan_only(request: DeployRequest) -> DeployPlan:
    """The plan `--dry-run` prints: resolved from the compose model (with the new env values, staged in
    a private temp dir that is removed at once), with no lock and nothing changed. The engine is only
    asked for the images' revision label when no sha is given."""
    settings = request.settings
    with tempfile.TemporaryDirectory(prefix="ci-actions-dry-run-") as tmp:
        staged = None if request.env_values is None else envfile.stage(Path(tmp), request.env_values)
        _compose, model = resolve_compose(settings.compose, settings.state_dir, staged)
    return _plan(request, model, resolve_sha(engine.connect(), request) if not request.sha else request.sha)


def _plan(request: DeployRequest, model: dict, sha: str) -> DeployPlan:
    """A rollback re-deploys retained images as they were: its migrations already ran."""
    settings = request.settings
    return plan_deploy(model, release_id=new_release_id(sha or "0000000"), sha=sha,
                       strategy=settings.strategy, services=settings.services, images=request.images,
                       health=settings.health,
                       migrate=settings.migrate if request.kind == "deploy" else (),
                       watch_seconds=settings.watch_seconds)


def resolve_sha(client: docker.DockerClient, request: DeployRequest) -> str:
    """The commit being deployed: `sha`, else the one build-images labelled the images with."""
    if request.sha:
        return request.sha
    for service in request.settings.services:
        ref = request.images.get(service)
        if ref:
            try:
                revision = client.images.get(ref).labels.get(REVISION_LABEL, "")
            except ImageNotFound:
                raise DeployError(f"image {ref} for {service} does not exist on this host; nothing was "
                                  "touched (build it with build-images first)") from None
            if revision:
                return revision
    raise DeployError("cannot tell the commit: give `sha`, or images built by build-images (they carry "
                      f"{REVISION_LABEL})")


def _live_id(book: ledger.Ledger) -> str | None:
    current = ledger.live(book.releases())
    return current.id if current else None


def _check_images(client: docker.DockerClient, book: ledger.Ledger,
                  plan: DeployPlan) -> dict[str, ledger.Image]:
    """Every target image, and every image of the live release (what a rollback needs), must exist
    before anything is touched."""
    found: dict[str, ledger.Image] = {}
    missing = []
    for target in plan.targets:
        try:
            found[target.service] = ledger.Image(target.image, client.images.get(target.image).id)
        except ImageNotFound:
            missing.append(f"{target.image} (for {target.service})")
    current = ledger.live(book.releases())
    for service, image in (current.images.items() if current else ()):
        try:
            client.images.get(image.id)
        except ImageNotFound:
            missing.append(f"{image.ref} ({service}'s live image, needed to roll back)")
    if missing:
        raise DeployError(f"image(s) missing on this host: {'; '.join(missing)}. Nothing was touched.")
    return found


class _Runner:
    """One deploy's side effects, in order, with the rollback that undoes them."""

    def __init__(self, client: docker.DockerClient, compose: Compose, plan: DeployPlan, proxy: Proxy | None,
                 request: DeployRequest, on_switched: Callable[[str], None]) -> None:
        self.client, self.compose, self.plan, self.proxy = client, compose, plan, proxy
        self.on_switched = on_switched
        self.secrets = list((request.env_values or {}).values())
        self.timings: dict[str, float] = {}
        self.downtime: dict[str, float] = {}
        self.swaps: list[Swap] = []
        self.warnings: list[str] = []
        self.started = time.monotonic()

    def mark(self, name: str) -> None:
        self.timings[name] = round(time.monotonic() - self.started, 3)

    def run(self) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="ci-actions-deploy-") as tmp:
            override = Path(tmp) / "hotswap-deploy.override.yml"
            override.write_text(self.plan.override_yaml())
            self._migrate(override)
            if self.plan.strategy == "recreate":
                self._recreate_all(override)
            else:
                self._blue_green(override)
        self.mark("total")
        return self.timings

    def _migrate(self, override: Path) -> None:
        if not self.plan.migrate:
            return
        result = self.compose.run(*self.plan.migrate_args(), overrides=(override,), timeout=1800)
        self.mark("migrated")
        if result.returncode != 0:
            output = containers.mask((result.stdout + result.stderr).strip(), self.secrets)
            tail = output.splitlines()[-30:]
            cause = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
            raise DeployError(f"migration failed (exit {result.returncode}): {cause}; nothing was switched "
                              f"and the current version keeps serving. Its last {len(tail)} lines:\n"
                              + "\n".join(tail))

    def _blue_green(self, override: Path) -> None:
        """Until every proxy serves only the new containers, any failure at all rolls back; after that
        the release is live, and an old container that will not go away is a warning."""
        try:
            for target in self.plan.targets:
                self._swap_in(target, override)
            self._watch()
            for swap in self.swaps:
                self.proxy.switch(swap.target.service, Upstream([swap.new_address], []))
        except Exception as exc:  # whatever broke, production goes back to the old containers
            known = (DeployError, HealthError, ProxyError, ComposeError, APIError, LookupError)
            self._roll_back(str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}")
        self._retire()

    def _swap_in(self, target: ServiceTarget, override: Path) -> None:
        service = target.service
        found = containers.service_containers(self.client, self.plan.project, service)
        for container in containers.stopped(found):
            _remove(container, grace=0)
            self.warnings.append(f"removed the stopped container {container.name} of {service} "
                                 f"({container.status}) before starting the new one")
        old = [c for c in found if c.status not in containers.STOPPED]
        swap = Swap(target, old, self.proxy.current(service))
        self.swaps.append(swap)
        began = time.monotonic()
        self.compose.check(*self.plan.start_args(service, len(old) + 1), overrides=(override,), timeout=300)
        swap.new = self._new_container(service)
        swap.restarts = swap.new.attrs.get("RestartCount", 0)
        swap.new_address = containers.address(swap.new, target.port)
        check = dataclasses.replace(target.health, url=with_port(target.health.url,
                                                                 int(swap.new_address.rsplit(":", 1)[1])))
        wait_healthy(check, alive=lambda: containers.death(swap.new, swap.restarts))
        self.timings[f"{service}.healthy_after"] = round(time.monotonic() - began, 3)
        # the old containers are exactly what the proxy served until now
        backup = [a for a in (swap.previous.primary if swap.previous else []) if a != swap.new_address]
        self.proxy.switch(service, Upstream([swap.new_address], backup))
        swap.switched = True
        self.on_switched(service)
        self.timings[f"{service}.switched_after"] = round(time.monotonic() - began, 3)
        self.mark(f"{service}.switched")

    def _new_container(self, service: str) -> Container:
        mine = [c for c in containers.service_containers(self.client, self.plan.project, service)
                if c.labels.get(containers.RELEASE_LABEL) == self.plan.release_id]
        if not mine:
            raise DeployError(f"compose started no new container for {service}")
        return mine[-1]

    def _watch(self) -> None:
        """For the window, every new container must stay up and keep answering its health URL."""
        if not self.plan.watch_seconds:
            return
        self.mark("watch_started")
        deadline = time.monotonic() + self.plan.watch_seconds
        failures = {swap.target.service: 0 for swap in self.swaps}
        while time.monotonic() < deadline:
            for swap in self.swaps:
                service = swap.target.service
                reason = containers.death(swap.new, swap.restarts)
                if reason:
                    raise DeployError(f"{service} failed in the watch window: {reason}")
                port = int(swap.new_address.rsplit(":", 1)[1])
                result = probe(dataclasses.replace(swap.target.health,
                                                   url=with_port(swap.target.health.url, port)))
                failures[service] = 0 if result.ok else failures[service] + 1
                if failures[service] >= WATCH_FAILURES:
                    raise DeployError(f"{service} stopped passing its health check in the watch window: "
                                      f"{result.detail}")
            time.sleep(min(self._interval(), max(0.0, deadline - time.monotonic())))
        self.mark("watched")

    def _interval(self) -> float:
        return min(swap.target.health.interval for swap in self.swaps) if self.swaps else 1.0

    def _retire(self) -> None:
        """Stop the old containers gracefully (they get no traffic any more) and remove them."""
        for swap in self.swaps:
            for container in swap.old:
                try:
                    _remove(container, grace=swap.target.stop_grace)
                except DockerException as exc:
                    self.warnings.append(f"old container {container.name} of {swap.target.service} was not "
                                         f"removed ({exc}); it gets no traffic, remove it by hand")
        self.mark("retired")

    def _roll_back(self, why: str) -> None:
        """Switch back every service already switched, remove every new container, then raise."""
        diagnosis = [containers.diagnosis(s.new, self.secrets) for s in self.swaps if s.new is not None]
        problems = []
        for swap in reversed(self.swaps):
            if swap.switched:  # a service nginx had no upstream for goes to the placeholder (503)
                try:
                    self.proxy.switch(swap.target.service, swap.previous or self.proxy.placeholder())
                except ProxyError as exc:
                    problems.append(f"switching {swap.target.service} back failed: {exc}")
        for swap in self.swaps:
            if swap.new is not None:
                _remove(swap.new, grace=0)
        self.mark("rolled_back")
        services = ", ".join(s.target.service for s in self.swaps if s.switched) or "none"
        raise DeployError("\n".join([f"deploy of {self.plan.sha[:12]} failed and was rolled back "
                                     f"(services switched back: {services}): {why}", *problems,
                                     *diagnosis]), rolled_back=True)

    def _recreate_all(self, override: Path) -> None:
        """The seed's behaviour, measured: compose replaces each container in place (downtime). A
        service that is not healthy afterwards, and every one recreated before it, is recreated again
        from the image it ran before."""
        previous: dict[str, Container] = {}
        for target in self.plan.targets:
            service = target.service
            old = containers.running(containers.service_containers(self.client, self.plan.project, service))
            if old:
                previous[service] = old[0]
            began = time.monotonic()
            with _DowntimeMeter(target.health) as meter:
                try:
                    self.compose.check(*self.plan.recreate_args(service), overrides=(override,), timeout=600)
                    wait_healthy(target.health)
                except (HealthError, ComposeError) as exc:
                    self._recreate_back(previous, f"{service} is not healthy after recreate: {exc}")
            self.downtime[service] = meter.downtime
            self.timings[f"{service}.healthy_after"] = round(time.monotonic() - began, 3)
        self.mark("recreated")

    def _recreate_back(self, previous: dict[str, Container], why: str) -> None:
        """Recreate each service from the image its old container ran, with the commit it had."""
        if not previous:
            raise DeployError(f"{why}; there was no earlier container to go back to")
        images = {service: c.attrs["Config"]["Image"] for service, c in previous.items()}
        specs = {}
        for service, container in previous.items():
            sha = containers.env_of(container, SHA_ENV)
            specs[service] = {"image": images[service], **({"environment": {SHA_ENV: sha}} if sha else {})}
        with tempfile.TemporaryDirectory(prefix="ci-actions-deploy-") as tmp:
            back = write_override(Path(tmp) / "previous.override.json", specs)
            for service in previous:
                try:
                    self.compose.check(*self.plan.recreate_args(service), overrides=(back,), timeout=600)
                except ComposeError as exc:
                    raise DeployError(f"{why}; going back to {images[service]} failed too, so {service} "
                                      f"may be down: {exc}", rolled_back=True) from exc
        self.mark("rolled_back")
        raise DeployError(f"{why}; recreated {', '.join(f'{s} from {i}' for s, i in images.items())}",
                          rolled_back=True)


def _remove(container: Container, *, grace: float) -> None:
    """Graceful stop (whole seconds, rounded up: compose's grace of 500ms still gets a second), remove."""
    try:
        if grace:
            container.stop(timeout=math.ceil(grace))
        container.remove(force=True)
    except NotFound:
        pass


class _DowntimeMeter:
    """Probes a URL every 100 ms in a thread while recreate runs; downtime is the longest failing span.
    The caller leaves only once the service answers again, so a span still open at exit ends there."""

    def __init__(self, check: HealthCheck) -> None:
        self.check = dataclasses.replace(check, body_match="", request_timeout=0.3)
        self.downtime = 0.0
        self._down_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _DowntimeMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._up(time.monotonic())

    def _up(self, now: float) -> None:
        if self._down_since is not None:
            self.downtime = max(self.downtime, now - self._down_since)
            self._down_since = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if probe(self.check).ok:
                self._up(now)
            elif self._down_since is None:
                self._down_since = now
            self._stop.wait(0.1)
