"""The fake node's HTTP agent: health, status and file endpoints behind a bearer token.

``faults.http_mode`` changes take effect at once: "down" closes the listening socket (and open
connections) so connects are refused, "up" listens again on the same port, "5xx" answers every
request with 503 and a JSON error, "hang" accepts requests and never answers them (until the
node stops).

An optional admin listener (:meth:`HttpAgent.start_admin`) serves ``/health``, the fault API
(``/faults``, see :mod:`fault_api`) and read-only ``GET /files``. No fault ever applies to it,
so a controller in another process can switch faults (``http_down`` included) and read files
back whatever state the main listener is in.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote

from aiohttp import http_exceptions, web

from netfault.simulator.node.errors import PathOutsideHome
from netfault.simulator.node.fault_api import FaultEndpoints
from netfault.simulator.node.faults import NodeFaults
from netfault.simulator.node.http_files import FileEndpoints, json_error
from netfault.simulator.node.paths import disk_usage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHUTDOWN_TIMEOUT = 1.0
OPEN_PATHS = ("/health",)
log = logging.getLogger("netfault.simulator.node.http")
_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _OneLineErrors(logging.Filter):
    """aiohttp logs two client mistakes with a traceback: a request it cannot parse (it already
    answered 400) and a client closing before sending the rest of a body the agent did not
    need (a refused upload). One line each is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            detail = " ".join(str(exc.message).split())
            message = f"malformed request answered with 400: {detail}"
        elif isinstance(exc, RuntimeError) and str(exc) == "Connection closed.":
            message = "client closed the connection before the end of its request body"
        else:
            return True
        record.msg, record.args = "%s", (message,)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("aiohttp.server").addFilter(_OneLineErrors())


