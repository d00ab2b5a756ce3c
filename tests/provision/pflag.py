"""Command lines parsed as cobra and pflag parse them, for the eksctl and flux stand-ins.

The rules follow spf13/pflag v1.0.10 (flag.go ``parseLongArg``, ``parseSingleShortArg``; errors.go for
the messages): ``--flag=value`` and ``--flag value``; a bool flag alone means true and takes a value
only after ``=``; ``-f value``, ``-fvalue`` and ``-f=value`` for shorthands; ``--`` ends the flags;
a lone ``-`` is an argument. Values are checked as Go parses them (strconv.ParseBool; strconv.ParseInt
with base 0, as pflag int.go calls it; time.ParseDuration, as duration.go calls it; the ``key=value``
pairs of string_to_string.go; net.ParseCIDR, as ipnet.go calls it), with pflag's ``invalid argument``
message. ``strings`` is a StringSlice (split on commas), ``array`` a StringArray (one value per flag).
"""

from __future__ import annotations

import csv
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["bool", "string", "int", "duration", "strings", "array", "map", "ipnet", "value"]

# strconv.ParseBool
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
# time.ParseDuration's units, in nanoseconds (Go src/time/format.go unitMap; µ and μ both spell micro).
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_NUMERIC = frozenset(".0123456789")
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?")
# strconv.ParseInt(s, 0, 64): a prefix 0b, 0o, 0x needs a digit after it, a bare leading 0 means
# octal; underscores only between digits or after the prefix (Go src/strconv/atoi.go underscoreOK).
_INT = re.compile(
    r"[-+]?(?:0[bB]_?[01]+(?:_[01]+)*|0[oO]_?[0-7]+(?:_[0-7]+)*|0[xX]_?[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*"
    r"|0(?:_?[0-7]+)*|[1-9](?:_?[0-9]+)*)"
)


@dataclass(frozen=True)
class Flag:
    name: str
    kind: Kind = "string"
    shorthand: str = ""


class FlagError(Exception):
    """A command line the real tool refuses; the message is the tool's."""


@dataclass
class Parsed:
    values: dict[str, str | bool | list[str]] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def changed(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: str | bool | None = None) -> str | bool | list[str] | None:
        return self.values.get(name, default)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        return bool(value)


def flags(*items: Flag | tuple[Flag, ...]) -> dict[str, Flag]:
    table: dict[str, Flag] = {}
    for item in items:
        for one in item if isinstance(item, tuple) else (item,):
            table[one.name] = one
    return table


def _flag_name(flag: Flag) -> str:
    return f"-{flag.shorthand}, --{flag.name}" if flag.shorthand else f"--{flag.name}"


def _convert(flag: Flag, value: str, parsed: Parsed) -> None:
    def invalid(cause: str) -> FlagError:
        return FlagError(f"invalid argument {_go_quote(value)} for {_go_quote(_flag_name(flag))} flag: {cause}")

    if flag.kind == "bool":
        if value not in _TRUE | _FALSE:
            raise invalid(f"strconv.ParseBool: parsing {_go_quote(value)}: invalid syntax")
        parsed.values[flag.name] = value in _TRUE
    elif flag.kind == "int":
        if not _INT.fullmatch(value):
            raise invalid(f"strconv.ParseInt: parsing {_go_quote(value)}: invalid syntax")
        if not -(2**63) <= _go_int(value) < 2**63:
            raise invalid(f"strconv.ParseInt: parsing {_go_quote(value)}: value out of range")
        parsed.values[flag.name] = value
    elif flag.kind == "duration":
        problem = duration_problem(value)
        if problem:
            raise invalid(problem)
        parsed.values[flag.name] = value
    elif flag.kind == "ipnet":
        if not _is_cidr(value.strip()):
            raise invalid(f"invalid CIDR address: {value.strip()}")  # net.ParseError for "CIDR address"
        parsed.values[flag.name] = value.strip()
    elif flag.kind in ("strings", "array", "map"):
        if flag.kind == "strings":
            items = [item for item in value.split(",") if item] if value else []
        elif flag.kind == "array":
            items = [value]
        else:
            items = _pairs(value)
            bad = next((pair for pair in items if "=" not in pair), None)
            if bad is not None:
                raise invalid(f"{bad} must be formatted as key=value")
        previous = parsed.values.get(flag.name)
        parsed.values[flag.name] = [*(previous if isinstance(previous, list) else []), *items]
    else:
        parsed.values[flag.name] = value


