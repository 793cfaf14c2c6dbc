"""The ARG expansion that lets build-images pin `FROM ${DEPS_IMAGE}` (the example app's backend)."""

from build_images.fingerprint import expand, global_args

DOCKERFILE = """# deps image
ARG DEPS_IMAGE=app-deps:latest
ARG QUOTED="base:1"
ARG BARE
FROM ${DEPS_IMAGE}
ARG LATE=x
"""


def test_global_args_take_the_build_value_then_the_default():
    assert global_args(DOCKERFILE, {"DEPS_IMAGE": "app-deps:abc", "LATE": "y"}) == {
        "DEPS_IMAGE": "app-deps:abc", "QUOTED": "base:1", "BARE": ""}
    assert global_args(DOCKERFILE, {"DEPS_IMAGE": None})["DEPS_IMAGE"] == "app-deps:latest"


def test_expand_both_forms():
    scope = {"DEPS_IMAGE": "app-deps:abc", "TAG": "7"}
    assert expand("${DEPS_IMAGE}", scope) == "app-deps:abc"
    assert expand("node:$TAG", scope) == "node:7"


def test_what_cannot_be_pinned_gives_none():
    scope = {"EMPTY": "", "TAG": "7"}
    assert expand("${LATE}", scope) is None  # declared after FROM, or not at all
    assert expand("${EMPTY}", scope) is None  # expands to no image
    assert expand("node:${TAG:-8}", scope) is None  # a modifier: not expanded here
