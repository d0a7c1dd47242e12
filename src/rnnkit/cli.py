"""The `rnnkit` command: argument parsing, printing and where output goes (stdout, or a file
written whole); every command calls the API (rnnkit.train and load, the Model, rnnkit.predict's
stream, the task's explanation, export and serve) and holds no task's logic.

A user error prints one line on stderr and exits with status 2; `--json` prints one JSON object
on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path

from rnnkit.config import (
    ACTIVATIONS,
    CONFIGS,
    DEVICES,
    FORMATS,
    GENERATE_LENGTH,
    DataConfig,
    DecodeConfig,
    ModelConfig,
    Seq2SeqConfig,
    TrainConfig,
)
from rnnkit.config import TASKS as TASK_NAMES
from rnnkit.errors import UserError
from rnnkit.options import flag_of, parse_as, parser_type
from rnnkit.recipes import RECIPES
from rnnkit.reference.runs import RUN_TASK
from rnnkit.run import distributed
from rnnkit.run.tracking import TRACKERS
from rnnkit.run.training import Interrupted

EXIT_USER_ERROR, EXIT_INTERRUPTED = 2, 130


positive_int, non_negative_int = parse_as("count"), parse_as("size")


def port(text: str) -> int:
    """A TCP port: 1 to 65535 (a larger number would wrap around to another port)."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {text!r}")
    return value
non_negative_float, positive_probability = parse_as("non_negative"), parse_as("share")


class Parser(argparse.ArgumentParser):
    """argparse, with its error as one line that points at --help, and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_options(p, title: str, fields) -> None:
    """One flag per config field (rnnkit.options): its flag, type, choices and help from the
    field's metadata, the default in the help with the tasks that set another (tasks.TASKS).
    Every flag defaults to None, "not given": the config's default (or the task's) applies."""
    from rnnkit.tasks import TASKS

    g = p.add_argument_group(title)
    for f in fields:
        m = f.metadata
        said = [f"{name} {_shown(t.defaults[f.name])}" for name, t in TASKS.items() if f.name in t.defaults]
        default = m["default_text"] or ("" if f.default is None else _shown(f.default))
        default = "; ".join(([default] if default else []) + said)
        who = f"{', '.join(m['tasks'])}: " if m["tasks"] and len(m["tasks"]) < len(TASKS) else ""
        help = f"{who}{m['help']}" + (f" (default {default})" if default else "")
        if m["kind"] == "flag":
            g.add_argument(flag_of(f), dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help)
        else:
            g.add_argument(flag_of(f), dest=f.name, type=parser_type(f), choices=m["choices"] or None, help=help)


def _shown(value) -> str:
    return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def _fields(cls, group: str | None = None) -> list:
    return [f for f in dataclasses.fields(cls) if f.metadata["cli"] and group in (None, f.metadata["group"])]


def add_data_options(p) -> None:
    add_options(p, "data", _fields(DataConfig, "data"))


def add_decoding_options(p) -> None:
    title = "seq2seq decoding (saved with the run by train; the default of evaluate, predict, explain)"
    add_options(p, title, _fields(DecodeConfig))


def add_parallel_options(p, dev: bool) -> None:
    g = p.add_argument_group("seq2seq data: line-aligned parallel files instead of source<TAB>target lines")
    g.add_argument("--src", help="source file, one sentence per line")
    g.add_argument("--tgt", help="target file, line i translating line i of --src")
    if dev:
        g.add_argument("--dev-src", help="dev source file")
        g.add_argument("--dev-tgt", help="dev target file")


def add_device_option(p) -> None:
    """--device of the commands that read a run: the same choices and default as train's."""
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the network runs (default auto: CUDA when present)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks for sequences.")
    parser.add_argument("--version", action="version", version=f"rnnkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    add_demo_command(sub)
    add_train_command(sub)
    add_evaluate_command(sub)
    add_generate_command(sub)
    add_explain_command(sub)
    add_gradcheck_command(sub)
    add_predict_command(sub)
    add_datasets_command(sub)
    add_deploy_commands(sub)
    add_tune_command(sub)
    return parser


def add_demo_command(sub) -> None:
    p = sub.add_parser("demo", help="train on the built-in demo data and print the report")
    p.add_argument("--out", default="rnnkit-demo", help="folder for the demo data and runs (default rnnkit-demo)")


def add_train_command(sub) -> None:
    p = sub.add_parser("train", help="train a model into a run folder")
    p.add_argument("task", choices=TASK_NAMES)
    p.add_argument(
        "--train",
        help="training file, or NAME:SPLIT (classify: or a folder of <class>.txt files; "
        "seq2seq: source<TAB>target lines, or --src and --tgt)",
    )
    p.add_argument("--dev", help="dev file, folder or NAME:SPLIT, scored each epoch; the best weights on it are kept")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --out (the old run stays whole until the new one has its first checkpoint)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue on data other than the run's; build a model larger than the data "
        "or memory is judged to allow",
    )
    p.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        help=f"a named, tuned set of options, or a recipe file (rnnkit tune's best.recipe.json); options given "
        f"override it: {', '.join(sorted(RECIPES))}",
    )
    add_run_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_run_options(p, given: str = "") -> None:
    """Every option of a run, and its data and tracking: train's, and tune's (`given`: what giving one means)."""
    add_data_options(p)
    add_options(p, "vocabulary", _fields(DataConfig, "vocabulary"))
    add_options(p, "model" + given, _fields(ModelConfig))
    add_options(p, "training" + given, _fields(TrainConfig))
    add_options(p, "seq2seq", _fields(Seq2SeqConfig))
    add_parallel_options(p, dev=True)
    add_decoding_options(p)
    add_tracking_options(p)


