"""What a request must be: from this server's own page, and with parameters of the right kinds.

check_caller: the Host names this server (a DNS-rebinding page's Host is its own name); a POST
is application/json in UTF-8 (a cross-origin page cannot send that without a CORS preflight,
which the server refuses) and its Origin, when present, is this server's.

check_params: trace.validate checks the ranges (rows from 1 to 64, ...); this makes sure that
what it gets is of the kind it expects: integers that are ints (not 4.0, not true), finite
numbers of bounded size (a 400-digit integer would overflow float()), strings from a fixed set
(never a list, which is unhashable), and x and weight as lists of numbers or of rows of numbers.

check_query: the same for a GET's query string (GET /api/bench?op=fwd&dtype=bf16): each known
parameter at most once, integers written as digits, choices from a fixed set, text short and
printable. A GET needs no Origin check: its answer is public data that a cross-origin page
cannot read (no CORS grant, Cross-Origin-Resource-Policy: same-origin), and it changes nothing.
"""

import email.message
import math
import reprlib
from urllib.parse import parse_qsl, urlsplit

KINDS = {"rows": "int", "n": "int", "block_size": "int", "seed": "int", "eps": "number",
         "dtype": "choice", "norm": "choice", "x": "values", "weight": "values"}
BWD_KINDS = {"rows": "int", "n": "int", "block_size": "int", "seed": "int", "eps": "number",
             "dtype": "choice", "programs": "int", "x": "values", "weight": "values",
             "dy": "values"}
# POST endpoints: path -> the kinds of its parameters (trace.py's, trace_bwd.py's)
POST_KINDS = {"/api/trace": KINDS, "/api/backward": BWD_KINDS}
# GET endpoints: path -> {parameter: kind}; the choices are in query_choices().
QUERY_KINDS = {"/api/bench": {"op": "choice", "dtype": "choice", "gpu": "text"},
               "/api/launch": {"op": "choice", "m": "int", "n": "int", "dtype": "choice",
                               "gpu": "choice"}}
MAX_TEXT = 100  # a GPU's name ("NVIDIA H100 80GB HBM3") is ~25 characters
MAX_INT = 2**63  # far beyond any range trace accepts, small enough for any arithmetic on it
MAX_NUMBER = 1e300  # float() of a larger int overflows; trace bounds values far lower

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 40, 40, 40


def short(value, limit=80) -> str:
    """A message-sized repr of value: no 400-digit number, no list nested 1,000 deep."""
    return clip(_REPR.repr(value), limit)


