"""Image names and tags, with docker/metadata-action's rules: pure functions, no engine.

A tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a repository name is lower case. Tags we derive (the
sha, the run id) are sanitised; tags the user writes (extra tags) are checked and rejected with the
rule they break, since silently rewriting what a user typed would deploy something they did not name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TAG = 128
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.-]")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


class TagError(ValueError):
    """A tag or sha breaks a rule; the message says which."""


def sanitise_tag(text: str) -> str:
    """For derived tags (a branch, a run id): invalid characters to `-`, no leading `.`/`-`, 128 chars."""
    tag = _TAG_INVALID.sub("-", text).lstrip(".-")
    return tag[:MAX_TAG]


def check_tag(tag: str) -> str:
    """A user-written tag is used as written or rejected with the rule it breaks."""
    if not tag:
        raise TagError("is an empty tag, which is not allowed")
    if len(tag) > MAX_TAG:
        raise TagError(f"is a tag of {len(tag)} characters ({tag[:40]!r}…); a tag is at most {MAX_TAG}")
    if not _TAG.match(tag):
        raise TagError(f"is an invalid tag: {tag!r}; a tag starts with a letter, digit or `_` and "
                       "holds only letters, digits, `_`, `.` and `-`")
    return tag


def check_sha(sha: str) -> str:
    if not _SHA.match(sha):
        raise TagError(f"is not a commit id: {sha!r} (7 to 64 lower-case hex characters)")
    return sha


@dataclass(frozen=True)
class TagRules:
    """Which tags a build gets: the full sha and `sha-<7>` always; the others by the run. `sha` and
    `extra` come checked (check_sha, check_tag)."""

    sha: str
    latest: bool = False
    run_id: str = ""
    extra: tuple[str, ...] = ()

    def tags(self) -> list[str]:
        tags = [self.sha, f"sha-{self.sha[:7]}"]
        if self.latest:
            tags.append("latest")
        if self.run_id:
            tags.append(sanitise_tag(f"run-{self.run_id}"))
        tags += self.extra  # checked as the input was read
        return list(dict.fromkeys(tags))
