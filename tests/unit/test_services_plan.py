"""test-services' pure parts: project names, the port rewrite plan and its override file."""

from __future__ import annotations

import re

import pytest

from ci_actions.declared import InputError, read
from test_services.inputs import INPUTS
from test_services.naming import MAX_LENGTH, PROJECT, project_name
from test_services.plan import PlanError, PublishedPort, labels, override, plan_stack

PROJECT_NAME = "ci-42-test-1-abc123"


def port(target: int, published: str = "", protocol: str = "tcp", host_ip: str = "127.0.0.1") -> dict:
    entry = {"mode": "ingress", "target": target, "protocol": protocol, "host_ip": host_ip}
    return {**entry, "published": published} if published else entry


def model(**services: dict) -> dict:
    """A model as `docker compose config --format json` gives it."""
    return {"name": PROJECT_NAME, "services": services,
            "networks": {"default": {"name": f"{PROJECT_NAME}_default", "ipam": {}}},
            "volumes": {"data": {"name": f"{PROJECT_NAME}_data"}}}


PG = {"image": "ci-actions/postgres:local", "ports": [port(5432, "5435")]}
REDIS = {"image": "ci-actions/redis:local", "ports": [port(6379, "6380")]}
APP = {"image": "app", "depends_on": {"postgres": {"condition": "service_healthy", "required": True}},
       "ports": [port(3000, "3000"), port(9229)]}


# Project names

def test_a_project_name_has_prefix_run_job_attempt_and_suffix():
    assert project_name("ci", "1234567890", "integration-tests", 2, "a1b2c3") == \
        "ci-1234567890-integration-tests-2-a1b2c3"
    assert project_name("ci", "local", "", 1, "a1b2c3") == "ci-local-1-a1b2c3"


def test_a_long_job_is_cut_first_and_the_suffix_and_attempt_always_survive():
    name = project_name("my-prefix", "98765432101234", "Build & Test (node 20, ubuntu)" * 3, 13, "ffffff")
    assert len(name) <= MAX_LENGTH and PROJECT.match(name)
    assert name == "my-prefix-98765432101234-build-13-ffffff"
    # a run id too long for the room left keeps its tail (the part that differs between runs)
    name = project_name("p" * 16, "1" * 10 + "987654321", "job", 1, "abcdef")
    assert len(name) <= MAX_LENGTH and name.endswith("987654321-1-abcdef")


@pytest.mark.parametrize("job", ["UPPER", "with space", "ünïcode", "../../etc", "-lead-", "a" * 200, ""])
def test_any_job_name_gives_a_valid_compose_project(job):
    name = project_name("ci", "run/1", job, 1, "000000")
    assert PROJECT.match(name) and len(name) <= MAX_LENGTH and "--" not in name, name


@pytest.mark.parametrize(("name", "text", "message"), [
    ("project-prefix", "Upper", "use 1 to 16 of a-z"),
    ("project-prefix", "x" * 17, "use 1 to 16 of a-z"),
    ("wait-timeout", "0", "must be more than 0"),
    ("wait-timeout", "soon", "is not a duration"),
    ("ttl", "-1h", "is not a duration"),
    ("port-range", "80-90", "within 1024-65535"),
    ("port-range", "30000-20000", "within 1024-65535"),
    ("env-prefix", "1BAD", "use letters, digits and _"),
    ("project", "../x", "not a compose project name"),
    ("services", "has space", "not a compose service name"),
])
def test_bad_inputs_name_the_input(name, text, message):
    with pytest.raises(InputError, match=rf"^Input '{name}' .*{re.escape(message)}"):
        read(INPUTS, lambda n: text if n == name else "", [name])


def test_inputs_defaults():
    values = read(INPUTS, lambda _: "")
    assert values["wait-timeout"] == 180 and values["ttl"] == 6 * 3600
    assert values["port-range"] == (20000, 29999) and values["project-prefix"] == "ci"
    assert values["env"] == [] and values["services"] == []


# The plan

