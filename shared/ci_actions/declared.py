"""Each action's inputs, declared once (name, kind, default, help), as actions/cache's constants.ts.

From one table the runner reads a step's inputs (`runner.read_inputs`), argparse builds the CLI's flags
(`add_flags`), and the conformance test checks `action.yml` against it: the same names, defaults,
required flags and descriptions. A default cannot differ between the action and the CLI, and a bad
value is one message naming the input (or flag) and what it accepts, never a traceback.

Both entry points produce the same `Values` (input name -> parsed value), so the request an action
builds is built by one function for the step and the command alike.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_actions.units import parse_duration, parse_size

Parse = Callable[[str], Any]
Values = Mapping[str, Any]


class InputError(ValueError):
    """An input is missing or malformed; the message names the input and what it accepts."""


@dataclass(frozen=True)
class Input:
    """One input. `parse` turns its text (the default when empty) into a value, or raises ValueError
    saying what it accepts; a `many` input is one value per non-blank line (a repeated CLI flag).
    `choices` are checked before `parse`.
    `flag` names the CLI flag when it differs from the input (`--compose-file` for `compose-files`);
    `cli=False` inputs exist only in the action (a token, a GitHub environment)."""

    name: str
    help: str
    default: str = ""
    required: bool = False
    parse: Parse = str
    many: bool = False
    flag: str = ""
    cli: bool = True
    choices: tuple[str, ...] = field(default=())

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def option(self) -> str:
        return f"--{self.flag or self.name}"

    def value(self, text: str, label: str) -> Any:
        """`text` as given (blank: the default), parsed; a bad value names `label` (input or flag)."""
        try:
            return self.parse_one(text.strip() or self.default)
        except ValueError as exc:
            raise InputError(f"{label} {exc}") from None

    def values(self, lines: Sequence[str], label: str) -> list[Any]:
        """A `many` input's lines (blank: the default's), each parsed; a bad one is named by number."""
        values = []
        for number, line in enumerate(_lines("\n".join(lines)) or _lines(self.default), start=1):
            try:
                values.append(self.parse_one(line))
            except ValueError as exc:
                raise InputError(f"{label} line {number} {exc}") from None
        return values

    def parse_one(self, text: str) -> Any:
        if self.choices and text not in self.choices:
            raise ValueError(f"is {text!r}; use one of: {', '.join(self.choices)}")
        return self.parse(text)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def table(*inputs: Input) -> dict[str, Input]:
    return {spec.name: spec for spec in inputs}


# The kinds: each parser takes the text (the default already applied) and says what it accepts.

def boolean(text: str) -> bool:
    """YAML 1.2 core-schema booleans, as the runner's getBooleanInput accepts them."""
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    raise ValueError(f"is not a boolean: {text!r}; use one of: true | True | TRUE | false | False | FALSE")


def number(minimum: float = 0.0, *, whole: bool = False) -> Parse:
    kind = "a whole number" if whole else "a number"

    def parse(text: str) -> float | int:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise ValueError(f"must be {kind}, at least {minimum:g} (got {text!r})")
        return value
    return parse


def path(empty: Callable[[], Path] | None = None) -> Parse:
    """A path, `~` expanded; blank means `empty()` (a default under HOME, found at run time), else None."""
    def parse(text: str) -> Path | None:
        if not text:
            return empty() if empty else None
        return Path(text).expanduser()
    return parse


def argv(text: str) -> list[str]:
    """A command line split as a shell would, though no shell runs it."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"is not a valid command line: {exc}") from None


def json_object(text: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON ({exc}); give an object such as {{\"web\": \"app:sha\"}}") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object such as {\"backend\": \"app:sha\"}")
    return value


def pair(separator: str = "=") -> Parse:
    """`KEY=VALUE` (or `service: value`) lines; a bad one is not echoed, as it may hold a secret."""
    shape = "KEY=VALUE" if separator == "=" else f"`name{separator} value`"

    def parse(text: str) -> tuple[str, str]:
        key, found, value = text.partition(separator)
        if not found or not key.strip():
            raise ValueError(f"is not {shape}")
        return key.strip(), value.strip()
    return parse


size: Parse = parse_size
duration: Parse = parse_duration


# The CLI side.

def add_flags(parser: argparse.ArgumentParser, inputs: Mapping[str, Input], names: Iterable[str]) -> None:
    """One flag per named input, with its help and default; argparse's own exit 2 reports bad values.
    The parser remembers them, so `from_args` needs only the parsed flags."""
    names = list(names)
    parser.set_defaults(declared_inputs=[*(parser.get_default("declared_inputs") or ()),
                                         *(inputs[name] for name in names)])
    for name in names:
        spec = inputs[name]
        help_text = (spec.help + (" (repeat)" if spec.many else "")
                     + (f" (default: {spec.default})" if spec.default else ""))
        if spec.parse is boolean:  # off by default: `--flag`; on by default: `--flag` / `--no-flag`
            on = boolean(spec.default or "false")
            parser.add_argument(spec.option, dest=spec.dest, default=on, help=help_text,
                                action=argparse.BooleanOptionalAction if on else "store_true")
            continue
        parser.add_argument(spec.option, dest=spec.dest, metavar=spec.option[2:].replace("-", "_").upper(),
                            help=help_text,
                            action="append" if spec.many else "store", required=spec.required,
                            type=_flag_type(spec))


def _flag_type(spec: Input) -> Callable[[str], str]:
    """Check each value as argparse reads it (exit 2 naming the flag); parsing happens in `from_args`."""
    def check(text: str) -> str:
        try:
            if text.strip() or not spec.many:
                spec.parse_one(text.strip() or spec.default)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The values of the inputs `add_flags` declared, from parsed flags; an absent flag is the default."""
    values: dict[str, Any] = {}
    for spec in args.declared_inputs:
        name = spec.name
        given = getattr(args, spec.dest)
        if isinstance(given, bool):
            values[name] = given
        elif spec.many:
            values[name] = spec.values(given or (), spec.option)
        else:
            values[name] = spec.value(given or "", spec.option)
    return values


def read(inputs: Mapping[str, Input], text_of: Callable[[str], str],
         names: Sequence[str] | None = None) -> dict[str, Any]:
    """The named inputs (all, by default) through `text_of` (the runner's raw input reader)."""
    values: dict[str, Any] = {}
    for name in names if names is not None else list(inputs):
        spec = inputs[name]
        text = text_of(name)
        if spec.required and not text.strip():
            raise InputError(f"Input required and not supplied: {name}")
        label = f"Input '{name}'"
        values[name] = spec.values(text.splitlines(), label) if spec.many else spec.value(text, label)
    return values
