"""corrupt: damages bytes the way broken links and text-only middleboxes do (netfault only).

Attributes, all optional:
- `probability`: per-byte chance of flipping one bit of that byte;
- `rewrite`: {"<stream offset>": <byte value>} bytes replaced at given offsets;
- `strip_high_bit`: clear bit 7 of every byte, like a 7-bit channel;
- `lf_to_crlf`: turn every LF into CRLF, like an ASCII-mode transfer.

Each decision is keyed on (seed, proxy, connection, direction, toxic name, byte offset), so a
seed reproduces the same damage whatever the chunking or timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState

BLOCK = 4096
_STRIP = bytes(b & 0x7F for b in range(256))


@dataclass(frozen=True, slots=True)
class CorruptAttributes:
    probability: float = 0.0
    rewrite: dict[str, int] = field(default_factory=dict)
    strip_high_bit: bool = False
    lf_to_crlf: bool = False


class CorruptToxic(Toxic[CorruptAttributes]):
    type_name: ClassVar[str] = "corrupt"
    go_name: ClassVar[str] = "CorruptToxic"
    Attributes: ClassVar[type[CorruptAttributes]] = CorruptAttributes

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        start = st.offset
        data = bytearray(chunk.data)
        end = start + len(data)
        rewrite: dict[str, int] = self.attrs.rewrite
        for key, value in rewrite.items():
            offset = int(key)
            if start <= offset < end:
                data[offset - start] = value
        probability = self.attrs.probability
        if probability > 0:
            for block in range(start // BLOCK, (end - 1) // BLOCK + 1 if data else 0):
                for pos, bit in _flips(ctx, st.name, block, probability):
                    if start <= pos < end:
                        data[pos - start] ^= 1 << bit
        out = bytes(data)
        if self.attrs.strip_high_bit:
            out = out.translate(_STRIP)
        if self.attrs.lf_to_crlf:
            out = out.replace(b"\n", b"\r\n")
        chunk.data = out
        return [chunk]


def _flips(ctx: LinkContext, name: str, block: int, p: float) -> list[tuple[int, int]]:
    """The (stream offset, bit) pairs flipped inside one block; geometric gaps between hits."""
    gen = rng.generator(ctx.seed, ctx.proxy, ctx.conn, ctx.direction, name, "flip", block)
    base = block * BLOCK
    hits: list[tuple[int, int]] = []
    if p >= 1.0:
        return [(base + i, gen.randrange(8)) for i in range(BLOCK)]
    log_q = math.log1p(-p)
    pos = -1
    while True:
        pos += 1 + int(math.log1p(-gen.random()) / log_q)
        if pos >= BLOCK:
            return hits
        hits.append((base + pos, gen.randrange(8)))
