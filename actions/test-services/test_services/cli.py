"""`ci-actions services up|down|reap|list`: the action's work from any shell; flags mirror the inputs.

`up` prints its outputs as one JSON object on stdout (progress goes to stderr) and leaves the stack
running for the caller's process: the shell or job that ran it holds the lease (`--holder-pid`), so
when that process dies, the next `up` or `reap` on the machine removes the stack and frees its ports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ci_actions import declared, engine
from ci_actions.cli import subcommand
from ci_actions.compose import ComposeError
from test_services import inputs, naming, stack
from test_services.inputs import INPUTS, STOP, UP
from test_services.leases import Holder, LeaseError, Leases
from test_services.plan import PlanError

BAD_INPUT = (PlanError, ComposeError)  # the files or the names given: exit 2, as a bad flag
FAILURES = (stack.UpError, LeaseError, engine.EngineError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("services", help="a job's own compose stack on leased loopback ports "
                                   "(test-services)")
    commands = parser.add_subparsers(dest="services_command", required=True, metavar="COMMAND")
    up_parser = subcommand(commands, "up", "start the services on leased ports, wait for their health "
                           "checks, print the outputs as JSON", _up, INPUTS, UP)
    up_parser.add_argument("--holder-pid", type=int, default=os.getppid(),
                           help="the process whose death frees the stack (default: this command's parent, "
                           "the shell or job that ran it; 0: only the ttl)")
    up_parser.add_argument("--run-id", default="local", help="the run id in the project name")
    up_parser.add_argument("--job", default="", help="the job name in the project name")
    up_parser.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    subcommand(commands, "down", "remove a stack (containers, networks, volumes) and release its ports",
               _down, INPUTS, STOP)
    subcommand(commands, "reap", "remove the stacks of dead jobs (holder gone, ttl passed) and release "
               "their ports", _reap, INPUTS, ("state-dir",))
    subcommand(commands, "list", "the stacks on this machine's leases: ports, holder, containers",
               _list, INPUTS, ("state-dir",))


def _error(exc: Exception, status: int) -> int:
    print(f"error: {exc}", file=sys.stderr)
    for line in getattr(exc, "details", []):
        print(f"  {line}", file=sys.stderr)
    return status


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _up(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    holder = Holder.of(args.holder_pid) if args.holder_pid else None
    if args.holder_pid and holder is None:
        raise declared.InputError(f"--holder-pid {args.holder_pid}: no such process")
    request = inputs.request(values, Path.cwd(), run_id=args.run_id, job=args.job, holder=holder)
    try:
        if args.dry_run:
            return _dry_run(request)
        client = engine.connect()
        started = stack.up(request, client, _log)
    except BAD_INPUT as exc:
        return _error(exc, 2)
    except FAILURES as exc:
        return _error(exc, 1)
    except KeyboardInterrupt:
        return _error(RuntimeError("stopped; the stack was removed"), 130)
    for warning in started.plan.container_names:
        _log(f"note: {warning}'s container_name was dropped (each job needs its own)")
    print(json.dumps({**started.outputs(), "up-seconds": round(started.seconds, 3),
                      "returned-at": time.time()}), flush=True)
    return 0


def _dry_run(request: stack.UpRequest) -> int:
    project = naming.project_name(request.prefix, request.run_id, request.job, request.attempt, "xxxxxx")
    _, plan = stack.plan_for(request, project)
    print("\n".join([*plan.describe(), f"wait up to {request.wait_timeout:g}s for every health check",
                     f"lease {len(plan.ports)} port(s) of {request.port_range[0]}-{request.port_range[1]} in "
                     f"{Leases.at(request.state_dir).root}"]))
    return 0


def _down(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    if not values["project"]:
        raise declared.InputError("--project: name the stack to remove (`ci-actions services list`)")
    try:
        removed = stack.down(engine.connect(), values["state-dir"], values["project"])
    except FAILURES as exc:
        return _error(exc, 1)
    for problem in removed.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(json.dumps({"project": values["project"], "containers": removed.containers,
                      "networks": removed.networks, "volumes": removed.volumes}))
    return 1 if removed.problems else 0


def _reap(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    try:
        report = stack.reap(engine.connect(), Leases.at(values["state-dir"]))
    except FAILURES as exc:
        return _error(exc, 1)
    for item in report.reaped:
        _log(f"reaped {item.project} ({item.why}): removed {item.removed.describe()}")
        for problem in item.removed.problems:
            _log(f"warning: {problem}")
    print(json.dumps({"reaped": [{"project": r.project, "why": r.why, "containers": r.removed.containers,
                                  "networks": r.removed.networks, "volumes": r.removed.volumes}
                                 for r in report.reaped], "freed-claims": report.freed_claims}))
    return 0


def _list(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    try:
        listed = stack.listing(engine.connect(), values["state-dir"])
    except FAILURES as exc:
        return _error(exc, 1)
    now = time.time()
    for item in listed:
        lease = item.lease
        ports = ",".join(map(str, getattr(lease, "ports", ()))) or "-"
        holder = getattr(lease, "holder", None)
        age = f"{now - lease.created:.0f}s" if hasattr(lease, "created") else "-"
        containers = " ".join(f"{name}:{status}" for name, status in item.containers.items()) or "-"
        print(f"{item.project:40} ports {ports:18} holder {holder.pid if holder else '-':>7} age {age:>7} "
              f"{'STALE: ' + item.stale if item.stale else 'live'}  {containers}")
    return 0
