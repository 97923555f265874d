"""The visualizer: a static page (viz/static) fed by trace JSON from a stdlib server.

    rmsnorm-triton viz                    serve on 127.0.0.1:8000 and open the browser
    rmsnorm-triton viz --export out.html  one self-contained file, playable offline

The page has one entry point, `RmsViz.render(element, trace, options)` in app.js, and three
views as tabs: the forward trace (rmsnorm_triton.trace, the library's forward walks), the
backward trace (rmsnorm_triton.trace_bwd, its backward block loop and dw_reduce) and "how
the GPU runs it" (launch.py: the launch layout.py plans on a GPU of tables.GPUS, and speed.py:
the bench's data file as a chart). The page formats numbers; it computes none. The server
(server.py) answers only its own page; checks.py says what a request must be to be served.
"""
