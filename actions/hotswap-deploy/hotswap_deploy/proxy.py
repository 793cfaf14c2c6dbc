"""The proxy layer: the proxy owns the public port, the deploy owns the switch.

`Proxy` is the interface the deploy talks to; `NginxProxy` implements it for nginx on the host. A
containerised nginx or another proxy can implement the same two methods later.

`NginxProxy` owns one include file per service, `<upstream_dir>/<project>-<service>.conf`, holding one
upstream block (see `render`). The user's nginx.conf includes `<upstream_dir>/*.conf` at http level and
proxies to `http://<project>_<service>` (docs/nginx-setup.md). A switch is: write the file atomically,
`nginx -t`, then a graceful `nginx -s reload` (old workers finish their in-flight requests), then wait
until the master has started workers on the new configuration. When a step fails, the previous file is
put back and nginx keeps serving the old configuration.

Following Kamal's split, the argv builders and `NginxProxy.plan` are pure (the deploy's dry run prints
each switch's `SwitchPlan.describe()`); only `NginxProxy.switch`, which runs that same plan, and `run`
touch the machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ci_actions.atomic import fsync_dir, write_atomic

MARKER = "# Written by ci-actions hotswap-deploy; the next deploy overwrites this file."
# `max_fails=0`: nginx never takes a server out of rotation on its own (the deploy decides what is
# live); a request that fails on a server is still retried on the next one by the user's
# `proxy_next_upstream`, so a dead primary costs one refused connect per request, then the backup
# answers. `keepalive`: idle connections cached per worker towards the upstream (needs
# `proxy_http_version 1.1` and `proxy_set_header Connection ""` in the location).
SERVER_PARAMS = "max_fails=0"
KEEPALIVE = 16
RELOAD_TIMEOUT = 10.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")
SUN_PATH_MAX = 107  # bytes a unix socket's path may hold (sun_path has 108, with its NUL)
RUNTIME_DIR = Path("/run/ci-actions")
_SOCKET = re.compile(r"^unix:/[A-Za-z0-9_./-]+\.placeholder\.sock$")  # only the placeholder's socket
_UPSTREAM = re.compile(r"\bupstream\s+([^\s{]+)\s*\{(.*?)\}", re.S)
_SERVER = re.compile(r"^\s*server\s+([^\s;]+)([^;]*);", re.M)


class ProxyError(Exception):
    """The proxy refused or failed a switch; the message carries the proxy's own words."""


@dataclass(frozen=True)
class Upstream:
    """Where a service's traffic goes: `primary` servers take it, `backup` ones only when every
    primary fails (kept during the watch window so nginx retries on the old containers)."""

    primary: list[str]
    backup: list[str]

    def __post_init__(self) -> None:
        if not self.primary:
            raise ValueError("an upstream needs at least one primary address")
        for address in (*self.primary, *self.backup):
            check_address(address)


@runtime_checkable
class Proxy(Protocol):
    """What the deploy needs from a proxy."""

    def current(self, service: str) -> Upstream | None:
        """The upstream that is live now for `service`, or None when the proxy has none."""
        ...

    def switch(self, service: str, upstream: Upstream) -> None:
        """Send `service`'s traffic to `upstream`; raises ProxyError, leaving the old one live."""
        ...

    def placeholder(self) -> Upstream:
        """Where a service goes when nothing of it is live: a server that answers 503."""
        ...

    def plan(self, service: str) -> SwitchPlan:
        """What a switch of `service` runs (pure: the dry run prints it)."""
        ...


def check_address(address: str) -> str:
    """A `host:port` (or `[v6]:port`, or the placeholder's `unix:/path`) address, rejected when it could
    smuggle nginx syntax in."""
    if isinstance(address, str) and _SOCKET.match(address) and ".." not in address:
        return address
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"upstream address {address!r} is not host:port (e.g. 127.0.0.1:49153)")
    return address


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} {value!r} may hold only letters, digits, '_', '.', '-' "
                         "and must start with a letter or digit")
    return value


def upstream_name(project: str, service: str) -> str:
    """The name the user's `proxy_pass http://<name>;` refers to."""
    return f"{check_name(project, 'project')}_{check_name(service, 'service')}"


def include_path(upstream_dir: Path, project: str, service: str) -> Path:
    return upstream_dir / f"{check_name(project, 'project')}-{check_name(service, 'service')}.conf"


