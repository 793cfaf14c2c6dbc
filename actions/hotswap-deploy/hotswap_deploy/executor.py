"""Runs a deploy's operations in order, recording each one as it completes, and on failure undoes,
newest first, every operation it reached (the failing one included: it may have half happened).
Crash recovery runs the same undo over what the ledger recorded, so there is one way back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from docker.errors import DockerException

from ci_actions import timing
from ci_actions.compose import ComposeError
from hotswap_deploy.effects import DeployError, Run, do, undo
from hotswap_deploy.health import HealthError
from hotswap_deploy.operations import Operation, Recreate, StartBeside, Switch, live_from, reversible
from hotswap_deploy.proxy import ProxyError

# failures whose own message says what broke; anything else is named by its type too
KNOWN = (DeployError, HealthError, ProxyError, ComposeError, DockerException, LookupError)


def label(op: Operation) -> str:
    return f"{op.kind} {getattr(op, 'service', '')}".strip()


def timed(op: Operation, run: Run) -> None:
    """Do `op` as a timing phase (pipeline-report draws it inside the deploy step)."""
    service = getattr(op, "service", "")
    with timing.phase(op.kind, **({"service": service} if service else {})):
        do(op, run)


@dataclass
class Undone:
    """What an undo put back, per operation, and the inverses that failed."""

    did: list[tuple[Operation, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, kind: type, order: dict[str, int]) -> list[str]:
        found = [(op, text) for op, text in self.did if isinstance(op, kind)]
        return list(dict.fromkeys(text for _op, text in sorted(found, key=lambda d: order[d[0].service])))


class Executor:
    def __init__(self, operations: list[Operation], run: Run, sha: str,
                 record: Callable[[int], None] = lambda index: None) -> None:
        self.operations, self.run, self.sha, self.record = operations, run, sha, record

    def execute(self) -> None:
        """Up to the point where the release is live, any failure is undone and raised as DeployError;
        after it, what remains (retiring the old containers) only warns."""
        live = live_from(self.operations)
        for index, op in enumerate(self.operations[:live]):
            try:
                timed(op, self.run)
                self.record(index)
            except Exception as exc:  # whatever broke, production goes back to what served before
                raise self._failure(index, exc) from exc
        self.complete(live)
        self.run.mark("total")

    def complete(self, start: int) -> None:
        """The operations from `start` on, once the release is live: a failure is a warning."""
        for index in range(start, len(self.operations)):
            op = self.operations[index]
            try:
                timed(op, self.run)
            except Exception as exc:  # the release is live whatever happens here
                self.run.warnings.append(f"{label(op)} failed ({type(exc).__name__}: {exc}); the release is "
                                         "live")
            else:
                self.record(index)

    def undo(self, reached: int) -> Undone:
        """The inverses of operations `reached` down to the first; each one's failure is noted and the
        rest still run."""
        undone = Undone()
        for op in reversed(self.operations[:reached + 1]):
            try:
                did = undo(op, self.run)
            except Exception as exc:  # the other inverses still run
                undone.problems.append(f"undoing {label(op)} failed: {exc}")
            else:
                if did:
                    undone.did.append((op, did))
        return undone

    def _failure(self, index: int, exc: Exception) -> DeployError:
        """Before any operation with an inverse, there is nothing to put back (a failed migration)."""
        sha = self.sha[:12]
        if not any(reversible(op) for op in self.operations[:index + 1]):
            return exc if isinstance(exc, DeployError) else DeployError(
                f"deploy of {sha} stopped by an unexpected error ({type(exc).__name__}: {exc}); nothing was "
                "switched")
        why = str(exc) if isinstance(exc, KNOWN) else f"{type(exc).__name__}: {exc}"
        with timing.phase("rollback"):
            undone = self.undo(index)
        self.run.mark("rolled_back")
        order = {op.service: i for i, op in reversed(list(enumerate(self.operations)))
                 if hasattr(op, "service")}
        put_back = []
        if any(isinstance(op, Switch) for op in self.operations):
            put_back.append(f"services switched back: {', '.join(undone.of(Switch, order)) or 'none'}")
        if recreated := undone.of(Recreate, order):
            put_back.append(f"recreated {', '.join(recreated)}")
        head = f"deploy of {sha} failed and was rolled back ({'; '.join(put_back) or 'nothing to put back'})"
        return DeployError("\n".join([f"{head}: {why}", *undone.problems, *undone.of(StartBeside, order)]),
                           rolled_back=True)
