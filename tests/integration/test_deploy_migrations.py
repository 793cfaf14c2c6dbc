"""Blue-green with a shared database: v1, then v2 whose release adds a column, under load, 0 failed.

Both colours of a blue-green deploy talk to one Postgres. The deploy runs v2's migrations (a one-off
container of v2's image) while v1 serves, then starts v2 beside v1 and switches nginx; until the
switch, and after a rollback, v1 runs on v2's schema. That works when migrations between two
releases only expand the schema (a new nullable column, a backfill), which this test holds to: the
load generator reads /api/rewards through nginx (a query on the very table the migration alters) at
100+ requests per second through the v2 deploy and then through a rollback to v1, and not one request
may fail.

v2 is the example app with the change a developer would make: `description String?` on Reward in the
schema, the migration that adds the column and fills it for one reward, the in-memory store's rows,
then `prisma generate` and the build again. Real Docker, real nginx on 127.0.0.1, the real compose CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from ci_actions import ledger
from hotswap_deploy.proxy import Upstream
from tests.support.example_app import MIGRATE, build_release, built_app, compose_args, compose_files, run
from tests.support.example_app import start_data_services as start_data
from tests.support.loadgen import LoadGenerator
from tests.support.production import remove_project

V1, V2 = ("1" * 40), ("2" * 40)
RATE = 120.0
PLACEHOLDER = Upstream(["127.0.0.1:9"], [])
MIGRATION = "20991231000000_reward_description"
COFFEE = "Any hot or cold drink from the counter"


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_actions", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def make_v2(app: Path) -> None:
    """The v2 change as a developer makes it (schema, expand-only migration, code); generate, build."""
    backend = app / "backend"
    schema = backend / "prisma" / "schema.prisma"
    text = schema.read_text()
    assert "  active      Boolean      @default(true)\n" in text
    schema.write_text(text.replace("  active      Boolean      @default(true)\n",
                                   "  active      Boolean      @default(true)\n  description String?\n"))
    migration = backend / "prisma" / "migrations" / MIGRATION / "migration.sql"
    migration.parent.mkdir()
    migration.write_text('-- AlterTable\nALTER TABLE "Reward" ADD COLUMN "description" TEXT;\n\n'
                         f"""UPDATE "Reward" SET "description" = '{COFFEE}'\n"""
                         """WHERE "name" = 'Free coffee';\n""")
    store = backend / "src" / "store.ts"
    code = store.read_text()
    assert "cost, stock, active: true };" in code
    store.write_text(code.replace("active: true };", "active: true, description: null };"))
    run(["npm", "run", "db:generate"], backend)
    run(["npm", "run", "build"], backend)


@pytest.fixture(scope="module")
def releases(tmp_path_factory, docker_client, node_image, busybox_image, service_images):
    """(app, {sha: {service: ref}}) for v1 and v2, both built with build-images from one app folder."""
    app = built_app(tmp_path_factory.mktemp("app"))
    state = tmp_path_factory.mktemp("build-state")
    project = f"dmimg-{uuid.uuid4().hex[:6]}"
    try:
        refs = {V1: build_release(app, project, V1, state)}
        make_v2(app)
        refs[V2] = build_release(app, project, V2, state)
        yield app, refs
    finally:
        remove_project(project)  # the images build-images labelled with the project


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def psql(app: Path, project: str, sql: str) -> str:
    argv = ["docker", "compose", "-p", project, *compose_files(app), "exec", "-T", "postgres",
            "psql", "-U", "loyalty", "-d", "loyalty", "-tAc", sql]
    return run(argv, app).strip()


def test_v1_then_v2_with_a_new_column_under_load_fails_no_request_and_v1_still_runs_on_it(
        releases, nginx_factory, tmp_path):
    app, refs = releases
    project = f"dm-{uuid.uuid4().hex[:8]}"
    nginx = nginx_factory(project, {"backend": PLACEHOLDER, "frontend": PLACEHOLDER})
    state = tmp_path / "state"

    def deploy(sha: str) -> subprocess.CompletedProcess[str]:
        return cli("deploy", "run", *compose_args(app), "--project-name", project,
                   "--service", "backend", "--service", "frontend", "--images", json.dumps(refs[sha]),
                   "--nginx-config", str(nginx.config), "--upstream-dir", str(nginx.upstream_dir),
                   "--health-url", "backend: http://localhost/api/health", "--health-match", "backend: {sha}",
                   "--health-url", "frontend: http://localhost/", "--health-interval", "0.25",
                   "--health-timeout", "60", "--migrate-command", MIGRATE, "--watch-seconds", "3",
                   "--state-dir", str(state))

    rewards = nginx.url("backend", "/api/rewards")
    try:
        start_data(app, project)
        first = deploy(V1)
        assert first.returncode == 0, first.stderr
        assert get_json(nginx.url("backend", "/api/health"))["commit"] == V1
        assert all("description" not in r for r in get_json(rewards)["rewards"])

        with LoadGenerator(rewards, rate=RATE, max_seconds=240) as generator:
            second = deploy(V2)
        report = generator.stop()
        print(f"\nv1 -> v2 with migration {MIGRATION}: {report.summary()}")
        assert second.returncode == 0, second.stderr
        assert report.failed == 0 and report.rate >= 100, report.summary()
        assert get_json(nginx.url("backend", "/api/health"))["commit"] == V2
        served = {r["name"]: r for r in get_json(rewards)["rewards"]}
        assert served["Free coffee"]["description"] == COFFEE
        assert served["Cinema ticket"]["description"] is None
        # applied exactly once, by the deploy's migrate step, and recorded as Prisma records it
        recorded = psql(app, project, "SELECT applied_steps_count FROM _prisma_migrations "
                                      f"WHERE migration_name = '{MIGRATION}' AND finished_at IS NOT NULL")
        assert recorded == "1"
        assert psql(app, project, "SELECT count(*) FROM _prisma_migrations") == "3"

        # back to v1, on v2's schema (a rollback never reverses migrations), again without a failure
        with LoadGenerator(rewards, rate=RATE, max_seconds=240) as generator:
            back = cli("deploy", "rollback", "--project", project, "--to", "previous",
                       "--state-dir", str(state))
        rollback = generator.stop()
        print(f"rollback v2 -> v1 on the new schema: {rollback.summary()}")
        assert back.returncode == 0, back.stderr
        assert rollback.failed == 0, rollback.summary()
        assert get_json(nginx.url("backend", "/api/health"))["commit"] == V1
        assert all("description" not in r for r in get_json(rewards)["rewards"])
        assert psql(app, project, "SELECT count(*) FROM information_schema.columns "
                                  "WHERE table_name = 'Reward' AND column_name = 'description'") == "1"
        history = ledger.Ledger(state, project).releases()
        assert [(r.sha, r.outcome) for r in history] == [(V1, "live"), (V2, "live"), (V1, "live")]
    finally:
        remove_project(project)
