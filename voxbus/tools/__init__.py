"""Tools served over NATS by third parties: the wire contract, a helper to serve them, discovery,
and the agent's side of calling them."""
