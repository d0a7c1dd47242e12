"""`rnnkit serve`: a run as an HTTP JSON service, on FastAPI and uvicorn.

    POST /predict          {"texts": ["...", ...]} or {"tokens": [["...", ...], ...]}
                           -> {"predictions": [...]}, the items of Model.predict: a label per
                           text, a list of tags per text, or a translation (a string) per text.
                           ?probs=true (classify) makes each item {"label": ..., "probs": {label: p}}.
    POST /generate         a language model's text: {"prompt": "...", "length": 200, "temperature":
                           1.0, "top_k": K, "top_p": P, "seed": S, "label": L} (all optional) ->
                           {"text": "..."}, what Model.generate returns (the prompt, then the text)
    GET  /health           {"status": "ok"}
    GET  /info             task, labels, backend, limits and the run's config
    GET  /metrics          requests, latency, batch sizes and errors in Prometheus' text format
                           (deploy/metrics.py), all workers' together

Dynamic batching: requests wait in one queue, and a worker runs the model on the texts of as
many of them as fit in `max_batch`, in one call (length-sorted, as predict runs). Under load
(the previous batch held more than one request) it first waits up to `max_wait_ms` for more
to arrive, and stops waiting once a fifth of that passes with no arrival; a lone request runs
at once, so batching costs a single client nothing. The
model runs in one worker thread, so the event loop keeps taking requests while a batch runs.
Generation runs in that thread too, one request at a time.

Workers (`workers` > 1): uvicorn's supervisor binds the one port and starts N processes that
accept on it (`app_from_environment`, an app factory reading what to serve from RNNKIT_SERVE),
each with its own model (an onnxruntime session, or a PyTorch model) and its own batcher. A run
served on onnx is exported once, before they start. Each gets cores / N model threads unless
--threads says otherwise.

Bad input (malformed JSON, wrong types, too many or too long texts, a body over the size limit)
gets a 4xx with {"error": "..."}; nothing a client sends makes the service fail. It binds to
127.0.0.1 unless told otherwise, and SIGTERM (or Ctrl-C) stops it gracefully: it stops accepting,
finishes the requests in flight, then exits (uvicorn's shutdown).
"""

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from rnnkit.data.readers import Example, split_text
from rnnkit.deploy.metrics import CONTENT_TYPE, Metrics
from rnnkit.errors import UserError

DRAIN_LIMIT = 64_000_000  # bytes of an oversized body read (and dropped) so the client gets its 413
ENVIRONMENT = "RNNKIT_SERVE"  # what each worker process serves: JSON of app_from_environment's arguments
SAMPLING = ("temperature", "top_k", "top_p", "seed", "label")  # /generate's options beside prompt and length


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64  # texts run together in one model call, at most (a larger request runs alone)
    max_wait_ms: float = 5.0  # under load, how long a batch waits for more requests
    max_texts: int = 256  # texts in one request
    max_tokens: int = 512  # tokens in one text
    max_body_bytes: int = 1_000_000  # the request body

    def __post_init__(self):
        problems = [
            f"{name} must be a positive integer, got {getattr(self, name)!r}"
            for name in ("max_batch", "max_texts", "max_tokens", "max_body_bytes")
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1
        ]
        if not isinstance(self.max_wait_ms, (int, float)) or self.max_wait_ms < 0:
            problems.append(f"max_wait_ms must be a non-negative number, got {self.max_wait_ms!r}")
        if problems:
            raise UserError("invalid server limits: " + "; ".join(problems))


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Backend:
    """What the service runs: predict(examples, probs) as Model.predict_examples (None: the run
    predicts nothing, a language model), generate(prompt, length, **sampling) as Model.generate
    (None: it writes no text), and what /info says. probs: a prediction can carry each label's
    probability (the task record's `probs`, an export's label output); the service then always
    asks for them and answers each text with its label, or {"label", "probs"} under ?probs=true.
    None: as the record of `task` says. split(text) -> tokens and example(tokens) -> what predict
    takes, as the run read its training data (default: split_text at `level`, Example)."""

    predict: object
    task: str
    labels: list
    level: str
    name: str
    config: dict
    probs: bool | None = None
    generate: object = None
    split: object = None
    example: object = Example

    def __post_init__(self):
        if self.probs is None:  # made by hand: load_backend passes it, so that the onnx backend needs no torch
            from rnnkit.tasks import TASKS

            self.probs = TASKS[self.task].probs
        if self.split is None:
            self.split = partial(split_text, level=self.level)


