"""`rnnkit serve RUN --explain`: the glass box live (report/html.py's page, tasks/explaining.py's
report), beside what serve answers.

    GET  /explain              the page with a text box
    GET  /explain?text=...     the page of that sentence's explanation
    POST /explain              {"text": "..."} -> the report, as `rnnkit explain --json` prints it

The explanation runs in PyTorch (states, gates and gradients of the network itself), so the run
is loaded here once more on the torch backend; an ONNX backend has no gradients to show. A text
is at most MAX_CHARS characters: an explanation takes one backward pass per step.
"""

import json  # no `from __future__ import annotations`: FastAPI reads the routes' annotations as types
import sys

from rnnkit.errors import UserError

MAX_CHARS = 500


def add_explain_route(app, run, backend: str = "torch", device: str = "auto") -> None:
    """Register GET and POST /explain on the FastAPI `app` for the run folder `run`."""
    if backend != "torch":
        raise UserError(f"--explain looks inside the PyTorch network; serve {run} with --backend torch")
    from fastapi import Request
    from fastapi.responses import HTMLResponse, JSONResponse

    import rnnkit
    from rnnkit.report.html import page
    from rnnkit.tasks.explaining import explain

    model = rnnkit.load(run, device=device)
    if model.spec.explain is None:
        raise UserError(f"{run}: a {model.task!r} run has no explanation to serve")
    title = f"rnnkit explain {run}"

    def explained(text) -> dict:
        if not isinstance(text, str) or not text.strip():
            raise UserError("expected a non-empty text")
        if len(text) > MAX_CHARS:
            raise UserError(f"the text has {len(text)} characters; at most {MAX_CHARS}")
        return explain(model, text)

    def error(e: UserError) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(e).split())}, status_code=400)

    @app.get("/explain")
    def explain_page(request: Request):  # a plain def: FastAPI runs it in its thread pool
        text = request.query_params.get("text")
        try:
            data = {"reports": []} if text is None else explained(text)
        except UserError as e:
            return error(e)
        return HTMLResponse(page(data, title, form="/explain"))

    @app.post("/explain")
    async def explain_report(request: Request):
        from starlette.concurrency import run_in_threadpool

        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return error(UserError(f"the body is not valid JSON ({e})"))
        if not isinstance(body, dict) or set(body) != {"text"}:
            return error(UserError('expected a JSON object {"text": "..."}'))
        try:
            return JSONResponse(await run_in_threadpool(explained, body["text"]))
        except UserError as e:
            return error(e)

    print(f"explaining {run} at GET /explain (a page) and POST /explain (the report)", file=sys.stderr, flush=True)