def add_tracking_options(p) -> None:
    g = p.add_argument_group("tracking (rnnkit.run.tracking; pip install 'rnnkit[track]')")
    g.add_argument("--track", help=f"log the options, each step's loss and each epoch's dev figures to "
                   f"{' and/or '.join(TRACKERS)} (comma-separated)")  # fmt: skip
    g.add_argument("--tracking-uri", help="MLflow's tracking URI (default: sqlite mlflow.db beside the run folder)")
    g.add_argument("--experiment", help="MLflow's experiment (default rnnkit)")


def add_tune_command(sub) -> None:
    """`tune` (rnnkit.tune): train's data and options, which fix what the study does not search."""
    from rnnkit.tune.study import PRUNERS, SAMPLERS

    p = sub.add_parser("tune", help="search options on Optuna: many runs, by several workers, scored on dev")
    p.add_argument("task", nargs="?", choices=TASK_NAMES)
    p.add_argument("--train", help="training file (as for train)")
    p.add_argument("--dev", help="dev file, which scores every trial")
    p.add_argument("--out", help="study folder: study.db, trials/, best/, best.recipe.json")
    p.add_argument("--report", metavar="STUDY", help="print a study's trials and draw Optuna's plots, then stop")
    g = p.add_argument_group("study")
    g.add_argument("--trials", type=positive_int, default=20, help="complete or pruned trials to reach (default 20)")
    g.add_argument("--minutes", type=parse_as("number"), help="wall-clock budget of this command (default none)")
    g.add_argument("--workers", type=positive_int, default=1, help="worker processes on this machine (default 1)")
    g.add_argument("--storage", help="Optuna storage URL shared by workers on many machines, e.g. "
                   "postgresql+psycopg://user:pw@host/db (default: sqlite study.db in --out)")  # fmt: skip
    g.add_argument("--space", help="a JSON or YAML file that changes the search space (rnnkit.tune.space)")
    g.add_argument("--pruner", choices=PRUNERS, default="median", help="stops poor trials early (default median)")
    g.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="draws the options (default tpe)")
    g.add_argument("--sampler-seed", type=non_negative_int, help="the sampler's seed (default: random)")
    g.add_argument("--study-name", help="the study's name in its storage (default: the --out folder's name)")
    add_run_options(p, given=" (given: fixed for every trial)")


def cmd_tune(args) -> int:
    if args.report:
        from rnnkit.tune.report import draw, load, trials_table

        study = load(args.report, args.storage)
        print(trials_table(study))
        for line in draw(study, args.report):
            print(line, file=sys.stderr)
        return 0
    from rnnkit.tune import tune

    if args.task is None or args.out is None:
        raise UserError("give a task and --out STUDY (or --report STUDY)")
    result = tune(
        args.task,
        train=_data(args, args.train, args.src, args.tgt, "--train", "--src", "--tgt", args.task),
        dev=_data(args, args.dev, args.dev_src, args.dev_tgt, "--dev", "--dev-src", "--dev-tgt", args.task),
        out=args.out, trials=args.trials, minutes=args.minutes, workers=args.workers, storage=args.storage,
        space=args.space, pruner=args.pruner, sampler=args.sampler, seed=args.sampler_seed,
        study_name=args.study_name, track=args.track, tracking_uri=args.tracking_uri,
        log=lambda m: print(m, file=sys.stderr, flush=True), **_given(args, TRAIN_OPTIONS),
    )  # fmt: skip
    if result is None:  # under torchrun, a process other than rank 0: rank 0 says it
        return 0
    n = result["trials"]
    print(f"{n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed"
          + (f"; best: trial {result['best_trial']}, dev {result['best_value']:.4f}, in {result['best_run']}"
             if result["best_trial"] is not None else "; no trial complete yet"))  # fmt: skip
    if result["recipe"]:
        print(f"train it again with: rnnkit train {args.task} --recipe {result['recipe']} ...", file=sys.stderr)
    return 0


