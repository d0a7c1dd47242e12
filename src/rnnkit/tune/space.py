"""The search space of `rnnkit tune`: which options a trial draws, and from what.

By default: every option that the task reads and whose metadata has `search` (config.py: the
cell, hidden size, layers, embedding, direction, dropouts, learning rate, batch size, a
tagger's character features and CRF, a classifier's readout), changed by the task's record
(`Task.search`: a language model is not bidirectional). A space file, JSON or YAML, changes it
again; each entry is one option by its config name or its flag:

    {"hidden_size": [64, 128, 256],                   values to choose from
     "lr": {"low": 1e-4, "high": 1e-2, "log": true},  numbers in a range ("integer": true: whole ones)
     "epochs": 10,                                    one value: fixed for every trial
     "crf": null}                                     not searched: the task's default

Options given on the command line are fixed as well and leave the space. A dimension with `when`
({"cell": "rnn"}: the activation) is drawn only where those options have those values.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.config import CONFIGS, FLAGS, TASK_OPTIONS
from rnnkit.errors import UserError
from rnnkit.options import Range, fields_of, problem, short

FIELDS = {f.name: f for f in fields_of(*CONFIGS)}
BY_FLAG = {flag.lstrip("-").replace("-", "_"): name for name, flag in FLAGS.items()}  # "hidden" -> hidden_size


@dataclass(frozen=True)
class Dimension:
    """One option a trial draws: from `values`, or from `range`, where the options in `when` hold."""

    name: str
    values: tuple | None = None
    range: Range | None = None
    when: dict = field(default_factory=dict)

    def suggest(self, trial):
        """The trial's value (optuna's suggest_*: the sampler decides, the storage records it)."""
        if self.values is not None:
            return trial.suggest_categorical(self.name, list(self.values))
        r = self.range
        if r.integer:
            return trial.suggest_int(self.name, int(r.low), int(r.high), log=r.log)
        return trial.suggest_float(self.name, r.low, r.high, log=r.log)

    def __str__(self) -> str:
        if self.values is not None:
            drawn = "{" + ", ".join(map(_shown, self.values)) + "}"
        else:
            drawn = f"{self.range.low:g}..{self.range.high:g}" + (" (log)" if self.range.log else "")
        when = ", ".join(f"{k}={_shown(v)}" for k, v in self.when.items())
        return f"{self.name} {drawn}" + (f" where {when}" if when else "")


def _shown(v) -> str:
    return {True: "on", False: "off"}.get(v, str(v)) if isinstance(v, bool) else str(v)


def reads(task: str, name: str) -> bool:
    return task in TASK_OPTIONS.get(name, (task,))


def default_space(spec) -> dict[str, Dimension]:
    """The options' own search entries for task `spec`, with the task's changes."""
    space = {}
    for name, f in FIELDS.items():
        if f.metadata.get("search") is not None and reads(spec.name, name):
            space[name] = dimension(name, f.metadata["search"], f.metadata["search_when"])
    for name, entry in spec.search.items():
        space.pop(name, None)
        if entry is not None:
            space[name] = dimension(name, entry, FIELDS[name].metadata["search_when"])
    return space


def dimension(name: str, entry, when: dict | None = None, where: str = "the search space") -> Dimension:
    """A Dimension from a tuple or list of values, a Range, or {"low", "high", "log", "integer"},
    each value checked against the option."""
    when = dict(when or {})
    if isinstance(entry, Range):
        return _checked(Dimension(name, range=entry, when=when), where)
    if isinstance(entry, (list, tuple)):
        if not entry:
            raise UserError(f"{where}: {name} has no values to choose from")
        return _checked(Dimension(name, values=tuple(entry), when=when), where)
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"low", "high", "log", "integer", "when"})
        if unknown or "low" not in entry or "high" not in entry:
            raise UserError(f"{where}: {name} expected {{\"low\": X, \"high\": Y}} (and \"log\", \"integer\", "
                            f"\"when\"), found {short(entry)}")  # fmt: skip
        low, high = entry["low"], entry["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            raise UserError(f"{where}: {name} expected numbers low < high, found {short(low)} and {short(high)}")
        if entry.get("log") and low <= 0:
            raise UserError(f"{where}: {name} on a log scale needs low > 0, found {low}")
        r = Range(low, high, bool(entry.get("log")), bool(entry.get("integer", FIELDS[name].metadata["kind"] in
                                                                          ("count", "size"))))  # fmt: skip
        return _checked(Dimension(name, range=r, when=dict(entry.get("when", when))), where)
    raise UserError(f"{where}: {name} expected a list of values, a range or one value, found {short(entry)}")


def _checked(d: Dimension, where: str) -> Dimension:
    f = FIELDS[d.name]
    ends = d.values if d.values is not None else (d.range.low, d.range.high)
    for v in ends:
        if d.range is not None and f.metadata["kind"] in ("count", "size") and not float(v).is_integer():
            raise UserError(f"{where}: {d.name} takes whole numbers, found {short(v)}")
        said = problem(f, int(v) if d.range is not None and d.range.integer else v)
        if said:
            raise UserError(f"{where}: {said}")
    for k in d.when:
        if k not in FIELDS:
            raise UserError(f"{where}: {d.name}'s condition names an unknown option {k!r}")
    return d


def option_name(key: str, task: str, where: str) -> str:
    name = key if key in FIELDS else BY_FLAG.get(key.lstrip("-").replace("-", "_"))
    if name is None:
        raise UserError(f"{where}: unknown option {key!r}; known options: {', '.join(sorted(FIELDS))}")
    if not reads(task, name):
        raise UserError(f"{where}: {name} is for {', '.join(TASK_OPTIONS[name])} runs; {task} runs do not use it")
    return name


def read_space_file(path) -> dict:
    """A space file: JSON, or YAML (.yaml, .yml; PyYAML) -> {key: entry}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read the space file: {e.strerror or e}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UserError(f"{path}: a YAML space file needs PyYAML: pip install 'rnnkit[tune]'") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise UserError(f"{path}{line}: expected YAML, found {getattr(e, 'problem', None) or e}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: expected JSON, found {e.msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: expected a mapping of option to values, found {type(data).__name__}")
    return data


