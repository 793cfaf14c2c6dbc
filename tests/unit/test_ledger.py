"""The release ledger: folding, crash tolerance, and what it protects from a prune."""

from __future__ import annotations

import json
import os

import pytest

from ci_actions import ledger
from ci_actions.ledger import Image, Ledger, LedgerError, Release

OPERATIONS = [{"op": "start-beside", "service": "web"}, {"op": "retire", "service": "web", "grace": 10.0}]


def release(rid: str, sha: str, image: str = "") -> Release:
    return Release(id=rid, sha=sha, kind="deploy", images={"web": Image(f"app:{sha}", image or f"id-{sha}")},
                   run="1", actor="me", started_at="", operations=OPERATIONS)


def test_fold_applies_done_operations_and_outcome(tmp_path):
    book = Ledger(tmp_path, "shop")
    first = release("r1", "a" * 40)
    book.start(first)
    book.done(first, 0)
    assert ledger.in_flight(book.releases()).done == [0]
    book.done(first, 1)
    book.finish(first, ledger.LIVE, rollback_targets=[])
    [folded] = book.releases()
    assert folded.operations == OPERATIONS and folded.done == [0, 1] and folded.outcome == "live"
    assert folded.images == {"web": Image(f"app:{'a' * 40}", f"id-{'a' * 40}")}
    assert [json.loads(line)["type"] for line in book.path.read_text().splitlines()] == [
        "started", "done", "done", "finished"]


def test_an_earlier_writers_lines_still_fold(tmp_path):
    """Before operations were recorded: `previous` and `switched` lines, `timings` in `finished`. What
    protects images (outcome, images, rollback targets) reads the same; the rest is ignored."""
    book = Ledger(tmp_path, "shop")
    book.path.parent.mkdir(parents=True)
    lines = [{"type": "started", "release": "r1", "sha": "a" * 40, "kind": "deploy", "previous": None,
              "images": {"web": {"ref": "app:a", "id": "id-a"}}, "run": "1", "actor": "me"},
             {"type": "switched", "release": "r1", "service": "web"},
             {"type": "finished", "release": "r1", "outcome": "live", "reason": "", "timings": {"total": 1},
              "rollback_targets": []},
             {"type": "started", "release": "r2", "sha": "b" * 40, "kind": "deploy", "previous": "r1",
              "images": {"web": {"ref": "app:b", "id": "id-b"}}, "run": "2", "actor": "me"}]
    book.path.write_text("".join(json.dumps({"v": 1, "at": "x", **line}) + "\n" for line in lines))
    first, second = book.releases()
    assert (first.outcome, first.operations, first.done) == ("live", [], [])
    assert ledger.in_flight([first, second]) is second and second.operations == []
    assert ledger.protected_image_ids([first, second]) == {"id-a", "id-b"}


def test_a_torn_last_line_is_ignored_and_healed_by_the_next_append(tmp_path):
    book = Ledger(tmp_path, "shop")
    book.start(release("r1", "a" * 40))
    with open(book.path, "ab") as handle:  # a writer killed mid-line
        handle.write(b'{"v": 1, "type": "finished", "release": "r1", "outc')
    assert ledger.in_flight(book.releases()).id == "r1"
    book.finish(release("r1", "a" * 40), "recovered", reason="deploy was killed")
    lines = book.path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["outcome"] == "recovered"
    assert ledger.in_flight(book.releases()) is None


def test_live_in_flight_and_protected_ids():
    r1, r2, r3 = release("r1", "1" * 40), release("r2", "2" * 40), release("r3", "3" * 40)
    r1.outcome = r2.outcome = ledger.LIVE
    r2.rollback_targets = ["r1"]
    assert ledger.live([r1, r2, r3]).id == "r2"
    assert ledger.in_flight([r1, r2, r3]).id == "r3"
    assert ledger.protected_image_ids([r1, r2, r3]) == {"id-" + "1" * 40, "id-" + "2" * 40, "id-" + "3" * 40}
    r3.outcome = "rolled-back"
    assert ledger.protected_image_ids([r1, r2, r3]) == {"id-" + "1" * 40, "id-" + "2" * 40}


def test_next_rollback_targets_are_distinct_earlier_live_shas():
    rs = [release(f"r{i}", sha * 40) for i, sha in enumerate("1213")]
    for r in rs:
        r.outcome = ledger.LIVE
    rs[1].outcome = "rolled-back"
    # newest first; the rolled-back r1 never counts; r0 has the same sha as r2, so only r2 stays
    assert ledger.next_rollback_targets(rs, "4" * 40, keep=3) == ["r3", "r2"]
    assert ledger.next_rollback_targets(rs, "3" * 40, keep=3) == ["r2"]
    assert ledger.next_rollback_targets(rs, "4" * 40, keep=1) == []


def test_project_names_are_checked(tmp_path):
    with pytest.raises(LedgerError, match="not a compose project name"):
        Ledger(tmp_path, "../etc")


def test_unknown_outcome_is_refused_and_nothing_is_written(tmp_path):
    book = Ledger(tmp_path, "shop")
    with pytest.raises(LedgerError, match="unknown outcome"):
        book.finish(release("r1", "a" * 40), "great")
    assert not os.path.exists(book.path)


@pytest.mark.parametrize(("line", "what"), [
    (b'{"v": 1, "type": "started", "release": "r2", "at": "x", "images": {}}',
     "a started event whose 'sha' is missing"),
    (b'{"v": 1, "type": "started", "release": "r2", "sha": 7, "at": "x", "images": {}}',
     "a started event whose 'sha' is a int"),
    (b'{"v": 1, "type": "started", "release": "r2", "sha": "b", "at": "x", "images": {"web": "app:b"}}',
     "a started event whose image of 'web' is not"),
    (b'{"v": 1, "type": "finished", "release": "r1", "at": "x"}',
     "a finished event whose 'outcome' is missing"),
    (b'{"v": 1, "type": "finished", "release": "r1", "at": "x", "outcome": "great"}',
     "a finished event with the unknown outcome 'great'"),
    (b'{"v": 1, "type": "done", "release": "r1", "at": "x"}', "a done event whose 'op' is missing"),
    (b'{"v": 1, "type": "done", "release": "r1", "at": "x", "op": 2}',
     "a done event whose 'op' 2 is not one of release r1's operations"),
    (b'{"v": 1, "type": "done", "release": "r1", "at": "x", "op": true}',
     "a done event whose 'op' True is not one of release r1's operations"),
    (b'{"v": 1, "type": "started", "release": "r2", "sha": "b", "at": "x", "images": {}, "operations": [1]}',
     "a started event whose 'operations' are not objects"),
    (b'{"v": 1, "type": "started", "release": "r\xff", "sha": "b"}', "byte 42 is not UTF-8"),
])
def test_a_bad_line_is_one_error_naming_its_number(tmp_path, line, what):
    book = Ledger(tmp_path, "shop")
    book.start(release("r1", "a" * 40))
    with open(book.path, "ab") as handle:
        handle.write(b"not json: a torn line\n" + line + b"\n")
    with pytest.raises(LedgerError) as caught:
        book.releases()
    assert str(caught.value).startswith(f"the release ledger {book.path}, line 3: {what}"), str(caught.value)
    assert "Fix or delete that line" in str(caught.value)


def test_lines_of_another_format_version_are_skipped(tmp_path):
    book = Ledger(tmp_path, "shop")
    book.start(release("r1", "a" * 40))
    with open(book.path, "ab") as handle:
        handle.write(b'{"v": 2, "type": "started", "release": "r9"}\n')
    assert [r.id for r in book.releases()] == ["r1"]