def add_evaluate_command(sub) -> None:
    p = sub.add_parser("evaluate", help="score a run on a labelled file")
    p.add_argument("run", help="run folder")
    add_device_option(p)
    p.add_argument(
        "--data",
        help="labelled file to score, or NAME:SPLIT (classify: or a folder of <class>.txt files; "
        "seq2seq: source<TAB>target lines, or --src and --tgt)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", help="folder for the confusion-matrix heatmap")
    add_data_options(p)
    add_parallel_options(p, dev=False)
    add_decoding_options(p)


def add_generate_command(sub) -> None:
    p = sub.add_parser("generate", help="write text with a language model (an lm run)")
    p.add_argument("run", help="run folder of an lm run")
    add_device_option(p)
    p.add_argument("--prompt", default="", help="text to continue (default: none, start at a line break)")
    p.add_argument("--length", type=positive_int, default=GENERATE_LENGTH,
                   help=f"tokens to generate (default {GENERATE_LENGTH})")  # fmt: skip
    p.add_argument(
        "--temperature", type=non_negative_float, default=1.0, help="below 1 sharper, above 1 flatter; 0: greedy"
    )
    p.add_argument("--top-k", type=positive_int, help="draw from the K most likely tokens only")
    p.add_argument("--top-p", type=positive_probability, help="nucleus: draw from the likeliest tokens that make up P")
    p.add_argument("--seed", type=non_negative_int, help="the same seed gives the same text (default: random)")
    p.add_argument("--label", help="the label to generate for (a conditional generator)")


def add_explain_command(sub) -> None:
    p = sub.add_parser("explain", help="what a run sees and does with one sentence, step by step")
    p.add_argument("run", help="run folder")
    add_device_option(p)
    p.add_argument("text", nargs="?", help="the sentence (or --file)")
    p.add_argument("--file", help="explain each non-blank line of this file instead: one page, a sentence picker")
    p.add_argument("--gold", help="gold labels, space-separated: one per token (tag) or one (classify; lm: the label "
                   "of a conditional generator)")  # fmt: skip
    p.add_argument("--json", action="store_true", help='print one JSON object (--file: {"reports": [...]})')
    p.add_argument("--plot", help="save the gradient-flow heatmap G[t, k] here (seq2seq: the attention) (PNG)")
    p.add_argument("--html", help="write the explanation as one self-contained page here, every view of --json")
    add_decoding_options(p)


def add_gradcheck_command(sub) -> None:
    p = sub.add_parser("gradcheck", help="check the NumPy reference's BPTT against finite differences and PyTorch")
    p.add_argument("--task", choices=tuple(RUN_TASK.values()), default="tag")
    p.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random weights and batch")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_predict_command(sub) -> None:
    p = sub.add_parser(
        "predict", help="predict for each input line (or row, or CoNLL sentence), streamed, in the input's order"
    )
    p.add_argument("run", help="run folder")
    add_device_option(p)
    p.add_argument("input", nargs="?", default="-", help="a file, NAME:SPLIT, or - for stdin (default)")
    p.add_argument("--output", help="write here instead of stdout")
    p.add_argument("--probs", action="store_true", help="classification: add the probability of each label")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="input format (default: from the suffix; a .txt is CoNLL columns for a tagger trained on them, else text)",
    )
    p.add_argument(
        "--tokenized",
        action="store_true",
        help="text is already tokenized: split each line on whitespace only, never re-tokenize",
    )
    add_decoding_options(p)


def add_datasets_command(sub) -> None:
    p = sub.add_parser("datasets", help="public datasets by name (NAME:SPLIT wherever a file is taken)")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    actions.add_parser("list", help="the datasets: task, splits, size, licence, where they are")
    q = actions.add_parser("download", help="fetch a dataset into the cache, checking every sha256")
    q.add_argument("name", help="NAME (every split) or NAME:SPLIT")
    q = actions.add_parser("path", help="print the local path of a dataset or of one split")
    q.add_argument("name", help="NAME or NAME:SPLIT")


