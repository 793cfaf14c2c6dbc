"""The runner protocol: the one module that reads ``INPUT_*`` and writes ``GITHUB_*`` files.

Everything below this module is plain Python that knows nothing of GitHub, so every action is also a
CLI. Built on actions-toolkit for the command syntax and the file-command delimiter format; what the
toolkit gets wrong or leaves out (hyphenated names, boolean errors that name the value, the summary cap,
a random delimiter checked against the value) is fixed here.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from actions_toolkit.command import issue_command
from actions_toolkit.utils import AnnotationProperties, to_command_properties, to_command_value

from ci_actions import declared, ledger, timing
from ci_actions.declared import Input, InputError
from ci_actions.store.keys import Scope, branch_ref

SUMMARY_LIMIT = 1024 * 1024  # the runner rejects a step summary over 1 MiB
SUMMARY_CUT_NOTE = "\n\n_(summary cut at 1 MiB)_\n"


def _input_env_name(name: str) -> str:
    # Composite actions map inputs through `env:`, where a hyphen would not survive a shell, so the
    # house form is INPUT_FAIL_ON_CACHE_MISS; the runner's own form for node actions keeps the hyphen.
    return "INPUT_" + name.replace(" ", "_").upper()


def _raw_input(name: str) -> str:
    env = os.environ
    raw = env.get(_input_env_name(name).replace("-", "_"))
    return env.get(_input_env_name(name), "") if raw is None else raw


def read_inputs(inputs: Mapping[str, Input], names: Sequence[str] | None = None) -> dict[str, Any]:
    """The step's declared inputs (all, or `names`), parsed; InputError names a bad or missing one."""
    return declared.read(inputs, _raw_input, names)


def get_input(name: str, *, required: bool = False, default: str = "") -> str:
    """Return the trimmed input, or `default` when it is empty."""
    value = _raw_input(name).strip()
    if not value:
        if required:
            raise InputError(f"Input required and not supplied: {name}")
        return default
    return value


def _append_file_command(var: str, text: str) -> bool:
    path = os.environ.get(var)
    if not path:
        return False
    with Path(path).open("a", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return True


def _key_value(name: str, value: str) -> str:
    """A `name<<DELIM` block whose delimiter is random and provably absent from the value."""
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value and delimiter not in name:
            return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def set_output(name: str, value: object) -> None:
    """Set a step output; non-strings are JSON-encoded, as the toolkit does."""
    text = to_command_value(value)
    if not _append_file_command("GITHUB_OUTPUT", _key_value(name, text)):
        print(f"{name}={text}")


def export_variable(name: str, value: str) -> None:
    """Set an env var for this process and the job's later steps."""
    os.environ[name] = value
    _append_file_command("GITHUB_ENV", _key_value(name, value))


def add_path(directory: str) -> None:
    """Prepend a directory to PATH for this process and later steps."""
    os.environ["PATH"] = f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"
    _append_file_command("GITHUB_PATH", directory + "\n")


def save_state(name: str, value: str) -> None:
    """Keep a value for this action's `post:` step."""
    _append_file_command("GITHUB_STATE", _key_value(name, value))


def get_state(name: str) -> str:
    return os.environ.get(f"STATE_{name}", "")


def mask(secret: str) -> None:
    """Ask the runner to mask a value in every later log line, one line at a time."""
    for line in secret.splitlines():
        if line.strip():
            issue_command("add-mask", {}, line)


def _annotate(kind: str, message: str, properties: Mapping[str, object]) -> None:
    # The toolkit renders unset properties as `title=,`; the runner expects them left out.
    rendered = to_command_properties(AnnotationProperties(**properties))
    issue_command(kind, {k: v for k, v in rendered.items() if v not in (None, "")}, message)


def notice(message: str, **properties: object) -> None:
    _annotate("notice", message, properties)


def warning(message: str, **properties: object) -> None:
    _annotate("warning", message, properties)


def error(message: str, **properties: object) -> None:
    _annotate("error", message, properties)


def info(message: str) -> None:
    print(message, flush=True)


@contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable log group."""
    issue_command("group", {}, title)
    try:
        yield
    finally:
        issue_command("endgroup", {}, "")
        sys.stdout.flush()


def append_summary(markdown: str) -> None:
    """Append to the step summary, cutting so that the file never passes the runner's 1 MiB cap."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    summary = Path(path)
    used = summary.stat().st_size if summary.exists() else 0
    data = markdown.encode("utf-8")
    room = SUMMARY_LIMIT - used
    if len(data) > room:
        note = SUMMARY_CUT_NOTE.encode()
        if room < len(note):  # already cut: nothing more fits
            return
        data = data[: room - len(note)].decode("utf-8", "ignore").encode() + note
    with summary.open("ab") as handle:
        handle.write(data)


TRUSTED_EVENTS = ("push", "workflow_dispatch", "schedule", "merge_group", "repository_dispatch", "release",
                  "deployment")
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
COMMENT_EVENTS = ("issue_comment", "discussion_comment", "pull_request_review", "pull_request_review_comment")


@dataclass(frozen=True)
class RunContext:
    """Which run this is and who could have started it: what keys per-run state (artifacts) so runs
    and re-runs never collide, the refs that scope the cache, and the event a deploy must trust."""

    repository: str
    run_id: str
    attempt: int
    sha: str
    ref: str = ""
    event_name: str = ""
    actor: str = ""
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    base_ref: str = ""  # a pull request's base branch (GITHUB_BASE_REF)
    default_branch: str = ""  # the event payload's repository.default_branch
    pr_head_sha: str = ""  # a pull_request event's head commit (github.sha is the merge commit)
    upstream_event: str = ""  # workflow_run: the triggering run's event
    upstream_repository: str = ""  # workflow_run: the repository its head commit came from
    event_repository: str = ""  # the payload's repository.full_name
    job: str = ""  # the job's id in the workflow (GITHUB_JOB; the same for every leg of a matrix)

    @property
    def repository_url(self) -> str:
        return f"{self.server_url}/{self.repository}" if self.repository != "local" else ""

    @property
    def run_url(self) -> str:
        return f"{self.repository_url}/actions/runs/{self.run_id}" if self.repository_url else ""

    @property
    def on_default_branch(self) -> bool:
        return bool(self.default_branch) and self.ref == branch_ref(self.default_branch)

    def cache_scope(self) -> Scope:
        """actions/cache's scopes: save under the run's ref (a pull request's is refs/pull/N/merge);
        read that ref's entries, then the PR base's, then the default branch's."""
        fallbacks = (self.base_ref, self.default_branch)
        return Scope(self.ref, tuple(branch_ref(name) for name in fallbacks if name))

    def untrusted_because(self) -> str:
        """Why untrusted code or input could have started this run ('' when only the repository's
        writers or GitHub's scheduler can). Fails closed: an event not known to be safe is not; a
        workflow_run is as trusted as the run that triggered it, and only from this repository."""
        event = self.event_name
        if event == "workflow_run":
            upstream = self.upstream_event
            if not upstream:
                return "the event does not say which run triggered it"
            if upstream not in TRUSTED_EVENTS:
                why = RunContext("", "", 1, "", event_name=upstream).untrusted_because()
                return f"the run that triggered it was a {upstream} event ({why})"
            if not self.event_repository or self.upstream_repository != self.event_repository:
                built = self.upstream_repository or "an unnamed repository"
                return (f"the run that triggered it built {built}, not {self.event_repository or 'this one'} "
                        "(a fork)")
            return ""
        if event in TRUSTED_EVENTS:
            return ""
        if event in PULL_REQUEST_EVENTS:
            return "its code and inputs come from a pull request nobody has reviewed yet"
        if event in COMMENT_EVENTS:
            return "anyone who can comment starts it, and it runs with the default branch's ref"
        return f"only {', '.join(TRUSTED_EVENTS)} and workflow_run after one of them pass"


def _field(data: object, *keys: str) -> str:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, str) else ""


