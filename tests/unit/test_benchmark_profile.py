"""`benchmarks.profile`: each function's own time goes to the layer of its module, a built-in's
to the layers of its callers, and py-spy's samples to the thread's role and innermost layer."""

from __future__ import annotations

from typing import Any

from benchmarks.profile import _frames, by_layer, layer_of, profile, summarize


class Stats:
    def __init__(self, stats: dict[Any, Any]) -> None:
        self.stats = stats


def test_modules_map_to_layers_first_match_first() -> None:
    assert layer_of("/x/src/meltica/venues/sim/matching.py") == "sim venue matching"
    assert layer_of("/x/src/meltica/domain/risk/decider.py") == "domain: risk"
    assert layer_of("/x/src/meltica/domain/marketdata.py") == "domain: other"
    assert layer_of("<avro object encoder meltica.v1.OrderFilled>") == "events: Avro encode/decode"
    assert layer_of("/usr/lib/python3.11/json/decoder.py") == "python: stdlib and other libraries"


def test_a_builtin_is_charged_to_its_callers() -> None:
    step = ("/x/src/meltica/runtime/step.py", 1, "_deliver")
    codec = ("/x/src/meltica/events/codec.py", 9, "encode")
    stats = {
        step: (1, 1, 0.5, 2.0, {}),
        codec: (1, 1, 0.25, 1.0, {step: (1, 1, 0.25, 1.0)}),
        ("~", 0, "<method 'append' of 'list' objects>"): (
            3,
            3,
            0.75,
            0.75,
            {step: (1, 1, 0.5, 0.5), codec: (2, 2, 0.25, 0.25)},
        ),
    }
    assert by_layer(Stats(stats)) == {  # type: ignore[arg-type]
        "step: routing between processors": 1.0,
        "events: Avro encode/decode": 0.5,
    }


def test_a_py_spy_line_gives_its_files_root_first_and_its_count() -> None:
    line = "thread (0x1);run (threading.py:1);poll_once (meltica/runtime/engine.py:9);step (a b/c.py:3) 17"
    assert _frames(line) == (["threading.py", "meltica/runtime/engine.py", "a b/c.py"], 17)


def test_the_domain_profile_accounts_for_its_time_by_layer() -> None:
    report = profile("domain", 200)
    assert report["orders"] == 200
    shares = {name: row["share"] for name, row in report["layers"].items()}
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert {"domain: risk", "domain: orders", "domain: portfolio"} <= set(shares)


def test_py_spy_samples_go_to_the_thread_role_and_the_innermost_frame_with_a_layer() -> None:
    lines = [
        "thread (0x1);run (uvicorn/server.py:1);__call__ (fastapi/applications.py:2);f (json/decoder.py:3) 3",
        "thread (0x1);run (uvicorn/server.py:1);encode (meltica/events/codec.py:4) 1",
        "thread (0x2);run (meltica/runtime/engine.py:5);evolve (meltica/domain/risk/decider.py:6) 4",
    ]
    report = summarize(lines)
    assert report["samples"] == 8
    assert report["roles"] == {"engine thread": 0.5, "API event loop": 0.5}
    assert report["layers"] == {
        "domain: risk": 0.5,
        "FastAPI, Starlette, pydantic": 0.375,  # json is below it: charged to its caller's layer
        "events: Avro encode/decode": 0.125,
    }
