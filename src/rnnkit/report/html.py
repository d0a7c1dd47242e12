"""`rnnkit explain --html`: the report of `explain --json` as one self-contained page, the glass box.

The page is the report and a viewer: the JSON embedded as it is (`<` written \\u003c, so that no
text in it can end the script), glassbox.js, which draws every view as SVG from that JSON alone,
and glassbox.css. Nothing is fetched: no script, font or style from elsewhere, so the page works
offline and from a file. `form` adds a text box that asks `rnnkit serve --explain` for a new
explanation (deploy/explain_route.py).
"""

from __future__ import annotations

import html
import json
from importlib import resources


def embedded(data: dict) -> str:
    """The report as the page holds it: JSON that a <script> element cannot end early."""
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c")


def page(data: dict, title: str, form: str | None = None) -> str:
    """The page of `data` (one report, or {"reports": [...]}, a sentence picker's); `form`: the
    URL a text box sends ?text=... to, or None for none."""
    here = resources.files("rnnkit.report")
    script, style = (here / "glassbox.js").read_text("utf-8"), (here / "glassbox.css").read_text("utf-8")
    box = ""
    if form is not None:
        box = (
            f'<form method="get" action="{html.escape(form)}"><input type="text" name="text" '
            f'placeholder="a sentence" autofocus> <button>explain</button></form>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,"><style>
{style}</style></head>
<body><header><h1>{html.escape(title)}</h1><select id="sentence" aria-label="sentence"></select>
<label>unit <input type="number" id="unit" min="0" value="0"></label><span id="said"></span>{box}</header>
<main id="views"></main><div id="tip" role="tooltip" hidden></div>
<script type="application/json" id="report">{embedded(data)}</script>
<script>
{script}</script></body></html>
"""
