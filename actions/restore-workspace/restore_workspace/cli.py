"""`ci-actions workspace restore`: the action from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ci_actions.workspace import LAYERS, add_run_arguments, commands_of, run_cli, run_of, scope_of
from restore_workspace.restore import RestoreRequest, restore_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("restore", help="unpack a run's workspace and complete it from the store")
    parser.add_argument("--workspace", type=Path, required=True,
                        help="its contents are replaced, as a clean checkout would; refused if that would "
                             "delete work, unless --clean")
    parser.add_argument("--layer", choices=LAYERS, default="all")
    parser.add_argument("--clean", action="store_true",
                        help="wipe the workspace even if it holds work no restore or clean checkout explains")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def request() -> RestoreRequest:  # inside run_cli: a malformed flag is an error message, not a traceback
        return RestoreRequest(args.workspace.resolve(), args.workspace_root.resolve(),
                              args.cache_dir.resolve(), args.layer, args.link_mode,
                              run_of(args), commands_of(args), clean=args.clean,
                              shared_store=args.shared_store, scope=scope_of(args))

    return run_cli(lambda: restore_workspace(request()), lambda report: {
        "cache-hit": report.all_hit, "entries": {r.entry.key: r.hit for r in report.entries},
        "artifact": str(report.artifact_dir), "phases": {k: round(v, 3) for k, v in report.phases.items()}})
