"""Per-service health checks from the inputs' lines (pure parsing, shared by the action and the CLI).

`health-url` and `health-match` are `service: value` lines. `health-status`, `health-timeout` and
`health-interval` are one bare value for every service, optionally followed by `service: value` lines
for the services that differ (a slow-booting backend gets a longer timeout than a static frontend).
"""

from __future__ import annotations

from hotswap_deploy.health import HealthCheck, validate_health_url
from hotswap_deploy.plan import PlanError

DEFAULTS = {"health-status": 200.0, "health-timeout": 60.0, "health-interval": 1.0}
MINIMUM = {"health-status": 100.0, "health-timeout": 0.1, "health-interval": 0.05}


def service_lines(lines: list[str], name: str) -> dict[str, str]:
    """`service: value` lines; a bad entry is named by its number."""
    pairs = {}
    for number, line in enumerate(lines, start=1):
        service, found, value = line.partition(":")
        if not found or not service.strip() or not value.strip():
            raise PlanError(f"{name}: entry {number} is not `service: value`")
        pairs[service.strip()] = value.strip()
    return pairs


def per_service_numbers(lines: list[str], name: str, services: list[str]) -> dict[str, float]:
    """A bare number for every service and/or `service: number` lines for some."""
    default, overrides = DEFAULTS[name], []
    for line in lines:
        if ":" in line:
            overrides.append(line)
        else:
            default = _number(line, name)
    values = dict.fromkeys(services, default)
    for service, text in service_lines(overrides, name).items():
        if service not in values:
            raise PlanError(f"{name}: {service} has no health-url")
        values[service] = _number(text, f"{name} for {service}")
    return values


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    base = name.split(" for ")[0]
    if value < MINIMUM[base]:
        raise PlanError(f"{name}: {text!r} is not a number of at least {MINIMUM[base]:g}")
    return value


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
