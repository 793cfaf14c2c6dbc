"""The `ci-actions` command: every action's work, usable from any CI or a terminal.

Subcommands are found through the `ci_actions.commands` entry-point group declared in pyproject.toml;
each entry point is a `register(subparsers)` function that adds its parser and sets `func`. The shared
package never imports an action package, so arrows keep pointing down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import entry_points

from ci_actions import declared

ENTRY_POINT_GROUP = "ci_actions.commands"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """One subcommand per entry point; a dotted name (`workspace.prepare`) nests under its group, so
    two actions can share a command group without importing each other. Given the command asked for,
    only its entry points are loaded: `cache save` does not import the Docker SDK."""
    parser = argparse.ArgumentParser(prog="ci-actions", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    entries = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    wanted = [e for e in entries if command in (e.name, e.name.partition(".")[0])]
    for entry in wanted or entries:  # every command for `--help` or an unknown one
        group, _, _ = entry.name.rpartition(".")
        if group and group not in groups:
            group_parser = subparsers.add_parser(group, help=f"{group} commands")
            groups[group] = group_parser.add_subparsers(dest=f"{group}_command", required=True,
                                                        metavar="COMMAND")
        entry.load()(groups[group] if group else subparsers)
    return parser


def subcommand(commands: argparse._SubParsersAction, name: str, help_text: str,
               func: Callable[[argparse.Namespace], int], inputs: Mapping[str, declared.Input],
               names: Iterable[str]) -> argparse.ArgumentParser:
    """A subcommand whose flags are the named inputs of an action's table (declared.add_flags)."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    declared.add_flags(parser, inputs, names)
    parser.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A bad flag value is exit 2 and one line naming it (argparse's own, or an
    InputError found while the command reads its values), never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.func(args)
    except declared.InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
