"""From compose's resolved model to the stack a job gets: which services start, which host port each
published port moves to, and the override file that says so. Pure: nothing here runs anything.

The override changes only what isolation and production's share of the machine need, so env, volumes,
health checks and commands stay as the user wrote them:
- every published port of a started service is replaced (`!override`) by a leased one on 127.0.0.1;
- a fixed `container_name` is dropped (`!reset`): two jobs cannot both own one name;
- a service that sets no `cpu_shares` gets a low one: production's containers on the same machine are
  served first when a test database is busy (our other heavy work runs at nice 10 for the same reason);
- every container, and every network and volume the project creates, carries our labels, which is how
  teardown and the reaper find them (and never anything else).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
LABEL = "ci-actions.test-services"
PROJECT_LABEL = f"{LABEL}.project"
LEASES_LABEL = f"{LABEL}.leases"  # the lease folder that holds the stack's record
EXPIRES_LABEL = f"{LABEL}.expires"  # epoch seconds after which any reaper may remove it
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
LOW_CPU_SHARES = 128  # an eighth of a container's default weight (1024)


class PlanError(ValueError):
    """The inputs and the compose model do not make a stack; the message names the input or service."""


@dataclass(frozen=True)
class PublishedPort:
    """One published port of a service, as the files give it (`published` is '' for an ephemeral one)."""

    service: str
    target: int
    protocol: str = "tcp"
    published: str = ""

    @property
    def key(self) -> str:
        """`5432` for TCP, `53-udp` otherwise: how outputs and env names tell a service's ports apart."""
        return str(self.target) if self.protocol == "tcp" else f"{self.target}-{self.protocol}"


@dataclass(frozen=True)
class StackPlan:
    project: str
    files: tuple[str, ...]
    defined: tuple[str, ...]  # every service the files define (any profile)
    services: tuple[str, ...]  # what starts: the wanted ones and what they depend on, in file order
    wanted: tuple[str, ...]
    ports: tuple[PublishedPort, ...]  # each needs one leased host port, in this order
    container_names: tuple[str, ...] = ()  # services whose fixed container_name is dropped
    weighted: tuple[str, ...] = ()  # services whose files set their own cpu_shares (kept)
    volumes: tuple[str, ...] = ()  # the project's own volumes and networks (they get our labels)
    networks: tuple[str, ...] = ()

    def describe(self, assignment: dict[PublishedPort, int] | None = None) -> list[str]:
        dependencies = [name for name in self.services if name not in self.wanted]
        lines = [f"project {self.project} from {', '.join(self.files)}",
                 f"start {', '.join(self.services)}"
                 + (f" ({', '.join(dependencies)}: needed by the others)" if dependencies else "")]
        for port in self.ports:
            host = f"{LOOPBACK}:{assignment[port]}" if assignment else f"{LOOPBACK}:<leased>"
            was = f" (the file says {port.published})" if port.published else ""
            lines.append(f"  {port.service} {port.target}/{port.protocol} -> {host}{was}")
        lines += [f"  {name}: fixed container_name dropped" for name in self.container_names]
        return lines


def _services_model(model: dict) -> dict[str, dict]:
    services = model.get("services")
    if not isinstance(services, dict) or not services:
        raise PlanError("the compose files define no services")
    return services


def _depends_on(spec: dict) -> list[str]:
    depends = spec.get("depends_on") or {}
    names = list(depends)  # a mapping (compose's resolved form) or a list
    mode = str(spec.get("network_mode") or "")
    if mode.startswith("service:"):
        names.append(mode.removeprefix("service:"))
    return names


def closure(services: dict[str, dict], wanted: list[str]) -> list[str]:
    """The wanted services and everything they depend on, in the files' order."""
    seen: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in seen or name not in services:
            continue
        seen.add(name)
        stack.extend(_depends_on(services[name]))
    return [name for name in services if name in seen]


def _ports(name: str, spec: dict) -> list[PublishedPort]:
    ports = []
    for entry in spec.get("ports") or []:
        if not isinstance(entry, dict) or "target" not in entry:
            raise PlanError(f"service {name}: a ports entry compose did not resolve: {entry!r}")
        ports.append(PublishedPort(name, int(entry["target"]), str(entry.get("protocol") or "tcp"),
                                   str(entry.get("published") or "")))
    return ports