def clip(text: str, limit=200) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _int(name, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer, got {short(v)}")
    if abs(v) > MAX_INT:
        raise ValueError(f"{name} must be an integer of magnitude at most 2**63, got {short(v)}")
    return v


def _number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a finite number, got {short(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if abs(v) > MAX_NUMBER:
        raise ValueError(f"{name} must be a number of magnitude at most {MAX_NUMBER:g}, got {short(v)}")
    return v


def _choice(name, v, choices):
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {short(v)}")
    return v


def _row(name, v):
    for i, e in enumerate(v):
        try:
            _number(f"{name}[{i}]", e)
        except ValueError:
            raise ValueError(f"{name}[{i}] is {short(e)}, expected a finite number") from None
    return v


def _values(name, v):
    if v is None:
        return v
    if not isinstance(v, list):
        raise ValueError(f"{name} must be a list of numbers or of rows of numbers, got {short(v)}")
    if v and all(isinstance(r, list) for r in v):
        for i, r in enumerate(v):
            _row(f"{name}[{i}]", r)
    else:
        _row(name, v)
    return v


def check_params(body, kinds=KINDS) -> dict:
    """body (parsed JSON) if every parameter is of the kind the trace (KINDS) or the backward
    trace (BWD_KINDS) expects; else ValueError."""
    from ..trace import DTYPES, NORMS

    if not isinstance(body, dict):
        raise ValueError(f"the request must be a JSON object, got {type(body).__name__}")
    unknown = sorted(k for k in body if k not in kinds)
    if unknown:
        raise ValueError(f"unknown parameter {short(unknown[0])}; expected some of "
                         f"{', '.join(kinds)}")
    choices = {"dtype": list(DTYPES), "norm": list(NORMS)}
    for name, v in body.items():
        kind = kinds[name]
        if kind == "int":
            _int(name, v)
        elif kind == "number":
            _number(name, v)
        elif kind == "choice":
            _choice(name, v, choices[name])
        else:
            _values(name, v)
    return body


def query_choices(path) -> dict:
    """The choices of a GET endpoint's "choice" parameters."""
    if path == "/api/launch":
        from ..tables import GPUS
        from .launch import DTYPES, OPS

        return {"op": list(OPS), "dtype": list(DTYPES), "gpu": list(GPUS)}
    from .speed import DTYPES, OPS

    return {"op": list(OPS), "dtype": list(DTYPES)}


def check_query(path: str, query: str) -> dict:
    """{name: value} from the query string of a GET to path (a key of QUERY_KINDS) if every
    parameter is known, given once and of its kind; else ValueError saying which and why."""
    kinds, choices = QUERY_KINDS[path], query_choices(path)
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict",
                          max_num_fields=2 * len(kinds))
    except ValueError as e:  # too many fields, or %-escapes that are not UTF-8
        raise ValueError(f"the query string cannot be read: {clip(str(e), 120)}") from None
    out = {}
    for name, text in pairs:
        if name not in kinds:
            raise ValueError(f"unknown parameter {short(name)}; expected some of "
                             f"{', '.join(kinds)}")
        if name in out:
            raise ValueError(f"{name} is given more than once")
        kind = kinds[name]
        if kind == "int":
            digits = text.removeprefix("-")
            if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
                raise ValueError(f"{name} must be an integer written in digits, got {short(text)}")
            out[name] = _int(name, int(text))
        elif kind == "choice":
            out[name] = _choice(name, text, choices[name])
        elif not text.isprintable() or not 0 < len(text) <= MAX_TEXT:
            raise ValueError(f"{name} must be printable text of 1 to {MAX_TEXT} characters, "
                             f"got {short(text)}")
        else:
            out[name] = text
    return out


def split_host(value: str):
    """(host, port) from a Host header or an origin's netloc ('[::1]:80' -> ('[::1]', 80)), or None."""
    value = value.strip().lower()
    host, sep, port = value.rpartition(":") if not value.endswith("]") else (value, "", "")
    if not sep:
        host, port = value, "80"
    if not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        return None
    return host, int(port)


def check_caller(command, headers, server):
    """None if the request may be served, else why not (answered with 403).

    server.host_allowed(host, port) says whether a Host names the server; server.url is its
    address for the message."""
    hosts = headers.get_all("Host") or []
    where = split_host(hosts[0]) if len(hosts) == 1 else None
    if where is None or not server.host_allowed(*where):
        return f"Host {short(', '.join(hosts))} is not this server; open {server.url}"
    if command not in ("POST", "OPTIONS"):
        return None
    origins = headers.get_all("Origin") or []
    if origins:
        u = urlsplit(origins[0].strip().lower())
        if len(origins) > 1 or u.scheme != "http" or u.path or u.query or u.fragment \
                or split_host(u.netloc) != where:
            return f"cross-origin request refused: Origin {short(origins[0])} is not this server"
    site = (headers.get("Sec-Fetch-Site") or "same-origin").strip().lower()
    if command == "OPTIONS" or site not in ("same-origin", "none"):
        return "cross-origin request refused: only this server's own page may POST"
    types = headers.get_all("Content-Type") or []
    ctype = email.message.Message()
    ctype["Content-Type"] = types[0] if types else ""
    charset = ctype.get_param("charset", "utf-8")
    if len(types) != 1 or ctype.get_content_type() != "application/json" \
            or not isinstance(charset, str) or charset.lower() not in ("utf-8", "utf8"):
        return f"Content-Type must be application/json (UTF-8), got {short(', '.join(types))}"
    return None
