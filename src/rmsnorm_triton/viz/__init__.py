"""The visualizer: a static page (viz/static) fed by trace JSON from a stdlib server.

    rmsnorm-triton viz                    serve on 127.0.0.1:8000 and open the browser
    rmsnorm-triton viz --export out.html  one self-contained file, playable offline

The page has one entry point, `RmsViz.render(element, trace, options)` in app.js; every number
it shows comes from rmsnorm_triton.trace.trace(), which runs the library's kernel. The server
(server.py) answers only its own page; checks.py says what a request must be to be served.
"""