def placeholder_socket(upstream_dir: Path, project: str) -> Path:
    """Beside the upstream files; where that path is too long for a unix socket (a deep upstream dir:
    nginx refuses the config), under /run/ci-actions, named after the upstream dir."""
    name = f"{check_name(project, 'project')}.placeholder.sock"
    beside = upstream_dir / name
    if len(os.fsencode(beside)) <= SUN_PATH_MAX:
        return beside
    return RUNTIME_DIR / f"{hashlib.sha256(os.fsencode(upstream_dir)).hexdigest()[:12]}-{name}"


def render(project: str, service: str, upstream: Upstream) -> str:
    """The include file for one service (pure)."""
    lines = [MARKER, f"upstream {upstream_name(project, service)} {{"]
    lines += [f"    server {address} {SERVER_PARAMS};" for address in upstream.primary]
    lines += [f"    server {address} backup {SERVER_PARAMS};" for address in upstream.backup]
    lines += [f"    keepalive {KEEPALIVE};", "}"]
    return "\n".join(lines) + "\n"


def parse(text: str) -> Upstream:
    """The upstream of an include file: ours, or a hand-written one (comments and other server
    parameters are allowed; `backup` marks a backup server)."""
    text = re.sub(r"#[^\n]*", "", text)
    blocks = _UPSTREAM.findall(text)
    if len(blocks) != 1:
        raise ValueError(f"expected exactly one upstream block, found {len(blocks)}")
    primary: list[str] = []
    backup: list[str] = []
    for address, params in _SERVER.findall(blocks[0][1]):
        (backup if "backup" in params.split() else primary).append(address)
    return Upstream(primary=primary, backup=backup)


def nginx_argv(nginx: str, config: Path, prefix: Path | None, *args: str) -> list[str]:
    """`nginx args… [-p prefix] -c config`: a private nginx (its own prefix) is addressed as it runs."""
    return [nginx, *args, *(["-p", str(prefix)] if prefix else []), "-c", str(config)]


def nginx_test_argv(nginx: str, config: Path, prefix: Path | None = None) -> list[str]:
    return nginx_argv(nginx, config, prefix, "-t")


def nginx_reload_argv(nginx: str, config: Path, prefix: Path | None = None) -> list[str]:
    return nginx_argv(nginx, config, prefix, "-s", "reload")


@dataclass(frozen=True)
class SwitchPlan:
    """What a switch does, in order (pure data: printed by a dry run, executed by NginxProxy)."""

    path: Path
    test: list[str]
    reload: list[str]

    def describe(self) -> list[str]:
        return [f"write {self.path}", shlex.join(self.test), shlex.join(self.reload)]


def run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one proxy command (argv list, no shell); a missing binary or a hang is a ProxyError."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProxyError(f"`{' '.join(argv)}` could not run: {exc}") from exc


