"""pipeline-report as a GitHub step: read the run's timing records (and the API's jobs with a token),
write report.json beside them, the summary, the outputs, and a successful run into the history."""

from __future__ import annotations

import json
import time

from filelock import Timeout

from ci_actions import runner, timing
from ci_actions.atomic import write_atomic
from pipeline_report import github_jobs, history, report, summary
from pipeline_report.inputs import INPUTS
from pipeline_report.run_report import Made, make


def api_jobs(token: str, context: runner.RunContext) -> tuple[list, list[str]]:
    """The attempt's jobs, or none and a warning: the records alone still make a report."""
    if not token:
        return [], []
    runner.mask(token)
    if not context.run_id.isdigit():
        return [], [f"run id {context.run_id!r} is not a GitHub run's; the API's jobs were not read"]
    try:
        return github_jobs.fetch(token, context.api_url, context.repository, int(context.run_id),
                                 context.attempt), []
    except github_jobs.API_ERRORS as exc:
        return [], [f"the GitHub API's jobs could not be read ({exc}); the report has the timing records "
                    "only"]


def remember(made: Made, values: dict) -> None:
    """A successful run goes into the history; history trouble is a warning (the report is made)."""
    conclusion = made.report["conclusion"]
    if conclusion != "success":
        runner.info(f"pipeline-report: conclusion {conclusion}: not recorded in the run history"
                    + (" (set the conclusion input)" if conclusion == "unknown" else ""))
        return
    file = history.path(values["state-dir"], made.report["repository"])
    try:
        history.append(file, history.entry(made.report, time.time()))
    except (OSError, Timeout) as exc:
        runner.warning(f"pipeline-report: the run history {file} was not written: {exc}")
        return
    runner.info(f"pipeline-report: recorded {made.report['sha'][:12] or 'the run'} as green in {file}")


def main() -> None:
    try:
        values = runner.read_inputs(INPUTS)
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    context = runner.run_context()
    folder = timing.run_dir(values["state-dir"], context.repository, context.run_id, context.attempt)
    jobs, warnings = api_jobs(values["token"], context)
    run = report.RunInfo(context.repository, context.run_id, context.attempt, context.sha, context.ref)
    made = make(folder, run, title=values["title"], conclusion=values["conclusion"], api_jobs=jobs,
                results=values["needs"], warnings=warnings)
    for warning in made.report["warnings"]:
        runner.warning(f"pipeline-report: {warning}")
    if made.empty:
        runner.notice(f"pipeline-report: no timing records in {folder} and no jobs from the GitHub API "
                      f"({'it gave none' if values['token'] else 'no token given'}); the report is empty")
    path = folder / report.FILE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(made.report, indent=1, allow_nan=False) + "\n")
    runner.set_output("report-path", str(path))
    runner.set_output("wall-seconds", made.report["wall_seconds"])
    runner.set_output("critical-path", json.dumps(made.report["critical_path"]))
    runner.set_output("conclusion", made.report["conclusion"])
    runner.append_summary(summary.markdown(made.timeline, made.report))
    remember(made, values)


main()
