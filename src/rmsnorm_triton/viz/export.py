"""`rmsnorm-triton viz --export out.html`: the page, its CSS and JS and one trace in one file.

The file loads nothing: no server, no network. Playback, stepping and the source view work;
controls that would re-run the kernel say that they need `rmsnorm-triton viz`.
"""

import json
import os
import re

from .server import STATIC

SCRIPTS = ("view.js", "panels.js", "explain.js", "app.js")  # the order index.html loads them in


def _inline_script(text: str) -> str:
    # "</script" inside inlined text would end the element early; "<\/" reads the same in JS.
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def build(trace: dict) -> str:
    """The page with style.css, the scripts and the trace inlined."""
    def read(name):
        with open(os.path.join(STATIC, name), encoding="utf-8") as f:
            return f.read()

    page = read("index.html")
    page = page.replace('<link rel="stylesheet" href="style.css">',
                        "<style>\n" + read("style.css") + "\n</style>")
    for name in SCRIPTS:
        tag = f'<script src="{name}"></script>'
        if tag not in page:
            raise RuntimeError(f"index.html no longer loads {name} as {tag}")
        page = page.replace(tag, "<script>\n" + _inline_script(read(name)) + "\n</script>")
    # In JSON "<" only occurs inside strings, where \u003c reads the same: no "</script" left.
    data = json.dumps(trace, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    page = page.replace('<script id="trace-data" type="application/json"></script>',
                        f'<script id="trace-data" type="application/json">{data}</script>')
    if re.search(r'(src|href)="(?!#|data:)[^"]*"', page):
        raise RuntimeError("the exported page still refers to another file")
    return page


def export(path: str, params: dict) -> int:
    """Writes the page for trace(**params) to path; returns its size in bytes."""
    from ..trace import trace_request

    page = build(trace_request(params))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return len(page.encode())
