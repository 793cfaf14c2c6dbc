"""The action's inputs, read once through the runner protocol into plain values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ci_actions import runner
from ci_actions.cache import CacheSpec, default_cache_dir, input_lines
from ci_actions.store.store import LINK_MODES
from ci_actions.units import parse_duration, parse_size

DEFAULT_MAX_SIZE = "10G"  # actions/cache's per-repository budget
DEFAULT_MAX_AGE = "7d"  # and its eviction of entries unused for a week


def spec(*, with_restore_keys: bool, key: str | None = None, required: bool = True) -> CacheSpec:
    """`key` stands in for the key input (the post step saves the main step's key). A save reads key
    and path with `required=False` and warns itself when they are missing, as actions/cache's does.
    The scope is the run's ref; it reads that ref's entries, then the PR base's and the default's."""
    cache_dir = runner.get_input("cache-dir")
    return CacheSpec(
        key=key or runner.get_input("key", required=required),
        paths=input_lines(runner.get_multiline_input("path", required=required)),
        workspace=runner.workspace(),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        restore_keys=input_lines(runner.get_multiline_input("restore-keys")) if with_restore_keys else (),
        shared=runner.get_boolean_input("shared-store"),
        scope=runner.run_context().cache_scope(),
    )


def link_mode() -> str:
    return runner.get_choice_input("link-mode", LINK_MODES, default="auto")


@dataclass(frozen=True)
class Budget:
    max_bytes: int
    max_age: float


def budget() -> Budget:
    values = {}
    for name, parse, default in (("max-size", parse_size, DEFAULT_MAX_SIZE),
                                 ("max-age", parse_duration, DEFAULT_MAX_AGE)):
        try:
            values[name] = parse(runner.get_input(name, default=default))
        except ValueError as exc:
            raise runner.InputError(f"Input '{name}' {exc}") from exc
    return Budget(values["max-size"], values["max-age"])
