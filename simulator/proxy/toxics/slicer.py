"""slicer: cuts chunks into pieces of about `average_size` +- `size_variation` bytes.

Pieces leave `delay` microseconds apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


@dataclass(frozen=True, slots=True)
class SlicerAttributes:
    average_size: int = 0  # bytes
    size_variation: int = 0  # bytes
    delay: int = 0  # microseconds between pieces


class SlicerToxic(Toxic[SlicerAttributes]):
    type_name: ClassVar[str] = "slicer"
    go_name: ClassVar[str] = "SlicerToxic"
    Attributes: ClassVar[type[SlicerAttributes]] = SlicerAttributes

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        average = self.attrs.average_size
        if average <= 0 or not chunk.data:
            return [chunk]
        gen = rng.generator(ctx.seed, ctx.proxy, ctx.conn, ctx.direction, st.name, st.offset)
        bounds = [0]
        self._split(0, len(chunk.data), gen, bounds)
        step = max(0, self.attrs.delay) / 1_000_000.0
        base = max(chunk.t, st.free_at)
        out = []
        for index in range(len(bounds) - 1):
            piece = chunk.data[bounds[index] : bounds[index + 1]]
            out.append(Chunk(piece, base + index * step))
        st.free_at = base + (len(out)) * step
        return out

    def _split(self, start: int, end: int, gen: random.Random, bounds: list[int]) -> None:
        """Halve [start, end) until pieces are within the variation of the average size."""
        average = self.attrs.average_size
        variation = max(0, self.attrs.size_variation)
        if (end - start) - average <= variation or end - start <= 1:
            bounds.append(end)
            return
        mid = start + (end - start) // 2
        if variation > 0:
            mid += gen.randrange(variation * 2) - variation
        mid = min(max(mid, start + 1), end - 1)
        self._split(start, mid, gen, bounds)
        self._split(mid, end, gen, bounds)
