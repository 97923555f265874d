"""The visualizer in a real browser: Debian's chromium, headless, driven by Playwright for Python.

Every number the page shows is checked against the API's JSON: the full value (each cell's
title or data-value) exactly, the text shown to its displayed digits.
"""

import json
import os
import threading
import urllib.parse
import urllib.request

import pytest

from rmsnorm_triton.viz import command, server

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def base():
    srv = server.make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("CI"):  # CI installs both (scripts/test.sh): missing is a failure there
        from playwright import sync_api
        assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: scripts/test.sh installs it"
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install '.[viz-test]'")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert errors == [], errors


def api(base, **params):
    req = urllib.request.Request(base + "api/trace", json.dumps(params).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def trace_id(page):
    return page.get_attribute("#app", "data-trace-id")


def wait_new_trace(page, old):
    page.wait_for_function("old => { const a = document.querySelector('#app');"
                           " return a.dataset.traceId && a.dataset.traceId !== old && !a.dataset.busy; }",
                           arg=old, timeout=30000)


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector("#app[data-trace-id]", timeout=30000)


def shown_close(text, value):
    """The text shown is value rounded to the digits shown (non-finite values shown by name)."""
    if isinstance(value, str):
        return text == {"inf": "∞", "-inf": "-∞", "nan": "NaN"}[value]
    text = text.rstrip(" …")
    mant, _, exp = text.partition("e")
    places = len(mant.split(".")[1]) if "." in mant else 0
    half_ulp = 0.5 * 10.0 ** (int(exp or 0) - places)
    return abs(float(text) - value) <= half_ulp * (1 + 1e-9)


def check_table(page, t):
    keys = ["sum_sq", "mean_sq", "rms", "rstd"] if t["params"]["norm"] == "rms" else \
        ["sum", "mean", "sum_sq_dev", "var", "rstd"]
    cells = page.eval_on_selector_all(".calc td[data-key]", "els => els.map(e => [e.dataset.key,"
                                      " Number(e.dataset.row), e.dataset.value, e.textContent])")
    assert len(cells) == len(keys) * t["params"]["rows"]
    for key, r, full, text in cells:
        assert float(full) == t[key][r], (key, r)
        assert shown_close(text, t[key][r]), (key, r, text)


def check_output(page, t):
    cells = page.eval_on_selector_all("[data-ref=outGrid] .cell[data-r]", "els => els.map(e => "
                                      "[Number(e.dataset.r), Number(e.dataset.c), e.title, e.textContent])")
    assert len(cells) == t["params"]["rows"] * t["params"]["n"]
    for r, c, title, text in cells:
        assert float(title.split("= ")[1]) == t["y"][r][c]
        assert shown_close(text, t["y"][r][c]), (r, c, text)
        assert len(text) <= 7


def test_controls_run_step_forward_and_back(page, base):
    open_page(page, base)
    old = trace_id(page)
    page.fill("[data-ref=rows]", "3")
    page.fill("[data-ref=n]", "11")
    page.select_option("[data-ref=block]", "4")
    page.fill("[data-ref=eps]", "1e-5")
    page.select_option("[data-ref=dtype]", "fp16")
    page.click("[data-ref=run]")  # runs the kernel with the controls' values and plays
    wait_new_trace(page, old)
    seed = int(page.evaluate("RmsViz.controller.data.params.seed"))
    t = api(base, rows=3, n=11, block_size=4, eps=1e-5, dtype="fp16", seed=seed, norm="rms")
    assert page.evaluate("RmsViz.controller.data.y") == t["y"]
    page.click("[data-ref=play]")  # pause
    page.keyboard.press("End")
    assert page.get_attribute("#app", "data-pos") == str(len(t["steps"]))
    check_table(page, t)
    check_output(page, t)
    page.keyboard.press("Home")
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    for pos in (6, 5, 4):
        s, blk = t["steps"][pos - 1], t["blocks"][t["steps"][pos - 1]["block"] or 0]
        assert page.get_attribute("#app", "data-pos") == str(pos)
        assert page.text_content("[data-ref=curRow]") == str(s["row"])
        if s["block"] is not None:
            assert page.text_content("[data-ref=blockRange]").startswith(f"[{blk['start']}, {blk['end']})")
        assert page.text_content("[data-ref=counters] [data-key=loaded]") == f"{s['loaded']:,} B"
        page.keyboard.press("ArrowLeft")
    # position 3: row 0's tail block is being summed; its masked lane is marked
    assert page.get_attribute("#app", "data-pos") == "3"
    s = t["steps"][2]
    assert (s["pass"], s["block"]) == ("sum_sq", 2)
    assert page.text_content("[data-ref=blockRange]") == "[8, 11) + 1 masked"
    assert page.locator("[data-ref=inGrid] .grow.cur .blk.processing .cell.masked").count() == 1
    run = page.get_attribute(".partials .psum[data-block='2'] .run", "title")
    assert float(run) == t["partial"]["sum_sq"]["running"][0][2]
    hot = page.eval_on_selector_all(".source .line.hot", "els => els.map(e => Number(e.dataset.line))")
    assert hot == t["source"]["step_lines"]["sum_sq"]


def test_layernorm_toggle_and_link(page, base, browser):
    open_page(page, base + "?rows=2&n=7&block=2&eps=0.001&dtype=bf16&seed=11&norm=rms")
    old = trace_id(page)
    page.click("[data-ref=normLayer]")
    wait_new_trace(page, old)
    t = api(base, rows=2, n=7, block_size=2, eps=1e-3, dtype="bf16", seed=11, norm="layer")
    assert page.get_attribute("#app", "data-norm") == "layer"
    page.keyboard.press("End")
    check_table(page, t)
    check_output(page, t)
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    assert "pass 1" in page.text_content("[data-ref=exTitle]")  # the mean pass comes first
    page.keyboard.press("ArrowRight")
    # The address as the page has it now: Playwright's page.url follows replaceState through an
    # event that can arrive later (seen once, under load: "step=1" here).
    url = page.evaluate("location.href")
    assert "norm=layer" in url and "step=2" in url
    other = browser.new_page(viewport={"width": 900, "height": 800})
    open_page(other, url)  # a shared link reproduces the view
    assert other.get_attribute("#app", "data-pos") == "2"
    assert other.input_value("[data-ref=block]") == "2" and other.input_value("[data-ref=dtype]") == "bf16"
    assert other.evaluate("RmsViz.controller.data.y") == t["y"]
    other.close()


def test_edit_cell_and_weight_rerun(page, base):
    open_page(page, base + "?rows=2&n=5&block=2&seed=4")
    old = trace_id(page)
    page.click("[data-ref=inGrid] .cell[data-kind=x][data-r='1'][data-c='3']")
    page.fill("input.edit", "2.5")
    page.keyboard.press("Enter")
    wait_new_trace(page, old)
    old = trace_id(page)
    page.click("[data-ref=inGrid] .cell[data-kind=w][data-c='0']")
    page.fill("input.edit", "-3")
    page.keyboard.press("Enter")
    wait_new_trace(page, old)
    base_t = api(base, rows=2, n=5, block_size=2, eps=1e-6, dtype="fp32", seed=4, norm="rms")
    x = base_t["x"]
    x[1][3] = 2.5
    t = api(base, rows=2, n=5, block_size=2, eps=1e-6, dtype="fp32", seed=4, norm="rms", x=x,
            weight=[-3, 1, 1, 1, 1])
    page.keyboard.press("End")
    check_table(page, t)
    check_output(page, t)
    url = page.evaluate("location.href")
    assert "x=1.3%3A2.5" in url and "w=0%3A-3" in url


def test_bad_input_shows_the_servers_message(page, base):
    open_page(page, base + "?rows=2&n=4&block=4")
    page.fill("[data-ref=eps]", "5")
    page.wait_for_selector("[data-ref=error]:not([hidden])")
    assert "eps must be a finite number from 0 to 1" in page.text_content("[data-ref=error]")


@pytest.mark.parametrize("query", ["?rows=4&n=10&block=4&step=9", "?rows=64&n=256&block=16&step=40&norm=layer",
                                   "?view=gpu", "?view=bwd"])
def test_phone_width_has_no_horizontal_overflow(browser, base, query):
    pg = browser.new_page(viewport={"width": 375, "height": 800})
    open_page(pg, base + query)
    if "view=gpu" in query:
        pg.wait_for_selector(".chart[data-state=drawn] svg")
        pg.wait_for_selector("[data-ref=launchPanel][data-key] .sms")
    if "view=bwd" in query:
        pg.wait_for_selector("#view-bwd[data-trace-id] [data-ref=bDxGrid] .cell")
    widths = pg.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
    assert widths[0] <= widths[2] and widths[1] <= widths[2], widths
    pg.close()


def test_exported_file_plays_offline(browser, tmp_path):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "2", "--n", "6", "--block-size", "4"]) == 0
    ctx = browser.new_context(offline=True)
    pg = ctx.new_page()
    requests = []
    pg.on("request", lambda r: requests.append(r.url))
    open_page(pg, out.as_uri())
    pg.keyboard.press("End")
    t = json.loads(pg.text_content("#trace-data"))
    check_table(pg, t)
    check_output(pg, t)
    assert pg.is_disabled("[data-ref=rows]") and pg.is_visible("[data-ref=banner]")
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    ctx.close()


