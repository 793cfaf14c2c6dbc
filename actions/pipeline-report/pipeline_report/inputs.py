"""pipeline-report's inputs, declared once for the action and `ci-actions report` (action.yml's check
reads this table too)."""

from __future__ import annotations

import json

from ci_actions import declared, ledger
from ci_actions.declared import Input

CONCLUSIONS = ("auto", "success", "failure", "cancelled", "skipped")
NEEDS_HINT = "pass ${{ toJSON(needs) }}"


def needs_results(text: str) -> dict[str, str]:
    """The needs context as JSON (`{"job": {"result": "failure", "outputs": {...}}}`) -> each job's result."""
    try:
        context = json.loads(text) if text else {}
    except json.JSONDecodeError:
        raise ValueError(f"is not JSON; {NEEDS_HINT}") from None
    if not isinstance(context, dict) or not all(
            isinstance(job, dict) and isinstance(job.get("result"), str) for job in context.values()):
        raise ValueError(f'is not a needs context ({{"job": {{"result": ...}}}}); {NEEDS_HINT}')
    return {name: job["result"] for name, job in context.items()}


INPUTS = declared.table(
    Input("token", "A token that can read the run's jobs (actions: read); with it the report has every "
          "job's and step's times from the GitHub API, without it only what the timing records show.",
          cli=False),
    Input("needs", "The jobs' results without a token: the expression toJSON(needs) in a job that needs "
          "all the others. Each listed job takes its result from it (a job whose own step failed is failed; "
          "a skipped job is listed), and so does an auto conclusion. Ignored when the API's jobs are read.",
          parse=needs_results, cli=False),
    Input("conclusion", "The run's result: success, failure, cancelled, skipped, or auto (from the API's "
          "jobs when a token is given, else from needs when given, else failure if a timing record failed, "
          "else unknown). Only a success goes into the run history.", default="auto", choices=CONCLUSIONS),
    Input("title", "The summary's heading.", default="Pipeline report"),
    Input("state-dir", "Where the timing records and the run history live. Every action writes its records "
          "under $CI_ACTIONS_STATE_DIR (else ~/.local/state/ci-actions), whatever its own state-dir input "
          "says, so leave this empty unless you moved them. Empty means the same place.",
          parse=declared.path(ledger.default_state_dir)),
)
RENDER = ("title", "state-dir")
HISTORY = ("state-dir",)