def build(spec, file=None, given: dict | None = None) -> tuple[dict[str, Dimension], dict]:
    """The space and the fixed options of a study of task `spec`: the default space, changed by
    the space file, less the options `given` (which are fixed, with the file's single values)."""
    space, fixed = default_space(spec), {}
    for key, entry in (read_space_file(file) if file else {}).items():
        where = str(file)
        name = option_name(key, spec.name, where)
        space.pop(name, None)
        if entry is None:
            continue
        if isinstance(entry, (list, tuple, dict)):
            space[name] = dimension(name, entry, FIELDS[name].metadata["search_when"], where)
        else:
            said = problem(FIELDS[name], entry)
            if said:
                raise UserError(f"{where}: {said}")
            fixed[name] = entry
    for name, value in (given or {}).items():
        space.pop(name, None)
        fixed[name] = value
    return space, fixed


def suggest(trial, space: dict[str, Dimension], fixed: dict) -> dict:
    """A trial's options: each dimension drawn in order, where its conditions hold."""
    chosen = {}
    for d in space.values():
        if all({**fixed, **chosen}.get(k, FIELDS[k].default) == v for k, v in d.when.items()):
            chosen[d.name] = d.suggest(trial)
    return chosen


def to_json(space: dict[str, Dimension]) -> dict:
    """The space as a space file would state it (kept in the study's study.json)."""
    out = {}
    for d in space.values():
        entry = list(d.values) if d.values is not None else dataclasses.asdict(d.range)
        if d.when:
            entry = {"values": entry, "when": d.when} if d.values is not None else {**entry, "when": d.when}
        out[d.name] = entry
    return out
