"""The deploy's operations: typed, pure data, one effect each (docker/compose's plan.go model).

`plan.plan_deploy` orders them, `executor` runs them and `effects` says what each does and how it is
undone. Each one is JSON in the ledger's `started` line, with everything its inverse needs (what
served before, the container a recreate replaced), so a rollback and a crash recovery undo the same
recorded list the same way. The compose argv builders are here too: pure, printed by a dry run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from hotswap_deploy.proxy import SwitchPlan, Upstream


@dataclass(frozen=True)
class Previous:
    """What a service ran before a recreate replaced it: the image ref and the commit (GIT_SHA)."""

    image: str
    sha: str


@dataclass(frozen=True)
class Migrate:
    """Migrations, once, in a one-off container of `service`'s new image. Nothing reverses them."""

    service: str
    command: tuple[str, ...]
    kind: ClassVar[str] = "migrate"


@dataclass(frozen=True)
class StartBeside:
    """One more container of `service` from the new image, beside the running ones; undone by
    removing the release's containers of the service."""

    service: str
    kind: ClassVar[str] = "start-beside"


@dataclass(frozen=True)
class WaitHealthy:
    """Until the new container answers its health URL (on its own port) with the new version."""

    service: str
    kind: ClassVar[str] = "wait-healthy"


@dataclass(frozen=True)
class Switch:
    """The proxy sends `service` to the new container, with what served before as `backup` servers
    while the release is watched; undone by switching back to `restore` (None: there was no upstream,
    so the placeholder). `restore` is bound when the deploy starts; `commands` is what the proxy runs,
    for the dry run (not recorded)."""

    service: str
    backup: bool
    restore: Upstream | None = None
    commands: SwitchPlan | None = field(default=None, compare=False)
    kind: ClassVar[str] = "switch"


@dataclass(frozen=True)
class Watch:
    """For `seconds`, every new container keeps running and answering; the old ones serve as backup."""

    seconds: float
    kind: ClassVar[str] = "watch"


@dataclass(frozen=True)
class Retire:
    """Stop the service's other containers (they get no traffic any more) with `grace`, remove them.
    Runs once the release is live, so it has no inverse."""

    service: str
    grace: float
    kind: ClassVar[str] = "retire"


@dataclass(frozen=True)
class Recreate:
    """Compose replaces the container in place (downtime, measured) and it must pass its health check;
    undone by recreating from `back_to`, bound when the deploy starts (None: nothing ran before)."""

    service: str
    back_to: Previous | None = None
    kind: ClassVar[str] = "recreate"


Operation = Migrate | StartBeside | WaitHealthy | Switch | Watch | Retire | Recreate
KINDS: dict[str, type[Operation]] = {op.kind: op for op in (Migrate, StartBeside, WaitHealthy, Switch, Watch,
                                                              Retire, Recreate)}


def reversible(op: Operation) -> bool:
    """Whether the operation has an inverse (reaching one means a failure is a rollback)."""
    return isinstance(op, StartBeside | Switch) or (isinstance(op, Recreate) and op.back_to is not None)


def live_from(operations: list[Operation]) -> int:
    """The index from which the release is live: its first retire (none: after the last operation).
    Nothing is undone past it; a failure from there on is a warning."""
    return next((i for i, op in enumerate(operations) if isinstance(op, Retire)), len(operations))


def start_args(service: str, scale: int | str) -> list[str]:
    """Start one more container of `service` beside the running ones, never touching them."""
    return ["up", "-d", "--no-deps", "--no-build", "--no-recreate", "--scale", f"{service}={scale}", service]


def recreate_args(service: str) -> list[str]:
    """The seed's deploy: compose stops the old container, then starts the new one."""
    return ["up", "-d", "--no-deps", "--no-build", service]


def migrate_args(op: Migrate) -> list[str]:
    return ["run", "--rm", "--no-deps", "-T", op.service, *op.command]


def to_json(op: Operation) -> dict:
    """The ledger's form: `{"op": kind, field: value…}` (the proxy's commands are not recorded)."""
    values = {f.name: getattr(op, f.name) for f in dataclasses.fields(op) if f.name != "commands"}
    for name, value in values.items():
        if dataclasses.is_dataclass(value):
            values[name] = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            values[name] = list(value)
    return {"op": op.kind, **values}


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("is not a string")
    return value


def _texts(value: object) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError("is not a list of strings")
    return tuple(value)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("is not a number of seconds")
    return float(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("is not true or false")
    return value


def _upstream(value: object) -> Upstream | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("is not an upstream")
    return Upstream(list(_texts(value.get("primary"))), list(_texts(value.get("backup"))))


def _previous(value: object) -> Previous | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("is not {image, sha}")
    return Previous(_text(value.get("image")), _text(value.get("sha")))


_DECODE = {"service": _text, "command": _texts, "backup": _flag, "restore": _upstream, "seconds": _seconds,
           "grace": _seconds, "back_to": _previous}


def from_json(data: object) -> Operation:
    """An operation read back from the ledger, every field checked; ValueError names what is wrong."""
    kind = data.get("op") if isinstance(data, dict) else None
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not an operation ({', '.join(KINDS)})")
    values = {}
    for f in dataclasses.fields(KINDS[kind]):
        if f.name == "commands" or (f.name not in data and f.default is not dataclasses.MISSING):
            continue
        if f.name not in data:
            raise ValueError(f"a {kind} has no {f.name!r}")
        try:
            values[f.name] = _DECODE[f.name](data[f.name])
        except ValueError as exc:
            raise ValueError(f"the {f.name!r} of a {kind} {exc}") from None
    return KINDS[kind](**values)
