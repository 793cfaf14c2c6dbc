"""hotswap-deploy's pure plan: images, container ports, grace periods, the compose override and argv."""

from __future__ import annotations

import json

import pytest

from hotswap_deploy.containers import RELEASE_LABEL
from hotswap_deploy.health import HealthCheck
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

SHA = "0123456789abcdef0123456789abcdef01234567"


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
                 "images": {}, "health": checks(*services), **kwargs}
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
    deploy = plan("blue-green", migrate=("npx", "prisma", "migrate", "deploy"))
    assert deploy.start_args("backend", 2) == ["up", "-d", "--no-deps", "--no-build", "--no-recreate",
                                               "--scale", "backend=2", "backend"]
    assert deploy.recreate_args("frontend") == ["up", "-d", "--no-deps", "--no-build", "frontend"]
    assert deploy.migrate_args() == ["run", "--rm", "--no-deps", "-T", "backend", "npx", "prisma", "migrate",
                                     "deploy"]


# plan_deploy


def test_plan_has_a_target_per_service_in_order():
    deploy = plan("blue-green", health=checks("backend", "frontend", match="{sha}"), watch_seconds=5)
    assert (deploy.project, deploy.release_id, deploy.sha, deploy.strategy) == ("shop", "rel-1", SHA,
                                                                                 "blue-green")
    assert [(t.service, t.port, t.stop_grace) for t in deploy.targets] == [("backend", 3000, 15.0),
                                                                           ("frontend", 8080, 10.0)]
    assert all(t.health.body_match == SHA for t in deploy.targets)
    assert deploy.watch_seconds == 5 and deploy.migrate == ()
    assert any("watch 5 s" in line for line in deploy.describe())


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


def test_plan_refuses_no_services():
    with pytest.raises(PlanError, match="services is empty"):
        plan(services=(), health={})
