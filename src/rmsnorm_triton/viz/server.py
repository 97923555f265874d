"""The visualizer's stdlib HTTP server, bound to 127.0.0.1 by default (the command: command.py).

    GET  /, /<file>     files inside viz/static only (anything else, traversal included: 404)
    POST /api/trace     JSON parameters -> trace JSON (rmsnorm_triton.trace.trace_request);
                        400 {"error": message} when a parameter is out of bounds
    POST /api/backward  the same for the backward (rmsnorm_triton.trace_bwd)
    GET  /api/bench     ?op=fwd&dtype=bf16&gpu=NAME (each optional) -> the speed chart's data
                        from the bench's data file (speed.request), or {"available": false,
                        "message": why} where there is no file
    GET  /api/launch    ?op=fwd&m=4096&n=4096&dtype=bf16&gpu=H200 (each optional) -> the
                        launch the library's planner makes there (launch.request)

Only the page this server served can use it:
- every request must carry a Host naming this server (its own address or localhost, and its
  port), so a DNS-rebinding page (Host: attacker.example) is refused;
- a POST must be `application/json` (UTF-8), which a cross-origin page cannot send without a
  CORS preflight that this server never grants, and its Origin, when present, must be this
  server's own. Anything else gets 403 {"error": ...}.
No per-launch token: those two checks already stop web pages, and a local program could read a
token as easily as it can call the API, which only computes public traces.

No client can hold the server: a connection has `timeout` seconds (10) to send its whole request,
and as long again to take its answer; at most `max_threads` (32) connections are served at once,
the others wait in a listen queue of 128 (503 after waiting `timeout` for a thread). Every
request gets a JSON answer; an unexpected error becomes a 500 with a short message, its
traceback in the log only.
Requests are served on threads; the kernel launches inside them are serialized by trace.py.
Recent traces are cached by their exact request body, so replaying a shared link costs nothing.
"""

import io
import ipaddress
import json
import mimetypes
import os
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .checks import POST_KINDS, QUERY_KINDS, check_caller, check_params, check_query, clip, short

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY = 2 << 20  # a full 64 x 256 x (or dy) written as JSON text is ~400 KB
CACHE_SIZE = 32
TIMEOUT = 10.0
MAX_THREADS = 32


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


class _DeadlineReader(io.RawIOBase):
    """The socket's reads, each given only the time left until the handler's deadline."""

    def __init__(self, handler):
        self.handler = handler

    def readable(self):
        return True

    def readinto(self, buf):
        left = self.handler.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError("the request was not received in time")
            self.handler.connection.settimeout(left)
            return self.handler.connection.recv_into(buf)
        except TimeoutError:
            self.handler.timed_out = True
            raise


