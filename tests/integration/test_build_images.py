"""build-images against the real engine and the real `docker compose`, through the CLI users run.

A small two-service project on the local busybox base image: good builds, every failure path from the
issue (each checked for its message and for "no tag moved"), and a prune that must spare what the
ledger and containers still need. Every image the test makes carries its unique project label and is
removed at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from build_images.plan import PROJECT_LABEL, REVISION_LABEL, SOURCE_LABEL
from ci_actions import ledger

SHAS = [c * 40 for c in "abcd"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_actions", "images", *args], capture_output=True,
                          text=True, check=False, timeout=300, env={**os.environ, **(env or {})})


class Project:
    """A compose project `web` + `api` whose contents change per build, so every build is a new image."""

    def __init__(self, root: Path, busybox: str) -> None:
        self.name = f"bi-{uuid.uuid4().hex[:8]}"
        self.root = root
        self.state = root / "state"
        for service in ("web", "api"):
            context = root / service
            context.mkdir()
            (context / "Dockerfile").write_text(
                f"FROM {busybox}\nCOPY payload /payload\nRUN test -s /payload\nCMD [\"cat\", \"/payload\"]\n")
        self.write_compose()

    def write_compose(self, extra: str = "") -> None:
        (self.root / "compose.yml").write_text(
            f"name: {self.name}\nservices:\n"
            f"  web:\n    build: ./web\n    image: {self.name}-web:dev\n"
            f"  api:\n    build:\n      context: ./api\n{extra}")

    def payload(self, text: str, size: int = 0) -> None:
        for service in ("web", "api"):
            (self.root / service / "payload").write_text(text + "x" * size)

    def build(self, sha: str, *args: str, env: dict[str, str] | None = None):
        return cli("build", "--compose-file", str(self.root / "compose.yml"), "--sha", sha,
                   "--state-dir", str(self.state), *args, env=env)

    def refs(self, client: docker.DockerClient) -> set[str]:
        images = client.images.list(filters={"label": f"{PROJECT_LABEL}={self.name}"})
        return {tag for image in images for tag in image.tags}


@pytest.fixture
def project(tmp_path, busybox_image, docker_client):
    made = Project(tmp_path, busybox_image)
    before = {c.id for c in docker_client.containers.list(all=True)}
    yield made
    # the classic builder keeps the container of a failed RUN step (for debugging): this test's go
    for container in docker_client.containers.list(all=True, filters={"status": "exited"}):
        if container.id not in before and "com.docker.compose.project" not in container.labels:
            container.remove()
    for container in docker_client.containers.list(all=True, filters={"label": f"test={made.name}"}):
        container.remove(force=True)
    for image in docker_client.images.list(filters={"label": f"{PROJECT_LABEL}={made.name}"}):
        with contextlib.suppress(ImageNotFound):
            docker_client.images.remove(image.id, force=True)


def test_good_build_tags_every_service_with_every_tag_and_labels(project, docker_client):
    project.payload("one")
    result = project.build(SHAS[0], "--run-id", "77", "--extra-tag", "v1.0", "--latest", "--source",
                           "https://github.com/org/shop", "--smoke-command", "web: cat /payload")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images-ready"] is True
    assert report["images"] == {s: f"{project.name}-{s}:{SHAS[0]}" for s in ("web", "api")}
    assert report["tags"] == [SHAS[0], "sha-aaaaaaa", "latest", "run-77", "v1.0"]
    for service in ("web", "api"):
        image = docker_client.images.get(report["image-ids"][service])
        assert set(image.tags) == {f"{project.name}-{service}:{t}" for t in report["tags"]}
        assert image.labels[REVISION_LABEL] == SHAS[0]
        assert image.labels[SOURCE_LABEL] == "https://github.com/org/shop"
    # no staging tag is left, and compose's own `image:` tag (web:dev) was never moved
    assert not any("ci-build-" in ref for ref in project.refs(docker_client))
    with pytest.raises(ImageNotFound):
        docker_client.images.get(f"{project.name}-web:dev")


def test_dry_run_prints_the_plan_and_builds_nothing(project, docker_client):
    project.payload("one")
    result = project.build(SHAS[0], "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"web: docker compose build web -> {project.name}-web:{SHAS[0]}" in result.stdout
    assert project.refs(docker_client) == set()


def test_a_failing_service_moves_no_tag_for_any_service(project, docker_client):
    project.payload("good")
    assert project.build(SHAS[0]).returncode == 0
    before = {ref: docker_client.images.get(ref).id for ref in project.refs(docker_client)}
    project.payload("newer")
    (project.root / "api" / "Dockerfile").write_text(
        (project.root / "api" / "Dockerfile").read_text() + "RUN echo the api build breaks here && false\n")
    result = project.build(SHAS[1], "--latest")
    assert result.returncode == 1
    assert "build failed for api; no image was tagged" in result.stderr
    assert "the api build breaks here" in result.stderr  # the log tail
    after = {ref: docker_client.images.get(ref).id for ref in project.refs(docker_client)}
    assert after == before  # web built fine, yet none of its tags (sha, latest) moved


def test_a_failing_smoke_command_tags_nothing(project, docker_client):
    project.payload("one")
    result = project.build(SHAS[0], "--smoke-command", "web: sh -c 'echo smoke says no; exit 3'")
    assert result.returncode == 1
    assert "smoke command `sh -c echo smoke says no; exit 3` for web exited 3; no image was tagged" \
        in result.stderr
    assert "smoke says no" in result.stderr
    assert project.refs(docker_client) == set()


def test_a_compose_file_that_does_not_parse_gets_compose_s_message(project):
    (project.root / "compose.yml").write_text("services:\n  web:\n    build: [unclosed\n")
    result = project.build(SHAS[0])
    assert result.returncode == 1
    assert "compose.yml" in result.stderr and "docker compose config" in result.stderr
    assert "yaml" in result.stderr.lower()


def test_missing_dockerfile_and_context_name_the_service(project):
    project.payload("one")
    dockerfile = project.root / "api" / "Dockerfile"
    text = dockerfile.read_text()
    dockerfile.unlink()
    result = project.build(SHAS[0])
    assert result.returncode == 1 and "service api: Dockerfile" in result.stderr
    dockerfile.write_text(text)
    project.write_compose(extra="  worker:\n    build: ./nowhere\n")
    result = project.build(SHAS[0])
    assert result.returncode == 1 and "service worker: build context" in result.stderr


def test_an_invalid_extra_tag_is_rejected_with_its_rule(project, docker_client):
    result = project.build(SHAS[0], "--extra-tag", "release/1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --extra-tag: is an invalid tag: 'release/1'; a tag starts with a letter" in result.stderr
    assert project.refs(docker_client) == set()


def test_an_unreachable_daemon_says_how_to_check_it(project, tmp_path):
    project.payload("one")
    result = project.build(SHAS[0], env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"})
    assert result.returncode == 1
    assert "the Docker engine does not answer" in result.stderr and "docker info" in result.stderr


def test_prune_spares_ledger_targets_containers_and_the_newest(project, docker_client):
    ids = {}
    for n, sha in enumerate(SHAS):
        project.payload(f"release {n}", size=2_000_000)
        result = project.build(sha, "--keep", "10")
        assert result.returncode == 0, result.stderr
        ids[sha] = json.loads(result.stdout)["image-ids"]
    # SHAS[1] is a rollback target in the ledger; a stopped container still uses SHAS[2]'s web image
    book = ledger.Ledger(project.state, project.name)
    images = {service: ledger.Image(f"x:{service}", image_id) for service, image_id in ids[SHAS[1]].items()}
    target = ledger.Release("r1", SHAS[1], "deploy", images, run="1", actor="me", started_at="")
    book.start(target)
    book.finish(target, ledger.LIVE)
    docker_client.containers.create(ids[SHAS[2]]["web"], labels={"test": project.name})
    result = cli("prune", "--compose-file", str(project.root / "compose.yml"), "--keep", "1",
                 "--state-dir", str(project.state))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    removed = {item["id"] for item in report["removed"]}
    assert removed == {ids[SHAS[0]]["web"], ids[SHAS[0]]["api"], ids[SHAS[2]]["api"]}
    assert report["bytes-freed"] >= 2_000_000  # SHAS[0]'s payload layer (web and api share it)
    for sha in SHAS[1:]:
        for service, image_id in ids[sha].items():
            if image_id not in removed:
                assert docker_client.images.get(image_id)  # still here, with its tags
                assert docker_client.images.get(f"{project.name}-{service}:{sha}").id == image_id


def test_prune_with_a_ledger_line_it_cannot_read_names_the_line_and_removes_nothing(project, docker_client):
    project.payload("one")
    assert project.build(SHAS[0], "--keep", "10").returncode == 0
    before = project.refs(docker_client)
    book = ledger.Ledger(project.state, project.name)
    book.directory.mkdir(parents=True)
    book.path.write_bytes(b'{"v": 1, "type": "started", "release": "r1", "at": "x"}\n')
    result = cli("prune", "--compose-file", str(project.root / "compose.yml"), "--keep", "1",
                 "--state-dir", str(project.state))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"the release ledger {book.path}, line 1: a started event whose 'sha' is missing" in result.stderr
    assert project.refs(docker_client) == before


def test_an_unchanged_service_is_not_rebuilt_but_restamped_with_the_new_commit(project, docker_client):
    project.payload("one")
    (project.root / "web" / ".dockerignore").write_text("notes.txt\n")
    first = project.build(SHAS[0])
    assert first.returncode == 0, first.stderr
    (project.root / "api" / "payload").write_text("api changed")
    (project.root / "web" / "notes.txt").write_text("ignored by .dockerignore: not an input")
    second = project.build(SHAS[1], "--verbose")
    assert second.returncode == 0, second.stderr
    before, after = (json.loads(r.stdout)["image-ids"] for r in (first, second))
    assert f"unchanged: reused image {before['web']}" in second.stderr
    assert "Step 1/" in second.stderr.split("== api ==")[1]  # api went through compose build
    web = docker_client.images.get(after["web"])
    assert web.labels[REVISION_LABEL] == SHAS[1]
    assert web.attrs["RootFS"] == docker_client.images.get(before["web"]).attrs["RootFS"]  # same layers
    assert after["api"] != before["api"]
    third = project.build(SHAS[2], "--no-cache", "--verbose")
    assert third.returncode == 0 and "unchanged" not in third.stderr  # --no-cache always builds


def test_keep_below_one_is_refused_before_anything_builds(project, docker_client):
    project.payload("one")
    result = project.build(SHAS[0], "--keep", "0")
    assert result.returncode == 2
    assert "argument --keep: must be a whole number, at least 1 (got '0')" in result.stderr
    assert project.refs(docker_client) == set()
