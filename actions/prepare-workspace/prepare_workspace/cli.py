"""`ci-actions workspace prepare`: the action from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse

from ci_actions import declared
from ci_actions.cli import subcommand
from ci_actions.workspace import Where, add_run_arguments, run_cli
from prepare_workspace.inputs import INPUTS, request
from prepare_workspace.prepare import prepare


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(subparsers, "prepare", "install, generate and pack a workspace once per run", run,
                        INPUTS, INPUTS)
    add_run_arguments(parser, "the checkout to prepare and pack")


def run(args: argparse.Namespace) -> int:
    prepared = request(declared.from_args(args), Where.of_args(args))
    return run_cli(lambda: prepare(prepared), lambda report: {
        "cache-hit": report.all_hit, "dependency-hits": report.directory_hits(),
        "entries": {r.entry.key: r.hit for r in report.entries},
        "artifact": str(report.packed.archive), "artifact-digest": report.packed.manifest.archive_sha256,
        "phases": {k: round(v, 3) for k, v in report.phases.items()}})
