"""The project's service containers as the engine sees them: where they listen, whether they live,
and what to say when one fails (state, health log, log tail, secrets masked)."""

from __future__ import annotations

from datetime import UTC, datetime

import docker
from docker.models.containers import Container

# compose's own labels on the containers it runs (build-images' io.ci-actions.* labels are on images)
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_ONEOFF_LABEL = "com.docker.compose.oneoff"
RELEASE_LABEL = "io.ci-actions.release"
LOG_TAIL = 30
STOPPED = ("created", "exited", "dead")  # serve nothing, and never will again by themselves


def service_containers(client: docker.DockerClient, project: str, service: str) -> list[Container]:
    """The service's containers (not one-off `run` containers), oldest first."""
    found = client.containers.list(all=True, ignore_removed=True, filters={
        "label": [f"{COMPOSE_PROJECT_LABEL}={project}", f"{COMPOSE_SERVICE_LABEL}={service}"]})
    found = [c for c in found if c.labels.get(COMPOSE_ONEOFF_LABEL, "False") != "True"]
    return sorted(found, key=lambda c: c.attrs.get("Created", ""))


def address(container: Container, port: int) -> str:
    """`127.0.0.1:<host port>` where the container's `port` is published (the deploy publishes it on
    an ephemeral loopback port; a container published on every interface answers there too)."""
    container.reload()
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "0.0.0.0", "::", "") and binding.get("HostPort"):
            return f"127.0.0.1:{binding['HostPort']}"
    raise LookupError(f"container {container.name} does not publish port {port} on 127.0.0.1")


def death(container: Container, restarts_before: int = 0) -> str | None:
    """Why the container is no longer serving, or None while it runs and has not restarted."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return "the container was removed"
    state = container.attrs["State"]
    if state.get("Status") != "running":
        oom = ", out of memory" if state.get("OOMKilled") else ""
        return f"{state.get('Status')} (exit code {state.get('ExitCode')}{oom})"
    if container.attrs.get("RestartCount", 0) > restarts_before:
        return (f"restarted {container.attrs['RestartCount'] - restarts_before} time(s): it exited and its "
                "restart policy started it again")
    if (state.get("Health") or {}).get("Status") == "unhealthy":
        return "its HEALTHCHECK reports unhealthy"
    return None


def env_of(container: Container, key: str) -> str:
    """The value of `key` in the container's environment ('' when it has none)."""
    for entry in container.attrs["Config"].get("Env") or []:
        name, _, value = entry.partition("=")
        if name == key:
            return value
    return ""


def diagnosis(container: Container, secrets: list[str]) -> str:
    """What an operator needs first: state, the last health checks and the log tail, secrets masked."""
    try:
        container.reload()
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Log") or []
        checks = [f"  health: exit {h.get('ExitCode')}: {h.get('Output', '').strip()[:200]}"
                  for h in health[-3:]]
        logs = container.logs(tail=LOG_TAIL).decode(errors="replace").rstrip().splitlines()
        if container.attrs.get("RestartCount"):
            # the crash is in the output of the run before the restart policy started it again
            before = container.logs(tail=LOG_TAIL, until=_started_at(state) - 1)
            logs = [*before.decode(errors="replace").rstrip().splitlines(), "(restarted here)", *logs]
        head = (f"{container.name} ({container.attrs['Config']['Image']}): {state.get('Status')}, exit code "
                f"{state.get('ExitCode')}, restarts {container.attrs.get('RestartCount')}")
        text = "\n".join([head,
                          *checks, f"  last {len(logs)} log lines:", *(f"  | {line}" for line in logs)])
    except docker.errors.NotFound:
        text = f"{container.name}: removed before it could be inspected"
    return mask(text, secrets)


def _started_at(state: dict) -> int:
    started = datetime.strptime(state["StartedAt"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(started.timestamp())


def mask(text: str, secrets: list[str]) -> str:
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
