"""The slice of ports a process picks its listening ports from (VOXBUS_LISTEN_PORTS)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from voxbus.bus import embedded
from voxbus.bus.embedded import free_port, free_ports, listen_port_range, listen_ports


@pytest.fixture
def fresh_range(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    listen_ports.cache_clear()
    monkeypatch.setattr(embedded, "_handed_out", set())
    yield monkeypatch
    listen_ports.cache_clear()


def test_a_slice_is_where_every_port_comes_from(fresh_range: pytest.MonkeyPatch) -> None:
    fresh_range.setenv("VOXBUS_LISTEN_PORTS", "12000-12009")
    assert listen_ports() == range(12000, 12010)
    ports = {free_port() for _ in range(5)}
    assert len(ports) == 5 and ports <= set(range(12000, 12010))


def test_a_block_of_ports_skips_one_in_use_inside_it(fresh_range: pytest.MonkeyPatch) -> None:
    # sipp takes its media port and the three above it: one of them already listening failed it
    fresh_range.setenv("VOXBUS_LISTEN_PORTS", "12100-12105")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 12105))
        first = free_ports(4)
    assert first in (12100, 12101)  # the only blocks of four without 12105
    assert free_port() not in range(first, first + 4)  # the block was handed out whole
    with pytest.raises(RuntimeError, match="no 4 consecutive free ports"):
        free_ports(4)  # every block of four left meets a port handed out


def test_without_a_slice_the_default_range_below_the_ephemeral_ports(fresh_range: pytest.MonkeyPatch) -> None:
    fresh_range.delenv("VOXBUS_LISTEN_PORTS", raising=False)
    ports = listen_ports()
    assert ports.start == embedded.LISTEN_PORTS[0] and ports.stop - 1 <= embedded.LISTEN_PORTS[1]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("abc", "two port numbers"),
        ("12000", "two port numbers"),
        ("13000-12000", "low <= high"),
        ("80-90", "1024"),
    ],
)
def test_a_bad_slice_says_what_is_wrong(value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        listen_port_range(value)
    assert "VOXBUS_LISTEN_PORTS" in str(caught.value)
