"""Cache keys, versions and lookup order, exactly as actions/cache defines them (pure functions)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_KEY_LENGTH = 512
MAX_KEYS = 10  # the primary key plus restore-keys
FORMAT = "ci-actions-store-2"  # 2: records in one tree per anchor (header "anchors")
# How `path` lines are read (paths.py), in the version so that an entry saved under one reading is never
# restored under another. paths-2: @actions/glob's matcher (globs.py), `#` comments, the last matching
# line deciding (an exclusion drops what lines above it took; a later line takes some back).
PATH_RULES = "paths-2"


class InvalidKey(ValueError):
    """A key that actions/cache would refuse; the message names the key and the rule."""


def validate_key(key: str) -> str:
    if not key:
        raise InvalidKey("Cache key must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"Key Validation Error: {key[:40]}... is {len(key)} characters; "
                        f"keys cannot be longer than {MAX_KEY_LENGTH} characters.")
    for bad, name in ((",", "a comma"), ("\n", "a newline"), ("\r", "a carriage return")):
        if bad in key:
            raise InvalidKey(f"Key Validation Error: {key!r} contains {name}; keys cannot contain commas "
                            "or line breaks.")
    return key


def validate_keys(primary: str, restore_keys: Sequence[str]) -> list[str]:
    """The lookup list: primary first, then restore-keys, all valid, at most ten."""
    keys = [primary, *restore_keys]
    if len(keys) > MAX_KEYS:
        raise InvalidKey(f"Key Validation Error: {len(keys)} keys given (primary + restore-keys); "
                        f"at most {MAX_KEYS} are allowed.")
    return [validate_key(k) for k in keys]


def cache_version(paths: Sequence[str]) -> str:
    """A digest of the path list, how it is read and the store format, so a different path set never
    restores here."""
    return hashlib.sha256("\n".join([*paths, FORMAT, PATH_RULES]).encode()).hexdigest()


def is_exact_match(primary: str, matched: str | None) -> bool:
    """actions/cache compares case-insensitively (`localeCompare`, sensitivity 'accent')."""
    return matched is not None and matched.casefold() == primary.casefold()


def branch_ref(name: str) -> str:
    """A scope's ref: a bare branch name `main` is `refs/heads/main`; a full ref is kept as given."""
    return name if name.startswith("refs/") or not name else f"refs/heads/{name}"


@dataclass(frozen=True)
class Scope:
    """Which entries a run may see: it saves under `own` (the ref that ran it; "" when none is known,
    "no scope") and reads `own`'s entries, then each fallback's in order (a PR's base, the default
    branch), never another ref's. So a branch, or a PR, can never plant an entry that main restores."""

    own: str = ""
    fallbacks: tuple[str, ...] = ()

    @property
    def readable(self) -> list[str]:
        """The scopes a lookup searches, in order, each once."""
        return list(dict.fromkeys([self.own, *self.fallbacks]))


@dataclass(frozen=True)
class Candidate:
    """What lookup needs of an entry: its key and when it was created (newest wins a prefix match)."""

    key: str
    created: float


def choose(keys: Sequence[str], candidates: Iterable[Candidate]) -> str | None:
    """Pick the entry to restore: for each key in order, an exact match, else the newest prefix match.
    Both compare case-insensitively, as GitHub's cache service does (`Deps-` finds `deps-linux`)."""
    pool = [(c.key.casefold(), c) for c in candidates]
    by_key = dict(pool)
    for key in keys:
        folded = key.casefold()
        if folded in by_key:
            return by_key[folded].key
        prefixed = [c for k, c in pool if k.startswith(folded)]
        if prefixed:
            return max(prefixed, key=lambda c: (c.created, c.key)).key
    return None
