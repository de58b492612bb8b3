"""host:port parsing, resolution and binding with Toxiproxy's (Go's) error texts."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Callable

from netfault.simulator.proxy.errors import ApiError


def split_host_port(addr: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 in brackets); ValueError carries Go's wording."""
    if addr == "":
        return "", 0  # Go: every interface, an ephemeral port
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"address {addr}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {addr}: invalid port")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve_host(host: str) -> str:
    """An IP for `host`, IPv4 first as Go prefers; "" stays "" (every interface)."""
    if host == "":
        return host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


async def resolve_listen(addr: str) -> str:
    """The address a listen string binds to, for comparing configs (port 0 kept)."""
    host, port = split_host_port(addr)
    return join_host_port(await resolve_host(host), port)


async def bind(
    addr: str, factory: Callable[[], asyncio.BaseProtocol]
) -> tuple[asyncio.Server, str]:
    """Listen on `addr`; return the server and the resolved `ip:port`, or ApiError 500."""
    loop = asyncio.get_running_loop()
    try:
        host, port = split_host_port(addr)
    except ValueError as exc:
        raise ApiError(f"listen tcp: {exc}", 500) from exc
    try:
        ip = await resolve_host(host)
    except OSError as exc:
        raise ApiError(f"listen tcp: lookup {host}: no such host", 500) from exc
    try:
        if ip == "":
            sock = _dual_stack_socket(port)
            server = await loop.create_server(factory, sock=sock, backlog=1024)
        else:
            server = await loop.create_server(factory, ip, port, reuse_address=True, backlog=1024)
    except OSError as exc:
        reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        raise ApiError(f"listen tcp {join_host_port(ip, port)}: bind: {reason}", 500) from exc
    bound = server.sockets[0].getsockname()
    name = "::" if ip == "" and ":" in bound[0] else bound[0]
    return server, join_host_port(name, bound[1])


def _dual_stack_socket(port: int) -> socket.socket:
    """One socket on every interface, IPv4 and IPv6, as Go's empty listen address gives."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[str, int] = ("::", port)
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
