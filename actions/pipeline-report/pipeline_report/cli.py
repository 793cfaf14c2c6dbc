"""`ci-actions report render|history`: a run's report from its timing records, and the run history.

`render` reads a run folder (`--run-dir`, or `--repository --run-id --attempt` under --state-dir) and
prints the summary's markdown, or report.json's JSON with --json; it reads no API (no token on a
command line). `history` prints the recent successful runs, or with --last-green only the last green sha.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from ci_actions import declared, timing
from ci_actions.cli import subcommand
from pipeline_report import history, report, summary
from pipeline_report.inputs import HISTORY, INPUTS, RENDER
from pipeline_report.run_report import make

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_RUN_FOLDER = re.compile(r"^(?P<run>.+)-(?P<attempt>[0-9]+)$")


def repository(text: str) -> str:
    if not _REPOSITORY.match(text):
        raise argparse.ArgumentTypeError(f"is {text!r}; give owner/name")
    return text


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1 (got {text!r})")
    return int(text)


def run_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise argparse.ArgumentTypeError(f"is {text!r}; give the run's id (GITHUB_RUN_ID)")
    return text


def run_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory (a run folder holds timings.jsonl)")
    if not _RUN_FOLDER.match(path.name):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run folder (<run id>-<attempt>)")
    return path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="a run's timeline and the run history (pipeline-report)")
    commands = parser.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    render = subcommand(commands, "render", "print a run's report (markdown, or --json)", _render, INPUTS,
                        RENDER)
    render.add_argument("--run-dir", type=run_dir, help="the run's folder (<state>/runs/<owner+repo>/"
                        "<run id>-<attempt>); or name the run with the next three flags")
    render.add_argument("--repository", type=repository, help="owner/name of the run")
    render.add_argument("--run-id", type=run_id, help="the run's id")
    render.add_argument("--attempt", type=positive, default=1, help="the run's attempt (default: 1)")
    render.add_argument("--json", action="store_true", help="print report.json's JSON, not markdown")
    past = subcommand(commands, "history", "recent successful runs, newest first", _history, INPUTS, HISTORY)
    past.add_argument("--repository", type=repository,
                      help="owner/name (default: the only repository with a history under --state-dir)")
    past.add_argument("--branch", default="", help="only runs of this branch")
    past.add_argument("--last-green", action="store_true", help="print only the last green run's sha")
    past.add_argument("--limit", type=positive, default=20, help="how many runs to show (default: 20)")
    past.add_argument("--json", action="store_true", help="print the runs as JSON lines")


def _render(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    if args.run_dir is not None:
        folder = args.run_dir
        match = _RUN_FOLDER.match(folder.name)
        assert match is not None  # run_dir checked it
        run = report.RunInfo(folder.parent.name.replace("+", "/", 1), match["run"], int(match["attempt"]))
    elif args.repository and args.run_id:
        folder = timing.run_dir(values["state-dir"], args.repository, args.run_id, args.attempt)
        run = report.RunInfo(args.repository, args.run_id, args.attempt)
    else:
        raise declared.InputError("give --run-dir, or --repository and --run-id (with --attempt)")
    made = make(folder, run, title=values["title"], conclusion="auto")
    for warning in made.report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if made.empty:
        print(f"notice: no timing records in {folder}; the report is empty", file=sys.stderr)
    print(json.dumps(made.report, indent=1) if args.json else summary.markdown(made.timeline, made.report))
    return 0


def _history(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    name = args.repository or _only_repository(values["state-dir"])
    read = history.read(history.path(values["state-dir"], name))
    if read.skipped:
        print(f"warning: {read.skipped} line(s) of the history are not runs; skipped", file=sys.stderr)
    runs = [r for r in read.runs if not args.branch or r.get("branch") == args.branch]
    if args.last_green:
        green = history.last_green(runs)
        if green is None:
            where = f" on {args.branch}" if args.branch else ""
            print(f"error: no green run of {name}{where} in the history", file=sys.stderr)
            return 1
        print(green["sha"])
        return 0
    recent = sorted(runs, key=lambda r: r["recorded_at"], reverse=True)[:args.limit]
    if args.json:
        print("\n".join(json.dumps(r) for r in recent))
        return 0
    print(f"{'recorded':20} {'sha':12} {'branch':16} {'run':16} {'wall':>8}  critical path")
    for r in recent:
        when = datetime.fromtimestamp(r["recorded_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        wall = r.get("wall_seconds")
        wall_text = f"{wall:.1f}s" if isinstance(wall, int | float) else "-"
        attempt = f"{r.get('run_id')}-{r.get('attempt')}"
        path = " → ".join(r.get("critical_path") or []) or "-"
        print(f"{when:20} {r['sha'][:12]:12} {str(r.get('branch') or '-')[:16]:16} {attempt[:16]:16} "
              f"{wall_text:>8}  {path}")
    return 0


def _only_repository(state_dir: Path) -> str:
    found = sorted(p.parent.name for p in (state_dir / "runs").glob(f"*/{history.FILE_NAME}"))
    if len(found) != 1:
        listed = ", ".join(found) or "none"
        raise declared.InputError(f"give --repository (histories under {state_dir / 'runs'}: {listed})")
    return found[0].replace("+", "/", 1)