def run_context() -> RunContext:
    """From the runner's variables and the event payload; outside a runner, a `local` run (fields a
    payload lacks are "")."""
    env = os.environ
    payload = event_payload()
    event = env.get("GITHUB_EVENT_NAME") or ""
    return RunContext(
        env.get("GITHUB_REPOSITORY") or "local", env.get("GITHUB_RUN_ID") or "local",
        int(env.get("GITHUB_RUN_ATTEMPT") or 1), env.get("GITHUB_SHA") or "", env.get("GITHUB_REF") or "",
        event, env.get("GITHUB_ACTOR") or "", env.get("GITHUB_SERVER_URL") or "https://github.com",
        env.get("GITHUB_API_URL") or "https://api.github.com", env.get("GITHUB_BASE_REF") or "",
        _field(payload, "repository", "default_branch"),
        _field(payload, "pull_request", "head", "sha") if event in PULL_REQUEST_EVENTS else "",
        _field(payload, "workflow_run", "event"),
        _field(payload, "workflow_run", "head_repository", "full_name"),
        _field(payload, "repository", "full_name"), env.get("GITHUB_JOB") or "")


def event_payload() -> dict:
    """The webhook payload of the event that started the run (`{}` outside a runner)."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def workspace() -> Path:
    """The job's workspace: `$GITHUB_WORKSPACE` on a runner, else the current directory."""
    return Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())


def start_timing(action: str) -> Path:
    """Send this step's timing records to its run's file (ci_actions.timing) and return that file."""
    context = run_context()
    path = timing.run_dir(ledger.default_state_dir(), context.repository, context.run_id,
                          context.attempt) / timing.FILE_NAME
    timing.record_to(path, run=f"{context.run_id}-{context.attempt}", job=context.job, action=action,
                     step=os.environ.get("GITHUB_ACTION") or "")
    return path


def fail(message: str, status: int = 1) -> NoReturn:
    """Report one `::error::` line and end the step: exit 1, or 2 for a bad input (as a CLI's flag)."""
    error(message)
    sys.stdout.flush()
    raise SystemExit(status)
