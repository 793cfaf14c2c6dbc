"""`ci-actions deploy setup|run|rollback|status|history`: the action's work from the production host's shell.

`run` and `setup` take the action's inputs as flags (inputs.INPUTS); `rollback`, `status` and `history`
need only the project, since every deploy saves its settings and releases under the state folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ci_actions import declared, engine, ledger
from ci_actions.cli import subcommand
from ci_actions.compose import ComposeError
from hotswap_deploy import envfile, inputs, settings, setup, status
from hotswap_deploy.deploy import DeployError, DeployReport, deploy, plan_only
from hotswap_deploy.inputs import INPUTS, ROLLBACK, RUN, SETUP
from hotswap_deploy.lock import LockTimeout
from hotswap_deploy.plan import PlanError
from hotswap_deploy.proxy import ProxyError
from hotswap_deploy.rollback import RollbackError, rollback_request

FAILURES = (DeployError, PlanError, ComposeError, ProxyError, LockTimeout, RollbackError, engine.EngineError,
            ledger.LedgerError, settings.SettingsError, envfile.EnvFileError, setup.SetupError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("deploy", help="zero-downtime deploys, rollback and the release ledger")
    commands = parser.add_subparsers(dest="deploy_command", required=True, metavar="COMMAND")
    run = subcommand(commands, "run", "deploy images (or a sha) to the compose project", _run, INPUTS, RUN)
    run.add_argument("--env-file", type=Path, help="a file of KEY=VALUE lines (the env-file input's text), "
                     "kept 0600 in the state folder and passed to compose with --env-file")
    ready = subcommand(commands, "setup", "make nginx ready for a first deploy: placeholder, upstreams, site",
                       _setup, INPUTS, SETUP)
    for sub in (run, ready):
        sub.add_argument("--nginx", default="nginx", help="the nginx binary (default: nginx)")
        sub.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")
    for name, help_text, func, names in (
            ("rollback", "go back to a retained release, switched as it was deployed", _rollback, ROLLBACK),
            ("status", "what is live; recovers an interrupted deploy", _status, ["state-dir"]),
            ("history", "every release: sha, images, times, outcome", _history, ["state-dir"])):
        subcommand(commands, name, help_text, func, INPUTS, names).add_argument("--project", required=True)


def report_json(report: DeployReport) -> dict:
    release = report.release
    return {"release": release.id, "sha": release.sha, "outcome": release.outcome,
            "images": {s: i.ref for s, i in release.images.items()}, "timings": report.timings,
            "recovered": report.recovered, "downtime": report.downtime, "warnings": report.warnings}


def _print_report(report: DeployReport) -> None:
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(report_json(report)))


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _env_text(path: Path | None) -> str:
    try:
        return path.read_text() if path else ""
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise declared.InputError(f"--env-file: cannot read {path}: {why}") from None


def _run(args: argparse.Namespace) -> int:
    values = {**declared.from_args(args), "env-file": _env_text(args.env_file)}
    try:
        request = inputs.request(values, Path.cwd(), run="cli", binary=args.nginx)
        if args.dry_run:
            print("\n".join(plan_only(request).describe()))
            return 0
        report = deploy(request)
    except FAILURES as exc:
        return _fail(exc)
    _print_report(report)
    return 0


def _setup(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    try:
        done = setup.setup(inputs.compose(values, Path.cwd()), inputs.nginx(values, Path.cwd(), args.nginx),
                           values["services"], values["routes"], values["listen"], dry_run=args.dry_run)
    except FAILURES as exc:
        return _fail(exc)
    print("\n".join(done))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    if not values["rollback-to"]:
        raise declared.InputError("--to: give the release to go back to: a sha (7+ characters) or `previous`")
    try:
        request = rollback_request(settings.load(values["state-dir"], args.project), args.project,
                                   values["rollback-to"], lock_timeout=values["lock-timeout"], run="cli")
        report = deploy(request)
    except FAILURES as exc:
        return _fail(exc)
    _print_report(report)
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        print(status.render(status.status(declared.from_args(args)["state-dir"], args.project)))
    except FAILURES as exc:
        return _fail(exc)
    return 0


def _history(args: argparse.Namespace) -> int:
    try:
        releases = ledger.Ledger(declared.from_args(args)["state-dir"], args.project).releases()
    except FAILURES as exc:
        return _fail(exc)
    print(status.history_table(releases))
    return 0
