"""`rmsnorm-triton viz`: its arguments, the server run until Ctrl-C or SIGTERM, or --export.

    --port 0..65535 (0: any free port, the URL printed), --host an address (::1 for IPv6; one
    beyond loopback gets a warning: anyone on the network could use the server),
    --export OUT.html (a bad path: a message and exit code 2), --bench-data FILE (the bench's
    data file for the speed chart; default: the checkout's benchmarks/data/results.csv).
"""

import argparse
import os
import signal
import sys
import threading
import webbrowser

from .server import Handler, make_server


def _port(text):
    digits = text.strip()
    port = int(digits) if digits.isascii() and digits.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535 (0: any free "
                                         f"port), got {text!r}")
    return port


def _host(text):
    host = text.strip()
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise argparse.ArgumentTypeError("must name an address, such as 127.0.0.1 or ::1, got ''")
    return host


def _stop(signum, frame):
    raise KeyboardInterrupt  # leaves serve_forever at once, as Ctrl-C does


def main(argv=None) -> int:
    """The `viz` command. Serving, it ends the process when stopped (see the end)."""
    p = argparse.ArgumentParser(prog="rmsnorm-triton viz",
                                description="The interactive visualizer of the RMSNorm kernel.")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (0: any free one)")
    p.add_argument("--host", type=_host, default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; ::1 for IPv6)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--export", metavar="OUT.html",
                   help="write one self-contained page with one trace and exit")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--bench-data", metavar="FILE", default=None,
                   help="the bench's results CSV for the speed chart (default: "
                   "benchmarks/data/results.csv of the checkout the package runs from)")
    g = p.add_argument_group("the trace --export writes (the page's controls, for the server)")
    from ..trace import DEFAULTS, DTYPES, NORMS

    choices = {"dtype": list(DTYPES), "norm": list(NORMS)}
    for key, val in DEFAULTS.items():
        g.add_argument("--" + key.replace("_", "-"), type=type(val), default=val,
                       choices=choices.get(key))
    args = p.parse_args(argv)
    if args.export is not None:
        from .export import ExportError, export

        try:
            size, replaced = export(args.export, {k: getattr(args, k) for k in DEFAULTS},
                                    bench_path=args.bench_data)
        except ExportError as e:
            print(f"rmsnorm-triton viz: {e}", file=sys.stderr)
            return 2
        note = ", replacing the file that was there" if replaced else ""
        print(f"wrote {args.export} ({size / 1024:.0f} KiB{note}): open it in any browser, offline")
        return 0
    if serve(args.host, args.port, browser=not args.no_browser, verbose=args.verbose,
             bench_path=args.bench_data):
        return 1
    # Stopped by Ctrl-C or SIGTERM: end the process now. Finalizing torch alone takes 0.45 s
    # on a 2-core CPU, and more under load; nothing is left to write.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(host, port, browser=True, verbose=False, bench_path=None) -> int:
    """Serves until Ctrl-C or SIGTERM."""
    Handler.quiet = not verbose
    try:
        srv = make_server(host, port)
    except OSError as e:
        print(f"rmsnorm-triton viz: cannot listen on {host} port {port}: {e}", file=sys.stderr)
        return 1
    srv.bench_path = bench_path
    if not srv.loopback:
        print(f"rmsnorm-triton viz: WARNING: listening on {host}: anyone on the network can use "
              "this server and make it run traces. Use --host 127.0.0.1 to keep it to this machine.",
              file=sys.stderr, flush=True)
    print(f"rmsnorm-triton viz: serving {srv.url}  (Ctrl-C stops)", flush=True)
    if browser:
        threading.Thread(target=webbrowser.open, args=(srv.url,), daemon=True).start()
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    try:  # a signal may land on another thread (torch's): the handler runs at the next poll
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        print("rmsnorm-triton viz: stopped", flush=True)
    finally:
        srv.server_close()
        if main_thread:
            signal.signal(signal.SIGTERM, old)
    return 0
