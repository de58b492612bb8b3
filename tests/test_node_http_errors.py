"""The node's HTTP agent under clients that misbehave: one log line each, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator

import pytest

from netfault.simulator.node import FakeNode

TIMEOUT = 30


class Records(logging.Handler):
    """Log records of the node's HTTP side, with an event per record for awaiting one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.arrived.set()

    async def next(self) -> logging.LogRecord:
        async with asyncio.timeout(TIMEOUT):
            while not self.records:
                self.arrived.clear()
                await self.arrived.wait()
        return self.records.pop(0)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(n) for n in ("aiohttp.server", "netfault.simulator.node.http")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("node-h", host="127.0.0.75") as fake:
        yield fake


def auth(node: FakeNode) -> bytes:
    return f"Authorization: Bearer {node.token}\r\n".encode()


async def exchange(node: FakeNode, request: bytes) -> bytes:
    """Send raw bytes; the status line of the answer."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(node.host, node.http_port)
        writer.write(request)
        answer = await reader.read()
    writer.close()
    return answer.split(b"\r\n", 1)[0]


async def test_aborted_upload_is_one_log_line_and_keeps_the_partial(
    node: FakeNode, records: Records
) -> None:
    head = b"PUT /files/data/x.bin HTTP/1.1\r\nHost: n\r\nContent-Length: 10000000\r\n"
    async with asyncio.timeout(TIMEOUT):
        _, writer = await asyncio.open_connection(node.host, node.http_port)
        writer.write(head + auth(node) + b"\r\n" + b"x" * 1_000_000)
        await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # a reset, as a killed client or a middlebox sends

    record = await records.next()

    assert record.exc_info is None and record.levelno == logging.WARNING
    assert record.getMessage() == (
        "node-h: PUT /files/data/x.bin aborted by the client (Connection reset by peer); "
        "its partial upload is kept for a resume"
    )
    assert records.records == []
    partial = await exchange(
        node, b"GET /uploads/data/x.bin HTTP/1.1\r\nHost: n\r\nConnection: close\r\n" + auth(node)
        + b"\r\n",
    )  # fmt: skip
    assert partial == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    "request_line",
    [
        pytest.param(b"GET /files/\xed\xb3\xbf HTTP/1.1", id="surrogate-bytes-in-path"),
        pytest.param(b"PUT /files/\xff\xfe HTTP/1.1", id="invalid-utf8-in-path"),
        pytest.param(b"GET /files/x HTTP/9.9.9", id="bad-version"),
        pytest.param(b"GET /files/%ED%B3%BF HTTP/1.1", id="percent-encoded-surrogate"),
        pytest.param(b"PUT /files/a%FFb HTTP/1.1", id="percent-encoded-invalid-utf8"),
        pytest.param(b"GET /uploads/d/%ED%A0%80x HTTP/1.1", id="percent-encoded-surrogate-uploads"),
    ],
)
async def test_malformed_request_gets_400_and_one_log_line(
    node: FakeNode, records: Records, request_line: bytes
) -> None:
    status = await exchange(
        node, request_line + b"\r\nHost: n\r\nConnection: close\r\n" + auth(node) + b"\r\n"
    )

    assert status.split()[1] == b"400"
    record = await records.next()
    assert record.exc_info is None
    assert record.getMessage().startswith("malformed request answered with 400: ")
    assert "\n" not in record.getMessage()