def _replicas(spec: dict) -> int:
    deploy = spec.get("deploy") or {}
    value = spec.get("scale", deploy.get("replicas") if isinstance(deploy, dict) else None)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 1


def _own(kind: str, project: str, entries: dict, problems: list[str]) -> list[str]:
    """The project's own volumes or networks. One with a fixed `name:` would be shared by every job that
    starts this file at the same time (their data mixed), so it is refused; external ones are left alone."""
    own = []
    for key, spec in (entries or {}).items():
        spec = spec or {}
        if spec.get("external"):
            continue
        name = spec.get("name")
        if name and name != f"{project}_{key}":
            problems.append(f"{kind} {key!r} is named {name!r}: every job would share it. Remove its `name:` "
                            "(compose then names it after the project), or declare it external")
            continue
        own.append(key)
    return own


def plan_stack(model: dict, project: str, files: tuple[str, ...], wanted: list[str]) -> StackPlan:
    """The stack for `wanted` (empty: every service outside a profile, compose's own default)."""
    services = _services_model(model)
    defined = list(services)
    unknown = [name for name in wanted if name not in services]
    if unknown:
        raise PlanError(f"services: {', '.join(repr(n) for n in unknown)} "
                        f"{'is' if len(unknown) == 1 else 'are'} not defined in {', '.join(files)} "
                        f"(defined: {', '.join(defined)})")
    wanted = list(dict.fromkeys(wanted)) or [n for n, s in services.items() if not s.get("profiles")]
    if not wanted:
        raise PlanError(f"services: every service in {', '.join(files)} is in a profile; name the ones to "
                        f"start (defined: {', '.join(defined)})")
    started = closure(services, wanted)
    problems: list[str] = []
    ports: list[PublishedPort] = []
    for name in started:
        spec = services[name]
        published = _ports(name, spec)
        if str(spec.get("network_mode") or "") == "host":
            problems.append(f"service {name} uses network_mode: host, so its ports are the host's own and "
                            "cannot be leased; give it ports: instead")
        if published and _replicas(spec) > 1:
            problems.append(f"service {name} runs {_replicas(spec)} replicas with published ports; "
                            "one host port can serve only one")
        ports += published
    volumes = _own("volume", project, model.get("volumes"), problems)
    networks = _own("network", project, model.get("networks"), problems)
    if problems:
        raise PlanError("; ".join(problems))
    return StackPlan(project, files, tuple(defined), tuple(started), tuple(wanted), tuple(ports),
                     tuple(n for n in started if services[n].get("container_name")),
                     tuple(n for n in started if services[n].get("cpu_shares")),
                     tuple(volumes), tuple(networks))


def labels(plan: StackPlan, leases: str, expires: int) -> dict[str, str]:
    return {PROJECT_LABEL: plan.project, LEASES_LABEL: leases, EXPIRES_LABEL: str(expires)}


def override(plan: StackPlan, assignment: dict[PublishedPort, int], own_labels: dict[str, str]) -> str:
    """The override file, as YAML in JSON's syntax with compose's `!override`/`!reset` merge tags."""
    labelled = json.dumps(own_labels, sort_keys=True)
    services = []
    for name in plan.services:
        ports = [f"{LOOPBACK}:{assignment[p]}:{p.target}/{p.protocol}"
                 for p in plan.ports if p.service == name]
        parts = [f'"labels": {labelled}']
        if ports:
            parts.append(f'"ports": !override {json.dumps(ports)}')
        if name in plan.container_names:
            parts.append('"container_name": !reset null')
        if name not in plan.weighted:
            parts.append(f'"cpu_shares": {LOW_CPU_SHARES}')
        services.append(f"    {json.dumps(name)}: {{{', '.join(parts)}}}")
    sections = ['  "services": {\n' + ",\n".join(services) + "\n  }"]
    for kind, names in (("networks", plan.networks), ("volumes", plan.volumes)):
        if names:
            entries = ",\n".join(f'    {json.dumps(n)}: {{"labels": {labelled}}}' for n in names)
            sections.append(f'  "{kind}": {{\n{entries}\n  }}')
    return "# written by test-services: leased loopback ports, labels and a low CPU weight\n{\n" \
        + ",\n".join(sections) + "\n}\n"
