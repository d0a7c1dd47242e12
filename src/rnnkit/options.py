"""Options stated once. Each config field (config.py) is an `option(...)`: its default, help, kind
of value, choices, bounds, flag and the tasks that read it live in the field's metadata. From
there the configs check every value (`check`), the CLI builds its flags, types, choices and help
(cli.add_options), and api.train refuses options a task does not read (`task_options`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from rnnkit.errors import UserError

MAX_COUNT = 1 << 30  # epochs, batch size, bptt, patience, vocabulary size, ...


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Kind:
    """A kind of value: the check a config applies (ok), what the error says it expected, and
    how the CLI parses the text (parse; None: the text itself)."""

    ok: Callable[[object], bool]
    expected: str  # completes "NAME must be ..."
    parse: Callable[[str], object] | None = None
    said: str | None = None  # completes the CLI's "expected ..." where `expected` does not


KINDS = {
    "count": Kind(lambda v: _is_int(v) and v >= 1, "a positive integer", int),
    "size": Kind(lambda v: _is_int(v) and v >= 0, "a non-negative integer", int),
    "number": Kind(lambda v: _is_number(v) and v > 0, "a finite positive number", float, "a positive number"),
    "non_negative": Kind(
        lambda v: _is_number(v) and v >= 0, "a finite non-negative number", float, "a non-negative number"
    ),  # fmt: skip
    "share": Kind(lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]", float),
    "fraction": Kind(lambda v: _is_number(v) and 0 <= v < 1, "in [0, 1)", float, "a number in [0, 1)"),
    "open_fraction": Kind(lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)", float),
    "probability": Kind(lambda v: _is_number(v) and 0 <= v <= 1, "in [0, 1]", float, "a number in [0, 1]"),
    "flag": Kind(lambda v: isinstance(v, bool), "True or False"),
    "choice": Kind(lambda v: True, "one of the choices"),  # checked against the field's choices
    "text": Kind(lambda v: isinstance(v, str), "a string"),
    "column": Kind(lambda v: v is None or isinstance(v, (str, int)), "a column name or index", None),
}


@dataclass(frozen=True)
class Range:
    """Numbers from low to high that `rnnkit tune` searches (rnnkit.tune.space): on a log scale
    with log, whole numbers with integer."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


def option(default, help: str, kind: str, *, choices: tuple = (), most: int | None = None, optional: bool = False,
           flag: str | None = None, tasks: tuple = (), group: str | None = None, default_text: str | None = None,
           cli: bool = True, search: tuple | Range | None = None, search_when: dict | None = None):  # fmt: skip
    """A config field stated once. optional: None is a value too (off, or decided elsewhere);
    most: an upper bound; tasks: the tasks that read it (empty: all); flag: the CLI's name
    (default --NAME with dashes); group: the CLI's option group (default the config's);
    default_text: what the help says the default is where the value alone would not tell;
    search: the values (a tuple) or the Range that `rnnkit tune` tries by default, searched only
    where the options in search_when have those values ({"cell": "rnn"})."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    meta = dict(help=help, kind=kind, choices=tuple(choices), most=most, optional=optional or default is None,
                flag=flag, tasks=tuple(tasks), group=group, default_text=default_text, cli=cli, search=search,
                search_when=dict(search_when or {}))  # fmt: skip
    return dataclasses.field(default=default, metadata=meta)


def check(config) -> list[str]:
    """What is wrong with the values of `config`, a dataclass of options: one line per field."""
    return [p for f in dataclasses.fields(config) if f.metadata for p in [problem(f, getattr(config, f.name))] if p]


def problem(f: dataclasses.Field, value) -> str | None:
    """What is wrong with `value` for the option `f`, or None."""
    m = f.metadata
    if value is None and m["optional"]:
        return None
    kind = KINDS[m["kind"]]
    if m["choices"] and value not in m["choices"]:
        return f"{f.name} must be one of {', '.join(map(repr, m['choices']))}, got {short(value)}"
    if not kind.ok(value):
        return f"{f.name} must be {kind.expected}, got {short(value)}"
    if m["most"] is not None and value > m["most"]:
        return f"{f.name} must be at most {m['most']:,}, got {short(value)}"
    return None


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fields_of(*classes) -> list[dataclasses.Field]:
    return [f for cls in classes for f in dataclasses.fields(cls)]


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def task_options(*classes) -> dict[str, tuple]:
    """{option: the tasks that read it} for the options only some tasks read."""
    tasks: dict[str, tuple] = {}
    for f in fields_of(*classes):
        if f.metadata.get("tasks"):  # a name in two configs (level) is read by the tasks of both
            tasks[f.name] = tuple(dict.fromkeys(tasks.get(f.name, ()) + f.metadata["tasks"]))
    return tasks


def parser_type(f: dataclasses.Field) -> Callable | None:
    """The argparse type of a field (None: the text itself)."""
    if f.metadata["kind"] == "column":
        return column
    return parse_as(f.metadata["kind"]) if KINDS[f.metadata["kind"]].parse else None  # bounds: the config's


def parse_as(kind_name: str) -> Callable[[str], object]:
    """An argparse type: the kind's parse, refusing what the kind refuses, with the error argparse
    prints ("expected a positive integer, got '0'")."""
    kind = KINDS[kind_name]

    def convert(text: str):
        try:
            value = kind.parse(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not kind.ok(value):
            raise argparse.ArgumentTypeError(f"expected {kind.said or kind.expected}, got {text!r}")
        return value

    return convert


def column(text: str):
    """A CoNLL column: an index (digits) or a CoNLL-U column name."""
    return int(text) if text.lstrip("-").isdigit() else text


def problems_to_error(what: str, problems: list[str]) -> None:
    if problems:
        raise UserError(f"invalid {what}: " + "; ".join(problems))
