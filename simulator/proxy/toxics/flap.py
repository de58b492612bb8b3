"""flap: a link that goes down and up in spells counted in connections (netfault only).

The connections the proxy accepts once the toxic is there fall into alternating spells,
down first (the link drops as the toxic arrives): `down` connections on average are refused
(never dialled upstream; reset at the client's first byte), then `up` connections on
average pass. The last connection of each up spell is cut: reset after a seeded offset in
[1, `cut`] bytes of its stream (`cut` 0: it passes too). Spell lengths are drawn uniformly
from 1 to twice the mean minus one.

The k-th connection's fate (k counts from 0 at the first connection accepted after the
toxic was added or updated) is a pure function of (seed, proxy, toxic name, k):
`flap_fate`. No clock takes part, so a seed reproduces the same refusals and cuts on every
run. A flap toxic that joins a connection already open leaves it alone: where such a
connection stands when the link goes down is a matter of timing.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics.base import Chunk, Kind, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction

# Spells are found by walking from connection 0; cap the walk (a proxy with more accepts
# than this repeats the schedule from the start).
MAX_CONNECTIONS = 1 << 20


class Fate(enum.StrEnum):
    PASSED = "passed"
    REFUSED = "refused"
    CUT = "cut"


@dataclass(frozen=True, slots=True)
class FlapAttributes:
    up: int = 3  # mean connections per up spell
    down: int = 2  # mean connections per down spell
    cut: int = 32768  # the last connection of an up spell is reset within this many bytes


class FlapSchedule:
    """The fates of one toxic's connections on one proxy; spells are drawn lazily and kept."""

    def __init__(self, seed: int, proxy: str, toxic: str, attrs: FlapAttributes) -> None:
        self._key = (seed, proxy, toxic)
        self._draw = rng.generator(seed, proxy, toxic, "flap")
        self._means = (max(1, attrs.up), max(1, attrs.down))
        self._cut = attrs.cut
        self._ends: list[int] = []  # spell i covers [ends[i-1], ends[i]); even i: down

    def spell(self, k: int) -> tuple[int, int]:
        """(index, end) of the spell connection `k` falls in (spell 0 is down)."""
        while not self._ends or self._ends[-1] <= k:
            mean = self._means[1 - len(self._ends) % 2]
            start = self._ends[-1] if self._ends else 0
            self._ends.append(start + self._draw.randint(1, 2 * mean - 1))
        index = bisect.bisect_right(self._ends, k)
        return index, self._ends[index]

    def fate(self, k: int) -> tuple[Fate, int | None]:
        """Connection `k`'s fate and, for a cut, the offset it is cut at (1..cut)."""
        k %= MAX_CONNECTIONS
        index, end = self.spell(k)
        if index % 2 == 0:
            return Fate.REFUSED, None
        if k < end - 1 or self._cut <= 0:
            return Fate.PASSED, None
        seed, proxy, toxic = self._key
        return Fate.CUT, 1 + rng.derive(seed, proxy, k, toxic, "cut") % self._cut


def flap_fate(
    seed: int, proxy: str, toxic: str, k: int, attrs: FlapAttributes
) -> tuple[Fate, int | None]:
    """Connection `k`'s fate under a flap toxic named `toxic` on `proxy`."""
    return FlapSchedule(seed, proxy, toxic, attrs).fate(k)


class FlapToxic(Toxic[FlapAttributes]):
    type_name: ClassVar[str] = "flap"
    go_name: ClassVar[str] = "FlapToxic"
    Attributes: ClassVar[type[FlapAttributes]] = FlapAttributes

    def __init__(self, attrs: FlapAttributes) -> None:
        super().__init__(attrs)
        # A toxic instance serves one proxy (an update makes a new one): its schedule and
        # the number of the first connection it saw, from which its spells count.
        self._schedule: FlapSchedule | None = None
        self._first = 0

    def _fate(self, ctx: LinkContext, st: ToxicState) -> tuple[Fate, int | None]:
        if self._schedule is None:
            self._schedule = FlapSchedule(ctx.seed, ctx.proxy, st.name, self.attrs)
            self._first = ctx.conn
        return self._schedule.fate(ctx.conn - self._first)

    def start(self, ctx: LinkContext, st: ToxicState) -> None:
        """Decide this connection's fate as it opens. `st.count` keeps it: the offset to
        reset at (0: refused), or -1 to let everything pass."""
        if not st.offsets_exact:
            st.count = -1  # joined an open connection: leave it alone
            return
        fate, offset = self._fate(ctx, st)
        if fate is Fate.REFUSED:
            st.count = 0
            ctx.refuse()
        else:
            st.count = -1 if offset is None else offset

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        if st.count < 0:
            return [chunk]
        if st.triggered:
            return []  # cut: nothing more passes
        left = st.count - st.offset
        if len(chunk.data) < left:
            return [chunk]
        st.triggered = True
        if st.count == 0:
            # Refused: reset at the client's first byte. Its connect has finished by then,
            # so every client sees the same thing: a reset while it opens its session.
            self.report(ctx, st, FaultAction.REFUSED, 0)
            ctx.reset()
            return []
        self.report(ctx, st, FaultAction.CUT, st.count)
        return [Chunk(chunk.data[:left], chunk.t), Chunk(b"", chunk.t, Kind.RESET)]
