"""The action's inputs, read once through the runner protocol into plain values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ci_actions import runner
from ci_actions.cache import CacheSpec, default_cache_dir
from ci_actions.store.store import LINK_MODES
from ci_actions.units import parse_duration, parse_size

DEFAULT_MAX_SIZE = "10G"  # actions/cache's per-repository budget
DEFAULT_MAX_AGE = "7d"  # and its eviction of entries unused for a week


def spec(*, with_restore_keys: bool) -> CacheSpec:
    cache_dir = runner.get_input("cache-dir")
    return CacheSpec(
        key=runner.get_input("key", required=True),
        paths=runner.get_multiline_input("path", required=True),
        workspace=runner.workspace(),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        restore_keys=runner.get_multiline_input("restore-keys") if with_restore_keys else (),
        shared=runner.get_boolean_input("shared-store"),
    )


def link_mode() -> str:
    return runner.get_choice_input("link-mode", LINK_MODES, default="auto")


@dataclass(frozen=True)
class Budget:
    max_bytes: int
    max_age: float


def budget() -> Budget:
    try:
        return Budget(parse_size(runner.get_input("max-size", default=DEFAULT_MAX_SIZE), name="max-size"),
                      parse_duration(runner.get_input("max-age", default=DEFAULT_MAX_AGE), name="max-age"))
    except ValueError as exc:
        raise runner.InputError(str(exc)) from exc