def add_deploy_commands(sub) -> None:
    """`export` (an ONNX file) and `serve` (an HTTP service): rnnkit.deploy.export, rnnkit.deploy.serve."""
    p = sub.add_parser("export", help="write a run as an ONNX file (runs without PyTorch)")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--int8", action="store_true", help="int8 weights (onnxruntime's dynamic quantization)")
    p = sub.add_parser("serve", help="an HTTP JSON service for a run: POST /predict (/generate), GET /health, /metrics")
    p.add_argument("run", help="run folder (or, with --backend onnx, an exported .onnx file)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="TCP port, 1 to 65535 (default 8000)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="what runs the model (default torch)")
    add_limit_options(p)
    p.add_argument("--threads", type=positive_int,
                   help="the model's intra-op threads per worker (default: the library's; with workers, cores / N)")
    p.add_argument("--workers", type=positive_int, default=1, help="processes sharing the port (default 1)")
    p.add_argument("--explain", action="store_true", help="serve `explain --html`'s page live at GET /explain too")


LIMIT_HELP = {  # serve's limits (rnnkit.deploy.serve.Limits holds them and their defaults)
    "max_batch": "texts run together at most",
    "max_wait_ms": "how long a batch waits to fill",
    "max_texts": "texts per request at most",
    "max_tokens": "tokens per text at most",
    "max_body_bytes": "request body size at most",
}


def add_limit_options(p) -> None:
    from rnnkit.deploy.serve import Limits

    for f in dataclasses.fields(Limits):
        kind = non_negative_float if f.type in (float, "float") else positive_int
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default,
                       help=f"{LIMIT_HELP[f.name]} (default {f.default:,})")  # fmt: skip


TRAIN_OPTIONS = tuple(dict.fromkeys(f.name for cls in CONFIGS for f in _fields(cls)))
READ_OPTIONS = tuple(f.name for f in _fields(DataConfig, "data"))
DECODE_OPTIONS = tuple(f.name for f in _fields(DecodeConfig))


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def cmd_train(args) -> int:
    """Under torchrun every process runs this; rank 0 alone writes the run and prints."""
    import rnnkit

    rnnkit.train(
        args.task,
        train=_data(args, args.train, args.src, args.tgt, "--train", "--src", "--tgt", args.task, not args.resume),
        dev=_data(args, args.dev, args.dev_src, args.dev_tgt, "--dev", "--dev-src", "--dev-tgt", args.task, False),
        out=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        recipe=args.recipe,
        force=args.force,
        progress=not args.no_progress and sys.stderr.isatty(),
        track=args.track,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        **_given(args, TRAIN_OPTIONS),
    )
    if distributed.is_main():
        print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def _data(args, data, src, tgt, data_flag, src_flag, tgt_flag, task, required=True):
    """The data argument of train and evaluate: a file, or for seq2seq a (source, target) pair."""
    from rnnkit.tasks import TASKS

    parallel = [name for name, spec in TASKS.items() if spec.parallel]
    if src is not None or tgt is not None:
        if task not in parallel:
            said = f"give {task} data with {data_flag} F"
            raise UserError(f"{src_flag} and {tgt_flag} are for {', '.join(parallel)}; {said}")
        if data is not None or src is None or tgt is None:
            raise UserError(f"give {data_flag} F (source<TAB>target lines) or both {src_flag} F and {tgt_flag} F")
        return (src, tgt)
    if data is None and required:
        alternative = f" (or {src_flag} F {tgt_flag} F)" if task in parallel else ""
        raise UserError(f"{data_flag} F is required{alternative}")
    return data


