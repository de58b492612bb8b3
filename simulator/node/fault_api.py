"""The node's fault API: read and switch NodeFaults over HTTP, for a controller elsewhere.

``GET /faults`` answers ``{"state": {attr: value, ...}, "active": NodeFaults.active()}``;
``PUT /faults`` takes ``{attr: value, ...}`` (all checked before any is set, 400 otherwise)
and answers like GET; ``DELETE /faults`` switches every fault off. ``GET /faults/events``
gives the faults' reports since the admin API started (:mod:`fault_events`). The routes live on the
agent's admin listener, which ``http_mode`` never touches, so ``http_down`` can be cleared.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from netfault.simulator.node.fault_events import FaultEventLog
from netfault.simulator.node.faults import HTTP_MODES, NodeFaults
from netfault.simulator.node.http_files import json_error
from netfault.simulator.node.sshd import SshdFaults

# attr -> (accepted types, whether None is allowed)
FAULT_ATTRS: dict[str, tuple[type, bool]] = {
    "binary_mangling": (bool, False),
    "binary_reset_after": (int, True),
    "auth_refused": (bool, False),
    "host_key_changed": (bool, False),
    "disk_quota": (int, True),
    "http_mode": (str, False),
}


def fault_state(faults: NodeFaults) -> dict[str, Any]:
    """Every switch with its value, on or off."""
    return {attr: getattr(faults, attr) for attr in FAULT_ATTRS}


def check_fault_changes(body: object) -> dict[str, Any]:
    """The changes in a PUT body, or ValueError naming the first bad attribute."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object {attribute: value}")
    for attr, value in body.items():
        if attr not in FAULT_ATTRS:
            raise ValueError(f"unknown fault attribute {attr!r} (known: {', '.join(FAULT_ATTRS)})")
        kind, nullable = FAULT_ATTRS[attr]
        if value is None and nullable:
            continue
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            allowed = kind.__name__ + (" or null" if nullable else "")
            raise ValueError(f"{attr} must be {allowed}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{attr} must be >= 0, got {value}")
        if attr == "http_mode" and value not in HTTP_MODES:
            raise ValueError(f"http_mode must be one of {', '.join(HTTP_MODES)}, got {value!r}")
    return dict(body)


class FaultEndpoints:
    """Handlers for /faults on one node."""

    def __init__(self, name: str, faults: NodeFaults) -> None:
        self.name = name
        self.faults = faults
        self.events = FaultEventLog(faults)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/faults/events", self.get_events),
            web.get("/faults", self.get_faults),
            web.put("/faults", self.put_faults),
            web.delete("/faults", self.delete_faults),
        ]

    def _answer(self) -> web.Response:
        return web.json_response(
            {"node": self.name, "state": fault_state(self.faults), "active": self.faults.active()}
        )

    async def get_faults(self, request: web.Request) -> web.Response:
        return self._answer()

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "body is not JSON", node=self.name)
        try:
            changes = check_fault_changes(body)
        except ValueError as exc:
            return json_error(400, str(exc), node=self.name)
        if isinstance(self.faults, SshdFaults):
            for attr, value in changes.items():
                problem = self.faults.refusal(attr, value)
                if problem is not None:
                    return json_error(400, problem, node=self.name)
        for attr, value in changes.items():
            setattr(self.faults, attr, value)
        return self._answer()

    async def get_events(self, request: web.Request) -> web.Response:
        """``?since=N`` (default 0) ``&wait=S`` (default 0): the fault reports numbered N and
        later, waiting up to S seconds for one; ``next`` is the ``since`` to ask next."""
        try:
            since = int(request.query.get("since", "0"))
            wait = float(request.query.get("wait", "0"))
        except ValueError:
            return json_error(400, "since must be an integer and wait a number", node=self.name)
        if since < 0 or not wait >= 0:
            return json_error(400, "since and wait must be >= 0", node=self.name)
        records, dropped = await self.events.wait_since(since, wait)
        next_since = since + dropped + len(records)
        return web.json_response(
            {"node": self.name, "events": records, "dropped": dropped, "next": next_since}
        )

    async def delete_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return self._answer()
