"""Execute a build plan: `docker compose build` per service, smoke, then move every tag or none.

Each service builds alone (in parallel), so a failure names its service and carries its own log. The
staging tags are removed whatever happens; real tags are written only after every service has built
and passed its smoke command, and then verified through the engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound

from build_images.fingerprint import fingerprint
from build_images.plan import (
    CREATED_LABEL,
    INPUTS_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    BuildPlan,
    ServiceBuild,
    oci_labels,
    plan_build,
)
from build_images.tags import TagRules
from ci_actions import engine, timing
from ci_actions.compose import Compose, write_override

LOG_TAIL = 50
SMOKE_TIMEOUT = 120


class BuildError(Exception):
    """A service failed to build or to pass its smoke command; no tag was moved for any service."""

    def __init__(self, message: str, *, service: str = "", log_tail: list[str] | None = None,
                 smoke_failed: bool = False) -> None:
        super().__init__(message)
        self.service = service
        self.log_tail = log_tail or []
        self.smoke_failed = smoke_failed


@dataclass(frozen=True)
class BuildRequest:
    compose: Compose
    rules: TagRules
    services: list[str] = field(default_factory=list)
    smoke: dict[str, tuple[str, ...]] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    source: str = ""


@dataclass(frozen=True)
class ServiceResult:
    service: str
    refs: list[str]
    image_id: str
    seconds: float
    builder: str
    log: str
    smoke_output: str = ""


@dataclass(frozen=True)
class BuildReport:
    plan: BuildPlan
    results: list[ServiceResult]
    seconds: float

    def images(self) -> dict[str, str]:
        """`{service: ref}` with the full-sha tag: the ref a deploy of this commit uses."""
        return {r.service: r.refs[0] for r in self.results}


def plan(request: BuildRequest) -> tuple[Compose, dict, BuildPlan]:
    """Resolve the compose model and plan the build (no engine needed: this is `--dry-run`)."""
    model = request.compose.config()
    compose = dataclasses.replace(request.compose, project=model["name"])
    labels = oci_labels(sha=request.rules.sha, source=request.source,
                        created=datetime.now(UTC).isoformat(timespec="seconds"))
    build_plan = plan_build(model, services=request.services, rules=request.rules, labels=labels,
                            smoke=request.smoke, token=secrets.token_hex(6), build_args=request.build_args,
                            no_cache=request.no_cache)
    return compose, model, build_plan


def with_reuse(client: docker.DockerClient, model: dict, build_plan: BuildPlan) -> BuildPlan:
    """Fingerprint each service's inputs; one whose inputs match an image already built is not rebuilt
    (unless --no-cache; the fingerprint is still recorded, so the next build can reuse this one)."""
    services = []
    for service in build_plan.services:
        build_spec = model["services"][service.service]["build"]
        with timing.phase("fingerprint", service=service.service):
            inputs = fingerprint(client, build_spec, build_plan.build_args) or ""
        found = []
        if inputs and not build_plan.no_cache:
            found = client.images.list(filters={"label": [f"{PROJECT_LABEL}={build_plan.project}",
                                                          f"{SERVICE_LABEL}={service.service}",
                                                          f"{INPUTS_LABEL}={inputs}"]})
        newest = max(found, key=lambda i: i.labels.get(CREATED_LABEL, ""), default=None)
        services.append(dataclasses.replace(service, inputs=inputs, reuse=newest.id if newest else ""))
    return dataclasses.replace(build_plan, services=services)


def build(request: BuildRequest) -> BuildReport:
    started = time.monotonic()
    client = engine.connect()
    compose, model, build_plan = plan(request)
    build_plan = with_reuse(client, model, build_plan)
    with tempfile.TemporaryDirectory(prefix="ci-actions-build-") as tmp:
        override = write_override(Path(tmp) / "build-images.override.json", build_plan.override())
        try:
            results = _build_all(client, compose, build_plan, override)
            results = [_smoke(client, build_plan, result) for result in results]
            with timing.phase("tag"):
                _tag_all(client, build_plan, results)
        finally:
            _remove_staging(client, build_plan)
    return BuildReport(build_plan, results, time.monotonic() - started)


def _build_all(client: docker.DockerClient, compose: Compose, build_plan: BuildPlan,
               override: Path) -> list[ServiceResult]:
    with ThreadPoolExecutor(max_workers=len(build_plan.services)) as pool:
        futures = [pool.submit(_reuse, client, build_plan, s) if s.reuse else
                   pool.submit(_build_one, compose, build_plan, s, override) for s in build_plan.services]
        outcomes = [f.result() for f in futures]
    failed = [o for o in outcomes if isinstance(o, BuildError)]
    if failed:
        first = failed[0]
        names = ", ".join(f.service for f in failed)
        raise BuildError(f"build failed for {names}; no image was tagged. {first}", service=first.service,
                         log_tail=first.log_tail)
    return [o for o in outcomes if isinstance(o, ServiceResult)]


def _reuse(client: docker.DockerClient, build_plan: BuildPlan,
           service: ServiceBuild) -> ServiceResult | BuildError:
    """Restamp the image built from the same inputs with this build's labels (commit, time): one
    metadata-only step on top of it, no context sent, so prune and deploy read the right commit."""
    started = time.monotonic()
    labels = {**build_plan.labels, SERVICE_LABEL: service.service, INPUTS_LABEL: service.inputs}
    dockerfile = io.BytesIO(f"FROM {service.reuse}\n".encode())
    try:
        with timing.phase("label", service=service.service) as record:
            record["reused"] = True
            client.images.build(fileobj=dockerfile, tag=service.staging_ref, labels=labels, rm=True,
                                pull=False)
    except DockerException as exc:
        return BuildError(f"restamping the unchanged image of {service.service} failed: {exc}",
                          service=service.service)
    return ServiceResult(service.service, service.refs(build_plan.tags), "", time.monotonic() - started, "",
                         f"inputs {service.inputs[:12]} unchanged: reused image {service.reuse}\n")


def _build_one(compose: Compose, build_plan: BuildPlan, service: ServiceBuild,
               override: Path) -> ServiceResult | BuildError:
    started = time.monotonic()
    with timing.phase("build", service=service.service) as record:
        record["reused"] = False
        result = compose.run(*build_plan.build_args_of(service.service), overrides=(override,))
    log = result.stdout + result.stderr
    if result.returncode != 0:
        tail = log.strip().splitlines()[-LOG_TAIL:]
        return BuildError(f"`docker compose build {service.service}` exited {result.returncode}: "
                          f"{tail[-1] if tail else 'no output'}", service=service.service, log_tail=tail)
    return ServiceResult(service.service, service.refs(build_plan.tags), "", time.monotonic() - started,
                         "", log)


def _smoke(client: docker.DockerClient, build_plan: BuildPlan, result: ServiceResult) -> ServiceResult:
    """Run the service's smoke command in a throw-away container with no network."""
    service = next(s for s in build_plan.services if s.service == result.service)
    image = client.images.get(service.staging_ref)
    builder = image.labels.get("com.docker.compose.image.builder", "")
    result = dataclasses.replace(result, image_id=image.id, builder=builder)
    if not service.smoke:
        return result
    with timing.phase("smoke", service=service.service):
        return _run_smoke(client, service, result)


