"""The runner protocol, read back the way the runner itself parses the files we write."""

import re

import pytest

from ci_actions import declared, runner
from ci_actions.declared import Input


def parse_file_command(text: str) -> dict[str, str]:
    """The runner's parser for GITHUB_OUTPUT/GITHUB_ENV/GITHUB_STATE: `k=v` or `k<<DELIM ... DELIM`."""
    values, lines = {}, iter(text.split("\n"))
    for line in lines:
        if "<<" in line:
            key, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"delimiter {delimiter} never closed")
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


@pytest.fixture
def files(tmp_path, monkeypatch):
    paths = {}
    for name in ("OUTPUT", "ENV", "PATH", "STATE", "STEP_SUMMARY"):
        path = tmp_path / name.lower()
        path.touch()
        monkeypatch.setenv(f"GITHUB_{name}", str(path))
        paths[name] = path
    return paths


def test_input_trimmed_with_hyphenated_name(monkeypatch):
    monkeypatch.setenv("INPUT_FAIL_ON_CACHE_MISS", "  true \n")
    assert runner.get_input("fail-on-cache-miss") == "true"


def read(name: str, parse=str, default: str = "", choices: tuple[str, ...] = ()):
    return runner.read_inputs(declared.table(Input(name, "h", default, parse=parse, choices=choices)))[name]


def test_input_in_the_runners_own_hyphen_form(monkeypatch):
    monkeypatch.setenv("INPUT_LOOKUP-ONLY", "TRUE")
    assert read("lookup-only", declared.boolean) is True


def test_missing_required_input_names_it(monkeypatch):
    monkeypatch.delenv("INPUT_KEY", raising=False)
    with pytest.raises(runner.InputError, match=r"^Input required and not supplied: key$"):
        runner.get_input("key", required=True)
    monkeypatch.setenv("INPUT_KEY", "   ")
    with pytest.raises(runner.InputError):
        runner.get_input("key", required=True)


def test_default_applies_only_when_empty(monkeypatch):
    monkeypatch.setenv("INPUT_INSTALL_COMMAND", "")
    assert runner.get_input("install-command", default="npm ci") == "npm ci"


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE"])
def test_boolean_true_spellings(monkeypatch, spelling):
    monkeypatch.setenv("INPUT_FLAG", spelling)
    assert read("flag", declared.boolean) is True


@pytest.mark.parametrize("spelling", ["false", "False", "FALSE"])
def test_boolean_false_spellings(monkeypatch, spelling):
    monkeypatch.setenv("INPUT_FLAG", spelling)
    assert read("flag", declared.boolean, default="true") is False


@pytest.mark.parametrize("value", ["yes", "1", "tRUE", "on"])
def test_invalid_boolean_names_value_and_spellings(monkeypatch, value):
    monkeypatch.setenv("INPUT_FLAG", value)
    with pytest.raises(runner.InputError) as caught:
        read("flag", declared.boolean)
    assert str(caught.value) == (f"Input 'flag' is not a boolean: {value!r}; "
                                 "use one of: true | True | TRUE | false | False | FALSE")


def test_multiline_input_drops_blank_lines(monkeypatch):
    monkeypatch.setenv("INPUT_PATH", "\n  node_modules \n\n  !node_modules/.cache\n")
    table = declared.table(Input("path", "p", many=True))
    assert runner.read_inputs(table)["path"] == ["node_modules", "!node_modules/.cache"]


def test_outputs_round_trip_including_multiline(files):
    runner.set_output("single", "value")
    runner.set_output("multi", "line one\nline two\n")
    runner.set_output("json", {"a": 1})
    text = files["OUTPUT"].read_text()
    assert parse_file_command(text) == {"single": "value", "multi": "line one\nline two\n",
                                        "json": '{"a": 1}'}


def test_delimiter_is_random_and_never_inside_the_value(files, monkeypatch):
    tokens = iter(["aa", "aa", "bb"])
    monkeypatch.setattr(runner.secrets, "token_hex", lambda _n: next(tokens))
    runner.set_output("x", "ghadelimiter_aa is in here")
    text = files["OUTPUT"].read_text()
    assert text.startswith("x<<ghadelimiter_bb\n")
    assert parse_file_command(text) == {"x": "ghadelimiter_aa is in here"}


