"""The stop of a warm-up's decoding step: asked only for a step in flight that is pointless,
never carried over to the next step, and read by C's strlen as llama.cpp's abort callback."""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp

from voxbus.engines.llm_abort import StepAbort, WarmStep

STEP = WarmStep("call-1", (1, 2, 3, 4))


class Installed:
    """Stands for llama_cpp where StepAbort installs its callback; calls it as the compute thread would."""

    ggml_abort_callback = llama_cpp.ggml_abort_callback

    def llama_set_abort_callback(self, ctx: object, callback: Any, data: Any) -> None:  # noqa: ANN401
        self.callback, self.data = callback, data

    def stop_wanted(self) -> bool:
        return bool(self.callback(self.data))


def make() -> tuple[StepAbort, Installed]:
    lib = Installed()
    return StepAbort(lib, ctypes.c_void_p(1)), lib


def test_a_pointless_warm_up_step_in_flight_is_stopped() -> None:
    abort, lib = make()
    abort.begin(STEP)
    assert not lib.stop_wanted()
    assert abort.stop_if(lambda step: step.session == "call-1")
    assert lib.stop_wanted()
    assert abort.end() is True
    assert not lib.stop_wanted()  # the next step starts clear


def test_a_useful_step_an_answers_step_and_no_step_are_left_alone() -> None:
    abort, lib = make()
    abort.begin(STEP)
    assert not abort.stop_if(lambda step: False)
    assert abort.end() is False
    abort.begin(None)  # an answer's step
    assert not abort.stop_if(lambda step: True)
    assert not lib.stop_wanted() and abort.end() is False
    assert not abort.stop_if(lambda step: True)  # between steps


def test_a_stop_asked_too_late_does_not_reach_the_next_step() -> None:
    abort, lib = make()
    abort.begin(STEP)
    abort.stop_if(lambda step: True)
    abort.end()
    abort.begin(STEP)
    assert not lib.stop_wanted()


def test_llama_cpps_lines_reach_the_structured_log_and_a_stopped_steps_at_debug() -> None:
    from structlog.testing import capture_logs

    from voxbus.engines import llm_abort

    llm_abort.route_llama_log(llama_cpp)
    llm_abort.route_llama_log(llama_cpp)  # once per process
    assert len(llm_abort._ROUTED) == 1
    say = llm_abort._ROUTED[0]
    with capture_logs() as logs:
        say(3, b"decode: removing memory module entries for seq_id = 1, pos = [119, +inf)\n", None)
        say(3, b"llama_model_load: error loading model: tensor missing\n", None)
        say(1, b"llama_context: n_ctx = 4096\n", None)  # information, dropped as before
    assert [(e["log_level"], e["message"][:20]) for e in logs] == [
        ("debug", "decode: removing mem"),
        ("error", "llama_model_load: er"),
    ]
