"""The deploy executor and crash recovery against an in-memory host and proxy: the order of effects,
what each failure undoes (newest first), and the ledger's record of it. These fakes are only for the
ordering; tests/integration/test_hotswap_deploy.py runs the same code on Docker, compose and nginx."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from docker.errors import APIError

from ci_actions import ledger
from ci_actions.compose import ComposeError
from hotswap_deploy import operations
from hotswap_deploy.effects import DeployError, Run
from hotswap_deploy.executor import Executor
from hotswap_deploy.health import HealthCheck, HealthError, Probe
from hotswap_deploy.host import Box
from hotswap_deploy.operations import Previous
from hotswap_deploy.plan import DeployPlan, plan_deploy
from hotswap_deploy.proxy import ProxyError, SwitchPlan, Upstream
from hotswap_deploy.recover import recover

SHA = "b" * 40
RELEASE = "rel-b"
SERVICES = ("backend", "frontend")
PLACEHOLDER = Upstream(["unix:/run/ci-actions/shop.placeholder.sock"], [])


class FakeHost:
    """Containers in a dict, health by service name (the fake URLs' path): `sick` services' new
    containers fail their checks, `dying` ones die in the watch; every effect goes to `log`."""

    def __init__(self, log: list[str], *, old: bool = True, sick: tuple[str, ...] = (),
                 dying: tuple[str, ...] = (), migrate_status: int = 0,
                 refuse_remove: tuple[str, ...] = ()) -> None:
        self.log, self.sick, self.dying, self.migrate_status = log, sick, dying, migrate_status
        self.refuse_remove = refuse_remove
        self.boxes = {s: [Box(f"{s}-1", f"shop-{s}-1", "running", "rel-a", f"{s}:a", "a" * 40)] if old else []
                      for s in SERVICES}
        self.ports: dict[str, int] = {}

    def containers(self, service: str) -> list[Box]:
        return list(self.boxes[service])

    def _new(self, service: str, release: str, image: str, sha: str) -> Box:
        number = len(self.ports) + 2
        box = Box(f"{service}-{number}", f"shop-{service}-{number}", "running", release, image, sha)
        self.ports[box.id] = 49000 + len(self.ports)
        return box

    def start_beside(self, service: str, scale: int) -> None:
        self.log.append(f"start {service} scale {scale}")
        self.boxes[service].append(self._new(service, RELEASE, f"{service}:b", SHA))

    def recreate(self, service: str, back_to: Previous | None = None) -> None:
        self.log.append(f"recreate {service}" + (f" from {back_to.image}" if back_to else ""))
        new = self._new(service, "", back_to.image, back_to.sha) if back_to else self._new(
            service, RELEASE, f"{service}:b", SHA)
        self.boxes[service] = [new]

    def migrate(self, args: list[str]) -> tuple[int, str]:
        self.log.append(f"migrate {' '.join(args)}")
        return self.migrate_status, "applying 0002\nerror: relation exists\n"

    def address(self, box: Box, port: int) -> str:
        return f"127.0.0.1:{self.ports.get(box.id, 4000)}"

    def death(self, box: Box) -> str | None:
        service = box.id.split("-")[0]
        return "exited (exit code 70)" if box.release == RELEASE and service in self.dying else None

    def remove(self, box: Box, grace: float) -> None:
        service = box.id.split("-")[0]
        if box.release != RELEASE and service in self.refuse_remove:
            raise APIError("device or resource busy")
        self.log.append(f"remove {box.name} grace {grace:g}")
        self.boxes[service] = [b for b in self.boxes[service] if b.id != box.id]

    def diagnosis(self, box: Box, secrets: list[str]) -> str:
        return f"{box.name}: exited, last 30 log lines"

    def _ok(self, check: HealthCheck) -> bool:
        service = urlsplit(check.url).path.strip("/")
        newest = self.boxes[service][-1:] if self.boxes[service] else []
        return not (service in self.sick and newest and newest[0].release == RELEASE)

    def probe(self, check: HealthCheck) -> Probe:
        return Probe(self._ok(check), 200 if self._ok(check) else 503, "HTTP 503, expected 200", 0.0)

    def wait_healthy(self, check: HealthCheck, alive: Callable[[], str | None]) -> None:
        self.log.append(f"healthy? {check.url}")
        if not self._ok(check):
            raise HealthError(f"{check.url} was not healthy within 60 s (3 probes)", [])


class FakeProxy:
    """Upstreams in a dict; `refuse` is the number of the switch call (from 1) that fails as `nginx -t`
    failing does, leaving the upstream as it was."""

    def __init__(self, log: list[str], upstreams: dict[str, Upstream | None], refuse: int = 0) -> None:
        self.log, self.upstreams, self.refuse, self.calls = log, upstreams, refuse, 0

    def current(self, service: str) -> Upstream | None:
        return self.upstreams.get(service)

    def switch(self, service: str, upstream: Upstream) -> None:
        self.calls += 1
        if self.calls == self.refuse:
            self.log.append(f"switch {service} refused")
            raise ProxyError(f"nginx rejected the configuration for {service}")
        backup = f" backup {','.join(upstream.backup)}" if upstream.backup else ""
        self.log.append(f"switch {service} -> {','.join(upstream.primary)}{backup}")
        self.upstreams[service] = upstream

    def placeholder(self) -> Upstream:
        return PLACEHOLDER

    def plan(self, service: str) -> SwitchPlan:
        return SwitchPlan(Path(f"/up/shop-{service}.conf"), ["nginx", "-t"], ["nginx", "-s", "reload"])


def old_upstreams() -> dict[str, Upstream | None]:
    return {s: Upstream(["127.0.0.1:4000"], []) for s in SERVICES}


def planned(strategy: str = "blue-green", proxy: FakeProxy | None = None, migrate: tuple[str, ...] = (),
            watch: float = 0.0, host: FakeHost | None = None) -> DeployPlan:
    model = {"name": "shop", "services": {"backend": {"expose": ["3000"], "stop_grace_period": "15s"},
                                          "frontend": {"expose": ["8080"]}}}
    plan = plan_deploy(model, release_id=RELEASE, sha=SHA, strategy=strategy, services=list(SERVICES),
                       images={s: f"{s}:b" for s in SERVICES},
                       health={s: HealthCheck(f"http://localhost/{s}", interval=0.01) for s in SERVICES},
                       proxy=proxy, migrate=migrate, watch_seconds=watch)
    running = {s: Previous(b[0].image, b[0].sha) if (b := host.containers(s)) else None
               for s in SERVICES} if host else {}
    return plan.bound({s: proxy.current(s) for s in SERVICES} if proxy else {}, running)


def run_of(plan: DeployPlan, host: FakeHost, proxy: FakeProxy | None) -> Run:
    return Run(RELEASE, {t.service: t for t in plan.targets}, host, proxy)


def execute(plan: DeployPlan, host: FakeHost, proxy: FakeProxy | None) -> tuple[Run, list[int]]:
    recorded: list[int] = []
    run = run_of(plan, host, proxy)
    Executor(plan.operations, run, SHA, record=recorded.append).execute()
    return run, recorded


def reach(plan: DeployPlan, host: FakeHost, proxy: FakeProxy | None, count: int) -> None:
    """Run the plan's first `count` operations, as a deploy killed after them did."""
    Executor(plan.operations[:count], run_of(plan, host, proxy), SHA).execute()


def failing(plan: DeployPlan, host: FakeHost, proxy: FakeProxy | None) -> tuple[DeployError, list[int]]:
    recorded: list[int] = []
    run = run_of(plan, host, proxy)
    with pytest.raises(DeployError) as caught:
        Executor(plan.operations, run, SHA, record=recorded.append).execute()
    return caught.value, recorded


@pytest.fixture
def log() -> list[str]:
    return []


GOOD_BLUE_GREEN = [
    "migrate run --rm --no-deps -T backend migrate",
    "start backend scale 2", "healthy? http://localhost:49000/backend",
    "switch backend -> 127.0.0.1:49000 backup 127.0.0.1:4000",
    "start frontend scale 2", "healthy? http://localhost:49001/frontend",
    "switch frontend -> 127.0.0.1:49001 backup 127.0.0.1:4000",
    "switch backend -> 127.0.0.1:49000", "switch frontend -> 127.0.0.1:49001",
    "remove shop-backend-1 grace 15", "remove shop-frontend-1 grace 10"]


def test_blue_green_runs_every_operation_in_order_and_records_each(log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    plan = planned(proxy=proxy, migrate=("migrate",), watch=0.05)
    run, recorded = execute(plan, host, proxy)
    assert log == GOOD_BLUE_GREEN
    assert recorded == list(range(len(plan.operations)))
    assert run.downtime == {}  # the meter is recreate's alone
    assert {"migrated", "backend.healthy_after", "backend.switched_after", "watch_started", "watched",
            "retired", "total"} <= set(run.timings)


def test_an_unhealthy_second_service_is_removed_and_the_first_switched_back(log):
    host, proxy = FakeHost(log, sick=("frontend",)), FakeProxy(log, old_upstreams())
    error, recorded = failing(planned(proxy=proxy), host, proxy)
    assert log[5:] == ["remove shop-frontend-3 grace 0", "switch backend -> 127.0.0.1:4000",
                       "remove shop-backend-2 grace 0"]
    assert error.rolled_back and recorded == [0, 1, 2, 3]  # frontend's start-beside done, not its health
    assert str(error).splitlines() == [
        f"deploy of {SHA[:12]} failed and was rolled back (services switched back: backend): "
        "http://localhost:49001/frontend was not healthy within 60 s (3 probes)",
        "shop-backend-2: exited, last 30 log lines", "shop-frontend-3: exited, last 30 log lines"]


def test_a_crash_in_the_watch_switches_every_service_back_newest_first(log):
    host, proxy = FakeHost(log, dying=("frontend",)), FakeProxy(log, old_upstreams())
    error, _ = failing(planned(proxy=proxy, watch=5), host, proxy)
    assert log[6:] == ["switch frontend -> 127.0.0.1:4000", "remove shop-frontend-3 grace 0",
                       "switch backend -> 127.0.0.1:4000", "remove shop-backend-2 grace 0"]
    assert "(services switched back: backend, frontend): frontend failed in the watch window: exited" \
        in str(error)
    assert proxy.upstreams == old_upstreams()


def test_a_refused_switch_puts_nothing_back_twice(log):
    """nginx -t refused the backend's first switch: the proxy kept the old file, so its undo switches
    nothing and nginx is not reloaded again; the new container goes."""
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams(), refuse=1)
    error, recorded = failing(planned(proxy=proxy), host, proxy)
    assert log == ["start backend scale 2", "healthy? http://localhost:49000/backend",
                   "switch backend refused", "remove shop-backend-2 grace 0"]
    assert recorded == [0, 1] and "(services switched back: none): nginx rejected" in str(error)


def test_a_refused_final_switch_undoes_both_switches_of_each_service(log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams(), refuse=4)  # frontend's backup drop
    error, recorded = failing(planned(proxy=proxy), host, proxy)
    assert log[6:] == ["switch backend -> 127.0.0.1:49000", "switch frontend refused",
                       "switch frontend -> 127.0.0.1:4000", "switch backend -> 127.0.0.1:4000",
                       "remove shop-frontend-3 grace 0", "remove shop-backend-2 grace 0"]
    assert recorded == list(range(7)) and error.rolled_back and proxy.upstreams == old_upstreams()


def test_a_first_deploy_that_fails_goes_to_the_placeholder(log):
    host, proxy = FakeHost(log, old=False, dying=("backend",)), FakeProxy(log, {})
    failing(planned(proxy=proxy, watch=5), host, proxy)
    assert proxy.upstreams == dict.fromkeys(SERVICES, PLACEHOLDER)
    assert host.boxes == {"backend": [], "frontend": []}


def test_a_failed_migration_touches_nothing_else(log):
    host, proxy = FakeHost(log, migrate_status=1), FakeProxy(log, old_upstreams())
    error, recorded = failing(planned(proxy=proxy, migrate=("migrate",)), host, proxy)
    assert log == ["migrate run --rm --no-deps -T backend migrate"] and recorded == []
    assert not error.rolled_back
    assert str(error).startswith("migration failed (exit 1): error: relation exists; nothing was switched")


def test_an_unexpected_error_before_anything_reversible_is_named(log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())

    def broken(args: list[str]) -> tuple[int, str]:
        raise OSError("no space left on device")
    host.migrate = broken
    error, _ = failing(planned(proxy=proxy, migrate=("migrate",)), host, proxy)
    assert str(error) == (f"deploy of {SHA[:12]} stopped by an unexpected error (OSError: no space left on "
                          "device); nothing was switched") and not error.rolled_back


def test_an_old_container_that_will_not_go_is_a_warning_the_release_is_live(log):
    host, proxy = FakeHost(log, refuse_remove=("backend",)), FakeProxy(log, old_upstreams())
    plan = planned(proxy=proxy)
    run, recorded = execute(plan, host, proxy)
    assert run.warnings == ["old container shop-backend-1 of backend was not removed (device or resource "
                            "busy); it gets no traffic, remove it by hand"]
    assert recorded == list(range(len(plan.operations)))


def test_recreate_replaces_each_service_in_place_and_reports_its_downtime(log):
    host = FakeHost(log)
    run, _ = execute(planned("recreate", host=host), host, None)
    assert log == ["recreate backend", "healthy? http://localhost/backend", "recreate frontend",
                   "healthy? http://localhost/frontend"]
    assert set(run.downtime) == set(SERVICES) and "recreated" in run.timings


def test_recreate_goes_back_to_what_ran_before_newest_first(log):
    host = FakeHost(log, sick=("frontend",))
    error, recorded = failing(planned("recreate", host=host), host, None)
    assert log[4:] == ["recreate frontend from frontend:a", "recreate backend from backend:a"]
    assert recorded == [0] and error.rolled_back
    assert str(error) == (f"deploy of {SHA[:12]} failed and was rolled back (recreated backend from "
                          "backend:a, frontend from frontend:a): frontend is not healthy after recreate: "
                          "http://localhost/frontend was not healthy within 60 s (3 probes)")


def test_recreate_with_nothing_before_it_says_so_and_keeps_the_new_container(log):
    host = FakeHost(log, old=False, sick=("backend",))
    error, _ = failing(planned("recreate", host=host), host, None)
    assert not error.rolled_back and str(error).endswith("; there was no earlier container to go back to")
    assert log == ["recreate backend", "healthy? http://localhost/backend"]


def test_a_compose_failure_starting_beside_rolls_back(log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())

    def refused(service: str, scale: int) -> None:
        raise ComposeError("`docker compose up` failed")
    host.start_beside = refused
    error, _ = failing(planned(proxy=proxy), host, proxy)
    assert error.rolled_back and "(services switched back: none): `docker compose up` failed" in str(error)
    assert log == []


# crash recovery: the same undo, from the ledger's record


def book_with(tmp_path: Path, plan: DeployPlan, done: int, *, live_before: bool = True) -> ledger.Ledger:
    """A ledger whose release was killed after `done` operations (an earlier live release first)."""
    book = ledger.Ledger(tmp_path, "shop")
    images = {s: ledger.Image(f"{s}:a", f"id-{s}-a") for s in SERVICES}
    if live_before:
        earlier = ledger.Release("rel-a", "a" * 40, "deploy", images, "1", "me", "")
        book.start(earlier)
        book.finish(earlier, ledger.LIVE)
    killed = ledger.Release(RELEASE, SHA, "deploy", images, "2", "me", "",
                            [operations.to_json(op) for op in plan.operations])
    book.start(killed)
    for index in range(done):
        book.done(killed, index)
    return book


def test_killed_mid_deploy_recovery_undoes_what_it_reached(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    plan = planned(proxy=proxy, watch=30)
    reach(plan, host, proxy, 5)  # up to frontend's start-beside, which was in progress
    book = book_with(tmp_path, plan, done=4)
    log.clear()
    summary = recover(host, book, proxy, keep=3)
    assert log == ["remove shop-frontend-3 grace 0", "switch backend -> 127.0.0.1:4000",
                   "remove shop-backend-2 grace 0"]
    assert summary == f"deploy {RELEASE} ({SHA[:12]}) was interrupted; back on the previous release"
    assert [(r.id, r.outcome) for r in book.releases()] == [("rel-a", "live"), (RELEASE, "recovered")]
    assert recover(host, book, proxy, keep=3) == ""  # nothing in flight any more


def test_killed_once_live_recovery_finishes_the_plan(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    plan = planned(proxy=proxy)
    live = operations.live_from(plan.operations)
    reach(plan, host, proxy, live)
    book = book_with(tmp_path, plan, done=live)
    log.clear()
    summary = recover(host, book, proxy, keep=3)
    assert log == ["remove shop-backend-1 grace 15", "remove shop-frontend-1 grace 10"]
    assert "after its new containers were switched in" in summary
    release = book.releases()[-1]
    assert (release.outcome, release.rollback_targets) == (ledger.LIVE, ["rel-a"])
    assert release.done == list(range(len(plan.operations)))


def test_a_torn_done_line_counts_its_operation_as_in_progress(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    plan = planned(proxy=proxy)
    reach(plan, host, proxy, 3)
    book = book_with(tmp_path, plan, done=2)
    with open(book.path, "ab") as handle:  # the switch's done line, cut by the kill
        handle.write(b'{"v": 1, "type": "done", "release": "rel-b", "o')
    log.clear()
    recover(host, book, proxy, keep=3)
    assert log == ["switch backend -> 127.0.0.1:4000", "remove shop-backend-2 grace 0"]


def test_a_first_deploy_killed_before_it_went_live_leaves_the_placeholder(tmp_path, log):
    host, proxy = FakeHost(log, old=False), FakeProxy(log, {})
    plan = planned(proxy=proxy)
    reach(plan, host, proxy, 3)
    summary = recover(host, book_with(tmp_path, plan, done=3, live_before=False), proxy, keep=3)
    assert "before it went live and there is no earlier release; nothing is live" in summary
    assert proxy.upstreams["backend"] == PLACEHOLDER and host.boxes["backend"] == []


def test_an_earlier_formats_release_is_finished_untouched(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    book = ledger.Ledger(tmp_path, "shop")
    book.path.parent.mkdir(parents=True)
    book.path.write_text(json.dumps({"v": 1, "at": "x", "type": "started", "release": "old", "sha": SHA,
                                     "images": {}, "previous": None}) + "\n"
                         + json.dumps({"v": 1, "at": "x", "type": "switched", "release": "old",
                                       "service": "backend"}) + "\n")
    summary = recover(host, book, proxy, keep=3)
    assert "record no operations, so nothing was replayed" in summary and log == []
    assert book.releases()[-1].outcome == "recovered"


def test_recorded_operations_that_cannot_be_read_stop_recovery_naming_the_ledger(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    book = ledger.Ledger(tmp_path, "shop")
    book.start(ledger.Release(RELEASE, SHA, "deploy", {}, "1", "", "",
                              [{"op": "switch", "service": "backend"}]))
    with pytest.raises(ledger.LedgerError) as caught:
        recover(host, book, proxy, keep=3)
    assert str(caught.value) == (f"the release ledger {book.path}: release {RELEASE} cannot be replayed (a "
                                 "switch has no 'backup'). Fix or delete its lines (docs/release-ledger.md "
                                 "shows the format); nothing was changed")
    assert log == [] and ledger.in_flight(book.releases()) is not None


def test_a_recovery_whose_undo_fails_leaves_the_release_in_flight(tmp_path, log):
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams(), refuse=2)  # the recovery's switch back
    plan = planned(proxy=proxy)
    reach(plan, host, proxy, 3)
    book = book_with(tmp_path, plan, done=3)
    with pytest.raises(DeployError, match="putting it back failed: undoing switch backend failed: nginx"):
        recover(host, book, proxy, keep=3)
    assert ledger.in_flight(book.releases()).id == RELEASE
