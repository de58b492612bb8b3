"""netfault's extension to the Toxiproxy API: the fault events, as JSON lines.

GET  /events?since=N[&proxy=NAME]   events numbered above N (one JSON object a line);
                                    headers X-Netfault-Events-Cursor (pass it back as
                                    `since`) and X-Netfault-Events-Dropped (overwritten
                                    by the ring buffer since N)
POST /events {"capacity": N}        keep the last N events (0 stops recording)

Toxiproxy clients never call these routes.
"""

from __future__ import annotations

import json

from aiohttp import web

from netfault.simulator.proxy import errors
from netfault.simulator.proxy.collection import ProxyCollection

CURSOR_HEADER = "X-Netfault-Events-Cursor"
DROPPED_HEADER = "X-Netfault-Events-Dropped"


def event_routes(collection: ProxyCollection) -> list[web.RouteDef]:
    """The /events routes over `collection`."""

    async def read(request: web.Request) -> web.Response:
        if not collection.trace.recording:
            raise errors.ApiError(
                "fault events are not recorded: start netfault-proxy with -events N, "
                'or POST /events {"capacity": N} first',
                409,
            )
        cursor = _whole(request.query.get("since", "0"), "since")
        proxy = request.query.get("proxy")
        page = collection.events_since(cursor)
        lines = [
            json.dumps(event.to_json(), separators=(",", ":")) + "\n"
            for event in page.events
            if proxy is None or event.proxy == proxy
        ]
        headers = {
            "Content-Type": "application/x-ndjson",
            CURSOR_HEADER: str(page.cursor),
            DROPPED_HEADER: str(page.dropped),
        }
        return web.Response(body="".join(lines).encode(), headers=headers)

    async def configure(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise errors.bad_request_body(str(exc)) from None
        capacity = body.get("capacity") if isinstance(body, dict) else None
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            raise errors.bad_request_body('expected {"capacity": <whole number >= 0>}')
        collection.trace.record(capacity)
        return web.Response(status=204)

    return [web.get("/events", read), web.post("/events", configure)]


def _whole(text: str, name: str) -> int:
    if not text.isdigit():
        raise errors.ApiError(f"query parameter {name} must be a whole number >= 0: {text!r}", 400)
    return int(text)
