"""A compose project name per stack: unique across runs, jobs, attempts and parallel legs, short enough
for networking (compose #7379 breaks near 63 characters), and a valid compose project name."""

from __future__ import annotations

import re
import secrets

MAX_LENGTH = 40  # `<project>-<service>-1` and `<project>_default` stay well under 63
PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,15}$")
PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_UNSAFE = re.compile(r"[^a-z0-9]+")


def check_prefix(text: str) -> str:
    """The project-prefix input: what every stack's name starts with."""
    if not PREFIX.match(text):
        raise ValueError(f"is {text!r}; use 1 to 16 of a-z, 0-9, _ and -, starting with a letter or digit")
    return text


def check_project(text: str) -> str:
    """A project name given back to us (stop/down): a compose project name, nothing a path could abuse."""
    if text and not PROJECT.match(text):
        raise ValueError(f"is {text!r}, not a compose project name (a-z, 0-9, _ and -)")
    return text


def _clean(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")


def suffix() -> str:
    return secrets.token_hex(3)


def project_name(prefix: str, run_id: str, job: str, attempt: int, random_suffix: str) -> str:
    """`<prefix>-<run>-<job>-<attempt>-<random>`: the job part is cut first, then the run id's head (its
    tail differs between runs), so the suffix and the attempt always survive."""
    run, job = _clean(run_id) or "local", _clean(job)
    tail = f"{attempt}-{random_suffix}"
    room = MAX_LENGTH - len(prefix) - len(tail) - 2  # the dashes around the run id
    run = run[-max(room, 1):] if len(run) > room else run
    room -= len(run)
    job = job[: room - 1].strip("-") if room > 1 else ""
    return "-".join(part for part in (prefix, run, job, tail) if part)
