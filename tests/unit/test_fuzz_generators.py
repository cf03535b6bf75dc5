"""The fuzzers' generators: deterministic for a seed, every kind of damage drawn, within the limits
of the transport, and (on the bus) never a payload that its schema accepts."""

from __future__ import annotations

import pytest

from tests.bus_garbage import KINDS, NATS_MAX_PAYLOAD, garbage
from tests.sip_mutations import MUTATIONS, UDP_MAX, mutated_messages
from tests.unit.samples import SAMPLES
from voxbus.bus.codec import BadMessage, decode
from voxbus.schemas.messages import AudioFrame


def test_sip_mutations_are_reproducible_varied_and_fit_a_datagram() -> None:
    first = mutated_messages(500, "127.0.0.1:5060", "127.0.0.1:4000", seed=3)
    assert first == mutated_messages(500, "127.0.0.1:5060", "127.0.0.1:4000", seed=3)
    assert first != mutated_messages(500, "127.0.0.1:5060", "127.0.0.1:4000", seed=4)
    used = {name for _, what, _ in first for name in what.split(": ")[1].split("+")}
    assert used == {m.__name__ for m in MUTATIONS}
    assert all(0 < len(message) <= UDP_MAX for _, _, message in first)
    assert len({call_id for call_id, _, _ in first}) == 500


@pytest.mark.parametrize("sample", SAMPLES[:13], ids=lambda s: type(s).__name__)
def test_bus_garbage_is_refused_by_its_schema(sample: object) -> None:
    payloads = garbage(sample, 200, seed=5)  # type: ignore[arg-type]
    assert payloads == garbage(sample, 200, seed=5)  # type: ignore[arg-type]
    for _, payload in payloads:
        assert len(payload) < NATS_MAX_PAYLOAD
        with pytest.raises(BadMessage):
            decode("fuzz", payload, type(sample))  # type: ignore[arg-type]


def test_bus_garbage_draws_every_kind_and_audio_of_the_wrong_size() -> None:
    frame = next(s for s in SAMPLES if isinstance(s, AudioFrame))
    kinds = {kind for kind, _ in garbage(frame, 300)}
    assert kinds == {k.__name__ for k in KINDS} | {"oversized"}
