"""build-images' inputs, declared once (the step, the CLI and action.yml's check read this table), and
the BuildRequest they make."""

from __future__ import annotations

from pathlib import Path

from build_images.build import BuildRequest
from build_images.tags import TagRules, check_sha, check_tag
from ci_actions import declared, ledger
from ci_actions.compose import Compose
from ci_actions.declared import Input, Values


def smoke_line(text: str) -> tuple[str, tuple[str, ...]]:
    service, command = declared.pair(":")(text)
    argv = tuple(declared.argv(command))
    if not argv:
        raise ValueError(f"has no command for {service}")
    return service, argv


INPUTS = declared.table(
    Input("compose-files", "Compose files, one per line, relative to the workspace (later files override "
          "earlier ones).", default="docker-compose.yml", many=True, flag="compose-file", parse=Path),
    Input("project-name", "The compose project name. Empty means compose's own choice (the files' `name:` or "
          "the folder)."),
    Input("services", "Services to build, one per line. Empty means every service with a `build:` "
          "section that runs a container (not `scale: 0`, a base image other services build FROM).",
          many=True, flag="service"),
    Input("sha", "The commit the images are tagged with. Empty means the run's commit.",
          parse=lambda text: check_sha(text) if text else ""),
    Input("use-pr-head", "On pull_request events, tag with the PR head commit instead of the merge commit.",
          default="false", parse=declared.boolean, cli=False),
    Input("extra-tags", "More tags, one per line; each must be a valid tag (rejected with the rule it "
          "breaks).", many=True, flag="extra-tag", parse=check_tag),
    Input("build-args", "KEY=VALUE build arguments, one per line, for every built service.", many=True,
          flag="build-arg", parse=declared.pair("=")),
    Input("no-cache", "Build without the layer cache.", default="false", parse=declared.boolean),
    Input("smoke-command", "`service: command` lines; each runs in a throw-away container (no network) "
          "before any tag moves.", many=True, parse=smoke_line),
    Input("keep", "How many releases (commits) of images to retain; the ledger's live and rollback images "
          "are always kept.", default="5", parse=declared.number(1, whole=True)),
    Input("state-dir", "Where the release ledger lives (shared with hotswap-deploy). Empty means "
          "~/.local/state/ci-actions.", parse=declared.path(ledger.default_state_dir)),
)
COMPOSE = ("compose-files", "project-name")
RETENTION = ("keep", "state-dir")
BUILD = (*COMPOSE, "services", "sha", "extra-tags", "build-args", "no-cache", "smoke-command", *RETENTION)


def compose(values: Values, workspace: Path) -> Compose:
    return Compose(tuple((workspace / f).resolve() for f in values["compose-files"]), values["project-name"])


def request(values: Values, workspace: Path, *, latest: bool, run_id: str, source: str) -> BuildRequest:
    """What to build and how to tag it; the run (or the CLI's flags) says which tags it earns."""
    if not values["sha"]:
        raise declared.InputError("sha: give the commit to tag the images with (the run names none)")
    return BuildRequest(
        compose=compose(values, workspace),
        rules=TagRules(values["sha"], latest=latest, run_id=run_id, extra=tuple(values["extra-tags"])),
        services=values["services"], smoke=dict(values["smoke-command"]),
        build_args=dict(values["build-args"]), no_cache=values["no-cache"], source=source)
