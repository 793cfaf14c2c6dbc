"""test-services' inputs, declared once for its two actions (the main one and stop/) and the
`ci-actions services` commands (action.yml's check reads this table too), and the UpRequest they make."""

from __future__ import annotations

import re
from pathlib import Path

from ci_actions import declared, ledger
from ci_actions.compose import Compose
from ci_actions.declared import Input, Values
from test_services import endpoints, naming
from test_services.leases import Holder
from test_services.stack import UpRequest

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def port_range(text: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    low, high = (int(match[1]), int(match[2])) if match else (0, 0)
    if not match or not 1024 <= low <= high <= 65535:
        raise ValueError(f"is {text!r}; give LOW-HIGH within 1024-65535 (e.g. 20000-29999)")
    return low, high


def positive_duration(text: str) -> float:
    seconds = declared.duration(text)
    if seconds <= 0:
        raise ValueError(f"must be more than 0 (got {text!r})")
    return seconds


def service_name(text: str) -> str:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", text):
        raise ValueError(f"is {text!r}, not a compose service name")
    return text


INPUTS = declared.table(
    Input("compose-files", "Compose files, one per line, relative to the workspace (later files override "
          "earlier ones).", default="docker-compose.yml", many=True, flag="compose-file", parse=Path),
    Input("services", "Services to start, one per line (what they depend on starts too). Empty means every "
          "service outside a profile.", many=True, flag="service", parse=service_name),
    Input("project-prefix", "What the stack's compose project name starts with; the rest is the run id, "
          "job, attempt and a random suffix.", default="ci", parse=naming.check_prefix),
    Input("wait-timeout", "How long to wait for every service's health check to pass (s, m, h).",
          default="3m", parse=positive_duration),
    Input("ttl", "How long the stack may live: past it the reaper removes it even if its job still runs "
          "(s, m, h, d).", default="6h", parse=positive_duration),
    Input("env", "`NAME: template` lines of URLs for later steps; {service} is its host:port, also "
          "{service.host}, {service.port}, {service:5432}.", many=True, parse=endpoints.env_line),
    Input("env-prefix", "Prefix of the exported <SERVICE>_HOST and <SERVICE>_PORT variables (the env "
          "names are used as given).", parse=endpoints.check_prefix),
    Input("port-range", "Host ports to lease from (LOW-HIGH), on 127.0.0.1.", default="20000-29999",
          parse=port_range),
    Input("state-dir", "Where the port leases live (shared by every job on the runner). Empty means "
          "~/.local/state/ci-actions.", parse=declared.path(ledger.default_state_dir)),
    Input("project", "The stack to stop (its project name). Empty means every stack this job started.",
          parse=naming.check_project),
)
UP = ("compose-files", "services", "project-prefix", "wait-timeout", "ttl", "env", "env-prefix", "port-range",
      "state-dir")
MAIN = UP
STOP = ("project", "state-dir")


def request(values: Values, workspace: Path, *, run_id: str = "local", job: str = "", attempt: int = 1,
            holder: Holder | None = None) -> UpRequest:
    compose = Compose(tuple((workspace / f).resolve() for f in values["compose-files"]), "")
    return UpRequest(compose=compose, services=values["services"], prefix=values["project-prefix"],
                     wait_timeout=values["wait-timeout"], ttl=values["ttl"], port_range=values["port-range"],
                     state_dir=values["state-dir"], env=values["env"], env_prefix=values["env-prefix"],
                     run_id=run_id, job=job, attempt=attempt, holder=holder)
