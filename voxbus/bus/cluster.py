"""An embedded NATS cluster (``nats_cluster = 3``, ``voxbus up --cluster 3``): nats-servers on
loopback that route to each other and run JetStream together, so that the events stream and the
call-state bucket are kept in three copies (replicas 3) and a node can die mid-call.

Each node is supervised like the single embedded server (started again on its ports with its own
store, where it catches up from the others); every voxbus process is given all the nodes' URLs and
nats-py moves to a live one when its node goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from voxbus.bus.embedded import EmbeddedNats, free_port

CLUSTER_NAME = "voxbus"


class EmbeddedCluster:
    def __init__(self, data_dir: Path, size: int, config: Path | None = None, tls: bool = False) -> None:
        routes = [free_port() for _ in range(size)]
        self.nodes: list[EmbeddedNats] = []
        for i, route in enumerate(routes):
            others = ",".join(f"nats://127.0.0.1:{r}" for r in routes if r != route)
            node_args = [
                "--server_name", f"{CLUSTER_NAME}-{i + 1}",
                "--cluster_name", CLUSTER_NAME,
                "--cluster", f"nats://127.0.0.1:{route}",
                "--routes", others,
            ]  # fmt: skip
            self.nodes.append(
                EmbeddedNats(data_dir / f"node{i + 1}", config=config, tls=tls, cluster=node_args)
            )

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (what voxbus processes are given)."""
        return ",".join(node.url for node in self.nodes)

    @property
    def pids(self) -> list[int]:
        return [node.proc.pid for node in self.nodes if node.proc is not None]

    async def start(self) -> str:
        await asyncio.gather(*(node.start() for node in self.nodes))
        return self.url

    async def keep_alive(self, restarted: Callable[[str], None]) -> None:
        """Supervise every node; ``restarted`` is told which node came back and why it died."""

        def told(name: str) -> Callable[[str], None]:
            return lambda reason: restarted(f"{name} {reason}")

        await asyncio.gather(
            *(node.keep_alive(told(f"{CLUSTER_NAME}-{i + 1}")) for i, node in enumerate(self.nodes))
        )

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes))
