"""The real `docker compose` CLI, as users run it: argv builders plus a runner that reports failures.

build-images and hotswap-deploy both read the project's resolved model (`config --format json`) and
run compose subcommands with override files of their own; this module is the one place that knows
the CLI's shape. Argv builders are pure so plans can print them (`--dry-run`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ci_actions.atomic import write_atomic


class ComposeError(Exception):
    """A compose command failed; the message carries compose's own words and the files involved."""


@dataclass(frozen=True)
class Compose:
    """One compose project: its files (first one sets the project directory), name, extra env and the
    env files compose interpolates from.

    An empty project name lets compose choose it (the files' `name:` or the directory), as users get.
    With `env_files`, compose reads those instead of `<project dir>/.env`; `with_env_file` keeps that
    `.env` first, so only the keys of the added file change."""

    files: tuple[Path, ...]
    project: str
    env: dict[str, str] = field(default_factory=dict)
    env_files: tuple[Path, ...] = ()

    @property
    def directory(self) -> Path:
        return self.files[0].parent

    def with_env_file(self, path: Path) -> Compose:
        """The same project interpolating from `path` too, after the project directory's `.env`."""
        dotenv = self.directory / ".env"
        return dataclasses.replace(self, env_files=(*([dotenv] if dotenv.is_file() else []), path))

    def argv(self, *args: str, overrides: tuple[Path, ...] = ()) -> list[str]:
        files = [arg for path in (*self.files, *overrides) for arg in ("-f", str(path))]
        project = ["-p", self.project] if self.project else []
        env_files = [arg for path in self.env_files for arg in ("--env-file", str(path))]
        return ["docker", "compose", *project, "--project-directory", str(self.directory), *env_files, *files,
                *args]

    def run(self, *args: str, overrides: tuple[Path, ...] = (), env: dict[str, str] | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run one compose command; the caller decides what a non-zero exit means."""
        argv = self.argv(*args, overrides=overrides)
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                                  env={**os.environ, **self.env, **(env or {})})
        except subprocess.TimeoutExpired:
            raise ComposeError(f"`docker compose {' '.join(args)}` did not finish within {timeout:g}s for "
                               f"{self.describe()} (stopped)") from None
        except OSError as exc:
            raise ComposeError(f"`{' '.join(argv[:3])}` could not run: {exc}; is the compose plugin "
                               "installed (`docker compose version`)?") from exc

    def check(self, *args: str, overrides: tuple[Path, ...] = (), env: dict[str, str] | None = None,
              timeout: float | None = None) -> str:
        """Run one compose command and return its stdout; a failure raises with compose's message."""
        result = self.run(*args, overrides=overrides, env=env, timeout=timeout)
        if result.returncode != 0:
            message = (result.stderr.strip() or result.stdout.strip()).splitlines()[-20:]
            raise ComposeError(f"`docker compose {' '.join(args)}` failed for {self.describe()} "
                               f"(exit {result.returncode}):\n" + "\n".join(message))
        return result.stdout

    def config(self, overrides: tuple[Path, ...] = ()) -> dict:
        """The resolved project model, as compose itself parses, merges and interpolates it."""
        for path in self.files:
            if not path.is_file():
                raise ComposeError(f"compose file {path} does not exist")
        return json.loads(self.check("config", "--format", "json", overrides=overrides))

    def describe(self) -> str:
        return f"project {self.project or '(from the files)'} ({', '.join(str(p) for p in self.files)})"


def write_override(path: Path, services: dict[str, dict]) -> Path:
    """A compose override file (JSON is YAML) that changes only what the action must change."""
    write_atomic(path, json.dumps({"services": services}, indent=2) + "\n")
    return path
