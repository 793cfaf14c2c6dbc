"""Human sizes and durations in inputs (`10G`, `7d`), parsed strictly so a typo is an error, not a zero."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """Bytes from `500M`, `10G`, `2GiB` or a plain number (powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"is not a size: {text!r}; use a number with K, M, G or T (e.g. 10G)")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.upper()])


def parse_duration(text: str) -> float:
    """Seconds from `90s`, `30m`, `12h`, `7d`, `2w` or a plain number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"is not a duration: {text!r}; use a number with s, m, h, d or w (e.g. 7d)")
    number, unit = match.groups()
    return float(number) * _DURATION_UNITS[unit.lower()]
