"""The backward view's endpoint: POST /api/backward, checked as /api/trace is."""

import json

import pytest

from rmsnorm_triton.trace_bwd import DEFAULTS, trace_backward
from rmsnorm_triton.viz import checks

from test_viz_server import port, request  # noqa: F401 - the module's server fixture


def test_backward_endpoint_matches_the_trace(port):  # noqa: F811
    params = {"rows": 3, "n": 11, "block_size": 4, "eps": 1e-5, "dtype": "bf16", "seed": 5,
              "programs": 2}
    status, ctype, body = request(port, "POST", "/api/backward", params)
    assert status == 200 and ctype == "application/json"
    got, want = json.loads(body), trace_backward(**params)
    for k in ("x", "dy", "dx", "dw", "dw_part", "c1", "steps", "partial"):
        assert got[k] == want[k], k
    status, _, body = request(port, "POST", "/api/backward", {})
    assert status == 200 and json.loads(body)["params"]["programs"] == DEFAULTS["programs"]


@pytest.mark.parametrize("body,word", [
    ({"programs": 0}, "programs must be from 1 to 4"), ({"programs": 2.0}, "programs must be an integer"),
    ({"norm": "rms"}, "unknown parameter 'norm'"), ({"dy": [1, "a"]}, "dy[1] is 'a'"),
    ({"dy": [1.0] * 39}, "dy must be a list of 40 numbers"), ({"rows": 2, "dy": [[1e7] * 10] * 2}, "dy[0][0] is"),
    ({"dtype": "fp64"}, "dtype must be one of fp32, fp16, bf16"), ([1], "must be a JSON object"),
])
def test_bad_backward_parameters_are_400(port, body, word):  # noqa: F811
    status, _, raw = request(port, "POST", "/api/backward", body)
    assert status == 400 and word in json.loads(raw)["error"], raw


def test_every_backward_parameter_has_a_kind():
    """A parameter trace_backward gains must be given a kind, or every request naming it fails."""
    assert set(checks.BWD_KINDS) == set(DEFAULTS) | {"x", "weight", "dy"}
    kind = {int: "int", float: "number", str: "choice"}
    assert {k: kind[type(v)] for k, v in DEFAULTS.items()} == {k: checks.BWD_KINDS[k] for k in DEFAULTS}
    assert checks.POST_KINDS == {"/api/trace": checks.KINDS, "/api/backward": checks.BWD_KINDS}
