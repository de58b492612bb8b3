"""bandwidth: at most `rate` KB/s (KB = 1000 bytes), released in 100 ms slices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


@dataclass(frozen=True, slots=True)
class BandwidthAttributes:
    rate: int = 0  # KB/s, KB = 1000 bytes; <= 0 is unlimited


class BandwidthToxic(Toxic[BandwidthAttributes]):
    type_name: ClassVar[str] = "bandwidth"
    go_name: ClassVar[str] = "BandwidthToxic"
    Attributes: ClassVar[type[BandwidthAttributes]] = BandwidthAttributes

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        rate = self.attrs.rate
        if rate <= 0:
            return [chunk]
        per_second = rate * 1000.0
        piece_size = rate * 100  # what the rate lets through in 100 ms
        st.free_at = max(st.free_at, chunk.t)
        out: list[Chunk] = []
        data = chunk.data
        for start in range(0, len(data), piece_size):
            piece = data[start : start + piece_size]
            st.free_at += len(piece) / per_second
            out.append(Chunk(piece, st.free_at))
        return out
