"""Toxiproxy's HTTP API, route for route, on aiohttp."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from netfault.simulator.proxy import errors, schema
from netfault.simulator.proxy.collection import ProxyCollection
from netfault.simulator.proxy.events_api import event_routes
from netfault.simulator.proxy.metrics import render_metrics

TOXIPROXY_VERSION = "2.12.0"
COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = web.RouteTableDef()


def _request_id() -> str:
    return base64.b32hexencode(os.urandom(12)).decode().lower().rstrip("=")


def _json(data: Any, status: int = 200) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


def _text(text: str, status: int) -> web.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    return web.Response(body=text.encode(), status=status, headers=headers)


def _error(exc: errors.ApiError) -> web.Response:
    return _text(json.dumps(exc.to_json(), separators=(",", ":")) + "\n", exc.status)


@web.middleware
async def toxiproxy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id on every answer, browsers refused, Go's 404/405 and error bodies."""
    response: web.StreamResponse
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        response = _text("User agent not allowed\n", 403)
    else:
        try:
            response = await handler(request)
        except errors.ApiError as exc:
            response = _error(exc)
        except web.HTTPMethodNotAllowed:
            response = web.Response(status=405)
        except web.HTTPNotFound:
            response = _text("404 page not found\n", 404)
    response.headers["X-Toxiproxy-Request-Id"] = _request_id()
    return response


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    await _collection(request).reset()
    return web.Response(status=204)


@routes.get("/proxies")
async def proxy_index(request: web.Request) -> web.Response:
    return _json(_collection(request).to_json())


@routes.post("/proxies")
async def proxy_create(request: web.Request) -> web.Response:
    config = schema.proxy_create(schema.decode(await request.read()))
    proxy = await _collection(request).create(
        config.name, config.upstream, config.listen, config.enabled, config.toxics
    )
    return _json(proxy.to_json(), 201)


@routes.post("/populate")
async def populate(request: web.Request) -> web.Response:
    try:
        configs = schema.populate(schema.decode(await request.read()))
    except errors.ApiError as exc:
        return _json({**exc.to_json(), "proxies": None}, exc.status)
    done, error = await _collection(request).populate(configs)
    listed = [proxy.to_json() for proxy in done] or None
    if error is not None:
        return _json({**error.to_json(), "proxies": listed}, error.status)
    return _json({"proxies": listed}, 201)


@routes.get("/proxies/{proxy}")
async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


@routes.route("POST", "/proxies/{proxy}")
@routes.route("PATCH", "/proxies/{proxy}")
async def proxy_update(request: web.Request) -> web.Response:
    collection = _collection(request)
    name = request.match_info["proxy"]
    collection.get(name)
    fields = schema.proxy_fields(schema.decode(await request.read()))
    proxy = await collection.update(
        name,
        listen=fields.get("listen"),
        upstream=fields.get("upstream"),
        enabled=fields.get("enabled"),
    )
    return _json(proxy.to_json())


@routes.delete("/proxies/{proxy}")
async def proxy_delete(request: web.Request) -> web.Response:
    await _collection(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


@routes.get("/proxies/{proxy}/toxics")
async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([spec.to_json() for spec in proxy.toxics()])


@routes.post("/proxies/{proxy}/toxics")
async def toxic_create(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    spec = schema.toxic_create(schema.decode(await request.read()), proxy.toxics())
    return _json(proxy.add_toxic(spec).to_json())


@routes.get("/proxies/{proxy}/toxics/{toxic}")
async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.get_toxic(request.match_info["toxic"]).to_json())


@routes.route("POST", "/proxies/{proxy}/toxics/{toxic}")
@routes.route("PATCH", "/proxies/{proxy}/toxics/{toxic}")
async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    spec = proxy.get_toxic(request.match_info["toxic"])
    patch, toxicity = schema.toxic_update(schema.decode(await request.read()), spec)
    return _json(proxy.update_toxic(spec.name, patch, toxicity).to_json())


@routes.delete("/proxies/{proxy}/toxics/{toxic}")
async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    body = json.dumps({"version": TOXIPROXY_VERSION}, separators=(",", ":")) + "\n"
    headers = {"Content-Type": "application/json;charset=utf-8"}
    return web.Response(body=body.encode(), headers=headers)


def make_app(collection: ProxyCollection, *, metrics: bool = False) -> web.Application:
    """The API application over `collection`; `/metrics` only when `metrics` is set."""
    app = web.Application(middlewares=[toxiproxy_middleware])
    app[COLLECTION] = collection
    app.add_routes(routes)
    app.add_routes(event_routes(collection))
    if metrics:

        async def metrics_handler(request: web.Request) -> web.Response:
            headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
            return web.Response(body=render_metrics(collection).encode(), headers=headers)

        app.router.add_route("*", "/metrics", metrics_handler)
    return app
