"""The deploy's env file: parsed strictly, kept in the state folder (never the workspace, which a
later job on the runner can read), written atomically with mode 0600, never echoed.

Compose reads it through `--env-file` to interpolate the compose files. Values are written so that
compose's dotenv reader gives them back exactly: double-quoted, with `\\`, `"`, `$`, newline and
carriage return escaped (unquoted values lose ` #...`, and `$` would be interpolated).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from ci_actions.atomic import fsync_dir, write_atomic

NAME = "deploy.env"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r"})


class EnvFileError(ValueError):
    """A line is not KEY=VALUE, or a value cannot be passed; the message names the line or key, never
    a value (it may be a secret)."""


def parse(text: str) -> dict[str, str]:
    """`KEY=VALUE` lines (a CRLF ending counts as a newline); blank lines and `#` comments are skipped;
    the value is taken exactly as written."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
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
    """Compose's dotenv syntax, one double-quoted line per key, read back exactly as given."""
    lines = []
    for key, value in values.items():
        if "\0" in value:
            raise EnvFileError(f"env-file: the value of {key} holds a NUL byte, which no environment "
                               "variable can carry")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EnvFileError(f"env-file: the value of {key} is not valid Unicode text") from None
        lines.append(f'{key}="{value.translate(_ESCAPES)}"\n')
    return "".join(lines)


def stage(state_dir: Path, values: dict[str, str]) -> Path:
    """Write `values` to a new 0600 file in `state_dir` (nothing is replaced yet); the caller moves it
    into place with `install` once the deploy's checks pass, or removes it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    staged = state_dir / f".{NAME}.{secrets.token_hex(4)}.staged"
    write_atomic(staged, render(values), mode=0o600)
    return staged


def install(staged: Path, project_dir: Path) -> Path:
    """Move a staged file to `<project_dir>/deploy.env` (atomically replacing the last one)."""
    target = project_dir / NAME
    os.replace(staged, target)
    fsync_dir(project_dir)
    return target