def load_backend(run, backend: str = "torch", threads: int | None = None) -> Backend:
    """A run folder on PyTorch (rnnkit.load), or on onnxruntime: an exported .onnx file, or a run
    folder exported into a temporary file first. threads: the model's intra-op threads (None:
    the library's default)."""
    if backend not in ("torch", "onnx"):
        raise UserError(f"unknown backend {backend!r}; choose 'torch' or 'onnx'")
    if backend == "onnx":
        from rnnkit.onnx import Predictor

        p = Predictor(exported(run), threads=threads)
        generate = p.generate if p.output == "next_token" else None
        return Backend(p.predict_examples if p.predicts else None, p.task, p.labels, p.level, "onnx", p.config,
                       p.probs, generate, lambda text: p.examples([text])[0].tokens)  # fmt: skip
    import rnnkit

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    model = rnnkit.load(run)
    spec, level = model.spec, model.data_config.level
    if not spec.serves and spec.generate is None:
        raise UserError(f"{run}: serve covers runs that predict or generate; a {model.task!r} run does neither")
    config = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
    labels = [] if model.labels is None else list(model.labels.itos_)
    return Backend(model.predict_examples if spec.serves else None, model.task, labels, level, "torch", config,
                   spec.probs, model.generate if spec.generate else None, partial(spec.split, level=level),
                   spec.example)  # fmt: skip


def exported(run) -> Path:
    """An .onnx file as it is, or a run folder exported into a temporary file."""
    path = Path(run)
    if path.suffix == ".onnx":
        return path
    import rnnkit

    return rnnkit.load(run).export(Path(tempfile.mkdtemp(prefix="rnnkit-serve-")) / "model.onnx")


class Batcher:
    """Collects the examples of concurrent requests and runs them as batches (module docstring)."""

    def __init__(self, backend: Backend, limits: Limits, metrics: Metrics | None = None):
        self.backend, self.limits, self.metrics = backend, limits, metrics
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-model")
        self.task: asyncio.Task | None = None
        self.batches = self.requests = 0
        self._last_size = 1
        self._held = None  # a request that did not fit in the last batch

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, examples: list) -> list:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((examples, future))
        return await future

    async def _collect(self) -> list:
        """One batch of requests: the first to come, all that are queued, and (under load) those
        arriving within max_wait_ms, while the texts fit in max_batch. The wait ends early when
        no request has come for a fifth of it: clients that send together arrive together, and
        waiting on for clients that are all in the batch already would only add latency."""
        held, self._held = self._held, None
        batch = [held if held is not None else await self.queue.get()]
        size = len(batch[0][0])
        wait = self.limits.max_wait_ms / 1000 if self._last_size > 1 else 0.0
        deadline, gap = time.perf_counter() + wait, wait / 5
        while size < self.limits.max_batch:
            try:
                left = deadline - time.perf_counter()
                if self.queue.empty() and left > 0:
                    item = await asyncio.wait_for(self.queue.get(), min(gap, left))
                else:
                    item = self.queue.get_nowait()
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            if size + len(item[0]) > self.limits.max_batch:
                self._held = item  # it starts the next batch
                break
            batch.append(item)
            size += len(item[0])
        self._last_size = len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            examples = [ex for exs, _ in batch for ex in exs]
            try:
                run = partial(self.backend.predict, examples, **({"probs": True} if self.backend.probs else {}))
                outputs = await loop.run_in_executor(self.executor, run)
                if self.metrics is not None:
                    self.metrics.batch.observe(len(examples))
            except Exception as e:  # noqa: BLE001  every waiting request gets the error, the worker lives on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            self.batches, self.requests = self.batches + 1, self.requests + len(batch)
            start = 0
            for exs, future in batch:
                if not future.done():
                    future.set_result(outputs[start : start + len(exs)])
                start += len(exs)