def test_random_input_and_reset(page, base):
    open_page(page, base + "?rows=3&n=6&block=2&dtype=bf16&norm=layer&seed=9")
    old = trace_id(page)
    page.click("[data-ref=random]")
    wait_new_trace(page, old)
    params = page.evaluate("RmsViz.controller.data.params")
    assert params["seed"] != 9 and (params["rows"], params["n"], params["norm"]) == (3, 6, "layer")
    t = api(base, **{k: params[k] for k in ("rows", "n", "block_size", "eps", "dtype", "seed", "norm")})
    assert page.evaluate("RmsViz.controller.data.x") == t["x"]
    old = trace_id(page)
    page.click("[data-ref=reset]")
    wait_new_trace(page, old)
    defaults = page.evaluate("RmsViz.controller.data.limits.defaults")
    got = page.evaluate("RmsViz.controller.data.params")
    assert {k: got[k] for k in defaults} == defaults
    assert page.input_value("[data-ref=n]") == str(defaults["n"])
    assert page.get_attribute("#app", "data-pos") == "0"


ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" action="%(api)s" enctype="text/plain" target="sink">
<input name='{"rows": 64, "n": 256, "block_size": 16, "seed": 1, "x": "' value='"}'></form>
<iframe name="sink"></iframe>
<script>
const api = "%(api)s", body = JSON.stringify({rows: 64, n: 256, block_size: 16, seed: 2});
async function attempt(opts) {
  try {
    const r = await fetch(api, {method: "POST", body, ...opts});
    let text = null;
    try { text = await r.text(); } catch (e) { text = "unreadable: " + e.name; }
    return {type: r.type, status: r.status, text};
  } catch (e) { return {error: e.name}; }
}
(async () => {
  window.results = {
    noCorsText: await attempt({mode: "no-cors", headers: {"Content-Type": "text/plain"}}),
    corsText: await attempt({headers: {"Content-Type": "text/plain"}}),
    corsJson: await attempt({headers: {"Content-Type": "application/json"}}),
  };
  document.getElementById("f").submit();
  window.done = true;
})();
</script></body></html>"""


@pytest.fixture
def served(monkeypatch):
    """What the viz server answered, request by request, and the traces it computed."""
    log, computed = [], []
    monkeypatch.setattr(server.Handler, "log_request", lambda self, code="-", size="-": log.append(
        (self.command, self.path, int(code), self.headers.get("Origin") if hasattr(self, "headers") else None)))
    real = server.Handler.compute
    monkeypatch.setattr(server.Handler, "compute", lambda self, p: computed.append(p) or real(self, p))
    return log, computed


def attacker_server(page_html):
    """A second origin on loopback (127.0.0.2, else another port of 127.0.0.1) serving one page."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    for host in ("127.0.0.2", "127.0.0.1"):
        try:
            srv = HTTPServer((host, 0), Page)
            break
        except OSError:
            continue
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_cross_origin_page_cannot_use_the_server(browser, base, served):
    log, computed = served
    evil = attacker_server(ATTACK % {"api": base + "api/trace"})
    try:
        pg = browser.new_page()
        pg.goto(f"http://{evil.server_address[0]}:{evil.server_address[1]}/")
        pg.wait_for_function("window.done === true", timeout=30000)
        results = pg.evaluate("window.results")
        for _ in range(300):  # the form's POST arrives after the script ends: wait for it (<= 3 s)
            if sum(1 for m, *_ in log if m == "POST") >= 3:
                break
            pg.wait_for_timeout(10)
        pg.close()
    finally:
        evil.shutdown()
        evil.server_close()
    # The page learned nothing: network errors (no CORS grant; for no-cors, the answer's
    # Cross-Origin-Resource-Policy: same-origin), not even the status.
    assert results == {k: {"error": "TypeError"} for k in ("noCorsText", "corsText", "corsJson")}, results
    # The server computed nothing: every POST (no-cors fetch, cors text/plain, form) got 403, and the
    # JSON fetch's preflight got 403, so its POST was never sent.
    origin = f"http://{evil.server_address[0]}:{evil.server_address[1]}"
    posts = [(code, o) for m, _, code, o in log if m == "POST"]
    assert posts == [(403, origin)] * 3, log
    assert [(code, o) for m, _, code, o in log if m == "OPTIONS"] == [(403, origin)], log
    assert computed == []


