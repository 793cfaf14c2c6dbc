"""What a job gets to reach its stack: each service's host and ports, the variables named after them,
and the ready-made URLs of the `env` input, written as an env file.

A URL template names endpoints in braces:

    {postgres}             host:port of the service's first published port    127.0.0.1:20417
    {postgres.host}        its host                                           127.0.0.1
    {postgres.port}        its first published port                          20417
    {postgres:5432}        host:port of the port published for container port 5432 (`:53-udp` for UDP)
    {postgres:5432.port}   that port alone
    {{ and }}              a literal brace
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from test_services.plan import LOOPBACK, PlanError, PublishedPort

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_REFERENCE = re.compile(r"^(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]*?)(?::(?P<port>\d+(?:-[a-z]+)?))?"
                        r"(?:\.(?P<part>host|port))?$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_@%+=:,./?*#-]*$")  # means the same unquoted to a shell and a dotenv


@dataclass(frozen=True)
class Endpoint:
    service: str
    ports: dict[str, int]  # PublishedPort.key ("5432", "53-udp") -> host port, in the file's order
    host: str = LOOPBACK

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))


def endpoints(assignment: dict[PublishedPort, int]) -> dict[str, Endpoint]:
    found: dict[str, dict[str, int]] = {}
    for published, host_port in assignment.items():
        found.setdefault(published.service, {}).setdefault(published.key, host_port)
    return {service: Endpoint(service, ports) for service, ports in found.items()}


def check_env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise ValueError(f"names {name!r}, not an environment variable (letters, digits and _)")
    if name.upper().startswith(("GITHUB_", "RUNNER_")):
        raise ValueError(f"names {name!r}: GITHUB_ and RUNNER_ variables belong to the runner")
    return name


def check_prefix(text: str) -> str:
    if text and not ENV_NAME.match(text):
        raise ValueError(f"is {text!r}; use letters, digits and _ (e.g. TEST_), or leave it empty")
    return text


def references(template: str) -> list[str]:
    """The placeholders of a template; a stray brace or a malformed one is a ValueError."""
    found = []
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise ValueError(f"has a lone {token!r}; write {token * 2} for a literal brace")
        if not _REFERENCE.match(match.group(1)):
            raise ValueError(f"has {{{match.group(1)}}}; use {{service}}, {{service.host}}, {{service.port}} "
                             "or {service:5432}")
        found.append(match.group(1))
    return found


def env_line(text: str) -> tuple[str, str]:
    """One line of the `env` input: `NAME: template`, checked as far as it can be before the stack is
    known (a bad line is named by number, never echoed: its URL may hold a password)."""
    name, found, template = text.partition(":")
    if not found or not name.strip() or len(name.split()) > 1:
        raise ValueError("is not `NAME: template` (e.g. `DATABASE_URL: postgresql://app:app@{postgres}/app`)")
    name = check_env_name(name.strip())
    try:
        references(template.strip())
    except ValueError as exc:
        raise ValueError(f"({name}) {exc}") from None
    return name, template.strip()


def _resolve(reference: str, stack: dict[str, Endpoint], name: str) -> str:
    match = _REFERENCE.match(reference)
    assert match  # references() checked it
    service, key, part = match["service"], match["port"], match["part"]
    endpoint = stack.get(service)
    if endpoint is None:
        known = ", ".join(stack) or "none"
        raise ValueError(f"{name} names {{{reference}}}, but {service} is not a started service that "
                         f"publishes a port (these do: {known})")
    if key is not None and key not in endpoint.ports:
        raise ValueError(f"{name} names {{{reference}}}, but {service} publishes "
                         f"{', '.join(endpoint.ports)}, not {key}")
    port = endpoint.ports[key] if key is not None else endpoint.port
    return {"host": endpoint.host, "port": str(port)}.get(part or "", f"{endpoint.host}:{port}")


def render(name: str, template: str, stack: dict[str, Endpoint]) -> str:
    references(template)

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return _resolve(match.group(1), stack, name)
    return _PLACEHOLDER.sub(replace, template)


def check_templates(urls: list[tuple[str, str]], ports: tuple[PublishedPort, ...]) -> None:
    """Every URL renders against the planned ports (before anything starts): PlanError names the line."""
    planned = endpoints(dict.fromkeys(ports, 0))
    for name, template in urls:
        try:
            render(name, template, planned)
        except ValueError as exc:
            raise PlanError(f"env: {exc}") from None


def env_key(service: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", service).upper()


def variables(stack: dict[str, Endpoint], urls: list[tuple[str, str]], prefix: str) -> dict[str, str]:
    """`<PREFIX><SERVICE>_HOST`, `_PORT` (the first published port) and `_PORT_<target>` for each, then
    the rendered URLs under the names given (the prefix is for the generated names only)."""
    env: dict[str, str] = {}
    for service, endpoint in stack.items():
        key = f"{prefix}{env_key(service)}"
        env[f"{key}_HOST"] = endpoint.host
        env[f"{key}_PORT"] = str(endpoint.port)
        for port_key, port in endpoint.ports.items():
            env[f"{key}_PORT_{env_key(port_key)}"] = str(port)
    for name, template in urls:
        env[name] = render(name, template, stack)
    return env


def outputs(stack: dict[str, Endpoint]) -> dict[str, str]:
    """Step outputs named at run time: `<service>-host`, `<service>-port`, `<service>-port-<target>`."""
    named: dict[str, str] = {}
    for service, endpoint in stack.items():
        named[f"{service}-host"] = endpoint.host
        named[f"{service}-port"] = str(endpoint.port)
        for port_key, port in endpoint.ports.items():
            named[f"{service}-port-{port_key}"] = str(port)
    return named


def env_file(env: dict[str, str]) -> str:
    """`NAME=value` lines that compose's `--env-file`, dotenv and `set -a; . file` read alike: a value
    with characters a shell would act on (`&`, `$`, a space) is single-quoted; one that cannot be (a
    quote, a line break) is refused, naming the variable only. (`docker run --env-file` keeps quotes.)"""
    lines = []
    for name, value in env.items():
        if "'" in value or "\n" in value or "\r" in value:
            raise ValueError(f"{name}'s value holds a quote or a line break, which an env file cannot carry")
        lines.append(f"{name}={value}" if _SAFE_VALUE.match(value) else f"{name}='{value}'")
    return "".join(f"{line}\n" for line in lines)
