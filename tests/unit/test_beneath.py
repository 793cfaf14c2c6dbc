"""open_beneath never follows a link and never leaves its directory, with openat2 and with the walk."""

import errno
import os

import pytest

from ci_actions import beneath


@pytest.fixture(params=["openat2", "walk"])
def root(request, tmp_path, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(beneath, "_openat2_works", False)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("inside")
    (tmp_path / "l").symlink_to("a")
    (tmp_path / "a" / "etc").symlink_to("/etc")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def test_a_plain_path_opens(root):
    fd = beneath.open_beneath(root, "a/b/f", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"inside"
    finally:
        os.close(fd)


@pytest.mark.parametrize("path, code", [
    ("l/b/f", errno.ELOOP), ("a/etc/passwd", errno.ELOOP), ("l", errno.ELOOP),
    ("../x", errno.EXDEV), ("/etc/passwd", errno.EXDEV), ("a/../a/b/f", errno.EXDEV),
])
def test_links_and_escapes_are_refused(root, path, code):
    with pytest.raises(OSError) as caught:
        beneath.open_beneath(root, path, os.O_RDONLY)
    assert caught.value.errno == code


def test_a_file_is_created_beneath_and_not_through_a_link(root):
    fd = beneath.open_beneath(root, "a/b/new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    assert os.stat("a/b/new", dir_fd=root).st_mode & 0o777 == 0o600
    with pytest.raises(OSError):
        beneath.open_beneath(root, "a/etc/ci-actions-test", os.O_WRONLY | os.O_CREAT, 0o600)
    assert not os.path.exists("/etc/ci-actions-test")


def test_parent_beneath_gives_the_directory_and_the_name(root):
    parent, name = beneath.parent_beneath(root, "a/b/f")
    try:
        assert name == "f" and os.lstat(name, dir_fd=parent).st_size == len("inside")
    finally:
        os.close(parent)
    with pytest.raises(OSError):
        beneath.parent_beneath(root, "l/b/f")