def _message(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return "\n".join(lines[-20:]) or f"exit {result.returncode}, no output"


def read_pid_file(config: Path) -> str | None:
    """The `pid` directive of a main nginx config (top level), as written, if it has one."""
    try:
        text = re.sub(r"#[^\n]*", "", config.read_text())
    except OSError:
        return None
    match = re.search(r"(?:^|[;}\s])pid\s+([^\s;]+)\s*;", text)
    return match.group(1) if match else None


def compiled_paths(nginx: str) -> dict[str, str]:
    """`--prefix` and `--pid-path` of `nginx -V` (what nginx uses when nothing else says)."""
    try:
        result = run([nginx, "-V"], timeout=10)
    except ProxyError:
        return {}
    return dict(re.findall(r"--(prefix|pid-path)=(\S+)", result.stderr + result.stdout))


def pid_path(nginx: str, config: Path, prefix: Path | None) -> Path | None:
    """Where the master's pid is: the config's `pid`, else the compiled `--pid-path`; a relative path
    is under the prefix (`-p`, else the compiled `--prefix`), as nginx resolves it."""
    compiled = compiled_paths(nginx)
    path = read_pid_file(config) or compiled.get("pid-path")
    if not path:
        return None
    base = prefix or Path(compiled.get("prefix", "/"))
    return Path(path) if path.startswith("/") else base / path


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` with their command lines (read from /proc; empty where
    there is none)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else ():
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
            if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
                cmdline = (entry.parent / "cmdline").read_bytes()
                found[int(entry.parent.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
    return found


def active_workers(master: int) -> set[int]:
    """nginx workers of `master` that take new requests (not the ones shutting down after a reload)."""
    return {pid for pid, cmdline in children(master).items()
            if "worker process" in cmdline and "shutting down" not in cmdline}


class NginxProxy:
    """nginx on the host, one include file per service under `upstream_dir`."""

    def __init__(self, config: Path, upstream_dir: Path, project: str, nginx: str = "nginx",
                 *, prefix: Path | None = None, pid_file: Path | None = None,
                 reload_timeout: float = RELOAD_TIMEOUT) -> None:
        self.config = Path(config)
        self.upstream_dir = Path(upstream_dir)
        self.project = check_name(project, "project")
        self.nginx = nginx
        self.prefix = prefix
        self.pid_file = pid_file
        self.reload_timeout = reload_timeout

    def path(self, service: str) -> Path:
        return include_path(self.upstream_dir, self.project, service)

    def placeholder(self) -> Upstream:
        """The socket the site snippet of `deploy setup` answers 503 on (docs/nginx-setup.md)."""
        return Upstream([f"unix:{placeholder_socket(self.upstream_dir, self.project)}"], [])

    def current(self, service: str) -> Upstream | None:
        path = self.path(service)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProxyError(f"cannot read the upstream file {path}: {exc}") from exc
        try:
            return parse(text)
        except ValueError as exc:
            raise ProxyError(f"the upstream file {path} is not understood ({exc}); fix or remove it "
                             "(docs/nginx-setup.md shows its format)") from exc

    def plan(self, service: str) -> SwitchPlan:
        return SwitchPlan(path=self.path(service), test=nginx_test_argv(self.nginx, self.config, self.prefix),
                          reload=nginx_reload_argv(self.nginx, self.config, self.prefix))

    def switch(self, service: str, upstream: Upstream) -> None:
        plan = self.plan(service)
        if not self.upstream_dir.is_dir():
            raise ProxyError(f"upstream directory {self.upstream_dir} does not exist; create it and "
                             f"include {self.upstream_dir}/*.conf in {self.config} (docs/nginx-setup.md)")
        try:
            previous: str | None = plan.path.read_text()
        except FileNotFoundError:
            previous = None
        write_atomic(plan.path, render(self.project, service, upstream))

        tested = run(plan.test)
        if tested.returncode != 0:
            self._restore(plan.path, previous)
            raise ProxyError(f"nginx rejected the configuration for {service} (`{' '.join(plan.test)}`); "
                             f"{plan.path} was put back and nginx was not reloaded:\n{_message(tested)}")

        master = self.master()
        workers = active_workers(master) if master else set()
        reloaded = run(plan.reload)
        if reloaded.returncode != 0:
            self._restore(plan.path, previous)
            raise ProxyError(f"`{' '.join(plan.reload)}` failed, {plan.path} was put back; is nginx "
                             f"running with {self.config}?\n{_message(reloaded)}")
        if master and workers and not self.wait_new_workers(master, workers):
            self._restore(plan.path, previous)
            raise ProxyError(f"nginx (pid {master}) did not start workers on the new configuration "
                             f"within {self.reload_timeout:g} s; {plan.path} was put back; see nginx's "
                             "error log")

    def master(self) -> int | None:
        """The running master's pid (the `pid_file` given, else where nginx itself would look)."""
        pid_file = self.pid_file or pid_path(self.nginx, self.config, self.prefix)
        try:
            return int(pid_file.read_text().strip()) if pid_file else None
        except (OSError, ValueError):
            return None

    def wait_new_workers(self, master: int, before: set[int]) -> bool:
        """A reload is applied once the master runs a worker it did not have before and every old
        worker is gone or shutting down (finishing its in-flight requests). When nginx rejects the
        new configuration it keeps the old workers and starts none."""
        deadline = time.monotonic() + self.reload_timeout
        while True:
            active = active_workers(master)
            if active - before and not active & before:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    @staticmethod
    def _restore(path: Path, previous: str | None) -> None:
        if previous is None:
            path.unlink(missing_ok=True)
            fsync_dir(path.parent)
        else:
            write_atomic(path, previous)
