"""Who may deploy: a runner on the production machine runs repository code, so untrusted events and
refs are refused before anything is touched (pure checks, no side effects)."""

from __future__ import annotations

from fnmatch import fnmatchcase

UNTRUSTED_EVENTS = ("pull_request", "pull_request_target")


class GuardError(Exception):
    """The run may not deploy; the message says which input opts in."""


def check(*, event_name: str, ref: str, allowed_refs: list[str], allow_untrusted_events: bool) -> None:
    if event_name in UNTRUSTED_EVENTS and not allow_untrusted_events:
        raise GuardError(f"refusing to deploy from a {event_name} event: its code is not reviewed yet and "
                         "this runner shares the machine with production (set allow-untrusted-events: true "
                         "to opt in)")
    if allowed_refs and not any(fnmatchcase(ref, pattern) for pattern in allowed_refs):
        raise GuardError(f"refusing to deploy from {ref or 'an unknown ref'}: allowed-refs is "
                         f"{', '.join(allowed_refs)}")