def _client_gone(exc: OSError) -> bool:
    return isinstance(exc, _GONE) or exc.errno in (errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket: connects queue up from this moment on."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class HttpAgent:
    """aiohttp app plus a listener that the ``http_mode`` fault can close and reopen."""

    def __init__(self, *, name: str, home: Path, token: str, faults: NodeFaults) -> None:
        self.name = name
        self.home = home
        self.token = token
        self.faults = faults
        self.port = 0
        self._host = ""
        self._started = time.monotonic()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._reopen: asyncio.Task[None] | None = None
        self._admin: web.AppRunner | None = None
        self.admin_port = 0
        self._p2p: asyncio.Server | None = None
        self._fault_api: FaultEndpoints | None = None

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors_mw, self._fault_mw, self._auth_mw], client_max_size=0
        )
        app.add_routes([web.get("/health", self.health), web.get("/status", self.status)])
        app.add_routes(FileEndpoints(self.home, self.faults).routes())
        return app

    def _build_admin_app(self) -> web.Application:
        files = FileEndpoints(self.home, self.faults)
        app = web.Application(middlewares=[self._errors_mw, self._auth_mw])
        app.add_routes(
            [web.get("/health", self.health), web.get("/files/{path:.+}", files.get_file)]
        )
        self._fault_api = FaultEndpoints(self.name, self.faults)
        app.add_routes(self._fault_api.routes())
        return app

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A client that went away is one log line; a malformed request gets a 400."""
        try:
            # A percent-escape that decodes to no UTF-8 text (an invalid byte, an encoded
            # surrogate: what a corrupted path looks like) would otherwise be kept literally.
            unquote(request.rel_url.raw_path, errors="strict")
        except UnicodeDecodeError as exc:
            detail = f"path {request.rel_url.raw_path} is not UTF-8 once decoded ({exc.reason})"
            log.warning("malformed request answered with 400: %s", detail)
            return json_error(400, detail, node=self.name)
        try:
            return await handler(request)
        except UnicodeError as exc:
            return json_error(400, f"request is not valid UTF-8 ({exc})", node=self.name)
        except OSError as exc:
            if not _client_gone(exc):
                raise
            kept = "; its partial upload is kept for a resume" if request.method == "PUT" else ""
            log.warning(
                "%s: %s %s aborted by the client (%s)%s",
                self.name,
                request.method,
                request.rel_url.raw_path,
                exc.strerror or exc,
                kept,
            )
            return json_error(400, "client went away", node=self.name)

    @web.middleware
    async def _fault_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        mode = self.faults.http_mode
        self.faults.admit("http")  # a request met the mode: count it against a scoped fault
        if mode == "hang":
            await self._released.wait()
        if mode in ("5xx", "hang"):
            message = f"agent on {self.name} is failing (fault {mode})"
            return json_error(503, message, node=self.name)
        try:
            return await handler(request)
        except PathOutsideHome as exc:
            return json_error(403, exc.message, node=self.name)

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                resp = json_error(401, "missing or wrong bearer token", node=self.name)
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
        return await handler(request)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.name})

    async def status(self, request: web.Request) -> web.Response:
        used = await asyncio.to_thread(disk_usage, self.home)
        quota = self.faults.disk_quota
        return web.json_response(
            {
                "node": self.name,
                "status": "ok",
                "uptime_s": round(time.monotonic() - self._started, 3),
                "disk": {
                    "used": used,
                    "quota": quota,
                    "free": None if quota is None else max(quota - used, 0),
                },
                "faults": self.faults.active(),
            }
        )

    async def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` (0: any free port) and return the real port."""
        self._host = host
        self._released.clear()
        self._runner = web.AppRunner(
            self._build_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await self._runner.setup()
        sock = listening_socket(host, port)
        self.port = sock.getsockname()[1]
        if self.faults.http_mode == "down":
            sock.close()
        else:
            await self._serve(sock)
        return self.port

    async def start_admin(self, host: str, port: int) -> int:
        """Serve the admin API on ``host:port`` (0: any free port) and return the real port."""
        self._admin = web.AppRunner(
            self._build_admin_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await self._admin.setup()
        sock = listening_socket(host, port)
        self.admin_port = sock.getsockname()[1]
        await web.SockSite(self._admin, sock).start()
        return self.admin_port

    async def start_p2p(self, host: str, port: int) -> int:
        """Serve the same agent on a second port, the node's p2p endpoint; returns the port."""
        assert self._runner is not None and self._runner.server is not None
        sock = listening_socket(host, port)
        loop = asyncio.get_running_loop()
        self._p2p = await loop.create_server(self._runner.server, sock=sock)
        return int(sock.getsockname()[1])

    async def _serve(self, sock: socket.socket) -> None:
        assert self._runner is not None and self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._runner.server, sock=sock)

    def apply_mode(self) -> None:
        """Open or close the listener to match ``faults.http_mode`` (synchronously)."""
        if self._runner is None:
            return
        if self.faults.http_mode == "down":
            self._close_listener()
        elif self._server is None and self._reopen is None:
            # Listening starts now; the accept loop is attached by the task.
            sock = listening_socket(self._host, self.port)
            self._reopen = asyncio.get_running_loop().create_task(self._reopen_on(sock))

    async def _reopen_on(self, sock: socket.socket) -> None:
        try:
            await self._serve(sock)
        finally:
            self._reopen = None
        if self.faults.http_mode == "down":
            self._close_listener()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        assert self._runner is not None and self._runner.server is not None
        for conn in list(self._runner.server.connections):
            conn.force_close()

    async def stop(self) -> None:
        self._released.set()
        if self._reopen is not None:
            await self._reopen
        server, self._server = self._server, None
        if server is not None:
            server.close()
        p2p, self._p2p = self._p2p, None
        if p2p is not None:
            p2p.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if server is not None:
            await server.wait_closed()
        if p2p is not None:
            await p2p.wait_closed()
        if self._admin is not None:
            await self._admin.cleanup()
            self._admin = None
        if self._fault_api is not None:
            self._fault_api.events.close()  # a restart builds a new log
            self._fault_api = None