def test_a_dns_rebinding_page_is_refused(browser, base, served):
    """A name the attacker controls, resolved to the server's address (as DNS rebinding does),
    gets the page refused, and its same-origin-looking POST too."""
    log, computed = served
    port = base.rsplit(":", 1)[1].strip("/")
    b = browser.browser_type.launch(executable_path=CHROMIUM,
                                    args=ARGS + ["--host-resolver-rules=MAP rebind.test 127.0.0.1"])
    try:
        pg = b.new_page()
        r = pg.goto(f"http://rebind.test:{port}/")
        assert r.status == 403 and "is not this server" in r.json()["error"]
        got = pg.evaluate("""async () => {
            const r = await fetch("/api/trace", {method: "POST", body: "{}",
                                                 headers: {"Content-Type": "application/json"}});
            return [r.status, await r.json()]; }""")
    finally:
        b.close()
    assert got[0] == 403 and "is not this server" in got[1]["error"]
    assert computed == [] and {c for *_, c, _ in log} == {403}
    assert [m for m, *_ in log if m != "GET"] == ["POST"], log


# ---- the views: tabs, the speed chart ----------------------------------------------------------

def bench(base, **query):
    url = base + "api/bench" + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


def selected_view(page):
    tabs = page.eval_on_selector_all("[role=tab]", "els => els.map(e => [e.dataset.mode, e.getAttribute('aria-selected'),"
                                     " e.tabIndex, document.getElementById(e.getAttribute('aria-controls')).hidden])")
    on = [m for m, sel, tab, hidden in tabs if sel == "true"]
    assert len(on) == 1
    for m, sel, tab, hidden in tabs:  # one tab in the Tab order, its view alone shown
        assert (tab == 0) == (m == on[0]) and hidden == (m != on[0]), tabs
    return on[0]


