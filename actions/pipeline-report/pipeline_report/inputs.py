"""pipeline-report's inputs, declared once for the action and `ci-actions report` (action.yml's check
reads this table too)."""

from __future__ import annotations

from ci_actions import declared, ledger
from ci_actions.declared import Input

CONCLUSIONS = ("auto", "success", "failure", "cancelled", "skipped")

INPUTS = declared.table(
    Input("token", "A token that can read the run's jobs (actions: read); with it the report has every "
          "job's and step's times from the GitHub API, without it only what the timing records show.",
          cli=False),
    Input("conclusion", "The run's result, e.g. from needs.*.result: success, failure, cancelled, skipped, "
          "or auto (from the API's jobs when a token is given, else failure if a timing record failed, else "
          "unknown). Only a success goes into the run history.", default="auto", choices=CONCLUSIONS),
    Input("title", "The summary's heading.", default="Pipeline report"),
    Input("state-dir", "Where the timing records and the run history live. Every action writes its records "
          "under $CI_ACTIONS_STATE_DIR (else ~/.local/state/ci-actions), whatever its own state-dir input "
          "says, so leave this empty unless you moved them. Empty means the same place.",
          parse=declared.path(ledger.default_state_dir)),
)
RENDER = ("title", "state-dir")
HISTORY = ("state-dir",)
