"""A deploy from request to ledger, and always landing on a healthy version.

First the plan, with every input check (nothing locked or touched yet); then, under the project's
lock, crash recovery of an interrupted deploy, the live release's images, the plan bound to what
serves now (what its inverses go back to), the `started` line, and the executor. The operations and
their order are plan.py's; what each does, effects.py's.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from ci_actions import engine, ledger
from ci_actions.compose import Compose
from ci_actions.image_names import REVISION_LABEL
from hotswap_deploy import envfile, operations
from hotswap_deploy.effects import DeployError, Run
from hotswap_deploy.executor import Executor
from hotswap_deploy.host import DockerHost, Host
from hotswap_deploy.lock import deploy_lock
from hotswap_deploy.plan import DeployPlan, plan_deploy
from hotswap_deploy.proxy import Proxy
from hotswap_deploy.recover import recover
from hotswap_deploy.settings import Settings


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


@dataclass(frozen=True)
class DeployReport:
    release: ledger.Release
    plan: DeployPlan
    timings: dict[str, float]
    recovered: str = ""
    downtime: dict[str, float] = field(default_factory=dict)  # recreate only: what the user is shown
    warnings: list[str] = field(default_factory=list)


def new_release_id(sha: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{sha[:7]}-{secrets.token_hex(2)}"


def deploy(request: DeployRequest) -> DeployReport:
    """Guarded by the caller (guard.check); plans, takes the project's lock, recovers an interrupted
    deploy, then deploys. Raises DeployError only after the system is back on a healthy version."""
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
    compose, plan, proxy = _planned(request, client, staged)
    images = _target_images(client, plan)
    book = ledger.Ledger(settings.state_dir, compose.project)
    holder = {"sha": plan.sha, "run": request.run or "local"}
    with deploy_lock(book.directory, timeout=request.lock_timeout, holder=holder):
        with DockerHost(client, compose) as host:
            recovered = recover(host, book, proxy, settings.keep)
        _check_live_images(client, book)
        settings.save(book.directory)
        if staged is not None:
            compose = compose.with_env_file(envfile.install(staged, book.directory))
        with DockerHost(client, compose, plan.override_yaml()) as host:
            plan = _bound(plan, host, proxy)
            recorded = [operations.to_json(op) for op in plan.operations]
            release = ledger.Release(plan.release_id, plan.sha, request.kind, images, request.run,
                                     request.actor, ledger.now(), recorded)
            book.start(release)
            run = Run(release.id, {t.service: t for t in plan.targets}, host, proxy,
                      list((request.env_values or {}).values()))
            executor = Executor(plan.operations, run, plan.sha, record=lambda i: book.done(release, i))
            try:
                executor.execute()
            except DeployError as exc:  # the executor already put back what it reached
                book.finish(release, "rolled-back" if exc.rolled_back else "aborted",
                            reason=str(exc).splitlines()[0])
                raise
        targets = ledger.next_rollback_targets(book.releases(), plan.sha, settings.keep)
        book.finish(release, ledger.LIVE, rollback_targets=targets)
        release = next(r for r in book.releases() if r.id == release.id)
    return DeployReport(release, plan, run.timings, recovered, run.downtime, run.warnings)


def plan_only(request: DeployRequest) -> DeployPlan:
    """The plan `--dry-run` prints: resolved from the compose model (with the new env values, staged in
    a private temp dir that is removed at once) and checked as a deploy checks it, the images included,
    with no lock and nothing changed (the engine is only read)."""
    with tempfile.TemporaryDirectory(prefix="ci-actions-dry-run-") as tmp:
        staged = None if request.env_values is None else envfile.stage(Path(tmp), request.env_values)
        client = engine.connect()
        _compose, plan, _proxy = _planned(request, client, staged)
    _target_images(client, plan)
    return plan


def _planned(request: DeployRequest, client: docker.DockerClient,
             staged: Path | None) -> tuple[Compose, DeployPlan, Proxy | None]:
    """Every input check: the compose model, the commit, and the plan (the proxy/strategy one too).
    A rollback re-deploys retained images as they were: its migrations already ran."""
    settings = request.settings
    compose, model = resolve_compose(settings.compose, settings.state_dir, staged)
    sha = resolve_sha(client, request)
    proxy = settings.proxy_for(compose.project)
    plan = plan_deploy(model, release_id=new_release_id(sha), sha=sha, strategy=settings.strategy,
                       services=settings.services, images=request.images, health=settings.health, proxy=proxy,
                       migrate=settings.migrate if request.kind == "deploy" else (),
                       watch_seconds=settings.watch_seconds)
    return compose, plan, proxy


def _bound(plan: DeployPlan, host: Host, proxy: Proxy | None) -> DeployPlan:
    """What serves now, which the inverses go back to: each upstream (blue-green), or the running
    container's image and commit (recreate)."""
    services = [t.service for t in plan.targets]
    upstreams = {s: proxy.current(s) for s in services} if proxy and plan.strategy == "blue-green" else {}
    running = {}
    if plan.strategy == "recreate":
        for service in services:
            up = [box for box in host.containers(service) if box.status == "running"]
            running[service] = operations.Previous(up[0].image, up[0].sha) if up else None
    return plan.bound(upstreams, running)


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


def _target_images(client: docker.DockerClient, plan: DeployPlan) -> dict[str, ledger.Image]:
    """Every target image must exist before anything is touched; the ids are what the ledger keeps."""
    ids = _require(client, {f"{t.image} (for {t.service})": t.image for t in plan.targets})
    return {t.service: ledger.Image(t.image, id_) for t, id_ in zip(plan.targets, ids, strict=True)}


def _check_live_images(client: docker.DockerClient, book: ledger.Ledger) -> None:
    """The live release's images are what a rollback needs: gone, and a failure could not go back."""
    current = ledger.live(book.releases())
    _require(client, {f"{i.ref} ({s}'s live image, needed to roll back)": i.id
                      for s, i in (current.images.items() if current else ())})


def _require(client: docker.DockerClient, images: dict[str, str]) -> list[str]:
    """The ids of `images` ({what to call it: ref or id}); any missing is one error naming them all."""
    ids, missing = [], []
    for name, ref in images.items():
        try:
            ids.append(client.images.get(ref).id)
        except ImageNotFound:
            missing.append(name)
    if missing:
        raise DeployError(f"image(s) missing on this host: {'; '.join(missing)}. Nothing was touched.")
    return ids
