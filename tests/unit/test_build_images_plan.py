"""build-images' pure parts: tag rules (docker/metadata-action), the build plan, the prune plan."""

from __future__ import annotations

import pytest

from build_images.inputs import INPUTS
from build_images.plan import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    LocalImage,
    PlanError,
    plan_build,
    plan_prune,
)
from build_images.tags import TagError, TagRules, check_sha, check_tag, sanitise_tag
from ci_actions.declared import InputError, read
from ci_actions.image_names import repository_of

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_tags_full_sha_short_sha_latest_run_and_extra_in_order():
    rules = TagRules(SHA, latest=True, run_id="981", extra=("v1.2.3", SHA))
    assert rules.tags() == [SHA, "sha-0123456", "latest", "run-981", "v1.2.3"]
    assert TagRules(SHA).tags() == [SHA, "sha-0123456"]


@pytest.mark.parametrize(("tag", "rule"), [
    ("-lead", "starts with a letter"),
    ("has space", "only letters"),
    ("a/b", "only letters"),
    ("x" * 129, "at most 128"),
])
def test_invalid_extra_tags_name_the_input_line_and_rule(tag, rule):
    with pytest.raises(InputError, match=rf"^Input 'extra-tags' line 2 is .*{rule}"):
        read(INPUTS, lambda name: f"v1\n{tag}", ["extra-tags"])
    with pytest.raises(TagError, match="empty tag"):
        check_tag("")


def test_derived_tags_are_sanitised_and_capped():
    assert sanitise_tag("feature/My Branch") == "feature-My-Branch"
    assert sanitise_tag(".-x") == "x"
    assert len(sanitise_tag("a" * 300)) == 128
    assert check_tag("_ok.1-2") == "_ok.1-2"


def test_repository_of_keeps_registry_ports():
    assert repository_of("host:5000/team/app:1.0") == "host:5000/team/app"
    assert repository_of("host:5000/team/app") == "host:5000/team/app"
    assert repository_of("app@sha256:abc") == "app"


def test_sha_must_be_hex():
    with pytest.raises(TagError, match="not a commit id"):
        check_sha("main")


def model(tmp_path, **services):
    return {"name": "shop", "services": services}


def buildable(tmp_path, name: str) -> dict:
    context = tmp_path / name
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    return {"build": {"context": str(context), "dockerfile": "Dockerfile"}}


def test_a_base_only_service_is_built_only_when_named(tmp_path):
    """`scale: 0` (the example app's backend-deps): an image others build FROM, not a release's."""
    services = model(tmp_path, api=buildable(tmp_path, "api"),
                     deps={**buildable(tmp_path, "deps"), "scale": 0},
                     old={**buildable(tmp_path, "old"), "deploy": {"replicas": 0}})
    default = plan_build(services, services=[], rules=TagRules(SHA), labels={}, smoke={}, token="t")
    assert [s.service for s in default.services] == ["api"]
    named = plan_build(services, services=["deps"], rules=TagRules(SHA), labels={}, smoke={}, token="t")
    assert [s.service for s in named.services] == ["deps"]


def test_plan_builds_every_buildable_service_under_a_staging_tag(tmp_path):
    web = {**buildable(tmp_path, "web"), "image": "Shop/Web:latest"}
    plan = plan_build(model(tmp_path, web=web, api=buildable(tmp_path, "api"), db={"image": "pg"}),
                      services=[], rules=TagRules(SHA), labels={"k": "v"}, smoke={"web": ("true",)},
                      token="t0k", build_args={"A": "1"})
    assert [(s.service, s.repository, s.staging_ref) for s in plan.services] == [
        ("web", "shop/web", "shop/web:ci-build-t0k"), ("api", "shop-api", "shop-api:ci-build-t0k")]
    override = plan.override()
    assert override["web"]["image"] == "shop/web:ci-build-t0k"
    assert override["web"]["build"]["labels"] == {PROJECT_LABEL: "shop", "k": "v", SERVICE_LABEL: "web"}
    assert override["api"]["build"]["args"] == {"A": "1"}
    assert plan.services[0].refs(plan.tags) == [f"shop/web:{SHA}", "shop/web:sha-0123456"]
    assert plan.build_args_of("web") == ["build", "web"]


@pytest.mark.parametrize(("services", "smoke", "message"), [
    (["nope"], {}, "service nope is not in the compose project shop"),
    (["db"], {}, "service db has no `build:` section"),
    ([], {"ghost": ("true",)}, "service ghost is not in the compose project"),
    ([], {"db": ("true",)}, "smoke-command names db, which this build does not build"),
])
def test_plan_names_the_bad_service(tmp_path, services, smoke, message):
    with pytest.raises(PlanError, match=message):
        plan_build(model(tmp_path, web=buildable(tmp_path, "web"), db={"image": "pg"}), services=services,
                   rules=TagRules(SHA), labels={}, smoke=smoke, token="t")


def test_missing_context_and_dockerfile_name_the_service(tmp_path):
    gone = {"build": {"context": str(tmp_path / "gone")}}
    with pytest.raises(PlanError, match=r"service api: build context .*gone does not exist"):
        plan_build(model(tmp_path, api=gone), services=[], rules=TagRules(SHA), labels={}, smoke={},
                   token="t")
    web = buildable(tmp_path, "web")
    web["build"]["dockerfile"] = "Dockerfile.prod"
    with pytest.raises(PlanError, match=r"service web: Dockerfile .*Dockerfile.prod does not exist"):
        plan_build(model(tmp_path, web=web), services=[], rules=TagRules(SHA), labels={}, smoke={}, token="t")


def test_key_value_lines_are_named_by_number_never_content():
    def given(name: str, text: str):
        return read(INPUTS, lambda _: text, [name])[name]
    assert given("build-args", "A=1\nB = two=2") == [("A", "1"), ("B", "two=2")]
    with pytest.raises(InputError, match=r"^Input 'build-args' line 2 is not KEY=VALUE$") as caught:
        given("build-args", "A=1\ns3cr3t")
    assert "s3cr3t" not in str(caught.value)
    assert given("smoke-command", "web: node --version") == [("web", ("node", "--version"))]
    with pytest.raises(InputError, match=r"^Input 'smoke-command' line 1 has no command for web$"):
        given("smoke-command", "web:")


def image(iid: str, revision: str, created: str, tags=("t",)) -> LocalImage:
    return LocalImage(iid, tuple(tags), "web", revision, created, 10)


def test_prune_keeps_newest_releases_ledger_targets_and_images_in_use():
    images = [image("new", "r3", "2026-03"), image("mid", "r2", "2026-02"), image("old", "r1", "2026-01"),
              image("older", "r0", "2025-12"), image("oldest", "rx", "2025-11"),
              image("stale", "r3", "2026-02-15", tags=())]
    plan = plan_prune(images, keep=2, in_use={"older"}, protected={"old"})
    assert [i.id for i in plan.remove] == ["oldest", "stale"]
    assert plan.kept == {"new": "one of the newest 2 releases", "mid": "one of the newest 2 releases",
                         "old": "named by the release ledger (live, rollback target or in flight)",
                         "older": "used by a container"}


def test_prune_never_drops_a_protected_image_even_with_keep_one():
    images = [image("a", "r2", "2"), image("b", "r1", "1")]
    assert plan_prune(images, keep=1, in_use=set(), protected={"b"}).remove == []
    with pytest.raises(PlanError, match="at least 1"):
        plan_prune(images, keep=0, in_use=set(), protected=set())
