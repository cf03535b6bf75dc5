"""The wire: msgpack codec, one-line errors, and JSON Schema that validates real messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.protocols
import jsonschema.validators
import msgpack
import pytest

from tests.unit.samples import SAMPLES
from voxbus.bus.codec import BadMessage, decode, decode_event, encode
from voxbus.cli import main
from voxbus.schemas.export import all_models
from voxbus.schemas.messages import AudioFrame, LlmRequest


def test_round_trip_of_every_sample() -> None:
    for sample in SAMPLES:
        again = decode("s", encode(sample), type(sample))
        assert again == sample


def test_garbage_is_a_one_line_bad_message() -> None:
    with pytest.raises(BadMessage) as err:
        decode("voxbus.x", b"\xc1\xc1", AudioFrame)
    assert "not msgpack" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadMessage) as err:
        decode("voxbus.x", msgpack.packb([1]), AudioFrame)
    assert "expected a map" in str(err.value)


def test_schema_violation_names_the_field() -> None:
    bad = msgpack.packb({"call_id": "c", "seq": 0, "pcm": b"12"})
    with pytest.raises(BadMessage) as err:
        decode("voxbus.call.c.audio.in", bad, AudioFrame)
    assert "pcm" in str(err.value) and "640 bytes" in str(err.value)
    with pytest.raises(BadMessage) as err:
        decode("s", msgpack.packb({"call_id": "c", "gen": -1, "turn": 0, "messages": []}), LlmRequest)
    assert "gen" in str(err.value)


def test_unknown_event_type_and_unknown_version_are_rejected() -> None:
    with pytest.raises(BadMessage):
        decode_event("s", msgpack.packb({"type": "no.such.event"}))
    with pytest.raises(BadMessage):
        decode_event("s", msgpack.packb({"type": "error", "code": "x", "message": "m", "v": 9}))


def test_every_model_has_a_sample() -> None:
    assert {type(s).__name__ for s in SAMPLES} == set(all_models())


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    checked = jsonschema.validators.validator_for(schema)
    checked.check_schema(schema)
    return checked(schema)


def test_exported_schemas_validate_sample_messages(tmp_path: Path) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    # one validator per schema, its schema checked once (jsonschema.validate checks it each time)
    union = validator(json.loads((tmp_path / "Event.json").read_text()))
    for sample in SAMPLES:
        schema = validator(json.loads((tmp_path / f"{type(sample).__name__}.json").read_text()))
        document = json.loads(sample.model_dump_json())
        schema.validate(document)
        if "type" in type(sample).model_fields and hasattr(sample, "ts"):
            union.validate(document)
    broken = json.loads(SAMPLES[0].model_dump_json()) | {"seq": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads((tmp_path / "AudioFrame.json").read_text()))
