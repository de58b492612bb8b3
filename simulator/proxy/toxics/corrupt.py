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
import re
from dataclasses import dataclass, field
from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction

BLOCK = 4096
_STRIP = bytes(b & 0x7F for b in range(256))
_HIGH = re.compile(rb"[\x80-\xff]")


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
        tracing = self.tracing(st)
        decisions: list[tuple[int, FaultAction, int]] = []
        rewrite: dict[str, int] = self.attrs.rewrite
        for key, value in rewrite.items():
            offset = int(key)
            if start <= offset < end:
                data[offset - start] = value
                if tracing:
                    decisions.append((offset, FaultAction.BYTE_REWRITTEN, value))
        probability = self.attrs.probability
        if probability > 0:
            for block in range(start // BLOCK, (end - 1) // BLOCK + 1 if data else 0):
                for pos, bit in _flips(ctx, st.name, block, probability):
                    if start <= pos < end:
                        data[pos - start] ^= 1 << bit
                        if tracing:
                            decisions.append((pos, FaultAction.BIT_FLIPPED, bit))
        out = bytes(data)
        if self.attrs.strip_high_bit:
            out = out.translate(_STRIP)
        if self.attrs.lf_to_crlf:
            out = out.replace(b"\n", b"\r\n")
        chunk.data = out
        if tracing:
            self._report(ctx, st, sorted(decisions), data)
        return [chunk]

    def _report(
        self,
        ctx: LinkContext,
        st: ToxicState,
        decisions: list[tuple[int, FaultAction, int]],
        data: bytearray,
    ) -> None:
        """Each flip and rewrite, in stream order; a mangling mode once, where it first acts."""
        events = [
            self.event(ctx, st, action, offset, bit=number)
            if action is FaultAction.BIT_FLIPPED
            else self.event(ctx, st, action, offset, value=number)
            for offset, action, number in decisions
        ]
        first = None
        if not st.triggered:
            first = _first_mangled(data, self.attrs.strip_high_bit, self.attrs.lf_to_crlf)
        if first is not None:
            st.triggered = True
            mode = "strip_high_bit" if first[1] else "lf_to_crlf"
            offset = st.offset + first[0]
            events.append(self.event(ctx, st, FaultAction.BYTES_MANGLED, offset, mode=mode))
        if events and st.trace is not None:
            st.trace.emit(*events)


def _first_mangled(data: bytearray, strip: bool, crlf: bool) -> tuple[int, bool] | None:
    """(index, True if stripped) of the first byte a mangling mode changes, if any."""
    match = _HIGH.search(data) if strip else None
    high = None if match is None else match.start()
    lf = data.find(b"\n") if crlf else -1
    if lf >= 0 and (high is None or lf < high):
        return lf, False
    return (high, True) if high is not None else None


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
