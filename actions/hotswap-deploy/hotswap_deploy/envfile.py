"""The deploy's `.env`: parsed strictly, written atomically with mode 0600, never echoed."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
    """Temp file created 0600 in the same folder, fsynced, renamed over `path`: never half-written and
    never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(fd, render(values).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave the secrets behind in a temp file
        raise