def parse_request(body: bytes, limits: Limits, backend: Backend) -> list:
    """The examples of a /predict body, or BadRequest saying what is wrong with it."""
    data = _json_object(body)
    if len({"texts", "tokens"} & set(data)) != 1:
        raise BadRequest('expected a JSON object with "texts" (a list of strings) or "tokens" (a list of token lists)')
    unknown = sorted(set(data) - {"texts", "tokens"})
    if unknown:
        raise BadRequest(f'unknown field(s) {", ".join(map(repr, unknown))}; expected only "texts" or "tokens"')
    key = "texts" if "texts" in data else "tokens"
    items = data[key]
    if not isinstance(items, list):
        raise BadRequest(f'"{key}" must be a list, got {type(items).__name__}')
    if len(items) > limits.max_texts:
        raise BadRequest(f"{len(items)} texts in one request; at most {limits.max_texts} (--max-texts)", 413)
    examples = []
    for i, item in enumerate(items):
        if key == "texts":
            if not isinstance(item, str):
                raise BadRequest(f"texts[{i}] must be a string, got {type(item).__name__}")
            tokens = backend.split(item)
        else:
            if not isinstance(item, list) or not all(isinstance(t, str) for t in item):
                raise BadRequest(f"tokens[{i}] must be a list of strings")
            tokens = item
        if len(tokens) > limits.max_tokens:
            raise BadRequest(f"{key}[{i}] has {len(tokens)} tokens; at most {limits.max_tokens} (--max-tokens)", 413)
        examples.append(backend.example(tuple(tokens)))
    return examples


def parse_generate(body: bytes, limits: Limits) -> tuple[str, int, dict]:
    """The prompt, length and sampling options of a /generate body, or BadRequest."""
    data = _json_object(body)
    unknown = sorted(set(data) - {"prompt", "length", *SAMPLING})
    if unknown:
        raise BadRequest(f'unknown field(s) {", ".join(map(repr, unknown))}; expected "prompt", "length", '
                         + ", ".join(f'"{k}"' for k in SAMPLING))  # fmt: skip
    prompt, length = data.get("prompt", ""), data.get("length", 200)
    if not isinstance(prompt, str):
        raise BadRequest(f'"prompt" must be a string, got {type(prompt).__name__}')
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise BadRequest(f'"length" must be a positive integer, got {length!r}')
    if length > limits.max_tokens:
        raise BadRequest(f"length {length}; at most {limits.max_tokens} (--max-tokens)", 413)
    return prompt, length, {k: data[k] for k in SAMPLING if k in data}


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadRequest('expected a JSON object with "texts" (a list of strings) or "tokens" (a list of token lists)')
    return data


def _flag(value: str | None) -> bool:
    if value is None or value.lower() in ("false", "0", "no", ""):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise BadRequest(f"probs must be true or false, got {value!r}")


