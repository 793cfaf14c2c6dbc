"""Per-service health checks from the inputs' lines (pure parsing, shared by the action and the CLI).

`health-url` and `health-match` are `service: value` lines. `health-status`, `health-timeout` and
`health-interval` are one bare value for every service, optionally followed by `service: value` lines
for the services that differ (a slow-booting backend gets a longer timeout than a static frontend).
One line is checked as it is read (`service_line`, `number_line`: the declared inputs' parsers, so a
bad line is exit 2 naming the input); `health_checks` puts the lines together.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hotswap_deploy.health import HealthCheck, validate_health_url
from hotswap_deploy.plan import PlanError

DEFAULTS = {"health-status": 200.0, "health-timeout": 60.0, "health-interval": 1.0}
MINIMUM = {"health-status": 100.0, "health-timeout": 0.1, "health-interval": 0.05}


def service_line(text: str) -> str:
    """One `service: value` line, as given; ValueError when it is not one."""
    service, found, value = text.partition(":")
    if not found or not service.strip() or not value.strip():
        raise ValueError("is not `service: value`")
    return text


def number_line(name: str) -> Callable[[str], str]:
    """One line of `name`: a bare number for every service, or `service: number`."""
    def parse(text: str) -> str:
        value = service_line(text).partition(":")[2] if ":" in text else text
        _number(value.strip(), name)
        return text
    return parse


def service_lines(lines: list[str], name: str) -> dict[str, str]:
    """`service: value` lines; a bad entry is named by its number."""
    pairs = {}
    for number, line in enumerate(lines, start=1):
        try:
            service, _, value = service_line(line).partition(":")
        except ValueError as exc:
            raise PlanError(f"{name}: entry {number} {exc}") from None
        pairs[service.strip()] = value.strip()
    return pairs


def per_service_numbers(lines: list[str], name: str, services: list[str]) -> dict[str, float]:
    """A bare number for every service and/or `service: number` lines for some."""
    default, overrides = DEFAULTS[name], []
    for line in lines:
        if ":" in line:
            overrides.append(line)
        else:
            default = _checked(line, name, name)
    values = dict.fromkeys(services, default)
    for service, text in service_lines(overrides, name).items():
        if service not in values:
            raise PlanError(f"{name}: {service} has no health-url")
        values[service] = _checked(text, name, f"{name} for {service}")
    return values


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= MINIMUM[name]):
        raise ValueError(f"{text!r} is not a number of at least {MINIMUM[name]:g}")
    return value


def _checked(text: str, name: str, label: str) -> float:
    try:
        return _number(text, name)
    except ValueError as exc:
        raise PlanError(f"{label}: {exc}") from None


def health_checks(urls: list[str], *, matches: list[str] = (), statuses: list[str] = (),
                  timeouts: list[str] = (), intervals: list[str] = ()) -> dict[str, HealthCheck]:
    checks = {}
    targets = service_lines(list(urls), "health-url")
    bodies = service_lines(list(matches), "health-match")
    status = per_service_numbers(list(statuses), "health-status", list(targets))
    timeout = per_service_numbers(list(timeouts), "health-timeout", list(targets))
    interval = per_service_numbers(list(intervals), "health-interval", list(targets))
    for service, url in targets.items():
        try:
            url = validate_health_url(url, name=f"health-url for {service}")
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
        checks[service] = HealthCheck(url, int(status[service]), bodies.get(service, ""), timeout[service],
                                      interval[service])
    return checks
