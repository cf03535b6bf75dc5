"""The call actor and its parts; see :mod:`voxbus.actors.call.actor` for the map."""

from voxbus.actors.call.actor import CallActor
from voxbus.actors.call.conversation import history_start

__all__ = ["CallActor", "history_start"]
