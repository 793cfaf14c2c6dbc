"""test-services' endpoints: URL templates, the exported variables and outputs, the env file."""

from __future__ import annotations

import subprocess

import pytest

from ci_actions.declared import InputError, read
from test_services.endpoints import check_templates, endpoints, env_file, outputs, render, variables
from test_services.inputs import INPUTS
from test_services.plan import PlanError, PublishedPort

PG, PG_METRICS = PublishedPort("postgres", 5432), PublishedPort("postgres", 9187)
REDIS, DNS = PublishedPort("redis-cache", 6379), PublishedPort("dns", 53, "udp")
STACK = endpoints({PG: 20001, PG_METRICS: 20002, REDIS: 20003, DNS: 20004})


@pytest.mark.parametrize(("template", "rendered"), [
    ("postgresql://app:app@{postgres}/app", "postgresql://app:app@127.0.0.1:20001/app"),
    ("{postgres.host}|{postgres.port}", "127.0.0.1|20001"),
    ("http://{postgres:9187}/metrics", "http://127.0.0.1:20002/metrics"),
    ("{postgres:9187.port}", "20002"),
    ("redis://{redis-cache}/0", "redis://127.0.0.1:20003/0"),
    ("{dns:53-udp}", "127.0.0.1:20004"),
    ("{{literal}} {postgres.port}", "{literal} 20001"),
    ("no placeholder", "no placeholder"),
])
def test_templates_render_the_leased_endpoints(template, rendered):
    assert render("X", template, STACK) == rendered


def test_variables_are_host_port_and_each_port_then_the_urls_as_named():
    env = variables(STACK, [("DATABASE_URL", "postgresql://app:app@{postgres}/app")], "TEST_")
    assert env == {
        "TEST_POSTGRES_HOST": "127.0.0.1", "TEST_POSTGRES_PORT": "20001", "TEST_POSTGRES_PORT_5432": "20001",
        "TEST_POSTGRES_PORT_9187": "20002", "TEST_REDIS_CACHE_HOST": "127.0.0.1",
        "TEST_REDIS_CACHE_PORT": "20003", "TEST_REDIS_CACHE_PORT_6379": "20003", "TEST_DNS_HOST": "127.0.0.1",
        "TEST_DNS_PORT": "20004",
        "TEST_DNS_PORT_53_UDP": "20004", "DATABASE_URL": "postgresql://app:app@127.0.0.1:20001/app"}


def test_outputs_are_named_after_the_services():
    assert outputs(endpoints({PG: 20001, PG_METRICS: 20002})) == {
        "postgres-host": "127.0.0.1", "postgres-port": "20001", "postgres-port-5432": "20001",
        "postgres-port-9187": "20002"}


@pytest.mark.parametrize(("line", "message"), [
    ("DATABASE_URL postgresql://x", "is not `NAME: template`"),
    ("1BAD: x", "not an environment variable"),
    ("GITHUB_TOKEN: x", "belong to the runner"),
    ("URL: {postgres", "has a lone '{'"),
    ("URL: postgres}", "has a lone '}'"),
    ("URL: {postgres:pg}", "use {service}"),
    ("URL: {}", "use {service}"),
])
def test_a_bad_env_line_is_named_by_number_and_never_echoed(line, message):
    with pytest.raises(InputError, match=r"^Input 'env' line 2 .*" + message.replace("{", r"\{")) as caught:
        read(INPUTS, lambda name: f"OK: x\n{line}s3cr3t" if name == "env" else "", ["env"])
    assert "s3cr3t" not in str(caught.value)


def test_templates_are_checked_against_the_plan_before_anything_starts():
    check_templates([("URL", "{postgres:9187}")], (PG, PG_METRICS))
    with pytest.raises(PlanError, match=r"^env: URL names \{mysql\}, but mysql is not a started service that "
                       r"publishes a port \(these do: postgres\)$"):
        check_templates([("URL", "{mysql}")], (PG,))
    with pytest.raises(PlanError, match=r"postgres publishes 5432, not 6543"):
        check_templates([("URL", "{postgres:6543}")], (PG,))


def test_the_env_file_reads_the_same_in_a_shell(tmp_path):
    env = {"PLAIN": "postgresql://app:app@127.0.0.1:20001/app?sslmode=disable",
           "QUERY": "redis://127.0.0.1:20003/0?a=1&b=2", "SPACE": "a b $HOME `x`"}
    text = env_file(env)
    assert text.splitlines()[0] == f"PLAIN={env['PLAIN']}"
    path = tmp_path / "env"
    path.write_text(text)
    script = f"set -a; . {path}; set +a; printf '%s\\n' \"$PLAIN\" \"$QUERY\" \"$SPACE\""
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert shown.splitlines() == list(env.values())
    with pytest.raises(ValueError, match=r"^BAD's value holds a quote"):
        env_file({"BAD": "it's"})
