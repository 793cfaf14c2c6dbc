"""Crash recovery: a deploy killed mid-way left a `started` release with no `finished` line.

The next deploy (or `deploy status`) replays it under the deploy lock from what the ledger recorded:
the operations of its `started` line, and one `done` line per operation that completed.
- Every operation before the release went live is done (the proxy sends everything to the new
  containers): **forward**, the remaining operations run (retiring the old containers) and the
  release is live.
- Else **back**: the executor's undo runs from the operation that was in progress down to the first,
  exactly as a failed deploy's rollback does, and the release is `recovered`.
A release from an earlier ledger format records no operations: it is finished `recovered` and
nothing is touched (the next deploy replaces whatever it left; docs/release-ledger.md).
"""

from __future__ import annotations

from ci_actions import ledger
from hotswap_deploy import operations
from hotswap_deploy.effects import DeployError, Run
from hotswap_deploy.executor import Executor
from hotswap_deploy.host import Host
from hotswap_deploy.proxy import Proxy


def recover(host: Host, book: ledger.Ledger, proxy: Proxy | None, keep: int) -> str:
    """Returns what was done ('' when no deploy was interrupted). Call it under the deploy lock."""
    releases = book.releases()
    release = ledger.in_flight(releases)
    if release is None:
        return ""
    head = f"deploy {release.id} ({release.sha[:12]}) was interrupted"
    if not release.operations:
        summary = (f"{head}; its ledger lines (an earlier format) record no operations, so nothing was "
                   "replayed: the next deploy replaces what it left")
        book.finish(release, "recovered", reason=summary)
        return summary
    recorded = _operations(book, release)
    reached = len(release.done)  # the first operation not done: the one in progress
    executor = Executor(recorded, Run(release.id, {}, host, proxy), release.sha,
                        record=lambda index: book.done(release, index))
    if reached >= operations.live_from(recorded):
        executor.complete(reached)
        summary = (f"{head} after its new containers were switched in; they had passed their health checks "
                   "and stay live")
        book.finish(release, ledger.LIVE, reason=summary,
                    rollback_targets=ledger.next_rollback_targets(releases, release.sha, keep))
        return summary
    undone = executor.undo(reached)
    if undone.problems:
        raise DeployError(f"{head}, and putting it back failed: {'; '.join(undone.problems)}. It stays in "
                          "flight: fix that, then run `deploy status` to recover it again")
    summary = f"{head}; back on the previous release" if ledger.live(releases) else (
        f"{head} before it went live and there is no earlier release; nothing is live (its containers "
        "were removed, and a service with no earlier upstream answers 503 from the placeholder)")
    book.finish(release, "recovered", reason=summary)
    return summary


def _operations(book: ledger.Ledger, release: ledger.Release) -> list[operations.Operation]:
    """The recorded operations, every field checked (the ledger may have been edited or damaged)."""
    try:
        recorded = [operations.from_json(op) for op in release.operations]
    except ValueError as exc:
        problem = str(exc)
    else:
        if release.done == list(range(len(release.done))):
            return recorded
        problem = f"its done operations {release.done} are not in order"
    raise ledger.LedgerError(f"the release ledger {book.path}: release {release.id} cannot be replayed "
                             f"({problem}). Fix or delete its lines (docs/release-ledger.md shows the "
                             "format); nothing was changed")
