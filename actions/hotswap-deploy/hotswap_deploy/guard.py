"""Who may deploy: a runner on the production machine runs repository code, so a run that untrusted
code or input can start, and a ref no `allowed-refs` pattern admits, is refused before anything is
touched (pure checks, no side effects).

Events fail closed (which ones untrusted code can start is the runner's knowledge:
`RunContext.untrusted_because`).
`allowed-refs` follows GitHub's filter rules with the hashFiles() matcher: `*` within a segment,
`**` across, a leading `!` excludes, the last matching pattern decides. A pattern that does not start
with `refs/` names a branch, as in `on.push.branches`.
"""

from __future__ import annotations

from ci_actions.hash_files import HashFilesError, glob_match
from ci_actions.runner import RunContext

OPT_IN = "set allow-untrusted-events: true to opt in"


class GuardError(Exception):
    """The run may not deploy; the message names the event or ref, and the input that opts in."""


def check_event(run: RunContext, *, allow_untrusted_events: bool) -> None:
    why = run.untrusted_because()
    if why and not allow_untrusted_events:
        raise GuardError(f"refusing to deploy from a {run.event_name or 'unnamed'} event: {why}; this runner "
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


def check(run: RunContext, *, allowed_refs: list[str], allow_untrusted_events: bool) -> None:
    check_event(run, allow_untrusted_events=allow_untrusted_events)
    if not ref_allowed(run.ref, allowed_refs):
        raise GuardError(f"refusing to deploy from {run.ref or 'an unknown ref'}: allowed-refs is "
                         f"{', '.join(allowed_refs)}")
