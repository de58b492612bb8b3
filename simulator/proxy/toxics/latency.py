"""latency: every chunk leaves `latency` +- `jitter` ms after it arrived."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


@dataclass(frozen=True, slots=True)
class LatencyAttributes:
    latency: int = 0  # ms
    jitter: int = 0  # ms, +- around latency


class LatencyToxic(Toxic[LatencyAttributes]):
    type_name: ClassVar[str] = "latency"
    go_name: ClassVar[str] = "LatencyToxic"
    Attributes: ClassVar[type[LatencyAttributes]] = LatencyAttributes

    def passes_through(self) -> bool:
        return self.attrs.latency <= 0 and self.attrs.jitter <= 0

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        delay = self.attrs.latency
        jitter = self.attrs.jitter
        if jitter > 0:
            keys = (ctx.proxy, ctx.conn, ctx.direction, st.name, st.offset)
            delay += rng.derive(ctx.seed, *keys) % (2 * jitter) - jitter
        # Stacked latency toxics add up: the chunk's stamp moves with each one.
        chunk.t += delay / 1000.0
        return [chunk]