class Handler(BaseHTTPRequestHandler):
    server_version = "rmsnorm-triton-viz"
    default_request_version = "HTTP/1.0"  # even a garbled request line gets a status line
    cache = _Cache(CACHE_SIZE)
    quiet = True

    def version_string(self):
        return self.server_version  # no Python version

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)

    def setup(self):
        super().setup()
        self.rfile.close()  # replaced by a reader that keeps to the deadline
        self.deadline = time.monotonic() + self.server.conn_timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self))
        self.answered = self.timed_out = False
        self.command = self.requestline = self.path = ""  # until a request line is read
        self.request_version = self.default_request_version

    def handle(self):
        try:
            self.handle_one_request()  # one request a connection (HTTP/1.0); it catches timeouts
            if self.timed_out and not self.answered:
                self.close_connection = True
                self._json(408, {"error": f"the request was not received within "
                                          f"{self.server.conn_timeout:g} s"})
        except OSError:
            pass  # the client went away, or did not read its answer in time

    def send_error(self, code, message=None, explain=None):
        """The stdlib's errors (bad request line, unknown method, ...) as JSON too."""
        self.close_connection = True
        self._json(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def _send(self, code, body: bytes, ctype):
        self.answered = True
        self.connection.settimeout(self.server.conn_timeout)  # sendall: the whole answer
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Frame-Options", "DENY")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code, obj):
        self._send(code, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _guarded(self, serve):
        try:
            if not self._caller_ok():
                return
            serve()
        except (TimeoutError, ConnectionError):
            raise
        except Exception as e:
            sys.stderr.write(f"rmsnorm-triton viz: error serving {self.command} {short(self.path)}:\n"
                             + traceback.format_exc())
            if not self.answered:
                self.close_connection = True
                self._json(500, {"error": f"internal error ({type(e).__name__}); "
                                          "the server's log has the details"})

    def _caller_ok(self) -> bool:
        refused = check_caller(self.command, self.headers, self.server)
        if refused:
            self.close_connection = True  # the unread body must not be taken for a request
            self._json(403, {"error": refused})
        return not refused

    def do_GET(self):
        self._guarded(self._get)

    do_HEAD = do_GET

    def do_POST(self):
        self._guarded(self._post)

    def do_OPTIONS(self):  # a CORS preflight: refused, so no cross-origin JSON POST is ever sent
        self._guarded(lambda: None)

    def _get(self):
        url = urlsplit(self.path)
        if url.path in QUERY_KINDS:
            try:
                query = check_query(url.path, url.query)
                self._json(200, self.answer_get(url.path, query))
            except ValueError as e:
                self._json(400, {"error": clip(str(e), 300)})
            return
        path = static_path(self.path)
        if path is None:
            self._json(404, {"error": f"not found: {short(urlsplit(self.path).path)}"})
            return
        with open(path, "rb") as f:
            body = f.read()
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        self._send(200, body, ctype)

    def _read_body(self):
        """The body's bytes, or None after answering why it cannot be read."""
        self.close_connection = True  # whatever happens, nothing after this body is read
        if self.headers.get("Transfer-Encoding"):
            self._json(411, {"error": "chunked bodies are not supported; send a Content-Length"})
            return None
        lengths = self.headers.get_all("Content-Length") or []
        text = lengths[0].strip() if len(lengths) == 1 else ""
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            self._json(411, {"error": "a Content-Length header with the body's size is required"})
            return None
        if digits != text:
            self._json(400, {"error": f"Content-Length must not be negative, got {clip(text, 40)}"})
            return None
        if len(digits) > 7 or int(digits) > MAX_BODY:
            self._json(413, {"error": f"the request body is {clip(text, 40)} bytes, at most {MAX_BODY}"})
            return None
        return self.rfile.read(int(digits))

    def _post(self):
        path = urlsplit(self.path).path
        if path not in POST_KINDS:
            self._json(404, {"error": f"not found: {short(path)}"})
            return
        raw = self._read_body()
        if raw is None:
            return
        body = self.cache.get((path, raw))
        if body is None:
            try:
                params = json.loads(raw.decode("utf-8"))
            except RecursionError:
                self._json(400, {"error": "the request body is nested too deeply"})
                return
            except ValueError as e:  # UnicodeDecodeError, JSONDecodeError, too many digits
                self._json(400, {"error": f"the request body is not valid JSON: {clip(str(e))}"})
                return
            try:
                params = check_params(params, POST_KINDS[path])
            except ValueError as e:
                self._json(400, {"error": str(e)})
                return
            try:
                body = (self.compute if path == "/api/trace" else self.compute_backward)(params)
            except ValueError as e:  # trace's own range checks
                self._json(400, {"error": clip(str(e), 300)})
                return
            self.cache.put((path, raw), body)
        self._send(200, body, "application/json")

    def answer_get(self, path, query) -> dict:
        from . import launch, speed

        module = launch if path == "/api/launch" else speed
        return module.request(query, self.server.bench_path)

    def compute(self, params) -> bytes:
        from ..trace import trace_request

        result = trace_request(params)
        return json.dumps(result, allow_nan=False, separators=(",", ":")).encode()

    def compute_backward(self, params) -> bytes:
        from ..trace_bwd import trace_backward_request

        result = trace_backward_request(params)
        return json.dumps(result, allow_nan=False, separators=(",", ":")).encode()


class VizServer(ThreadingHTTPServer):
    """At most max_threads connections served at once, each within timeout seconds."""

    daemon_threads = True
    request_queue_size = 128  # a burst of page loads waits here instead of failing to connect

    bench_path = None  # the bench's data file: None for speed.load's default

    def __init__(self, address, handler=Handler, timeout=TIMEOUT, max_threads=MAX_THREADS):
        info = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM,
                                  flags=socket.AI_PASSIVE)
        self.address_family = info[0][0]
        self.conn_timeout, self.max_threads = timeout, max_threads
        self._slots = threading.Semaphore(max_threads)
        self._count_lock, self.active = threading.Lock(), 0
        super().__init__(info[0][4][:2], handler)
        host, port = self.server_address[:2]
        ip = ipaddress.ip_address(host.split("%")[0])
        self.loopback = ip.is_loopback
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        if ip.is_unspecified:  # reached from this machine at its loopback address
            literal = "[::1]" if ip.version == 6 else "127.0.0.1"
        self.url = f"http://{literal}:{port}/"
        self.names = {"localhost", literal}
        if not ip.is_loopback:
            self.names.add(socket.gethostname().lower())

    def host_allowed(self, host, port) -> bool:
        """A Host naming this server: localhost, its address, or (bound beyond loopback) any IP
        address or this machine's name; never a DNS name a rebinding page could point here."""
        if port != self.server_address[1]:
            return False
        if host in self.names:
            return True
        if self.loopback:
            return False
        try:
            ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
            return True
        except ValueError:
            return False

    def _track(self, delta):
        with self._count_lock:
            self.active += delta

    def process_request(self, request, client_address):
        if not self._slots.acquire(timeout=self.conn_timeout):
            try:  # every thread busy for a whole timeout: say so rather than queue forever
                request.settimeout(0.5)
                body = b'{"error": "the server is busy; try again"}'
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json"
                                b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._track(1)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def _release(self):
        self._track(-1)
        self._slots.release()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def handle_error(self, request, client_address):
        sys.stderr.write(f"rmsnorm-triton viz: error with a request from {client_address[0]}:\n"
                         + traceback.format_exc())


def make_server(host="127.0.0.1", port=0, timeout=TIMEOUT, max_threads=MAX_THREADS,
                bench_path=None) -> VizServer:
    """A server not yet serving: call serve_forever() (tests run it on a thread, port 0)."""
    srv = VizServer((host, port), Handler, timeout, max_threads)
    srv.bench_path = bench_path
    return srv

