"""cache-local (post): save when the job ends, unless the primary key was a hit."""

from cache_local import steps

steps.guarded(steps.post)