async def _read_body(request, limit: int) -> bytes:
    """The body, or BadRequest 413 once it passes `limit` bytes (read on, and dropped, up to
    DRAIN_LIMIT, so that the client is listening when the answer comes)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_LIMIT:
        raise BadRequest(f"the body has {declared} bytes; at most {limit} (--max-body-bytes)", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
    if size > limit:
        raise BadRequest(f"the body has {size} bytes or more; at most {limit} (--max-body-bytes)", 413)
    return b"".join(chunks)


def create_app(backend: Backend, limits: Limits | None = None):
    """The FastAPI application of `backend`."""
    limits = limits or Limits()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    metrics = Metrics()
    batcher = Batcher(backend, limits, metrics)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()  # uvicorn has finished the requests in flight
        print(f"rnnkit serve: stopped after {batcher.requests} requests in {batcher.batches} batches",
              file=sys.stderr, flush=True)  # fmt: skip

    app = FastAPI(title="rnnkit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher

    def answer(route: str, start: float, body: dict, status: int = 200) -> JSONResponse:
        metrics.answered(route, status, time.perf_counter() - start)
        return JSONResponse(body, status_code=status)

    async def guarded(route: str, work) -> JSONResponse:
        """work() -> the answer's body; a client's mistake gets a 4xx, anything else a 500, and the
        service keeps serving."""
        start = time.perf_counter()
        try:
            return answer(route, start, await work())
        except BadRequest as e:
            return answer(route, start, {"error": str(e)}, e.status)
        except UserError as e:
            return answer(route, start, {"error": " ".join(str(e).split())}, 400)
        except Exception as e:  # noqa: BLE001  not the client's doing: say so, and keep serving
            return answer(route, start, {"error": f"internal error: {type(e).__name__}: {e}"}, 500)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return {
            "task": backend.task,
            "labels": backend.labels,
            "level": backend.level,
            "backend": backend.name,
            "routes": ["/predict"] * (backend.predict is not None) + ["/generate"] * (backend.generate is not None),
            "limits": asdict(limits),
            "config": backend.config,
        }

    @app.get("/metrics")
    async def exposition():
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.post("/predict")
    async def predict(request: Request):
        async def work():
            if backend.predict is None:
                raise BadRequest('this run writes text: POST /generate {"prompt": "..."}')
            probs = _flag(request.query_params.get("probs"))
            if probs and not backend.probs:
                raise BadRequest("probs=true is for classify runs; this run's answers carry no probabilities")
            examples = parse_request(await _read_body(request, limits.max_body_bytes), limits, backend)
            outputs = await batcher.submit(examples) if examples else []
            if backend.probs:  # each output is (label, {label: probability})
                outputs = [{"label": label, "probs": p} if probs else label for label, p in outputs]
            return {"predictions": outputs}

        return await guarded("/predict", work)

    @app.post("/generate")
    async def generate(request: Request):
        async def work():
            if backend.generate is None:
                raise BadRequest(f'a {backend.task} run writes no text; POST /predict {{"texts": [...]}}')
            prompt, length, sampling = parse_generate(await _read_body(request, limits.max_body_bytes), limits)
            run = partial(backend.generate, prompt, length, **sampling)
            return {"text": await asyncio.get_running_loop().run_in_executor(batcher.executor, run)}

        return await guarded("/generate", work)

    return app


def app_from_environment():
    """The app of one worker process (`serve --workers N`): what to serve is in RNNKIT_SERVE."""
    given = json.loads(os.environ[ENVIRONMENT])
    backend = load_backend(given["run"], given["backend"], given["threads"])
    app = create_app(backend, Limits(**given["limits"]))
    if given.get("explain"):
        from rnnkit.deploy.explain_route import add_explain_route

        add_explain_route(app, given["run"], backend.name)
    return app


MAX_PORT = 65535


def serve(
    run, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", limits: Limits | None = None,
    threads=None, workers: int = 1, explain: bool = False,
) -> None:  # fmt: skip
    """Serve `run` until SIGTERM or Ctrl-C (uvicorn's graceful shutdown), in `workers` processes;
    `explain`: the glass box at /explain too (deploy/explain_route.py)."""
    if not isinstance(port, int) or not 0 < port <= MAX_PORT:  # the OS would take 70000 as 70000 mod 65536
        raise UserError(f"--port: a TCP port from 1 to {MAX_PORT}, not {port!r}")
    if not isinstance(workers, int) or workers < 1:
        raise UserError(f"--workers: a positive number of processes, not {workers!r}")
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError('rnnkit serve needs FastAPI, uvicorn, prometheus-client: pip install "rnnkit[serve]"') from None
    limits = limits or Limits()
    routes = "POST /predict or /generate, GET /health, /info, /metrics" + (", /explain" if explain else "")
    if workers == 1:
        b = load_backend(run, backend, threads)
        app = create_app(b, limits)
        if explain:
            from rnnkit.deploy.explain_route import add_explain_route

            add_explain_route(app, run, b.name)
        print(f"serving {run} ({b.task}, {b.name}) on http://{host}:{port}  ({routes})", file=sys.stderr, flush=True)
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")).run()
        return
    if explain and backend != "torch":  # said before the workers start, not by each of them
        raise UserError(f"--explain looks inside the PyTorch network; serve {run} with --backend torch")
    if threads is None:  # the cores shared out, rather than every worker's threads on every core
        threads = max(1, (os.cpu_count() or 1) // workers)
    source = str(exported(run)) if backend == "onnx" else str(run)  # exported once, not by every worker
    metrics_dir = tempfile.mkdtemp(prefix="rnnkit-metrics-")
    os.environ[ENVIRONMENT] = json.dumps({"run": source, "backend": backend, "threads": threads,
                                          "limits": asdict(limits), "explain": explain})  # fmt: skip
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    print(f"serving {run} ({backend}) on http://{host}:{port} in {workers} workers, {threads} model thread(s) "
          f"each  ({routes})", file=sys.stderr, flush=True)  # fmt: skip
    try:
        uvicorn.run("rnnkit.deploy.serve:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, access_log=False, log_level="warning")  # fmt: skip
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
