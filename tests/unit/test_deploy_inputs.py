"""hotswap-deploy's inputs and host state: the env file, the guard, rollback targets, saved settings and
the deploy lock. Pure and fast: no engine, no compose, no nginx."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from ci_actions.compose import Compose
from ci_actions.ledger import LIVE, Image, Release
from ci_actions.runner import RunContext
from hotswap_deploy import envfile, guard, rollback, settings
from hotswap_deploy.envfile import EnvFileError
from hotswap_deploy.guard import GuardError
from hotswap_deploy.health import HealthCheck
from hotswap_deploy.lock import LockTimeout, deploy_lock
from hotswap_deploy.rollback import RollbackError
from hotswap_deploy.settings import NginxSettings, Settings, SettingsError

A, B, C, D = ("a" * 40), ("b" * 40), ("c" * 40), ("d" * 40)


# envfile.parse / render / write


def test_parse_skips_comments_and_blank_lines_and_keeps_values_as_written():
    text = ("# secrets for prod\n\n   \n  # indented comment\nDATABASE_URL=postgres://u:p@db/x?a=b\n"
            " API_TOKEN =s3cr3t$value #not a comment\nEMPTY=\nQUOTED=\"kept\"\r\nlower_1=x\n")
    assert envfile.parse(text) == {"DATABASE_URL": "postgres://u:p@db/x?a=b",
                                   "API_TOKEN": "s3cr3t$value #not a comment", "EMPTY": "",
                                   "QUOTED": '"kept"', "lower_1": "x"}
    assert envfile.parse("") == {} and envfile.parse("# only a comment\n") == {}


@pytest.mark.parametrize(("text", "number"), [
    ("OK=1\nthis line has hunter2 and no equals\n", 2),
    ("# c\n\n1KEY=hunter2\n", 3),
    ("=hunter2\n", 1),
    ("A=1\nB=2\nMY-KEY=hunter2\n", 3),
    ("export SECRET=hunter2\n", 1),
])
def test_a_bad_line_is_named_by_number_and_never_quoted(text, number):
    with pytest.raises(EnvFileError) as caught:
        envfile.parse(text)
    message = str(caught.value)
    assert message.startswith(f"env-file: line {number} is not KEY=VALUE")
    assert "hunter2" not in message and "KEY" in message


def test_parse_splits_on_newlines_only():
    # str.splitlines() would also cut a value at \x85, \u2028 or a form feed
    assert envfile.parse("A=x\x85y\u2028z\x0cw\r\nB=2") == {"A": "x\x85y\u2028z\x0cw", "B": "2"}


def test_render_double_quotes_and_escapes_what_compose_would_change():
    assert envfile.render({"A": "s3cr3t$value", "B": "x #y", "C": "", "D": 'it\'s "q" \\ end\\',
                           "E": "a\nb\rc"}) == (
        'A="s3cr3t\\$value"\nB="x #y"\nC=""\nD="it\'s \\"q\\" \\\\ end\\\\"\nE="a\\nb\\rc"\n')
    assert envfile.render({}) == ""


@pytest.mark.parametrize(("value", "why"), [("a\0b", "NUL byte"), ("\ud800", "not valid Unicode")])
def test_a_value_compose_cannot_carry_is_named_by_key_never_shown(value, why):
    with pytest.raises(EnvFileError) as caught:
        envfile.render({"OK": "fine", "API_TOKEN": value})
    assert str(caught.value).startswith("env-file: the value of API_TOKEN ") and why in str(caught.value)
    assert value not in str(caught.value)


def test_stage_is_0600_whatever_the_umask_and_install_replaces_the_last_one(tmp_path):
    project = tmp_path / "app"
    project.mkdir()
    (project / envfile.NAME).write_text("OLD=1\n")
    (project / envfile.NAME).chmod(0o644)
    old = os.umask(0)
    try:
        staged = envfile.stage(tmp_path, {"API_TOKEN": "s3cr3t$value"})
    finally:
        os.umask(old)
    assert staged.parent == tmp_path and staged.stat().st_mode & 0o777 == 0o600
    target = envfile.install(staged, project)
    assert target == project / "deploy.env" and target.stat().st_mode & 0o777 == 0o600
    assert target.read_text() == 'API_TOKEN="s3cr3t\\$value"\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"] and not staged.exists()


def test_a_failed_stage_leaves_no_temp_file(tmp_path):
    with pytest.raises(EnvFileError):
        envfile.stage(tmp_path, {"API_TOKEN": "bad\0"})
    assert list(tmp_path.iterdir()) == []


# guard.check


def trigger(event: str, ref: str, default_branch: str = "", repository: str = "", upstream_event: str = "",
            upstream_repository: str = "") -> RunContext:
    return RunContext("org/app", "1", 1, "", ref=ref, event_name=event, default_branch=default_branch,
                      upstream_event=upstream_event, upstream_repository=upstream_repository,
                      event_repository=repository)


def push(ref: str) -> RunContext:
    return trigger("push", ref)


UNTRUSTED = [
    (trigger("pull_request", "refs/pull/7/merge"), "its code and inputs come from a pull request"),
    (trigger("pull_request_target", "refs/heads/main"), "its code and inputs come from a pull request"),
    (trigger("issue_comment", "refs/heads/main"), "anyone who can comment starts it"),
    (trigger("discussion_comment", "refs/heads/main"), "anyone who can comment starts it"),
    (trigger("pull_request_review", "refs/heads/main"), "anyone who can comment starts it"),
    (trigger("pull_request_review_comment", "refs/heads/main"), "anyone who can comment starts it"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app", "pull_request", "org/app"),
     "the run that triggered it was a pull_request event (its code and inputs come from a pull request"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app", "issue_comment", "org/app"),
     "the run that triggered it was a issue_comment event (anyone who can comment"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app", "push", "mallory/app"),
     "the run that triggered it built mallory/app, not org/app (a fork)"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app", "push", ""),
     "built an unnamed repository, not org/app (a fork)"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app"), "the event does not say which run"),
    (trigger("workflow_run", "refs/heads/main", "main", "", "push", "org/app"), "not this one (a fork)"),
    (trigger("workflow_run", "refs/heads/main", "main", "org/app", "workflow_run", "org/app"),
     "the run that triggered it was a workflow_run event (the event does not say"),
    (trigger("issues", "refs/heads/main"), "only push, workflow_dispatch, schedule, merge_group"),
    (trigger("watch", "refs/heads/main"), "and workflow_run after one of them pass"),
]


@pytest.mark.parametrize(("trigger", "why"), UNTRUSTED, ids=lambda v: getattr(v, "event_name", ""))
def test_untrusted_triggers_are_refused_unless_opted_in(trigger, why):
    with pytest.raises(GuardError) as caught:
        guard.check(trigger, allowed_refs=["refs/**"], allow_untrusted_events=False)
    message = str(caught.value)
    assert message.startswith(f"refusing to deploy from a {trigger.event_name} event: ")
    assert why in message, message
    assert message.endswith("(set allow-untrusted-events: true to opt in)")
    guard.check(trigger, allowed_refs=["refs/**"], allow_untrusted_events=True)


def test_an_unnamed_event_fails_closed():
    with pytest.raises(GuardError, match="refusing to deploy from a unnamed event: only push"):
        guard.check(trigger("", "refs/heads/main"), allowed_refs=["main"], allow_untrusted_events=False)


@pytest.mark.parametrize("event", ["push", "workflow_dispatch", "release", "schedule", "merge_group",
                                   "repository_dispatch", "deployment"])
def test_events_only_writers_start_pass(event):
    guard.check(trigger(event, "refs/heads/anything"), allowed_refs=["**"], allow_untrusted_events=False)


def test_a_workflow_run_after_a_push_of_this_repository_passes():
    run = trigger("workflow_run", "refs/heads/main", "main", "org/app", "push", "org/app")
    guard.check(run, allowed_refs=["main"], allow_untrusted_events=False)


@pytest.mark.parametrize(("ref", "patterns"), [
    ("refs/heads/main", ["refs/heads/main"]),
    ("refs/tags/v1.2.3", ["refs/tags/v*"]),
    ("refs/heads/release/2024-06", ["refs/heads/release/*"]),
    ("refs/heads/release/2024/06", ["refs/heads/release/**"]),
    ("refs/heads/main", ["main"]),  # a branch name, as in on.push.branches
    ("refs/heads/release/1", ["release/*"]),
    ("refs/heads/a/b/c", ["**"]),
    ("refs/heads/main", ["refs/heads/[mn]ain"]),
    ("refs/heads/release/1", ["release/**", "!release/2"]),
    ("refs/heads/release/2", ["release/**", "!release/2", "release/2"]),  # the last match decides
])
def test_allowed_refs_follow_githubs_filter_patterns(ref, patterns):
    assert guard.ref_allowed(ref, patterns)
    guard.check(push(ref), allowed_refs=patterns, allow_untrusted_events=False)


@pytest.mark.parametrize(("ref", "patterns"), [
    ("refs/heads/a/b", ["refs/heads/*"]),  # `*` stays within a segment (fnmatch's crossed `/`)
    ("refs/heads/release/2024/06", ["refs/heads/release/*"]),
    ("refs/heads/Main", ["refs/heads/main"]),
    ("refs/heads/mainx", ["refs/heads/main"]),
    ("refs/tags/main", ["main"]),  # a branch pattern never admits a tag
    ("refs/pull/7/merge", ["*"]),
    ("refs/heads/release/2", ["release/*", "!release/2"]),
    ("refs/heads/a", ["refs/heads/{a,b}"]),  # no brace expansion, as hashFiles()
])
def test_refs_no_pattern_admits_are_refused(ref, patterns):
    assert not guard.ref_allowed(ref, patterns)
    with pytest.raises(GuardError) as caught:
        guard.check(push(ref), allowed_refs=patterns, allow_untrusted_events=False)
    assert str(caught.value) == f"refusing to deploy from {ref}: allowed-refs is {', '.join(patterns)}"


def test_an_empty_ref_is_named_unknown():
    with pytest.raises(GuardError) as caught:
        guard.check(push(""), allowed_refs=["refs/heads/main"], allow_untrusted_events=False)
    assert str(caught.value) == "refusing to deploy from an unknown ref: allowed-refs is refs/heads/main"


def test_only_exclusions_are_refused():
    with pytest.raises(GuardError, match=r"allowed-refs is !main: it needs at least one pattern"):
        guard.ref_allowed("refs/heads/x", ["!main"])


def test_a_pattern_with_a_dot_segment_is_named():
    with pytest.raises(GuardError, match=r"allowed-refs: pattern 'refs/heads/\.\./x' cannot be used"):
        guard.ref_allowed("refs/heads/x", ["refs/heads/../x"])


def test_an_opted_in_untrusted_event_still_needs_an_allowed_ref():
    with pytest.raises(GuardError, match="allowed-refs is refs/heads/main"):
        guard.check(trigger("pull_request", "refs/pull/7/merge"), allowed_refs=["refs/heads/main"],
                    allow_untrusted_events=True)


# rollback.pick


def release(rid: str, sha: str, outcome: str | None = LIVE, targets: tuple[str, ...] = ()) -> Release:
    return Release(id=rid, sha=sha, kind="deploy", images={"backend": Image(f"app:{sha}", f"id-{sha}")},
                   run="1", actor="me", started_at=f"2024-06-0{rid[-1]}T10:00:00.000+00:00",
                   outcome=outcome, rollback_targets=list(targets))


def history() -> list[Release]:
    """A, B, C live in turn (C retains B then A), then D rolled back: C serves."""
    return [release("r1", A), release("r2", B, targets=("r1",)), release("r3", C, targets=("r2", "r1")),
            release("r4", D, outcome="rolled-back")]


def test_previous_is_the_newest_retained_release():
    assert rollback.pick(history(), "previous").id == "r2"


def test_a_sha_prefix_of_seven_or_more_picks_a_retained_release():
    assert rollback.pick(history(), A[:7]).id == "r1"
    assert rollback.pick(history(), B).id == "r2"


@pytest.mark.parametrize("to", ["1234567", C[:7], D[:7], "aaaaaa", "previou"])
def test_a_release_not_retained_lists_the_retained(to):
    # C is live (not a rollback target), D never went live, six characters are too few
    with pytest.raises(RollbackError) as caught:
        rollback.pick(history(), to)
    assert str(caught.value) == (
        f"release {to!r} is not retained for rollback; retained: "
        "bbbbbbbbbbbb (deployed 2024-06-02T10:00:00, release r2); "
        "aaaaaaaaaaaa (deployed 2024-06-01T10:00:00, release r1)")


def test_with_nothing_retained_previous_says_none():
    with pytest.raises(RollbackError) as caught:
        rollback.pick([release("r1", A)], "previous")
    assert str(caught.value) == "release 'previous' is not retained for rollback; retained: none"
    with pytest.raises(RollbackError, match="retained: none"):
        rollback.pick([], A)


# settings


def sample(state_dir: Path, nginx: NginxSettings | None) -> Settings:
    return Settings(
        compose=Compose((Path("/srv/app/docker-compose.yml"), Path("/srv/app/docker-compose.prod.yml")),
                        "shop"),
        services=["backend", "frontend"],
        health={"backend": HealthCheck("http://localhost/api/health", 200, "{sha}", 30, 0.25, 5),
                "frontend": HealthCheck("http://localhost/", 204)},
        state_dir=state_dir, strategy="blue-green", nginx=nginx,
        migrate=("node", "dist/migrate.js"), watch_seconds=2.5, keep=5)


@pytest.mark.parametrize("nginx", [NginxSettings(Path("/etc/nginx/nginx.conf"), Path("/etc/nginx/up"),
                                                 "/usr/sbin/nginx"), None])
def test_settings_survive_a_save_and_load(tmp_path, nginx):
    saved = sample(tmp_path, nginx)
    saved.save(tmp_path / "shop")
    assert settings.load(tmp_path, "shop") == saved
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == ["settings.json"]
    written = json.loads((tmp_path / "shop" / "settings.json").read_text())
    assert written["services"] == ["backend", "frontend"]


def test_recreate_settings_with_defaults_survive_a_save_and_load(tmp_path):
    saved = Settings(Compose((Path("/srv/app/compose.yml"),), ""), ["web"], {"web": HealthCheck("http://[::1]:80/")},
                     tmp_path, strategy="recreate")
    saved.save(tmp_path / "web")
    loaded = settings.load(tmp_path, "web")
    assert loaded == saved and loaded.proxy_for("web") is None


def test_missing_settings_say_how_to_get_them(tmp_path):
    with pytest.raises(SettingsError) as caught:
        settings.load(tmp_path, "shop")
    assert str(caught.value) == (f"no deploy of shop is recorded under {tmp_path} (no "
                                 f"{tmp_path / 'shop' / 'settings.json'}); deploy it once with "
                                 "hotswap-deploy, or pass --state-dir")


@pytest.mark.parametrize("text", ["{not json", "{}", '{"compose": {"files": []}}'])
def test_unreadable_settings_name_the_file(tmp_path, text):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "settings.json").write_text(text)
    with pytest.raises(SettingsError, match=f"cannot read {tmp_path / 'shop' / 'settings.json'}: "):
        settings.load(tmp_path, "shop")


# lock.deploy_lock


def test_a_second_deploy_times_out_naming_the_holder(tmp_path):
    held, release_it, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def holder() -> None:
        try:
            with deploy_lock(tmp_path / "shop", timeout=5, holder={"sha": A[:12], "run": "run 42"}):
                held.set()
                release_it.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(LockTimeout) as caught, deploy_lock(tmp_path / "shop", timeout=0.2,
                                                                holder={"sha": B[:12], "run": "7"}):
            pytest.fail("the lock was taken twice")
        assert str(caught.value) == (f"another deploy holds the lock of shop (sha {A[:12]}, run run 42); "
                                     "waited 0.2 s. Try again when it ends, or raise lock-timeout.")
    finally:
        release_it.set()
        thread.join(10)
    assert done.is_set() and not errors
    assert not (tmp_path / "shop" / "deploy.holder.json").exists()  # the note goes with the holder
    with deploy_lock(tmp_path / "shop", timeout=1, holder={"sha": B[:12], "run": "7"}):
        note = json.loads((tmp_path / "shop" / "deploy.holder.json").read_text())
        assert note == {"sha": B[:12], "run": "7"}


def test_an_unreadable_holder_note_still_gives_a_message(tmp_path):
    directory = tmp_path / "shop"
    held, release_it = threading.Event(), threading.Event()

    def holder() -> None:
        with deploy_lock(directory, timeout=5, holder={"sha": "x", "run": "y"}):
            (directory / "deploy.holder.json").write_text("{torn")
            held.set()
            release_it.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(LockTimeout, match=r"another deploy holds the lock of shop \(holder unknown\)"), \
                deploy_lock(directory, timeout=0.1, holder={}):
            pass
    finally:
        release_it.set()
        thread.join(10)
