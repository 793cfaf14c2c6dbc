"""The deploy's `.env`: parsed strictly, written atomically with mode 0600, never echoed."""

from __future__ import annotations

import re
from pathlib import Path

from ci_actions.atomic import write_atomic

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvFileError(ValueError):
    """A line is not KEY=VALUE; the message names its number, never its content (it may be a secret)."""


def parse(text: str) -> dict[str, str]:
    """`KEY=VALUE` lines; blank lines and `#` comments are skipped; the value is taken as written."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, found, value = line.partition("=")
        key = key.strip()
        if not found or not _KEY.match(key):
            raise EnvFileError(f"env-file: line {number} is not KEY=VALUE (a KEY is letters, digits and _, "
                               "not starting with a digit)")
        values[key] = value
    return values


def render(values: dict[str, str]) -> str:
    """Compose's .env syntax; single quotes keep `$` and `#` literal (a value with a `'` is written raw)."""
    lines = []
    for key, value in values.items():
        quoted = f"'{value}'" if "'" not in value and "\n" not in value else value
        lines.append(f"{key}={quoted}")
    return "".join(f"{line}\n" for line in lines)


def write(path: Path, values: dict[str, str]) -> None:
    """Atomically, mode 0600: never half-written, never readable by others, no temp file left behind."""
    write_atomic(path, render(values), mode=0o600)