def test_env_path_state(files, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    runner.export_variable("CACHE_DIR", "/var/cache/x")
    runner.add_path("/opt/tool/bin")
    runner.save_state("matched-key", "deps-1")
    assert parse_file_command(files["ENV"].read_text()) == {"CACHE_DIR": "/var/cache/x"}
    assert files["PATH"].read_text() == "/opt/tool/bin\n"
    assert parse_file_command(files["STATE"].read_text()) == {"matched-key": "deps-1"}
    monkeypatch.setenv("STATE_matched-key", "deps-1")
    assert runner.get_state("matched-key") == "deps-1"
    assert runner.os.environ["PATH"].startswith("/opt/tool/bin:")


def test_masks_every_line_of_a_secret(capsys):
    runner.mask("line1\nline2\n")
    assert capsys.readouterr().out == "::add-mask::line1\n::add-mask::line2\n"


def test_annotations_escape_and_omit_unset_properties(capsys):
    runner.warning("50% done\nnext", file="a,b.txt", start_line=3)
    runner.error("boom")
    runner.notice("hi", title="T")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "::warning file=a%2Cb.txt,line=3::50%25 done%0Anext",
        "::error::boom",
        "::notice title=T::hi",
    ]


def test_group_closes_even_on_error(capsys):
    with pytest.raises(RuntimeError), runner.group("install"):
        print("inside")
        raise RuntimeError
    assert capsys.readouterr().out == "::group::install\ninside\n::endgroup::\n"


@pytest.mark.parametrize("head", ["# head\n", "# head!\n"])  # odd and even room for a 2-byte char
def test_summary_is_capped_at_one_mebibyte(files, head):
    runner.append_summary(head)
    runner.append_summary("é" * runner.SUMMARY_LIMIT)
    cut = files["STEP_SUMMARY"].read_bytes()
    runner.append_summary("more")
    data = files["STEP_SUMMARY"].read_bytes()
    assert data == cut
    assert len(data) <= runner.SUMMARY_LIMIT
    text = data.decode("utf-8")  # never cut inside a multi-byte character
    assert text.startswith(head) and text.endswith(runner.SUMMARY_CUT_NOTE)


def test_summary_without_runner_is_a_no_op(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    runner.append_summary("x")


def test_workspace_defaults_to_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runner.workspace() == tmp_path
    monkeypatch.setenv("GITHUB_WORKSPACE", "/ws")
    assert str(runner.workspace()) == "/ws"


def test_fail_prints_one_error_line_and_exits_1(capsys):
    with pytest.raises(SystemExit) as caught:
        runner.fail("Input required and not supplied: key")
    assert caught.value.code == 1
    out = capsys.readouterr().out
    assert re.findall(r"^::error::.*$", out, re.M) == ["::error::Input required and not supplied: key"]


def test_choice_input_names_the_choices(monkeypatch):
    monkeypatch.setenv("INPUT_LINK_MODE", "symlink")
    with pytest.raises(runner.InputError, match=r"Input 'link-mode' is 'symlink'; use one of: auto, copy"):
        read("link-mode", default="auto", choices=("auto", "copy", "hardlink"))
    monkeypatch.setenv("INPUT_LINK_MODE", "")
    assert read("link-mode", default="auto", choices=("auto", "copy")) == "auto"


def test_number_input_default_value_and_errors(monkeypatch):
    assert read("watch-seconds", declared.number(), default="30") == 30
    monkeypatch.setenv("INPUT_WATCH_SECONDS", " 2.5 ")
    assert read("watch-seconds", declared.number(), default="30") == 2.5
    monkeypatch.setenv("INPUT_KEEP", "2.5")
    whole = r"Input 'keep' must be a whole number, at least 1 \(got '2.5'\)"
    with pytest.raises(runner.InputError, match=whole):
        read("keep", declared.number(1, whole=True), default="3")
    monkeypatch.setenv("INPUT_KEEP", "0")
    with pytest.raises(runner.InputError, match="at least 1"):
        read("keep", declared.number(1, whole=True), default="3")
    monkeypatch.setenv("INPUT_WATCH_SECONDS", "soon")
    number = r"Input 'watch-seconds' must be a number, at least 0 \(got 'soon'\)"
    with pytest.raises(runner.InputError, match=number):
        read("watch-seconds", declared.number(), default="30")
