"""The two example pipelines keep their shapes (issue 18 §1-2) without a run: before.yml is the seed's
(every job cleans, checks out, installs both dirs and generates Prisma; E2E after the unit tests, the
build after all tests, the deploy after the build; the seed's fixed ports), after.yml is the optimized
one through consumer-style `uses:` only (prepare once, every other job restores; each test job has its
own services; the build once after the tests; the deploy after everything). The runs themselves are
tests/workflows/test_pipeline_workflow.py (after.yml) and scripts/demo.py / bench (before.yml)."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "examples" / "workflows"
APP = ROOT / "examples" / "loyalty-app"
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
PREPARE, RESTORE, SERVICES = (f"org/ci-actions/actions/{name}@v1"
                              for name in ("prepare-workspace", "restore-workspace", "test-services"))
OURS = re.compile(r"^org/ci-actions/actions/[a-z-]+(/[a-z]+)?@v1$")
TEST_JOBS = ("security", "unit-integration", "e2e")


def jobs(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())["jobs"]


def needs(job: dict) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def scripts(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_before_has_the_seeds_jobs_and_order():
    before = jobs("before.yml")
    assert list(before) == ["security-analysis", "unit-integration-tests", "e2e-tests", "build-validation",
                            "production-deployment"]
    assert needs(before["security-analysis"]) == needs(before["unit-integration-tests"]) == set()
    assert needs(before["e2e-tests"]) == {"unit-integration-tests"}
    assert needs(before["build-validation"]) == {"security-analysis", "unit-integration-tests", "e2e-tests"}
    assert needs(before["production-deployment"]) == {"build-validation"}


@pytest.mark.parametrize("job_id", list(jobs("before.yml")))
def test_every_before_job_cleans_checks_out_installs_both_dirs_and_generates(job_id):
    steps = jobs("before.yml")[job_id]["steps"]
    head = [(step.get("run") or step.get("uses"), step.get("working-directory")) for step in steps[:5]]
    assert head == [("find . -mindepth 1 -delete", None), (CHECKOUT, None),
                    ("npm ci --no-audit --no-fund", "backend"), ("npm ci --no-audit --no-fund", "frontend"),
                    ("npx --no-install prisma generate", "backend")]
    assert all(str(step.get("uses", CHECKOUT)) == CHECKOUT for step in steps)


def test_before_uses_the_seeds_fixed_ports_and_deploy():
    before = jobs("before.yml")
    tests = before["unit-integration-tests"]
    assert "docker compose -f docker-compose.test.yml up" in scripts(tests)
    urls = next(step["env"] for step in tests["steps"] if step.get("name") == "Integration tests")
    assert urls == {"DATABASE_URL": "postgresql://loyalty:loyalty@127.0.0.1:5435/loyalty",
                    "REDIS_URL": "redis://127.0.0.1:6380"}
    assert "docker compose -f docker-compose.e2e.yml up" in scripts(before["e2e-tests"])
    assert "E2E_BASE_URL: http://127.0.0.1:4202" in (WORKFLOWS / "before.yml").read_text()
    for compose, ports in (("docker-compose.test.yml", ("5435", "6380")),
                           ("docker-compose.e2e.yml", ("5436", "6381", "3201", "4202"))):
        text = (APP / compose).read_text()
        assert all(f":-{port}}}" in text for port in ports), compose
    build = scripts(before["build-validation"])
    assert "docker compose -f docker-compose.yml -f docker-compose.prod.yml build" in build
    assert 'docker run --rm "loyalty-app-backend:$GITHUB_SHA" node --version' in build
    deploy = scripts(before["production-deployment"])
    assert re.search(r"docker-compose\.prod\.yml\s+up -d --build", deploy)
    assert "exec -T backend npm run db:migrate:deploy" in deploy
    assert "for i in {1..6}; do" in deploy and "curl -f http://localhost:4001/api/health" in deploy
    assert deploy.index("up -d --build") < deploy.index("db:migrate:deploy") < deploy.index("curl -f")


def test_after_uses_only_our_actions_and_checkout():
    for job_id, job in jobs("after.yml").items():
        for step in job["steps"]:
            if "uses" in step:
                assert step["uses"] == CHECKOUT or OURS.match(step["uses"]), (job_id, step["uses"])


def test_after_prepares_once_and_every_other_job_restores():
    after = jobs("after.yml")
    assert [s["uses"] for s in after["prepare"]["steps"]] == [CHECKOUT, PREPARE]
    for job_id in (*TEST_JOBS, "build"):
        assert after[job_id]["steps"][0]["uses"] == RESTORE, job_id
        assert "npm ci" not in scripts(after[job_id]) and "prisma generate" not in scripts(after[job_id])


def test_after_test_jobs_run_in_parallel_each_with_its_own_services():
    after = jobs("after.yml")
    for job_id in TEST_JOBS:
        assert needs(after[job_id]) == {"prepare"}, job_id
    for job_id in ("unit-integration", "e2e"):
        services = [s for s in after[job_id]["steps"] if s.get("uses") == SERVICES]
        assert len(services) == 1, job_id
        assert services[0]["with"]["compose-files"] == "docker-compose.test.yml"
        assert "DATABASE_URL: postgresql://loyalty:loyalty@{postgres}/loyalty" in services[0]["with"]["env"]
    assert "npm run test:integration" in scripts(after["unit-integration"])
    assert "npm run test:e2e" in scripts(after["e2e"])
    stop = after["e2e"]["steps"][-1]
    assert stop["run"] == "scripts/run-app.sh stop" and stop["if"] == "always()"
    security = scripts(after["security"])
    assert "scripts/security-audit.sh" in security and "scripts/validate-test-integrity.sh" in security


def test_after_builds_once_after_the_tests_and_deploys_after_everything():
    after = jobs("after.yml")
    uses = [s.get("uses", "") for job in after.values() for s in job["steps"]]
    assert uses.count("org/ci-actions/actions/build-images@v1") == 1
    assert needs(after["build"]) == set(TEST_JOBS)  # a failing test builds nothing
    assert needs(after["deploy"]) == {"prepare", *TEST_JOBS, "build"}
    assert any(s.get("uses") == "org/ci-actions/actions/hotswap-deploy@v1" for s in after["deploy"]["steps"])


def test_after_reports_last_whatever_happened():
    after = jobs("after.yml")
    report = after["report"]
    assert list(after)[-1] == "report" and report["if"] == "always()"
    assert needs(report) == set(after) - {"report"}
    assert report["steps"][-1]["uses"] == "org/ci-actions/actions/pipeline-report@v1"