def cmd_evaluate(args) -> int:
    import rnnkit
    from rnnkit.api import check_task_options

    model = rnnkit.load(args.run, device=args.device)
    data = _data(args, args.data, args.src, args.tgt, "--data", "--src", "--tgt", model.task)
    decoding = _given(args, DECODE_OPTIONS)
    check_task_options(model.task, decoding)
    if args.plots and not model.spec.confusion:
        raise UserError(f"--plots draws a confusion matrix, and {model.task!r} runs have none")
    report = model.evaluate(data, **_given(args, READ_OPTIONS), **decoding)
    if args.plots:
        from rnnkit.report import plots

        path = plots.confusion_heatmap(
            report["confusion"], Path(args.plots) / "confusion.png", title=Path(args.data).name
        )
        print(f"confusion heatmap: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        shown = data if isinstance(data, str) else " → ".join(data)
        print(model.spec.report(report, title=f"{model.task} · {shown}"))
    return 0


def cmd_generate(args) -> int:
    """The text goes to stdout piece by piece, flushed, as it is generated."""
    import rnnkit

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    text = rnnkit.load(args.run, device=args.device).generate(
        args.prompt, args.length, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        seed=args.seed, label=args.label, on_text=write,
    )  # fmt: skip
    if not text.endswith("\n"):
        write("\n")
    return 0


def cmd_predict(args) -> int:
    """Streams: each chunk of input is predicted and written before the next is read (rnnkit.predict)."""
    import rnnkit
    from rnnkit import predict
    from rnnkit.api import check_task_options
    from rnnkit.data import readers, registry
    from rnnkit.run.folder import RunFolder

    model = rnnkit.load(args.run, device=args.device)
    if model.spec.predict is None:
        said = "for a language model use 'rnnkit generate'"
        raise UserError(f"{args.run}: predict does not cover {model.task} runs; {said}")
    if args.probs and not model.spec.probs:
        raise UserError(f"--probs adds each label's probability to a classification; a {model.task} run has none")
    decoding = _given(args, DECODE_OPTIONS)
    check_task_options(model.task, decoding)
    source = str(registry.resolve(args.input))  # a dataset's split: NAME:SPLIT
    trained_on = (RunFolder(args.run).read_config().get("files") or {}).get("train")
    note = lambda message: print(message, file=sys.stderr)  # noqa: E731
    fmt = predict.input_format(model, source, args.format, args.tokenized, trained_on, note)
    records = predict.records_for(model, source, fmt, args.tokenized)  # says first what cannot be read
    column = None
    if fmt == "conllu":
        given = model.data_config.column
        fmt_trained = model.data_config.format or (trained_on if isinstance(trained_on, str) else "")
        column = readers._conllu_column(given if str(fmt_trained).endswith("conllu") else None)
    with _output(args.output) as write:
        if args.probs and fmt not in ("conllu", "conll"):
            write("\t".join(["text", "label"] + [f"p({label})" for label in model.labels.itos_]) + "\n")
        predict.stream(model, records, write, fmt, probs=args.probs, column=column, **decoding)
    if column is not None:
        print(f"predicted tags are in CoNLL-U column {readers.CONLLU_COLUMNS[column].upper()}", file=sys.stderr)
    return 0


class _output:
    """Where predict writes: stdout, flushed after each chunk; or a file written beside its name
    and renamed into place at the end (checked writable before any input is read)."""

    def __init__(self, path: str | None):
        self.path, self.file, self.tmp = path, None, None

    def __enter__(self):
        if self.path is None:
            return lambda text: (sys.stdout.write(text), sys.stdout.flush())
        import os

        from rnnkit.run.files import open_temp
        from rnnkit.run.folder import file_error

        target = Path(self.path)
        try:
            fd, self.tmp = open_temp(target.parent, prefix=f".{target.name}.")  # its mode follows the umask
            self.file = os.fdopen(fd, "w", encoding="utf-8", newline="")
        except OSError as e:
            raise file_error(target, "write the predictions", e) from None
        return self.file.write

    def __exit__(self, kind, value, tb):
        if self.file is None:
            return
        import os

        from rnnkit.run.folder import file_error

        try:
            self.file.close()
            if kind is None:
                os.replace(self.tmp, self.path)
        except OSError as e:
            raise file_error(self.path, "write the predictions", e) from None
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def cmd_explain(args) -> int:
    """The task's explanation printed (or --json), its plot drawn and its page written (--html);
    a plot that cannot be drawn is said last, after what can be shown."""
    import rnnkit
    from rnnkit.api import check_task_options
    from rnnkit.tasks.explaining import explain, explain_lines

    if (args.text is None) == (args.file is None):
        raise UserError("explain takes one sentence or --file FILE of them, not both or neither")
    if args.file is not None and (args.gold is not None or args.plot is not None):
        raise UserError("--gold and --plot go with one sentence; drop them with --file")
    model = rnnkit.load(args.run, device=args.device)
    decoding = _given(args, DECODE_OPTIONS)
    check_task_options(model.task, decoding)
    if args.file is None:
        report = explain(model, args.text, args.gold, **decoding)
    else:
        report = explain_lines(model, args.file, **decoding)  # {"reports": [...]}
    undrawn = None
    if args.plot:
        try:
            print(model.spec.explain.plot(report, args.plot), file=sys.stderr)
        except UserError as e:
            undrawn = e
    if args.html:
        from rnnkit.report.html import page
        from rnnkit.run.folder import atomic_write_bytes

        atomic_write_bytes(Path(args.html), page(report, f"rnnkit explain {args.run}").encode("utf-8"))
        print(f"explanation page: {args.html}", file=sys.stderr)
    tables = [model.spec.explain.table(r, args.run) for r in report.get("reports", [report])]
    print(json.dumps(report) if args.json else "\n\n".join(tables))
    if undrawn is not None:
        raise UserError(f"--plot: no heatmap drawn: {undrawn}")
    return 0


def cmd_gradcheck(args) -> int:
    """Exit status 0 when every parameter passes, 1 when one fails."""
    from rnnkit.reference.check import FD_TOLERANCE, TORCH_TOLERANCE, gradcheck

    report = gradcheck(args.task, args.activation, args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"gradcheck {args.task}, {args.activation}: loss {report['loss']:.6f}, "
            f"|loss - torch| {report['loss_abs_diff_torch']:.1e}"
        )
        print(f"{'param':<6} {'shape':<10} {'max rel error vs FD':>20} {'max |diff| vs torch':>20}")
        for name, r in report["parameters"].items():
            print(
                f"{name:<6} {'x'.join(map(str, r['shape'])):<10} {r['max_rel_error_fd']:>20.1e} "
                f"{r['max_abs_diff_torch']:>20.1e}"
            )
        print(
            f"{'ok' if report['ok'] else 'FAILED'} (tolerances: {FD_TOLERANCE:g} relative vs FD, "
            f"{TORCH_TOLERANCE:g} absolute vs torch)"
        )
    return 0 if report["ok"] else 1


def cmd_datasets(args) -> int:
    from rnnkit.data import registry

    if args.action == "download":
        registry.download(args.name)
    elif args.action == "path":
        print(registry.local_path(args.name))
    else:
        rows = [{**r, "size": _bytes(r["size"])} for r in registry.table()]
        columns = ("name", "task", "splits", "size", "licence", "where")
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
        for r in [dict(zip(columns, columns))] + rows:
            print("  ".join(f"{r[c]:<{widths[c]}}" for c in columns).rstrip())
        print(f"mirror (RNNKIT_DATA): {registry.mirror_dir() or 'not set'}; cache: {registry.cache_dir()}")
    return 0


def _bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def cmd_export(args) -> int:
    import rnnkit

    path = rnnkit.load(args.run).export(args.out, int8=args.int8)
    print(f"exported {args.run} to {path}; run it with rnnkit.onnx.Predictor({str(path)!r})", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    from rnnkit.deploy.serve import Limits, serve

    limits = Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})
    serve(args.run, args.host, args.port, args.backend, limits, args.threads, args.workers, explain=args.explain)
    return 0