def _run_smoke(client: docker.DockerClient, service: ServiceBuild, result: ServiceResult) -> ServiceResult:
    container = client.containers.run(service.staging_ref, list(service.smoke), detach=True,
                                      network_disabled=True, labels={"io.ci-actions.smoke": service.service})
    try:
        try:
            status = container.wait(timeout=SMOKE_TIMEOUT)["StatusCode"]
        except Exception as exc:  # the SDK raises requests' timeout types: any wait failure is a failed smoke
            status, note = -1, f"did not finish within {SMOKE_TIMEOUT}s ({type(exc).__name__})"
        else:
            note = f"exited {status}"
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    if status != 0:
        raise BuildError(f"smoke command `{' '.join(service.smoke)}` for {service.service} {note}; "
                         "no image was tagged", service=service.service,
                         log_tail=output.strip().splitlines()[-LOG_TAIL:], smoke_failed=True)
    return dataclasses.replace(result, smoke_output=output.strip())


def _tag_all(client: docker.DockerClient, build_plan: BuildPlan, results: list[ServiceResult]) -> None:
    """Move every tag, then check through the engine that each ref names the image just built. If the
    engine fails or disagrees part-way, every ref already moved is put back: all services or none."""
    before = {ref: _image_id(client, ref) for result in results for ref in result.refs}
    try:
        for result in results:
            image = client.images.get(result.image_id)
            for ref in result.refs:
                repository, _, tag = ref.rpartition(":")
                image.tag(repository, tag)
        for result in results:
            for ref in result.refs:
                found = _image_id(client, ref) or "nothing"
                if found != result.image_id:
                    raise BuildError(f"verify: {ref} names {found}, not the image built for {result.service} "
                                     f"({result.image_id}); no tag was moved", service=result.service)
    except (DockerException, BuildError) as exc:
        _put_back(client, before)
        if isinstance(exc, BuildError):
            raise
        raise BuildError(f"tagging failed ({exc}); every tag was put back as it was") from exc


def _image_id(client: docker.DockerClient, ref: str) -> str:
    try:
        return client.images.get(ref).id
    except ImageNotFound:
        return ""


def _put_back(client: docker.DockerClient, before: dict[str, str]) -> None:
    for ref, image_id in before.items():
        repository, _, tag = ref.rpartition(":")
        with contextlib.suppress(DockerException):
            if image_id:
                client.images.get(image_id).tag(repository, tag)
            elif _image_id(client, ref):
                client.images.remove(ref)


def _remove_staging(client: docker.DockerClient, build_plan: BuildPlan) -> None:
    """Untag the staging refs (the image stays when real tags hold it; a failed build's goes away)."""
    for service in build_plan.services:
        # already gone, or still used by a failed smoke's container: left for the next prune
        with contextlib.suppress(DockerException):
            client.images.remove(service.staging_ref, noprune=False)

