"""The base64 transport: text-safe bytes over SSH, for channels that mangle binary data.

By default (OpenSSH's ``ssh`` installed, see ``sshpipe``) a push pipes the file through the
local ``base64`` into ``ssh node 'base64 -d >> .<name>.nfpart'``, and a pull pipes
``tail -c +N file | base64`` through ``ssh`` into ``base64 --decode --ignore-garbage``
(which drops the CRs a text-mangling channel adds). Without the ``ssh`` binary the same
streams run over an asyncssh exec channel, encoded and decoded here in 768 KiB chunks.
Encoded lines stay short (76 characters from ``base64``, 3,040 in the chunked path): a
forced terminal's line discipline keeps at most 4,095 bytes of one line and drops the
rest. Resume works from any byte offset of the partial.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

from netfault.engine.transports.execpath import Codec, ExecTransport

RAW_CHUNK = 3 * 256 * 1024  # a multiple of 3: chunks encode without padding
LINE_RAW = 57 * 40  # bytes a line (a multiple of 3 too): 3,040 characters and a LF
_WHITESPACE = b"\r\n\t "


def encode_chunk(block: bytes) -> bytes:
    pieces = range(0, len(block), LINE_RAW)
    return b"".join(binascii.b2a_base64(block[i : i + LINE_RAW]) for i in pieces)


class StreamDecoder:
    """Decodes base64 text fed in arbitrary pieces, skipping whitespace and CRs."""

    def __init__(self) -> None:
        self._rest = b""

    def __call__(self, text: bytes) -> bytes:
        data = self._rest + text.translate(None, _WHITESPACE)
        usable = len(data) - len(data) % 4
        self._rest = data[usable:]
        return binascii.a2b_base64(data[:usable], strict_mode=True) if usable else b""

    def finish(self) -> None:
        if self._rest:
            raise ValueError(f"base64 stream ended mid-group ({len(self._rest)} chars left over)")


def _finish(decoder: Callable[[bytes], bytes]) -> None:
    if isinstance(decoder, StreamDecoder):
        decoder.finish()


class Base64Transport(ExecTransport):
    """Push/pull as base64 text over SSH; survives channels that mangle binary bytes."""

    name = "base64"
    codec = Codec(
        remote_decode="base64 -d",
        remote_encode="base64",
        chunk_size=RAW_CHUNK,
        encode=encode_chunk,
        decoder=StreamDecoder,
        finish=_finish,
        local_encode=("base64",),
        local_decode=("base64", "--decode", "--ignore-garbage"),  # CRs a channel added
    )