def test_views_are_tabs_that_the_keyboard_moves_between(page, base):
    open_page(page, base + "?rows=2&n=5&block=2")
    assert selected_view(page) == "fwd"
    page.focus("#tab-fwd")
    page.keyboard.press("ArrowRight")
    assert selected_view(page) == "bwd" and page.evaluate("document.activeElement.id") == "tab-bwd"
    page.keyboard.press("ArrowRight")
    assert selected_view(page) == "gpu"
    page.keyboard.press("ArrowRight")  # wraps around
    assert selected_view(page) == "fwd"
    page.keyboard.press("End")
    assert selected_view(page) == "gpu" and page.get_attribute("#app", "data-pos") == "0"
    page.keyboard.press("Home")
    assert selected_view(page) == "fwd"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("3")
    assert selected_view(page) == "gpu"
    assert "view=gpu" in page.evaluate("location.href")
    page.keyboard.press("ArrowRight")  # playback keys act on the trace shown: none here
    assert page.get_attribute("#app", "data-pos") == "0"
    page.keyboard.press("1")
    page.keyboard.press("ArrowRight")
    assert selected_view(page) == "fwd" and page.get_attribute("#app", "data-pos") == "1"
    page.keyboard.press("2")
    assert selected_view(page) == "bwd" and "view=bwd" in page.evaluate("location.href")


