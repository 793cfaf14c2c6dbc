"""`ci-actions workspace restore`: the action from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse

from ci_actions import declared
from ci_actions.cli import subcommand
from ci_actions.workspace import Where, add_run_arguments, run_cli
from restore_workspace.inputs import INPUTS, request
from restore_workspace.restore import restore_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(subparsers, "restore", "unpack a run's workspace and complete it from the store", run,
                        INPUTS, INPUTS)
    add_run_arguments(parser, "its contents are replaced, as a clean checkout would (with --no-clean, "
                              "refused if that would delete work)")


def run(args: argparse.Namespace) -> int:
    restoring = request(declared.from_args(args), Where.of_args(args))
    return run_cli(lambda: restore_workspace(restoring), lambda report: {
        "cache-hit": report.all_hit, "entries": {r.entry.key: r.hit for r in report.entries},
        "artifact": str(report.artifact_dir), "phases": {k: round(v, 3) for k, v in report.phases.items()}})
