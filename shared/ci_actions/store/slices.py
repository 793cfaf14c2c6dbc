"""Run work over contiguous slices of a list on a few threads, results in input order.

The store's loops are one syscall per item (stat, link, open); threads overlap them in the kernel while
one of them holds the GIL. Contiguous slices keep each thread's directories apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

WORKERS = max(2, os.cpu_count() or 1)


def in_slices(items: list, work: Callable[[list], list]) -> list:
    size = -(-len(items) // WORKERS) or 1
    with ThreadPoolExecutor(WORKERS) as pool:
        return [r for part in pool.map(work, [items[i:i + size] for i in range(0, len(items), size)])
                for r in part]
