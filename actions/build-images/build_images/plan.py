"""Pure planning for build-images: what to build with which compose override, and what a prune removes.

Nothing here touches the engine; `build.py` and `prune.py` execute these plans, and `--dry-run` prints
them. Every service is built under a throw-away staging tag, so no real tag moves until every service
has built and passed its smoke command: all services are tagged or none.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from build_images.tags import TagRules
from ci_actions.image_names import REVISION_LABEL, service_repository

PROJECT_LABEL = "io.ci-actions.project"
SERVICE_LABEL = "io.ci-actions.service"
CREATED_LABEL = "org.opencontainers.image.created"
SOURCE_LABEL = "org.opencontainers.image.source"
INPUTS_LABEL = "io.ci-actions.inputs"


class PlanError(ValueError):
    """The compose model or an input cannot give a build; the message names the service or input."""


@dataclass(frozen=True)
class ServiceBuild:
    service: str
    repository: str
    staging_ref: str
    smoke: tuple[str, ...] = ()
    inputs: str = ""  # fingerprint of what the image is built from ("" when it cannot be pinned)
    reuse: str = ""  # id of an image already built from the same inputs: no build

    def refs(self, tags: list[str]) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in tags]


@dataclass(frozen=True)
class BuildPlan:
    project: str
    services: list[ServiceBuild]
    tags: list[str]
    labels: dict[str, str]
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False

    def override(self) -> dict[str, dict]:
        """The compose override: only the image name (the staging tag), labels and build args change."""
        return {s.service: {"image": s.staging_ref,
                            "build": {"labels": {**self.labels, SERVICE_LABEL: s.service,
                                                 **({INPUTS_LABEL: s.inputs} if s.inputs else {})},
                                      **({"args": self.build_args} if self.build_args else {})}}
                for s in self.services if not s.reuse}

    def build_args_of(self, service: str) -> list[str]:
        """`docker compose build` argv tail for one service (each service builds alone: its own log)."""
        return ["build", *(["--no-cache"] if self.no_cache else []), service]

    def describe(self) -> list[str]:
        lines = [f"project {self.project}: tags {', '.join(self.tags)}"]
        for s in self.services:
            how = (f"unchanged inputs, reuses {s.reuse[7:19]}" if s.reuse else
                   f"docker compose {shlex.join(self.build_args_of(s.service))}")
            lines.append(f"  {s.service}: {how} -> {', '.join(s.refs(self.tags))}"
                         + (f"; smoke `{shlex.join(s.smoke)}`" if s.smoke else ""))
        return lines


def _check_build_source(service: str, build: dict) -> None:
    """A missing context or Dockerfile is named by service before anything builds."""
    context = str(build.get("context", ""))
    if "://" in context or context.startswith("git@") or "dockerfile_inline" in build:
        return
    path = Path(context)
    if not path.is_dir():
        raise PlanError(f"service {service}: build context {path} does not exist")
    dockerfile = Path(build.get("dockerfile") or "Dockerfile")
    dockerfile = dockerfile if dockerfile.is_absolute() else path / dockerfile
    if not dockerfile.is_file():
        raise PlanError(f"service {service}: Dockerfile {dockerfile} does not exist")


def plan_build(model: dict, *, services: list[str], rules: TagRules, labels: dict[str, str],
               smoke: dict[str, tuple[str, ...]], token: str, build_args: dict[str, str] | None = None,
               no_cache: bool = False) -> BuildPlan:
    """From compose's resolved model: every requested service (default: every one with `build:`)."""
    project = model["name"]
    declared = model.get("services", {})
    buildable = [name for name, spec in declared.items() if spec.get("build")]
    wanted = services or [name for name in buildable if not base_only(declared[name])]
    for name in [*wanted, *smoke]:
        if name not in declared:
            raise PlanError(f"service {name} is not in the compose project {project} "
                            f"(services: {', '.join(declared) or 'none'})")
    for name in smoke:
        if name not in wanted:
            raise PlanError(f"smoke-command names {name}, which this build does not build "
                            f"(building: {', '.join(wanted) or 'nothing'})")
    for name in wanted:
        if name not in buildable:
            raise PlanError(f"service {name} has no `build:` section in the compose files")
        _check_build_source(name, declared[name]["build"])
    if not wanted:
        raise PlanError(f"no service of project {project} has a `build:` section")
    builds = []
    for name in wanted:
        repository = service_repository(project, name, declared[name])
        builds.append(ServiceBuild(name, repository, f"{repository}:ci-build-{token}", smoke.get(name, ())))
    return BuildPlan(project, builds, rules.tags(), {PROJECT_LABEL: project, **labels},
                     build_args or {}, no_cache)


def base_only(spec: dict) -> bool:
    """A service that runs no container (`scale: 0`): an image other services build FROM (the example
    app's backend-deps), built by compose under its own stable tag, never a release's. Built only when
    named."""
    return spec.get("scale") == 0 or (spec.get("deploy") or {}).get("replicas") == 0


def oci_labels(*, sha: str, created: str, source: str) -> dict[str, str]:
    return {REVISION_LABEL: sha, CREATED_LABEL: created, **({SOURCE_LABEL: source} if source else {})}


@dataclass(frozen=True)
class LocalImage:
    """One image of the project as the engine lists it."""

    id: str
    tags: tuple[str, ...]
    service: str
    revision: str
    created: str
    size: int


@dataclass(frozen=True)
class PrunePlan:
    kept: dict[str, str]  # image id -> why it stays
    remove: list[LocalImage]


def plan_prune(images: list[LocalImage], *, keep: int, in_use: set[str], protected: set[str]) -> PrunePlan:
    """Keep the newest `keep` releases (one release = one revision), every image a container uses and
    every image the release ledger protects (live, rollback targets, in flight); remove the rest."""
    if keep < 1:
        raise PlanError(f"keep must be at least 1 (got {keep}): the newest release is never pruned")
    newest: dict[str, str] = {}
    for image in images:
        newest[image.revision] = max(newest.get(image.revision, ""), image.created)
    recent = set(sorted(newest, key=lambda rev: newest[rev], reverse=True)[:keep])
    kept: dict[str, str] = {}
    remove = []
    for image in images:
        if image.id in protected:
            kept[image.id] = "named by the release ledger (live, rollback target or in flight)"
        elif image.id in in_use:
            kept[image.id] = "used by a container"
        elif image.revision in recent and image.tags:
            kept[image.id] = f"one of the newest {keep} releases"
        else:
            remove.append(image)
    return PrunePlan(kept, remove)