def _go_int(text: str) -> int:
    """The value of an integer _INT accepts (a leading 0 alone means octal, as in Go)."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] not in "bBoOxX":
        return sign * int(digits, 8)
    return sign * int(digits, 0)


def duration_problem(text: str) -> str | None:
    """time.ParseDuration's error for ``text``, or None (Go src/time/format.go; the messages quote as
    the time package's ``quote`` does)."""
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return None
    invalid = f"time: invalid duration {_time_quote(text)}"
    if not rest:
        return invalid
    total = 0
    while rest:
        if rest[0] not in _NUMERIC:
            return invalid
        number = _DURATION_PART.match(rest)
        whole, fraction = number.group(1), number.group(2) or ""  # type: ignore[union-attr]
        if not whole and not fraction:
            return invalid
        rest = rest[number.end() :]  # type: ignore[union-attr]
        end = next((i for i, char in enumerate(rest) if char in _NUMERIC), len(rest))
        unit, rest = rest[:end], rest[end:]
        if not unit:
            return f"time: missing unit in duration {_time_quote(text)}"
        if unit not in _UNITS:
            return f"time: unknown unit {_time_quote(unit)} in duration {_time_quote(text)}"
        total += int(whole or "0") * _UNITS[unit] + int(fraction or "0") * _UNITS[unit] // 10 ** len(fraction)
        if total > 2**63 - (1 if text[:1] != "-" else 0):
            return invalid
    return None


def _time_quote(text: str) -> str:
    """The time package's quote: bytes outside printable ASCII as \\xNN."""
    out = []
    for byte in text.encode():
        if byte >= 0x80 or byte < 0x20:
            out.append(f"\\x{byte:02x}")
        elif byte in b'"\\':
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def _pairs(value: str) -> list[str]:
    """string_to_string.go Set: one ``=`` is one pair (surrounding quotes trimmed), more are read as a CSV record."""
    if value.count("=") == 0:
        return [value]
    if value.count("=") == 1:
        return [value.strip('"')]
    return next(csv.reader([value]))


def _is_cidr(text: str) -> bool:
    """net.ParseCIDR: an IP address, ``/`` and a decimal prefix length within the address's bits."""
    address, slash, length = text.partition("/")
    if not slash or not length.isascii() or not length.isdigit() or (len(length) > 1 and length[0] == "0"):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return int(length) <= ip.max_prefixlen


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(argv: list[str], table: dict[str, Flag]) -> Parsed:
    """``argv`` (after the command words) against ``table``; FlagError with pflag's message."""
    shorthands = {flag.shorthand: flag for flag in table.values() if flag.shorthand}
    parsed = Parsed()
    rest = list(argv)
    while rest:
        item = rest.pop(0)
        if item == "--":
            parsed.args.extend(rest)
            break
        if not item.startswith("-") or item == "-":
            parsed.args.append(item)
            continue
        if item.startswith("--"):
            _long(item, rest, table, parsed)
        else:
            _short(item, rest, shorthands, parsed)
    return parsed


def _long(item: str, rest: list[str], table: dict[str, Flag], parsed: Parsed) -> None:
    name = item[2:]
    if not name or name[0] in "-=":
        raise FlagError(f"bad flag syntax: {item}")
    name, equals, value = name.partition("=")
    flag = table.get(name)
    if flag is None:
        raise FlagError(f"unknown flag: --{name}")
    if not equals:
        if flag.kind == "bool":
            value = "true"
        elif rest:
            value = rest.pop(0)
        else:
            raise FlagError(f"flag needs an argument: --{name}")
    _convert(flag, value, parsed)


def _short(item: str, rest: list[str], shorthands: dict[str, Flag], parsed: Parsed) -> None:
    letters = item[1:]
    while letters:
        letter = letters[0]
        flag = shorthands.get(letter)
        if flag is None:
            raise FlagError(f"unknown shorthand flag: {letter!r} in -{letters}")
        if len(letters) > 2 and letters[1] == "=":
            value, letters = letters[2:], ""
        elif flag.kind == "bool":
            value, letters = "true", letters[1:]
        elif len(letters) > 1:
            value, letters = letters[1:], ""
        elif rest:
            value, letters = rest.pop(0), ""
        else:
            raise FlagError(f"flag needs an argument: {letter!r} in -{letters}")
        _convert(flag, value, parsed)
