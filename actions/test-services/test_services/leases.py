"""Host ports leased to stacks under a lock, so two jobs on one machine never publish the same port.

Under `<state-dir>/test-services/leases/` (0700, this user's):

    .lock                    flock'd (filelock) while ports are chosen, released or reaped
    projects/<project>.json  the lease: its ports, its holder, when it was made and when it expires;
                             written first when ports are leased, removed last when they are released
    ports/<port>             a claim, holding the project's name, created with O_EXCL: a port has at most
                             one claim even if a writer ignored the lock

A lease is stale when its holder (the job's process, identified by pid, start time and boot, so a reused
pid is not taken for it) is gone, or when it expires (`ttl` after it was made). Every field read back is
validated: a record that is not ours to trust is damage, and damage is reaped like a stale lease.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from ci_actions.atomic import write_atomic
from test_services.naming import PROJECT

LOCK_TIMEOUT = 30.0
_BOOT = Path("/proc/sys/kernel/random/boot_id")


class LeaseError(Exception):
    """The lease folder cannot be used (another user's, a lock that never frees)."""


class NoFreePort(LeaseError):
    """Fewer free ports in the range than the stack publishes."""


def boot_id() -> str:
    try:
        return _BOOT.read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def parent_pid(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


@dataclass(frozen=True)
class Holder:
    """The process whose life the lease follows: the job (the runner's worker, act, or the shell that ran
    the command). The start time tells a pid reused by another process from the holder itself."""

    pid: int
    start: int
    boot: str

    @classmethod
    def of(cls, pid: int) -> Holder | None:
        fields = _stat_fields(pid) if pid > 0 else None
        if not fields or fields[0] == "Z":  # a zombie has exited; only its parent has not noticed
            return None
        return cls(pid, int(fields[19]), boot_id())

    def alive(self) -> bool:
        return self.boot == boot_id() and Holder.of(self.pid) == self

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start, "boot": self.boot}


@dataclass(frozen=True)
class Lease:
    project: str
    ports: tuple[int, ...]
    holder: Holder | None  # None: only the ttl ends it
    created: float
    expires: float
    files: tuple[str, ...] = ()

    def stale_because(self, now: float) -> str:
        """Why the lease's job is over ('' while it may still run)."""
        if now >= self.expires:
            return f"expired {now - self.expires:.0f}s ago (ttl {self.expires - self.created:.0f}s)"
        if self.holder and not self.holder.alive():
            return f"its holder (pid {self.holder.pid}) is gone"
        return ""

    def to_json(self) -> str:
        return json.dumps({"project": self.project, "ports": list(self.ports),
                           "holder": self.holder.to_json() if self.holder else None,
                           "created": self.created, "expires": self.expires, "files": list(self.files)},
                          indent=1) + "\n"


@dataclass(frozen=True)
class Damaged:
    """A record that does not read as a lease: reaped, with the claims that name it."""

    project: str
    why: str

    def stale_because(self, now: float) -> str:
        return f"its lease record is damaged ({self.why})"


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_lease(project: str, text: str) -> Lease:
    """A lease record as read back: every field checked (ValueError says which)."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("project") != project:
        raise ValueError("not a lease of this project")
    ports = data.get("ports")
    if not isinstance(ports, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
        raise ValueError("ports are not port numbers")
    holder = data.get("holder")
    if holder is not None:
        if not (isinstance(holder, dict) and isinstance(holder.get("pid"), int)
                and isinstance(holder.get("start"), int) and isinstance(holder.get("boot"), str)):
            raise ValueError("holder is not a pid, start time and boot id")
        holder = Holder(holder["pid"], holder["start"], holder["boot"])
    if not (_number(data.get("created")) and _number(data.get("expires"))):
        raise ValueError("created/expires are not times")
    files = data.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError("files is not a list of paths")
    return Lease(project, tuple(ports), holder, float(data["created"]), float(data["expires"]), tuple(files))


def choose_ports(low: int, high: int, count: int, taken: set[int], is_free: Callable[[int], bool],
                 start: int) -> list[int]:
    """`count` ports of low..high, scanning once from `start` (wrapping), skipping leased ones and those
    `is_free` refuses. Fewer than `count`: NoFreePort with what was found."""
    size = high - low + 1
    chosen: list[int] = []
    refused = 0
    for step in range(size):
        port = low + (start - low + step) % size
        if port in taken:
            continue
        if not is_free(port):
            refused += 1
            continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    leased = len(taken & set(range(low, high + 1)))
    raise NoFreePort(f"no free port: the stack publishes {count} port(s) and only {len(chosen)} of "
                     f"{low}-{high} {'is' if len(chosen) == 1 else 'are'} free ({leased} leased to other "
                     f"stacks, {refused} in use on this machine). Widen port-range, or see who holds them "
                     "with `ci-actions services list` (`reap` frees the ports of dead jobs)")


class Leases:
    """The lease folder of one state dir."""

    def __init__(self, root: Path, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.root = root
        self.lock_timeout = lock_timeout

    @classmethod
    def at(cls, state_dir: Path) -> Leases:
        return cls(state_dir / "test-services" / "leases")

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    @property
    def claims(self) -> Path:
        return self.root / "ports"

    def _ensure(self) -> None:
        for folder in (self.root, self.projects, self.claims):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.root.lstat()
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            raise LeaseError(f"{self.root} is not a folder of this user's that only it can write; "
                             "give state-dir a folder of your own")

    @contextmanager
    def locked(self) -> Iterator[None]:
        self._ensure()
        lock = FileLock(self.root / ".lock", timeout=self.lock_timeout)
        try:
            with lock:
                yield
        except Timeout:
            raise LeaseError(f"the lease lock {self.root / '.lock'} stayed taken for "
                             f"{self.lock_timeout:.0f}s; a stuck `ci-actions services` process holds it "
                             "(see `fuser -v` on it)") from None

    def _record(self, project: str) -> Path:
        if not PROJECT.match(project):
            raise ValueError(f"not a project name: {project!r}")
        return self.projects / f"{project}.json"

    def _claimed(self) -> dict[int, str]:
        """Port -> the project its claim names (claims that do not read as one name no project)."""
        claimed = {}
        for entry in self.claims.iterdir() if self.claims.is_dir() else ():
            if not entry.name.isdigit():
                continue
            try:
                owner = entry.read_text().strip()
            except OSError:
                owner = ""
            claimed[int(entry.name)] = owner if PROJECT.match(owner) else ""
        return claimed

    def get(self, project: str) -> Lease | Damaged | None:
        path = self._record(project)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return Damaged(project, str(exc))
        try:
            return parse_lease(project, text)
        except ValueError as exc:
            return Damaged(project, str(exc))

    def all(self) -> list[Lease | Damaged]:
        if not self.projects.is_dir():
            return []
        names = sorted(p.name.removesuffix(".json") for p in self.projects.glob("*.json"))
        found = [self.get(name) for name in names if PROJECT.match(name)]
        return [lease for lease in found if lease is not None]

    def acquire(self, project: str, count: int, port_range: tuple[int, int], holder: Holder | None,
                ttl: float, is_free: Callable[[int], bool], *, files: Iterable[str] = (),
                start: int | None = None, now: float | None = None) -> Lease:
        """Lease `count` free ports to a new project: the record first, then one claim per port."""
        now = time.time() if now is None else now
        low, high = port_range
        start = low + int.from_bytes(os.urandom(4)) % (high - low + 1) if start is None else start
        with self.locked():
            record = self._record(project)
            if record.exists():
                raise LeaseError(f"project {project} already holds a lease")
            ports = choose_ports(low, high, count, set(self._claimed()), is_free, start)
            lease = Lease(project, tuple(ports), holder, now, now + ttl, tuple(files))
            write_atomic(record, lease.to_json(), mode=0o600)
            for port in ports:
                self._claim(port, project)
        return lease

    def _claim(self, port: int, project: str) -> None:
        try:
            fd = os.open(self.claims / str(port), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if exc.errno == errno.EEXIST:  # only a writer that skipped the lock gets here
                raise LeaseError(f"port {port} was claimed by another stack while {project} took it") \
                    from None
            raise
        with os.fdopen(fd, "w") as handle:
            handle.write(project + "\n")

    def release(self, project: str, *, if_unchanged: Lease | Damaged | None = None) -> bool:
        """Drop the project's claims, then its record. With `if_unchanged`, only if the record still reads
        as that (a reaper never releases a lease that changed since it judged it stale)."""
        with self.locked():
            current = self.get(project)
            if if_unchanged is not None and current != if_unchanged:
                return False
            for port, owner in self._claimed().items():
                if owner == project:
                    (self.claims / str(port)).unlink(missing_ok=True)
            self._record(project).unlink(missing_ok=True)
            return current is not None

    def free_unowned_claims(self) -> list[int]:
        """Claims naming no lease (a release cut short between the two): freed by the reaper."""
        with self.locked():
            claimed = self._claimed()
            dropped = [port for port, owner in claimed.items()
                       if not owner or not self._record(owner).exists()]
            for port in dropped:
                (self.claims / str(port)).unlink(missing_ok=True)
            return sorted(dropped)