def check_chart(page, want):
    """Every point drawn, the ceiling and the table of numbers, against the API's chart."""
    drawn = page.eval_on_selector_all(".speed-svg .series", "els => els.map(g => [g.dataset.provider,"
                                      " [...g.querySelectorAll('circle')].map(c => [Number(c.dataset.n), Number(c.dataset.gbps)])])")
    assert drawn == [[s["provider"], [[p["N"], p["gbps"]] for p in s["points"]]] for s in want["series"]]
    assert float(page.get_attribute(".speed-svg .ceiling", "data-gbps")) == want["copy"]["gbps"]
    cells = page.eval_on_selector_all(".speed-table td[data-gbps]", "els => els.map(e => [e.dataset.provider,"
                                      " Number(e.dataset.n), Number(e.dataset.gbps), e.textContent])")
    at = {(s["provider"], p["N"]): p for s in want["series"] for p in s["points"]}
    assert len(cells) == len(at)
    for prov, n, gbps, text in cells:
        p = at[(prov, n)]
        assert gbps == p["gbps"] and text == f"{round(p['gbps']):,} · {p['pct_copy']:.1f}%"
    legend = page.eval_on_selector_all(".chart-legend li", "els => els.map(e => e.dataset.provider)")
    assert legend == [s["provider"] for s in want["series"]]


def test_speed_chart_draws_the_bench_data(page, base):
    open_page(page, base + "?view=gpu")
    page.wait_for_selector(".chart[data-state=drawn] svg")
    want = bench(base)
    assert page.get_attribute(".chart", "data-key") == f"{want['op']}/{want['dtype']}/{want['gpu']}"
    check_chart(page, want)
    page.select_option("[data-ref=speedOp]", "bwd")
    page.wait_for_selector(".chart[data-key^='bwd/']")
    page.select_option("[data-ref=speedDtype]", "fp32")
    page.wait_for_selector(".chart[data-key^='bwd/fp32/']")
    check_chart(page, bench(base, op="bwd", dtype="fp32", gpu=want["gpu"]))
    want = bench(base, op="bwd", dtype="fp32", gpu=want["gpu"])
    assert page.text_content(".ceiling-label") == f"copy ceiling {round(want['copy']['gbps']):,} GB/s"


def test_speed_chart_without_data_says_why(browser, tmp_path):
    srv = server.make_server("127.0.0.1", 0, bench_path=tmp_path / "none.csv")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    pg = browser.new_page()
    try:
        open_page(pg, f"http://127.0.0.1:{srv.server_address[1]}/?view=gpu")
        pg.wait_for_selector(".chart[data-state=missing]")
        text = pg.text_content("[data-ref=speedMissing]")
        assert "No bench data" in text and "--bench-data FILE" in text
        assert pg.is_disabled("[data-ref=speedOp]") and pg.is_hidden("[data-ref=speedError]")
    finally:
        pg.close()
        srv.shutdown()
        srv.server_close()


def test_exported_speed_chart_works_offline(browser, tmp_path, base):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "2", "--n", "6"]) == 0
    ctx = browser.new_context(offline=True, viewport={"width": 375, "height": 800})
    pg = ctx.new_page()
    requests = []
    pg.on("request", lambda r: requests.append(r.url))
    open_page(pg, out.as_uri())
    pg.click("#tab-gpu")
    pg.wait_for_selector(".chart[data-state=drawn] svg")
    check_chart(pg, bench(base))
    gpu = bench(base)["gpu"]
    pg.select_option("[data-ref=speedOp]", "fwd_residual")
    pg.wait_for_selector(".chart[data-key^='fwd_residual/']")
    check_chart(pg, bench(base, op="fwd_residual", dtype="bf16", gpu=gpu))
    widths = pg.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], widths
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    ctx.close()


# ---- the backward view -------------------------------------------------------------------------