def test_the_wanted_services_and_their_dependencies_start_in_file_order():
    plan = plan_stack(model(postgres=PG, redis=REDIS, app=APP), PROJECT_NAME, ("c.yml",), ["app"])
    assert plan.services == ("postgres", "app") and plan.wanted == ("app",)
    assert plan.ports == (PublishedPort("postgres", 5432, "tcp", "5435"),
                          PublishedPort("app", 3000, "tcp", "3000"), PublishedPort("app", 9229))


def test_no_services_means_every_one_outside_a_profile():
    profiled = model(postgres=PG, redis={**REDIS, "profiles": ["cache"]})
    assert plan_stack(profiled, PROJECT_NAME, ("c.yml",), []).services == ("postgres",)
    # a profiled service can still be named
    assert plan_stack(profiled, PROJECT_NAME, ("c.yml",), ["redis"]).services == ("redis",)


def test_an_unknown_service_lists_the_defined_ones():
    with pytest.raises(PlanError, match=r"^services: 'mysql' is not defined in c.yml \(defined: postgres, "
                       r"redis\)$"):
        plan_stack(model(postgres=PG, redis=REDIS), PROJECT_NAME, ("c.yml",), ["postgres", "mysql"])


@pytest.mark.parametrize(("spec", "message"), [
    ({**PG, "network_mode": "host"}, "uses network_mode: host"),
    ({**PG, "deploy": {"replicas": 2}}, "runs 2 replicas with published ports"),
    ({**PG, "scale": 3}, "runs 3 replicas"),
])
def test_what_cannot_be_isolated_is_refused(spec, message):
    with pytest.raises(PlanError, match=message):
        plan_stack(model(postgres=spec), PROJECT_NAME, ("c.yml",), [])


def test_a_fixed_volume_name_would_be_shared_by_every_job_and_is_refused():
    volumes = {"data": {"name": "pgdata"}, "ext": {"name": "x", "external": True}}
    shared = {**model(postgres=PG), "volumes": volumes}
    with pytest.raises(PlanError, match="volume 'data' is named 'pgdata': every job would share it"):
        plan_stack(shared, PROJECT_NAME, ("c.yml",), [])


def test_the_override_replaces_every_published_port_labels_everything_and_lowers_cpu_weight():
    named = model(postgres={**PG, "container_name": "pg"}, app={**APP, "cpu_shares": 2048})
    plan = plan_stack(named, PROJECT_NAME, ("c.yml",), ["app"])
    assignment = dict(zip(plan.ports, (20001, 20002, 20003), strict=True))
    text = override(plan, assignment, labels(plan, "/state/leases", 1700000000))
    own = ('{"ci-actions.test-services.expires": "1700000000", "ci-actions.test-services.leases": '
           '"/state/leases", "ci-actions.test-services.project": "ci-42-test-1-abc123"}')
    assert text == (
        "# written by test-services: leased loopback ports, labels and a low CPU weight\n{\n"
        '  "services": {\n'
        f'    "postgres": {{"labels": {own}, "ports": !override ["127.0.0.1:20001:5432/tcp"], '
        '"container_name": !reset null, "cpu_shares": 128},\n'
        f'    "app": {{"labels": {own}, "ports": !override ["127.0.0.1:20002:3000/tcp", '
        '"127.0.0.1:20003:9229/tcp"]}\n'
        "  },\n"
        '  "networks": {\n'
        f'    "default": {{"labels": {own}}}\n'
        "  },\n"
        '  "volumes": {\n'
        f'    "data": {{"labels": {own}}}\n'
        "  }\n}\n")
    assert plan.describe(assignment) == [
        "project ci-42-test-1-abc123 from c.yml",
        "start postgres, app (postgres: needed by the others)",
        "  postgres 5432/tcp -> 127.0.0.1:20001 (the file says 5435)",
        "  app 3000/tcp -> 127.0.0.1:20002 (the file says 3000)",
        "  app 9229/tcp -> 127.0.0.1:20003",
        "  postgres: fixed container_name dropped",
    ]


def test_a_udp_port_keeps_its_protocol():
    dns = {"image": "d", "ports": [port(53, "53", "udp")]}
    plan = plan_stack(model(dns=dns), PROJECT_NAME, ("c.yml",), [])
    assert plan.ports[0].key == "53-udp"
    assert '"127.0.0.1:20000:53/udp"' in override(plan, {plan.ports[0]: 20000}, {})