def cmd_demo(args) -> int:
    from rnnkit.demo import run_demo

    run_demo(args.out)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "generate": cmd_generate,
    "demo": cmd_demo,
    "gradcheck": cmd_gradcheck,
    "explain": cmd_explain,
    "datasets": cmd_datasets,
    "export": cmd_export,
    "serve": cmd_serve,
    "tune": cmd_tune,
}


def _version() -> str:
    from rnnkit import __version__

    return __version__


class _Closed:
    """What stands for a standard stream the shell closed (`>&-`): Python leaves None there.
    Writing to it is the OSError that main reports; a command that never writes there runs."""

    def __init__(self, name: str):
        self.name = name

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, f"standard {self.name} is closed; redirect it to a file or /dev/null")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _standard_streams() -> None:
    if sys.stdout is None:
        sys.stdout = _Closed("output")
    if sys.stderr is None:  # nowhere to say anything: messages are dropped, the exit status still tells
        sys.stderr = open(os.devnull, "w")  # open for the life of the process


def main(argv=None) -> int:
    _standard_streams()
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UserError, FileNotFoundError, IsADirectoryError) as e:
        print("rnnkit: error: " + " ".join(str(e).split()), file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return 0
    except OSError as e:  # a file-system failure no reader caught: the path and the reason, in one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"rnnkit: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and "allocate" not in str(e) and "out of memory" not in str(e):
            raise
        print("rnnkit: error: out of memory; choose smaller sizes or a smaller --batch-size", file=sys.stderr)
        return EXIT_USER_ERROR
    except Interrupted as e:
        if distributed.is_main():  # under torchrun every process stopped after the same step: say it once
            print(f"rnnkit: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