def backward(base, **params):
    req = urllib.request.Request(base + "api/backward", json.dumps(params).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def bwd_id(page):
    return page.get_attribute("#view-bwd", "data-trace-id")


def wait_bwd(page, old=None):
    page.wait_for_function("old => { const v = document.querySelector('#view-bwd');"
                           " return v.dataset.traceId && v.dataset.traceId !== old && !v.dataset.busy; }",
                           arg=old, timeout=60000)


def check_backward(page, t):
    """At the last step: every dx, dw partial and dw cell, and c1, against the API's numbers."""
    for sel, key in (("[data-ref=bDxGrid] .cell[data-r]", "dx"), ("[data-ref=bPartGrid] .cell[data-r]", "dw_part")):
        cells = page.eval_on_selector_all(sel, "els => els.map(e => [Number(e.dataset.r), Number(e.dataset.c), e.title, e.textContent])")
        assert len(cells) == len(t[key]) * t["params"]["n"]
        for r, c, title, text in cells:
            assert float(title.split("= ")[1].split(" ")[0]) == t[key][r][c], (key, r, c)
            assert shown_close(text, t[key][r][c]) and len(text) <= 7, (key, r, c, text)
    dw = page.eval_on_selector_all("[data-ref=bDwGrid] .cell[data-r]", "els => els.map(e => e.title)")
    assert [float(s.split("= ")[1]) for s in dw] == t["dw"]
    c1 = page.eval_on_selector_all("[data-ref=bCalc] td[data-key=c1]", "els => els.map(e => e.dataset.value)")
    assert [float(v) for v in c1] == t["c1"]


def test_backward_view_steps_through_the_kernels_numbers(page, base):
    open_page(page, base + "?view=bwd")
    wait_bwd(page)
    page.fill("[data-ref=bRows]", "3")
    page.fill("[data-ref=bN]", "7")
    page.select_option("[data-ref=bBlock]", "4")
    page.fill("[data-ref=bProgs]", "2")
    page.select_option("[data-ref=bDtype]", "fp16")
    old = bwd_id(page)
    page.click("[data-ref=bRun]")
    wait_bwd(page, old)
    page.click("[data-ref=bPlay]")  # pause
    seed = page.evaluate("RmsViz.controller.backward.data.params.seed")
    t = backward(base, rows=3, n=7, block_size=4, programs=2, dtype="fp16", seed=seed)
    page.keyboard.press("Home")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # row 0: two blocks of walk 1, then c1
    s = t["steps"][2]
    assert (s["pass"], s["row"]) == ("c1", 0) and page.get_attribute("#view-bwd", "data-pos") == "3"
    assert "c1" in page.text_content("[data-ref=bExTitle]")
    assert page.text_content("[data-ref=bCalc] td[data-key=c1][data-row='0']") != "–"
    assert page.text_content("[data-ref=bCalc] td[data-key=c1][data-row='1']") == "–"
    hot = page.eval_on_selector_all("[data-ref=bSource] .line.hot", "els => els.map(e => Number(e.dataset.line))")
    assert hot == t["source"]["step_lines"]["c1"]
    page.keyboard.press("End")
    assert page.get_attribute("#view-bwd", "data-pos") == str(len(t["steps"]))
    check_backward(page, t)
    assert page.text_content("[data-ref=bSrcName]").endswith("dw_reduce")


def test_backward_dy_is_editable(page, base):
    open_page(page, base + "?view=bwd")
    wait_bwd(page)
    p = {k: v for k, v in page.evaluate("RmsViz.controller.backward.data.params").items()
         if not k.endswith("_given")}
    old = bwd_id(page)
    page.click("[data-ref=bDyGrid] .cell[data-kind=dy][data-r='1'][data-c='2']")
    page.fill("input.edit", "-4.5")
    page.keyboard.press("Enter")
    wait_bwd(page, old)
    dy = backward(base, **p)["dy"]
    dy[1][2] = -4.5
    t = backward(base, **p, dy=dy)
    page.keyboard.press("End")
    check_backward(page, t)
    assert page.evaluate("RmsViz.controller.backward.data.dy[1][2]") == -4.5


def test_exported_backward_and_launch_work_offline(browser, tmp_path, base):
    out = tmp_path / "viz.html"
    assert command.main(["--export", str(out), "--rows", "3", "--n", "6", "--block-size", "4"]) == 0
    ctx = browser.new_context(offline=True)
    pg = ctx.new_page()
    requests = []
    pg.on("request", lambda r: requests.append(r.url))
    open_page(pg, out.as_uri())
    pg.click("#tab-bwd")
    pg.wait_for_selector("#view-bwd[data-trace-id]")
    t = json.loads(pg.text_content("#backward-data"))
    assert t["params"]["rows"] == 3 and t["x"] == json.loads(pg.text_content("#trace-data"))["x"]
    pg.evaluate("document.activeElement.blur()")  # (End on a tab goes to the last tab)
    pg.keyboard.press("End")
    check_backward(pg, t)
    assert pg.is_disabled("[data-ref=bRows]")
    pg.click("#tab-gpu")
    pg.wait_for_selector("[data-ref=launchPanel][data-key]")
    pg.fill("[data-ref=lM]", "5000")  # snaps to the nearest M the page carries
    pg.wait_for_selector("[data-ref=launchPanel][data-key^='fwd/4096/']")
    assert "snap to the nearest" in pg.text_content("[data-ref=lNote]")
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    ctx.close()


# ---- how the GPU runs it -----------------------------------------------------------------------

def launch_api(base, **query):
    with urllib.request.urlopen(base + "api/launch?" + urllib.parse.urlencode(query), timeout=60) as r:
        return json.load(r)


def test_launch_view_shows_the_planners_launch(page, base):
    open_page(page, base + "?view=gpu")
    page.wait_for_selector("[data-ref=launchPanel][data-key]")
    for q in ({"op": "fwd", "m": "8192", "n": "131072", "dtype": "bf16", "gpu": "H100 SXM"},
              {"op": "bwd", "m": "65536", "n": "1024", "dtype": "bf16", "gpu": "H200"}):
        page.select_option("[data-ref=lOp]", q["op"])
        page.fill("[data-ref=lM]", q["m"])
        page.fill("[data-ref=lN]", q["n"])
        page.select_option("[data-ref=lDtype]", q["dtype"])
        page.select_option("[data-ref=lGpu]", q["gpu"])
        key = "/".join(q.values())
        page.wait_for_selector(f"[data-ref=launchPanel][data-key='{key}']:not([data-busy])")
        L = launch_api(base, **q)
        text = page.text_content("[data-ref=launchOut]")
        grid = page.text_content("[data-ref=launchOut] [data-key=grid] b")
        assert grid == f"{L['grid']:,} programs"
        if L["walk"] == "split":
            assert page.text_content("[data-key=programs_per_row] b") == f"{L['programs_per_row']} programs per row"
        else:
            assert page.text_content("[data-key=rows_per_program] b").startswith(f"{L['rows_per_program']:,} row")
        m = L["measured"]
        assert f"{m['pct_copy']:.1f}% of copy, {round(m['gbps']):,} GB/s" in text
        assert f"M = {m['M']:,}, N = {m['N']:,}" in text and m["gpu"] in text
        assert (f"has no {L['gpu']['name']} run yet" in text) == (not m["same_gpu"])
        assert len(page.query_selector_all("[data-ref=launchOut] .sm")) == L["gpu"]["sms"]
    page.fill("[data-ref=lM]", "0")
    page.wait_for_selector("[data-ref=lError]:not([hidden])")
    assert "m must be an integer from 1" in page.text_content("[data-ref=lError]")


def test_a_link_reproduces_the_backward_view(page, base, browser):
    open_page(page, base + "?view=bwd&brows=3&bn=6&bblock=2&bprogs=3&bdtype=bf16&bseed=8&bdy=2.5%3A-1.5&bstep=7")
    page.wait_for_selector("#view-bwd[data-pos='7']", timeout=60000)
    p = page.evaluate("RmsViz.controller.backward.data.params")
    assert (p["rows"], p["n"], p["block_size"], p["programs"], p["dtype"], p["seed"]) == (3, 6, 2, 3, "bf16", 8)
    assert page.evaluate("RmsViz.controller.backward.data.dy[2][5]") == -1.5
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    url = page.evaluate("location.href")
    assert "bstep=8" in url and "bdy=2.5%3A-1.5" in url and "view=bwd" in url
    other = browser.new_page()
    open_page(other, url)
    other.wait_for_selector("#view-bwd[data-pos='8']", timeout=60000)
    assert other.evaluate("RmsViz.controller.backward.data.dx") == page.evaluate("RmsViz.controller.backward.data.dx")
    other.close()
    open_page(page, base + "?view=bwd&brows=3&bprogs=9")  # more programs than rows: the defaults
    page.wait_for_selector("#view-bwd[data-trace-id] [data-ref=bError]:not([hidden])", timeout=60000)
    assert "not accepted: programs must be from 1 to 3" in page.text_content("[data-ref=bError]")
    assert page.evaluate("RmsViz.controller.backward.data.params.programs") == 2
