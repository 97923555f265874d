"""`rmsnorm-triton viz`: a stdlib HTTP server for the visualizer, bound to 127.0.0.1 by default.

    GET  /, /<file>     files inside viz/static only (anything else, traversal included: 404)
    POST /api/trace     JSON parameters -> trace JSON (rmsnorm_triton.trace.trace_request);
                        400 {"error": message} when a parameter is out of bounds

Requests are served on threads; the kernel launches inside them are serialized by trace.py.
Recent traces are cached by their exact request body, so replaying a shared link costs nothing.
"""

import argparse
import json
import mimetypes
import os
import sys
import threading
import webbrowser
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY = 1 << 20  # a full 64 x 256 x written as JSON text is ~400 KB
CACHE_SIZE = 32


class _Cache:
    def __init__(self, size):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value):
        with self.lock:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)


def static_path(url_path: str):
    """The file under STATIC that url_path names, or None (outside STATIC, or not a file)."""
    rel = unquote(urlsplit(url_path).path).lstrip("/") or "index.html"
    if "\x00" in rel:
        return None
    root = os.path.realpath(STATIC)
    full = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, full]) != root or not os.path.isfile(full):
        return None
    return full


class Handler(BaseHTTPRequestHandler):
    server_version = "rmsnorm-triton-viz"
    cache = _Cache(CACHE_SIZE)
    quiet = True

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)

    def _send(self, code, body: bytes, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code, obj):
        self._send(code, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def do_GET(self):
        path = static_path(self.path)
        if path is None:
            self._json(404, {"error": f"not found: {urlsplit(self.path).path}"})
            return
        with open(path, "rb") as f:
            body = f.read()
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        self._send(200, body, ctype)

    do_HEAD = do_GET

    def do_POST(self):
        if urlsplit(self.path).path != "/api/trace":
            self._json(404, {"error": f"not found: {urlsplit(self.path).path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "a Content-Length header is required"})
            return
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for a request
            self._json(413, {"error": f"the request body is {length} bytes, at most {MAX_BODY}"})
            return
        raw = self.rfile.read(length)
        body = self.cache.get(raw)
        if body is None:
            try:
                params = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as e:
                self._json(400, {"error": f"the request body is not valid JSON: {e}"})
                return
            from ..trace import trace_request

            try:
                result = trace_request(params)
            except (ValueError, TypeError) as e:
                self._json(400, {"error": str(e)})
                return
            body = json.dumps(result, allow_nan=False, separators=(",", ":")).encode()
            self.cache.put(raw, body)
        self._send(200, body, "application/json")


def make_server(host="127.0.0.1", port=0) -> ThreadingHTTPServer:
    """A server not yet serving: call serve_forever() (tests run it on a thread, port 0)."""
    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    return srv


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rmsnorm-triton viz",
                                description="The interactive visualizer of the RMSNorm kernel.")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--export", metavar="OUT.html",
                   help="write one self-contained page with one trace and exit")
    p.add_argument("--verbose", action="store_true", help="log every request")
    g = p.add_argument_group("the trace --export writes (the page's controls, for the server)")
    from ..trace import DEFAULTS, DTYPES, NORMS

    choices = {"dtype": list(DTYPES), "norm": list(NORMS)}
    for key, val in DEFAULTS.items():
        g.add_argument("--" + key.replace("_", "-"), type=type(val), default=val,
                       choices=choices.get(key))
    args = p.parse_args(argv)
    if args.export:
        from .export import export

        params = {k: getattr(args, k) for k in DEFAULTS}
        try:
            size = export(args.export, params)
        except ValueError as e:
            print(f"rmsnorm-triton viz: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.export} ({size / 1024:.0f} KiB): open it in any browser, offline")
        return 0
    Handler.quiet = not args.verbose
    try:
        srv = make_server(args.host, args.port)
    except OSError as e:
        print(f"rmsnorm-triton viz: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    host, port = srv.server_address[:2]
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    print(f"rmsnorm-triton viz: serving {url}  (Ctrl-C stops)", flush=True)
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0
