"""hotswap-deploy's pure plan: images, container ports, grace periods, the compose override, argv, and
the ordered operations (golden: what `--dry-run` prints), bound and recorded as the ledger keeps them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hotswap_deploy import operations
from hotswap_deploy.containers import RELEASE_LABEL
from hotswap_deploy.health import HealthCheck
from hotswap_deploy.operations import (
    Migrate,
    Previous,
    Recreate,
    Retire,
    StartBeside,
    Switch,
    WaitHealthy,
    Watch,
    live_from,
    migrate_args,
    recreate_args,
    reversible,
    start_args,
)
from hotswap_deploy.plan import (
    DeployPlan,
    PlanError,
    ServiceTarget,
    container_port,
    plan_deploy,
    resolve_images,
    stop_grace,
    with_sha,
)
from hotswap_deploy.proxy import SwitchPlan, Upstream

SHA = "0123456789abcdef0123456789abcdef01234567"


class Commands:
    """A proxy as planning sees it: only what a switch would run."""

    def plan(self, service: str) -> SwitchPlan:
        return SwitchPlan(Path(f"/etc/nginx/ci-actions/shop-{service}.conf"),
                          ["nginx", "-t", "-c", "/n.conf"], ["nginx", "-s", "reload", "-c", "/n.conf"])


def model(**services: dict) -> dict:
    """A resolved compose model as `docker compose config --format json` gives it."""
    return {"name": "shop", "services": services}


def shop() -> dict:
    return model(
        backend={"image": "Registry.local:5000/Team/shop-api:latest", "expose": ["3000"],
                 "stop_grace_period": "15s"},
        frontend={"ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "4201",
                             "protocol": "tcp"}]},
    )


def checks(*services: str, match: str = "") -> dict[str, HealthCheck]:
    return {s: HealthCheck(f"http://localhost/{s}", body_match=match) for s in services}


def plan(strategy: str = "blue-green", services: tuple[str, ...] = ("backend", "frontend"), **kwargs):
    arguments = {"release_id": "rel-1", "sha": SHA, "strategy": strategy, "services": list(services),
                 "images": {}, "health": checks(*services), "proxy": Commands(), **kwargs}
    return plan_deploy(shop(), **arguments)


# resolve_images


def test_images_from_build_images_json_are_taken_as_given_for_the_services_asked():
    images = json.loads('{"backend": "shop-api:abc", "frontend": "shop-frontend:abc", "worker": "w:abc"}')
    assert resolve_images(shop(), ["backend", "frontend"], images, "") == {
        "backend": "shop-api:abc", "frontend": "shop-frontend:abc"}
    assert resolve_images(shop(), ["frontend"], images, SHA) == {"frontend": "shop-frontend:abc"}


def test_images_from_a_sha_follow_the_build_images_naming_rule():
    # the `image:` without its tag (lower-cased, registry port kept), else compose's `<project>-<service>`
    assert resolve_images(shop(), ["backend", "frontend"], {}, SHA) == {
        "backend": f"registry.local:5000/team/shop-api:{SHA}", "frontend": f"shop-frontend:{SHA}"}


def test_images_need_either_json_or_a_sha():
    with pytest.raises(PlanError, match=r"give either `images` \(build-images' output\) or `sha`"):
        resolve_images(shop(), ["backend"], {}, "")


def test_images_missing_a_service_name_it():
    with pytest.raises(PlanError) as caught:
        resolve_images(shop(), ["backend", "frontend"], {"backend": "shop-api:abc"}, SHA)
    assert str(caught.value) == ("images has no entry for frontend; give every service in `services` an "
                                 "image, or use `sha`")


def test_an_unknown_service_names_the_project_and_its_services():
    with pytest.raises(PlanError) as caught:
        resolve_images(shop(), ["backend", "worker"], {}, SHA)
    assert str(caught.value) == ("service worker is not in the compose project shop "
                                 "(services: backend, frontend)")


# container_port


def test_container_port_from_the_published_target():
    assert container_port(shop(), "frontend") == 8080


def test_container_port_from_expose_with_protocol_or_range():
    assert container_port(shop(), "backend") == 3000
    assert container_port(model(web={"expose": ["9000/tcp"]}), "web") == 9000
    assert container_port(model(web={"expose": ["7000-7005/tcp"]}), "web") == 7000
    assert container_port(model(web={"expose": [5000]}), "web") == 5000


def test_container_port_prefers_ports_over_expose():
    spec = {"ports": [{"target": 80, "published": "8080"}], "expose": ["3000"]}
    assert container_port(model(web=spec), "web") == 80


@pytest.mark.parametrize("spec", [{}, {"ports": [], "expose": []}, {"ports": None}])
def test_no_container_port_says_to_add_expose(spec):
    with pytest.raises(PlanError) as caught:
        container_port(model(web=spec), "web")
    assert str(caught.value) == ("service web declares no container port; add `expose:` (or `ports:`) so the "
                                 "proxy knows where to send traffic")


# stop_grace


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 10.0),          # compose's default
    ("15s", 15.0),
    ("1m30s", 90.0),
    ("2m", 120.0),
    ("1.5s", 1.5),
    ("500ms", 0.5),        # `docker compose config` writes Go durations
    ("1h0m0s", 3600.0),
    ("1m0.5s", 60.5),
    ("nonsense", 10.0),    # unreadable: compose's default
    ("", 10.0),
])
def test_stop_grace_reads_compose_durations(value, seconds):
    spec = {"expose": ["3000"]} | ({"stop_grace_period": value} if value is not None else {})
    assert stop_grace(model(web=spec), "web") == pytest.approx(seconds)


# with_sha


def test_with_sha_substitutes_the_commit_in_the_body_match_only():
    check = HealthCheck("http://localhost/{sha}", body_match='"commit":"{sha}"', timeout=7)
    replaced = with_sha(check, SHA)
    assert replaced.body_match == f'"commit":"{SHA}"'
    assert replaced.url == "http://localhost/{sha}" and replaced.timeout == 7
    assert check.body_match == '"commit":"{sha}"'  # the original is untouched
    assert with_sha(HealthCheck("http://localhost/"), SHA).body_match == ""


# the override and the compose argv


def test_blue_green_override_replaces_the_ports_sets_the_commit_and_labels_the_release():
    text = plan("blue-green").override_yaml()
    assert text == (
        "services:\n"
        "  backend:\n"
        f'    image: "registry.local:5000/team/shop-api:{SHA}"\n'
        "    environment:\n"
        f'      GIT_SHA: "{SHA}"\n'
        "    labels:\n"
        f'      {RELEASE_LABEL}: "rel-1"\n'
        "    ports: !override\n"
        '      - "127.0.0.1::3000"\n'
        "  frontend:\n"
        f'    image: "shop-frontend:{SHA}"\n'
        "    environment:\n"
        f'      GIT_SHA: "{SHA}"\n'
        "    labels:\n"
        f'      {RELEASE_LABEL}: "rel-1"\n'
        "    ports: !override\n"
        '      - "127.0.0.1::8080"\n')


def test_recreate_override_keeps_the_declared_ports():
    text = plan("recreate").override_yaml()
    assert "ports" not in text and "!override" not in text
    assert f'{RELEASE_LABEL}: "rel-1"' in text and f'image: "shop-frontend:{SHA}"' in text


def test_override_scalars_are_json_quoted():
    target = ServiceTarget("web", 'odd "name":1', 80, HealthCheck("http://localhost/"))
    text = DeployPlan("shop", 'rel: "x"', SHA, "blue-green", [target]).override_yaml()
    assert 'image: "odd \\"name\\":1"' in text and f'{RELEASE_LABEL}: "rel: \\"x\\""' in text


def test_start_recreate_and_migrate_args():
    assert start_args("backend", 2) == ["up", "-d", "--no-deps", "--no-build", "--no-recreate", "--scale",
                                        "backend=2", "backend"]
    assert recreate_args("frontend") == ["up", "-d", "--no-deps", "--no-build", "frontend"]
    migrate = plan("blue-green", migrate=("npx", "prisma", "migrate", "deploy")).operations[0]
    assert migrate_args(migrate) == ["run", "--rm", "--no-deps", "-T", "backend", "npx", "prisma", "migrate",
                                     "deploy"]


# plan_deploy


def test_plan_has_a_target_per_service_in_order():
    deploy = plan("blue-green", health=checks("backend", "frontend", match="{sha}"), watch_seconds=5)
    assert (deploy.project, deploy.release_id, deploy.sha, deploy.strategy) == ("shop", "rel-1", SHA,
                                                                                 "blue-green")
    assert [(t.service, t.port, t.stop_grace) for t in deploy.targets] == [("backend", 3000, 15.0),
                                                                           ("frontend", 8080, 10.0)]
    assert all(t.health.body_match == SHA for t in deploy.targets)


# the operations (golden)


def test_blue_green_operations_in_order():
    deploy = plan("blue-green", migrate=("npx", "prisma", "migrate", "deploy"), watch_seconds=30)
    assert deploy.operations == [
        Migrate("backend", ("npx", "prisma", "migrate", "deploy")),
        StartBeside("backend"), WaitHealthy("backend"), Switch("backend", backup=True),
        StartBeside("frontend"), WaitHealthy("frontend"), Switch("frontend", backup=True),
        Watch(30.0),
        Switch("backend", backup=False), Switch("frontend", backup=False),
        Retire("backend", 15.0), Retire("frontend", 10.0)]
    assert live_from(deploy.operations) == 10
    assert [reversible(op) for op in deploy.operations] == [
        False, True, False, True, True, False, True, False, True, True, False, False]


def test_blue_green_without_a_watch_still_drops_the_backups_before_retiring():
    kinds = [(op.kind, getattr(op, "service", "")) for op in plan("blue-green").operations]
    assert kinds == [("start-beside", "backend"), ("wait-healthy", "backend"), ("switch", "backend"),
                     ("start-beside", "frontend"), ("wait-healthy", "frontend"), ("switch", "frontend"),
                     ("switch", "backend"), ("switch", "frontend"), ("retire", "backend"),
                     ("retire", "frontend")]


def test_recreate_operations_are_live_only_after_the_last():
    deploy = plan("recreate", migrate=("migrate",))
    assert deploy.operations == [Migrate("backend", ("migrate",)), Recreate("backend"), Recreate("frontend")]
    assert live_from(deploy.operations) == 3
    assert not reversible(Recreate("backend")) and reversible(Recreate("backend", Previous("app:1", "1")))


GOLDEN_BLUE_GREEN = [
    f"release rel-1 of shop at {SHA} (blue-green)",
    "  1. migrate: docker compose run --rm --no-deps -T backend npx prisma migrate deploy; undo: none "
    "(migrations stay)",
    f"  2. start-beside backend: registry.local:5000/team/shop-api:{SHA} on 127.0.0.1::3000; docker compose "
    "up -d --no-deps --no-build --no-recreate --scale 'backend=<running+1>' backend; undo: remove the new "
    "container",
    f"  3. wait-healthy backend: http://localhost/backend (200, body has '{SHA}') within 60 s, on the new "
    "container's port",
    "  4. switch backend to the new container, backup what served before: write "
    "/etc/nginx/ci-actions/shop-backend.conf; nginx -t -c /n.conf; nginx -s reload -c /n.conf; undo: switch "
    "back to what served before",
    f"  5. start-beside frontend: shop-frontend:{SHA} on 127.0.0.1::8080; docker compose up -d --no-deps "
    "--no-build --no-recreate --scale 'frontend=<running+1>' frontend; undo: remove the new container",
    f"  6. wait-healthy frontend: http://localhost/frontend (200, body has '{SHA}') within 60 s, on the new "
    "container's port",
    "  7. switch frontend to the new container, backup what served before: write "
    "/etc/nginx/ci-actions/shop-frontend.conf; nginx -t -c /n.conf; nginx -s reload -c /n.conf; undo: switch "
    "back to what served before",
    "  8. watch 30 s: every new container stays up and answers; the old ones are backup",
    "  9. switch backend to the new container only: write /etc/nginx/ci-actions/shop-backend.conf; "
    "nginx -t -c /n.conf; nginx -s reload -c /n.conf; undo: switch back to what served before",
    "  10. switch frontend to the new container only: write /etc/nginx/ci-actions/shop-frontend.conf; "
    "nginx -t -c /n.conf; nginx -s reload -c /n.conf; undo: switch back to what served before",
    "  11. retire backend (live from here): stop the old containers (grace 15 s), remove them; undo: none",
    "  12. retire frontend (live from here): stop the old containers (grace 10 s), remove them; undo: none",
]


def test_describe_is_the_whole_plan_proxy_switches_included():
    deploy = plan("blue-green", migrate=("npx", "prisma", "migrate", "deploy"), watch_seconds=30,
                  health=checks("backend", "frontend", match="{sha}"))
    assert deploy.describe() == GOLDEN_BLUE_GREEN


def test_describe_recreate():
    assert plan("recreate", services=("frontend",)).describe() == [
        f"release rel-1 of shop at {SHA} (recreate)",
        f"  1. recreate frontend: shop-frontend:{SHA}; docker compose up -d --no-deps --no-build frontend; "
        "then http://localhost/frontend (200) within 60 s; downtime measured; undo: recreate from the image "
        "it ran before"]


def test_bound_gives_the_inverses_what_served_before():
    before = Upstream(["127.0.0.1:4001"], [])
    deploy = plan("blue-green").bound({"backend": before, "frontend": None}, {})
    switches = [op for op in deploy.operations if isinstance(op, Switch)]
    assert [op.restore for op in switches] == [before, None, before, None]
    recreate = plan("recreate").bound({}, {"backend": Previous("app:old", "a" * 40), "frontend": None})
    assert [op.back_to for op in recreate.operations] == [Previous("app:old", "a" * 40), None]


def test_every_operation_round_trips_through_the_ledgers_json():
    recorded = [Migrate("backend", ("node", "migrate.js")), StartBeside("backend"), WaitHealthy("backend"),
                Switch("backend", True, Upstream(["127.0.0.1:1"], ["127.0.0.1:2"])), Switch("web", False),
                Watch(2.5), Retire("backend", 0.5), Recreate("backend", Previous("app:a", "")),
                Recreate("web")]
    as_json = json.loads(json.dumps([operations.to_json(op) for op in recorded]))
    assert as_json[3] == {"op": "switch", "service": "backend", "backup": True,
                          "restore": {"primary": ["127.0.0.1:1"], "backup": ["127.0.0.1:2"]}}
    assert [operations.from_json(op) for op in as_json] == recorded


def test_switch_commands_are_printed_not_recorded():
    switch = next(op for op in plan("blue-green").operations if isinstance(op, Switch))
    assert switch.commands is not None and "commands" not in operations.to_json(switch)


@pytest.mark.parametrize(("data", "problem"), [
    ({"op": "rm -rf"}, "'rm -rf' is not an operation"),
    ([], "None is not an operation"),
    ({"op": "retire", "service": "web"}, "a retire has no 'grace'"),
    ({"op": "retire", "service": 7, "grace": 1}, "the 'service' of a retire is not a string"),
    ({"op": "watch", "seconds": True}, "the 'seconds' of a watch is not a number of seconds"),
    ({"op": "migrate", "service": "b", "command": "rm"},
     "the 'command' of a migrate is not a list of strings"),
    ({"op": "switch", "service": "b", "backup": "yes"}, "the 'backup' of a switch is not true or false"),
    ({"op": "switch", "service": "b", "backup": True, "restore": {"primary": ["x;y"], "backup": []}},
     "upstream address 'x;y' is not host:port"),
    ({"op": "recreate", "service": "b", "back_to": {"image": "a"}},
     "the 'back_to' of a recreate is not a string"),
])
def test_a_recorded_operation_is_checked_field_by_field(data, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        operations.from_json(data)


def test_plan_refuses_an_unknown_strategy():
    with pytest.raises(PlanError) as caught:
        plan("rolling")
    assert str(caught.value) == "strategy 'rolling' is not one of blue-green, recreate"


def test_plan_refuses_an_unknown_service():
    with pytest.raises(PlanError, match=r"service worker is not in the compose project shop"):
        plan(services=("backend", "worker"), health=checks("backend", "worker"))


def test_plan_refuses_a_service_without_a_health_url():
    with pytest.raises(PlanError) as caught:
        plan(health=checks("backend"))
    assert str(caught.value) == ("health-url has no URL for frontend; every deployed service needs one "
                                 "(`service: http://localhost/health`)")


def test_plan_refuses_images_missing_a_service():
    with pytest.raises(PlanError, match="images has no entry for frontend"):
        plan(images={"backend": "shop-api:abc"})


def test_plan_refuses_blue_green_without_a_proxy():
    with pytest.raises(PlanError) as caught:
        plan("blue-green", proxy=None)
    assert str(caught.value).startswith("blue-green needs a proxy (nginx-config and upstream-dir); use "
                                        "strategy recreate")
    assert plan("recreate", proxy=None).operations


def test_plan_refuses_no_services():
    with pytest.raises(PlanError, match="services is empty"):
        plan(services=(), health={})
