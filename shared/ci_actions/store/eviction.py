"""Which entries to evict: pure planning over what the store holds, so it can be tested and printed.

Entries unused for longer than `max_age` go first; then, least recently used first, entries go until the
blobs the rest reference fit in `max_bytes`. Recency is the manifest's own `last_used` stamp, which every
restore updates; atime is not trusted (noatime/relatime mounts keep in-use caches looking cold).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EntryUse:
    entry: str  # the manifest's path, as a string
    key: str
    last_used: float
    blobs: frozenset[str]


@dataclass(frozen=True)
class Eviction:
    entry: str
    key: str
    reason: str


def plan_eviction(entries: list[EntryUse], blob_sizes: Mapping[str, int], *, max_bytes: int,
                  max_age: float, now: float) -> list[Eviction]:
    refs = Counter(blob for e in entries for blob in e.blobs)
    used = sum(blob_sizes.get(blob, 0) for blob in refs)
    plan: list[Eviction] = []
    evicted: set[str] = set()

    def evict(entry: EntryUse, reason: str) -> None:
        nonlocal used
        plan.append(Eviction(entry.entry, entry.key, reason))
        evicted.add(entry.entry)
        for blob in entry.blobs:
            refs[blob] -= 1
            if refs[blob] == 0:
                used -= blob_sizes.get(blob, 0)

    by_age = sorted(entries, key=lambda e: (e.last_used, e.key))
    for entry in by_age:
        if now - entry.last_used > max_age:
            evict(entry, f"unused for {(now - entry.last_used) / 86400:.1f} days")
    for entry in by_age:
        if used <= max_bytes:
            break
        if entry.entry not in evicted:
            evict(entry, f"least recently used while the store is over {max_bytes} bytes")
    return plan
