"""Who may deploy: a runner on the production machine runs repository code, so a run that untrusted
code or input can start, and a ref no `allowed-refs` pattern admits, is refused before anything is
touched (pure checks, no side effects).

Events fail closed: only those that just the repository's writers (or GitHub's scheduler) can start
pass. A `workflow_run` passes only when the run that triggered it did, from this repository.
`allowed-refs` follows GitHub's filter rules with the hashFiles() matcher: `*` within a segment,
`**` across, a leading `!` excludes, the last matching pattern decides. A pattern that does not start
with `refs/` names a branch, as in `on.push.branches`.
"""

from __future__ import annotations

from ci_actions.hash_files import HashFilesError, glob_match
from ci_actions.runner import Trigger

TRUSTED_EVENTS = ("push", "workflow_dispatch", "schedule", "merge_group", "repository_dispatch", "release",
                  "deployment")
_COMMENTS = ("issue_comment", "discussion_comment", "pull_request_review", "pull_request_review_comment")
_PULL_REQUESTS = ("pull_request", "pull_request_target")
OPT_IN = "set allow-untrusted-events: true to opt in"


class GuardError(Exception):
    """The run may not deploy; the message names the event or ref, and the input that opts in."""


def _why_untrusted(trigger: Trigger) -> str:
    """Why untrusted code or input could have started this run ('' when it could not)."""
    event = trigger.event
    if event == "workflow_run":
        upstream = trigger.upstream_event
        if not upstream:
            return "the event does not say which run triggered it"
        if upstream not in TRUSTED_EVENTS:
            why = _why_untrusted(Trigger(upstream, ""))
            return f"the run that triggered it was a {upstream} event ({why})"
        if not trigger.repository or trigger.upstream_repository != trigger.repository:
            built = trigger.upstream_repository or "an unnamed repository"
            return f"the run that triggered it built {built}, not {trigger.repository or 'this one'} (a fork)"
        return ""
    if event in TRUSTED_EVENTS:
        return ""
    if event in _PULL_REQUESTS:
        return "its code and inputs come from a pull request nobody has reviewed yet"
    if event in _COMMENTS:
        return "anyone who can comment starts it, and it runs with the default branch's ref"
    return f"only {', '.join(TRUSTED_EVENTS)} and workflow_run after one of them pass"


def check_event(trigger: Trigger, *, allow_untrusted_events: bool) -> None:
    why = _why_untrusted(trigger)
    if why and not allow_untrusted_events:
        raise GuardError(f"refusing to deploy from a {trigger.event or 'unnamed'} event: {why}; this runner "
                         f"shares the machine with production ({OPT_IN})")


def ref_allowed(ref: str, patterns: list[str]) -> bool:
    """GitHub's filter semantics over `patterns`; raises GuardError for a pattern it cannot use."""
    if not any(not p.startswith("!") for p in patterns):
        raise GuardError(f"allowed-refs is {', '.join(patterns)}: it needs at least one pattern that is not "
                         "an exclusion (`!`)")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    allowed = False
    for line in patterns:
        pattern = line.removeprefix("!")
        subject = ref if pattern.startswith("refs/") else branch
        try:
            matched = subject is not None and glob_match(pattern, subject)
        except HashFilesError as exc:
            raise GuardError(f"allowed-refs: pattern {line!r} cannot be used: {exc}") from None
        if matched:
            allowed = not line.startswith("!")
    return allowed


def check(trigger: Trigger, *, allowed_refs: list[str], allow_untrusted_events: bool) -> None:
    check_event(trigger, allow_untrusted_events=allow_untrusted_events)
    if not ref_allowed(trigger.ref, allowed_refs):
        raise GuardError(f"refusing to deploy from {trigger.ref or 'an unknown ref'}: allowed-refs is "
                         f"{', '.join(allowed_refs)}")
