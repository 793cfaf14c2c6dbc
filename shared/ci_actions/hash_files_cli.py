"""``ci-actions hash-files``: the digest ``${{ hashFiles(...) }}`` gives, from any shell or CI."""

from __future__ import annotations

import argparse
import sys

from ci_actions import runner
from ci_actions.hash_files import FOLLOW_SYMBOLIC_LINKS, HashFilesError, hash_files


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hash-files`` subcommand (found through the ``ci_actions.commands`` entry point)."""
    parser = subparsers.add_parser(
        "hash-files",
        help="print the digest GitHub's hashFiles() gives for the patterns",
        description=(
            "Print the sha256 that ${{ hashFiles(PATTERN...) }} gives in the workspace "
            "($GITHUB_WORKSPACE, else the current directory); an empty line when nothing matches."
        ),
    )
    parser.add_argument(
        FOLLOW_SYMBOLIC_LINKS,
        dest="follow_symbolic_links",
        action="store_true",
        help="enter symlinked directories and skip broken links (hashFiles' first-argument option)",
    )
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="glob patterns; '!' excludes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        digest = hash_files(
            args.patterns, runner.workspace(), follow_symbolic_links=args.follow_symbolic_links
        )
    except HashFilesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(digest)
    return 0
