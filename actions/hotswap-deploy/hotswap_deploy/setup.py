"""`deploy setup`: make a host's nginx ready for a first deploy from zero containers (after Kamal's
`kamal setup`), planned then executed.

The plan writes, in the upstream directory that nginx includes at `http` level (`*.conf`):
- `<project>.placeholder.conf`: a server on a unix socket that answers 503, where a service with
  nothing live goes (before the first deploy, and after a failed one);
- `<project>-<service>.conf` for each service that has none yet, pointing at the placeholder (a file
  that is already there routes live traffic and is kept as it is);
- `<project>.site.conf`: a server on `listen` with one location per route, each proxying to its
  service's upstream with the retry settings docs/nginx-setup.md explains.

Then `nginx -t`, a check through `nginx -T` that nginx really includes those files, and, when nginx
runs, a graceful reload. Any failure puts every file back as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ci_actions.atomic import fsync_dir, write_atomic
from ci_actions.compose import Compose
from hotswap_deploy.proxy import (
    MARKER,
    NginxProxy,
    ProxyError,
    active_workers,
    nginx_argv,
    placeholder_socket,
    render,
    run,
    upstream_name,
)
from hotswap_deploy.settings import NginxSettings

_ROUTE = re.compile(r"^/[A-Za-z0-9/_.~-]*$")
_LISTEN = re.compile(r"^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):)?\d{1,5}$")


class SetupError(Exception):
    """nginx cannot be made ready; the message names the input, or shows what to change in nginx."""


def parse_routes(lines: list[str], services: list[str]) -> dict[str, str]:
    """`service: /path/` lines, in the order nginx should see them; one service alone defaults to `/`."""
    if not lines:
        if len(services) == 1:
            return {services[0]: "/"}
        raise SetupError("routes: give one `service: /path/` line per service, e.g. `backend: /api/` and "
                         "`frontend: /`")
    routes: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        service, found, path = (part.strip() for part in line.partition(":"))
        if not found or service not in services:
            raise SetupError(f"routes: entry {number} is not `service: /path/` for one of "
                             f"{', '.join(services)}")
        if not _ROUTE.match(path) or ".." in path:
            raise SetupError(f"routes: {service}'s path {path!r} must start with / and hold only letters, "
                             "digits and /_.~-")
        if path in routes.values():
            raise SetupError(f"routes: {path} is routed twice")
        routes[service] = path
    missing = [s for s in services if s not in routes]
    if missing:
        raise SetupError(f"routes: no route for {', '.join(missing)}")
    return routes


def check_listen(listen: str) -> str:
    if not _LISTEN.match(listen) or not 0 < int(listen.rsplit(":", 1)[-1]) < 65536:
        raise SetupError(f"listen: {listen!r} is not a port or address:port (e.g. 80 or 127.0.0.1:8080)")
    return listen


def placeholder_conf(proxy: NginxProxy) -> str:
    socket = placeholder_socket(proxy.upstream_dir, proxy.project)
    return (f"{MARKER}\n# Where a service of {proxy.project} goes while nothing of it is live.\n"
            f"server {{\n    listen unix:{socket};\n    default_type text/plain;\n"
            f"    return 503 \"no release of {proxy.project} is live\\n\";\n}}\n")


def site_conf(proxy: NginxProxy, routes: dict[str, str], listen: str) -> str:
    locations = "".join(f"""
    location {path} {{
        proxy_pass http://{upstream_name(proxy.project, service)};
        proxy_next_upstream error timeout http_502 http_503 http_504;   # retry on the next server
        proxy_connect_timeout 2s;                # a dead container is skipped fast
        proxy_http_version 1.1;                  # upstream keepalive needs 1.1 ...
        proxy_set_header Connection "";          # ... and no Connection: close
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
""" for service, path in sorted(routes.items(), key=lambda item: len(item[1]), reverse=True))
    return f"{MARKER}\nserver {{\n    listen {listen};\n{locations}}}\n"


@dataclass(frozen=True)
class SetupPlan:
    """The files to write (path -> content), the upstream files kept, and the nginx commands."""

    writes: dict[Path, str]
    kept: list[Path]
    test: list[str]
    dump: list[str]
    reload: list[str]

    def describe(self) -> list[str]:
        return ([f"write {path}" for path in self.writes] + [f"keep {path} (it routes traffic now)"
                                                              for path in self.kept]
                + [" ".join(self.test), f"{' '.join(self.dump)}: check that nginx includes the files",
                   f"{' '.join(self.reload)} (when nginx runs)"])


def plan_setup(proxy: NginxProxy, services: list[str], routes: dict[str, str], listen: str) -> SetupPlan:
    """Pure but for looking at which upstream files exist."""
    writes = {proxy.upstream_dir / f"{proxy.project}.placeholder.conf": placeholder_conf(proxy)}
    kept = []
    for service in services:
        path = proxy.path(service)
        if path.exists():
            kept.append(path)
        else:
            writes[path] = render(proxy.project, service, proxy.placeholder())
    writes[proxy.upstream_dir / f"{proxy.project}.site.conf"] = site_conf(proxy, routes, check_listen(listen))
    return SetupPlan(writes, kept, nginx_argv(proxy.nginx, proxy.config, proxy.prefix, "-t"),
                     nginx_argv(proxy.nginx, proxy.config, proxy.prefix, "-T"),
                     nginx_argv(proxy.nginx, proxy.config, proxy.prefix, "-s", "reload"))


def execute(plan: SetupPlan, proxy: NginxProxy) -> list[str]:
    """Write, test, check the includes, reload; returns what was done. On failure every file is put
    back (or removed) and nginx is not reloaded."""
    made_dir = not proxy.upstream_dir.exists()
    proxy.upstream_dir.mkdir(parents=True, exist_ok=True)
    placeholder_socket(proxy.upstream_dir, proxy.project).parent.mkdir(parents=True, exist_ok=True)
    previous = {path: path.read_text() if path.exists() else None for path in plan.writes}
    try:
        for path, content in plan.writes.items():
            write_atomic(path, content)
        tested = run(plan.test)
        if tested.returncode != 0:
            raise SetupError(f"nginx rejected the configuration (`{' '.join(plan.test)}`); nothing was "
                             f"changed:\n{(tested.stderr or tested.stdout).strip()}")
        dumped = run(plan.dump).stdout
        included = set(re.findall(r"^# configuration file (.+):$", dumped, re.M))
        missing = [p for p in [*plan.writes, *plan.kept] if str(p) not in included]
        if missing:
            raise SetupError(f"nginx does not include {', '.join(str(p) for p in missing)}; add this line "
                             f"inside the http {{ }} block of {proxy.config}, then run setup again:\n"
                             f"    include {proxy.upstream_dir}/*.conf;")
        done = [*(f"wrote {path}" for path in plan.writes), *(f"kept {path}" for path in plan.kept)]
        master = proxy.master()
        workers = active_workers(master) if master else set()
        if not workers:
            start = " ".join(nginx_argv(proxy.nginx, proxy.config, proxy.prefix))
            return [*done, f"nginx is not running; start it: {start}"]
        reloaded = run(plan.reload)
        if reloaded.returncode != 0 or not proxy.wait_new_workers(master, workers):
            raise SetupError(f"`{' '.join(plan.reload)}` did not take effect; nothing was changed:\n"
                             f"{(reloaded.stderr or reloaded.stdout).strip() or 'see nginx error log'}")
        return [*done, f"reloaded nginx (pid {master})"]
    except (SetupError, ProxyError, OSError):
        for path, text in previous.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, text)
        fsync_dir(proxy.upstream_dir)
        if made_dir:
            proxy.upstream_dir.rmdir()
        raise


def setup(compose: Compose, nginx: NginxSettings, services: list[str], route_lines: list[str], listen: str,
          *, dry_run: bool = False) -> list[str]:
    """Plan for the compose project (its name resolved by compose), then execute unless `dry_run`."""
    project = compose.project or compose.config()["name"]
    proxy = NginxProxy(nginx.config, nginx.upstream_dir, project, nginx.binary, prefix=nginx.prefix,
                       pid_file=nginx.pid_file)
    plan = plan_setup(proxy, services, parse_routes(route_lines, services), listen)
    return plan.describe() if dry_run else execute(plan, proxy)
