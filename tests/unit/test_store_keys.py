"""Key rules and lookup order, as actions/cache defines them."""

import pytest

from ci_actions.store.keys import (
    Candidate,
    InvalidKey,
    Scope,
    branch_ref,
    cache_version,
    choose,
    is_exact_match,
    validate_keys,
)


def test_key_over_512_characters_is_refused():
    validate_keys("k" * 512, [])
    with pytest.raises(InvalidKey, match="513 characters; keys cannot be longer than 512"):
        validate_keys("k" * 513, [])


@pytest.mark.parametrize(("key", "what"), [("a,b", "a comma"), ("a\nb", "a newline")])
def test_key_with_comma_or_newline_is_refused(key, what):
    with pytest.raises(InvalidKey, match=what):
        validate_keys("ok", [key])


def test_at_most_ten_keys():
    validate_keys("p", [f"r{i}" for i in range(9)])
    with pytest.raises(InvalidKey, match="11 keys given"):
        validate_keys("p", [f"r{i}" for i in range(10)])


def test_version_depends_on_the_path_list():
    assert cache_version(["node_modules"]) == cache_version(["node_modules"])
    assert cache_version(["node_modules"]) != cache_version(["node_modules", "dist"])
    assert cache_version(["a", "b"]) != cache_version(["b", "a"])


ENTRIES = [Candidate("deps-linux-aaa", 1.0), Candidate("deps-linux-bbb", 3.0),
           Candidate("deps-linux-ccc", 2.0), Candidate("deps-mac-aaa", 9.0)]


def test_exact_primary_wins_over_newer_prefix():
    assert choose(["deps-linux-aaa", "deps-"], ENTRIES) == "deps-linux-aaa"


def test_primary_prefix_match_before_restore_keys():
    assert choose(["deps-linux-", "deps-mac-aaa"], ENTRIES) == "deps-linux-bbb"


def test_restore_keys_in_order_newest_prefix():
    assert choose(["deps-linux-zzz", "deps-mac-", "deps-linux-"], ENTRIES) == "deps-mac-aaa"
    assert choose(["deps-linux-zzz", "deps-linux-", "deps-"], ENTRIES) == "deps-linux-bbb"


def test_restore_key_exact_before_its_prefix_matches():
    entries = [*ENTRIES, Candidate("deps-linux-b", 0.5)]
    assert choose(["nothing", "deps-linux-b"], entries) == "deps-linux-b"


def test_no_match_is_none():
    assert choose(["other-"], ENTRIES) is None


def test_cache_hit_is_exact_and_case_insensitive():
    assert is_exact_match("Deps-Linux-AAA", "deps-linux-aaa")
    assert not is_exact_match("deps-linux-", "deps-linux-aaa")
    assert not is_exact_match("deps", None)


def test_an_exact_match_ignores_case_and_gives_the_stored_key():
    assert choose(["DEPS-LINUX-AAA", "deps-"], ENTRIES) == "deps-linux-aaa"


def test_a_prefix_match_ignores_case():
    assert choose(["Deps-Linux-"], ENTRIES) == "deps-linux-bbb"
    assert choose(["DEPS-MAC-"], ENTRIES) == "deps-mac-aaa"


def test_case_does_not_blur_accents():
    assert choose(["déps-"], ENTRIES) is None
    assert not is_exact_match("linux-áccent", "linux-accent")


def test_a_bare_branch_name_is_a_branch_ref():
    assert branch_ref("main") == "refs/heads/main"
    assert branch_ref("feature/x") == "refs/heads/feature/x"
    assert branch_ref("refs/pull/7/merge") == "refs/pull/7/merge"
    assert branch_ref("") == ""


def test_a_scope_reads_its_own_ref_then_each_fallback_once():
    scope = Scope("refs/pull/7/merge", ("refs/heads/main", "refs/heads/main"))
    assert scope.readable == ["refs/pull/7/merge", "refs/heads/main"]
    assert Scope().readable == [""]
