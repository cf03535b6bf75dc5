"""The operator console: live calls, step-in actions, KPIs, metrics, and the call records kept
only as long as allowed. See :mod:`voxbus.console.service` for how the parts fit."""
