"""`rmsnorm-triton viz --export out.html`: the page, its CSS and JS and one trace in one file.

The file loads nothing: no server, no network. Playback, stepping and the source view work;
controls that would re-run the kernel say that they need `rmsnorm-triton viz`. The backward
view plays the backward of the same rows (two programs). The speed chart works for every op,
dtype and GPU in the bench's data file: all of them are inlined (~90 KB); the launch view for
a grid of M and N (launch.EXPORT_MS x EXPORT_NS, ~200 KB), other values snapping to them.
"""

import json
import os
import re
import tempfile

from .server import STATIC

SCRIPTS = ("view.js", "panels.js", "explain.js", "modes.js", "backward.js", "launch.js",
           "speed.js", "app.js")  # the order index.html loads them in


def _inline_script(text: str) -> str:
    # "</script" inside inlined text would end the element early; "<\/" reads the same in JS.
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _inline_json(page, element_id, obj):
    tag = f'<script id="{element_id}" type="application/json"></script>'
    if tag not in page:
        raise RuntimeError(f"index.html no longer has {tag}")
    # In JSON "<" only occurs inside strings, where \u003c reads the same: no "</script" left.
    data = json.dumps(obj, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    return page.replace(tag, tag.replace("></", f">{data}</"))


def build(trace: dict, bench: dict | None = None, backward: dict | None = None,
          launches: dict | None = None) -> str:
    """The page with style.css, the scripts, the trace, the speed charts (speed.offline()), the
    backward trace and the launches (launch.offline()) inlined."""
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
    page = _inline_json(page, "trace-data", trace)
    if bench is not None:
        page = _inline_json(page, "bench-data", bench)
    if backward is not None:
        page = _inline_json(page, "backward-data", backward)
    if launches is not None:
        page = _inline_json(page, "launch-data", launches)
    if re.search(r'(src|href)="(?!#|data:)[^"]*"', page):
        raise RuntimeError("the exported page still refers to another file")
    return page


class ExportError(Exception):
    """A page that cannot be written (the message says why and where) or a bad parameter."""


def export(path: str, params: dict, bench_path=None):
    """Writes the page for trace(**params), with the speed charts from bench_path (default:
    speed.load's), to path; returns (its size in bytes, whether a file was replaced). The file
    appears whole or not at all: a temporary file in the same folder, then os.replace."""
    from ..trace import trace_request
    from ..trace_bwd import trace_backward_request
    from . import launch, speed
    from .checks import BWD_KINDS, check_params

    if not path:
        raise ExportError("--export needs a file name, got ''")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path!r}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ExportError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    try:  # made before the trace runs, so a folder we cannot write to fails at once
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        raise ExportError(f"cannot write in {folder!r}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            try:
                fwd = trace_request(check_params(params))
                p = fwd["params"]  # the backward of the same rows: x as the forward had it
                bwd = {k: p[k] for k in BWD_KINDS if k in p} | {"programs": min(2, p["rows"])}
                page = build(fwd, speed.offline(bench_path), trace_backward_request(bwd),
                             launch.offline(bench_path))
            except ValueError as e:
                raise ExportError(str(e)) from None
            f.write(page)
            f.flush()
            os.fsync(f.fileno())
        replaced = os.path.exists(path)
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except OSError as e:
        raise ExportError(f"cannot write {path!r}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(page.encode()), replaced


def _mode(path):
    """The mode of the file being replaced, else what open() would give a new one."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
