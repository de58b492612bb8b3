"""latency: every chunk leaves `latency` +- `jitter` ms after it arrived."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


class LatencyToxic(Toxic):
    type_name: ClassVar[str] = "latency"
    go_name: ClassVar[str] = "LatencyToxic"
    fields: ClassVar[dict[str, str]] = {"latency": "int", "jitter": "int"}

    def passes_through(self) -> bool:
        return int(self.attrs["latency"]) <= 0 and int(self.attrs["jitter"]) <= 0

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        delay = int(self.attrs["latency"])
        jitter = int(self.attrs["jitter"])
        if jitter > 0:
            keys = (ctx.proxy, ctx.conn, ctx.direction, st.name, st.offset)
            delay += rng.derive(ctx.seed, *keys) % (2 * jitter) - jitter
        # Stacked latency toxics add up: the chunk's stamp moves with each one.
        chunk.t += delay / 1000.0
        return [chunk]
