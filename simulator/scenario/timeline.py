"""A picture of one scenario: transports tried and breaker state over virtual time, as SVG.

Hand-written SVG, no plotting dependency. One lane per (node, transport) with a dot per
attempt (green success, red failure, grey skipped, amber cancelled after losing a
connection race; the error as a tooltip), a breaker band per node coloured by state, and
step markers, and a glyph where a fault fired (one per node and moment, the firings
listed in its tooltip). Many events share one virtual instant (a
failover happens "at once" on the virtual clock), so each event gets a slot of its own.
The time axis is to scale when it can be: an instant sits at its virtual time and its
events follow it, the scale chosen so that they end before the next instant starts. When
that would make the picture wider than ``MAX_WIDTH`` (bursts of events seconds apart
within an hour-long scenario), the axis is ordinal instead, says so, and labels each
instant with its virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from xml.sax.saxutils import escape

from netfault.engine import Event
from netfault.simulator.scenario.report import xml_safe
from netfault.simulator.scenario.results import ScenarioResult
from netfault.simulator.scenario.trace import FaultEvent, FaultKind

ATTEMPTS = ("ATTEMPT_SUCCEEDED", "ATTEMPT_FAILED", "ATTEMPT_SKIPPED", "ATTEMPT_CANCELLED")
NODE_MARKS = ("NODE_DISABLED", "NODE_REENABLED")
BREAKER_COLOURS = {"closed": "#cdebd3", "open": "#f5b5b5", "half_open": "#fbe3a1"}
MARK_COLOURS = {
    "ATTEMPT_SUCCEEDED": "#2e9d4a",
    "ATTEMPT_FAILED": "#d62f2f",
    "ATTEMPT_CANCELLED": "#e39b2d",  # lost a connection race: not a failure
}
SKIPPED_COLOUR = "#9a9a9a"
STEP_COLOURS = {"step": "#555555", "step-failed": "#d62f2f"}
# glyphs drawn on a node's breaker band (an alert without a node: on the alert row)
GLYPHS = {
    "NODE_DISABLED": ("\u2716", "node disabled"),
    "NODE_REENABLED": ("\u21bb", "node re-enabled"),
    "OPERATION_FAILED": ("\u2298", "operation refused (no attempt)"),
    "ALERT": ("\u26a0", "alert"),
    "FAULT_FIRED": ("\u26a1", "fault fired (proxy toxic or node)"),
}
ALERT_ROW = 60
AXIS_GAP = 78  # from the axis to the bottom: axis labels, then two legend rows
LEFT, RIGHT, TOP, LANE, BAND, SLOT = 170, 30, 70, 26, 16, 14
TIME_WIDTH = 720.0
MAX_WIDTH = 2400.0  # past this, an axis to scale would be mostly empty: ordinal instead
GAP = SLOT  # ordinal axis: blank space between two instants


@dataclass(frozen=True)
class Layout:
    """Where events go: x per event index, y per lane, breaker band per node."""

    xs: dict[int, float]
    lanes: dict[tuple[str, str], float]
    bands: dict[str, float]
    instants: dict[float, int]  # virtual time -> events drawn at it, in time order
    scale: float  # px per virtual second; 0 on an ordinal axis
    width: float
    height: float

    @property
    def to_scale(self) -> bool:
        return self.scale > 0

    def x_at(self, t: float) -> float:
        """x where the instant ``t`` starts (a step start, an axis tick): before its events."""
        if self.to_scale:
            return LEFT + t * self.scale
        earlier = [n for when, n in self.instants.items() if when < t]
        return LEFT + sum(earlier) * SLOT + len(earlier) * GAP


def marked(e: Event) -> bool:
    """Events that get their own slot on the x axis."""
    kind = str(e.type)
    if kind in (*ATTEMPTS, *NODE_MARKS, "BREAKER_TRANSITION", "ALERT"):
        return True
    return kind == "OPERATION_FAILED" and e.outcome == "refused"


def time_scale(instants: dict[float, int]) -> float:
    """Px per virtual second for an axis to scale, or 0 if it would be wider than allowed."""
    times = sorted(instants)
    end = times[-1] if times else 0.0
    if end <= 0:
        return 0.0  # everything happened at one instant: only the order is left to show
    # each instant's events end a slot before the next instant starts
    fits = max(((instants[a] + 1) * SLOT / (b - a) for a, b in pairwise(times)), default=0.0)
    scale = max(TIME_WIDTH / end, fits)
    return scale if end * scale <= MAX_WIDTH else 0.0


def layout(events: list[Event]) -> Layout:
    instants: dict[float, int] = {}
    for e in events:
        if marked(e):
            instants[e.monotonic] = instants.get(e.monotonic, 0) + 1
    instants = dict(sorted(instants.items()))
    scale = time_scale(instants)
    empty = Layout({}, {}, {}, instants, scale, 0, 0)
    xs: dict[int, float] = {}
    seen: dict[float, int] = {}
    for i, e in enumerate(events):
        if marked(e):
            j = seen[e.monotonic] = seen.get(e.monotonic, 0) + 1
            xs[i] = empty.x_at(e.monotonic) + (j - 1) * SLOT + SLOT / 2
    lanes: dict[tuple[str, str], float] = {}
    bands: dict[str, float] = {}
    y = float(TOP)
    for node in dict.fromkeys(e.node for e in events if e.node):
        bands[node] = y
        y += BAND + 6
        for e in events:
            if e.node == node and e.transport and str(e.type) in ATTEMPTS:
                if (node, e.transport) not in lanes:
                    lanes[(node, e.transport)] = y + LANE / 2
                    y += LANE
        y += 12
    right = max(xs.values(), default=float(LEFT)) + SLOT / 2
    width = max(right, LEFT + TIME_WIDTH) + RIGHT + SLOT
    return Layout(xs, lanes, bands, instants, scale, width, y + 90)


def _esc(text: str) -> str:
    return escape(xml_safe(text))


def _title(text: str) -> str:
    return f"<title>{_esc(text)}</title>"


def _breaker_bands(events: list[Event], lay: Layout) -> list[str]:
    out = []
    for node, y in lay.bands.items():
        state, start = "closed", float(LEFT)
        changes = [
            (lay.xs[i], str(e.data.get("to")))
            for i, e in enumerate(events)
            if e.node == node and e.type == "BREAKER_TRANSITION" and i in lay.xs
        ]
        for x, new in [*changes, (lay.width - RIGHT, "")]:
            colour = BREAKER_COLOURS.get(state, "#dddddd")
            out.append(
                f'<rect x="{start:.1f}" y="{y:.1f}" width="{max(x - start, 1):.1f}" '
                f'height="{BAND}" fill="{colour}" class="breaker-{state}">'
                f"{_title(f'{node} breaker {state}')}</rect>"
            )
            state, start = new, x
        out.append(
            f'<text x="{LEFT - 8}" y="{y + BAND - 4:.1f}" text-anchor="end" '
            f'font-weight="bold" class="row-label">{_esc(node)} breaker</text>'
        )
    return out


def _lanes(lay: Layout) -> list[str]:
    out = []
    for (_, transport), y in lay.lanes.items():
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{lay.width - RIGHT:.1f}" y2="{y:.1f}" '
            f'stroke="#e4e4e4" class="lane"/>'
        )
        out.append(
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" class="lane-label">'
            f"{_esc(transport)}</text>"
        )
    return out


def _describe(e: Event) -> str:
    what = f"t={e.monotonic:g}s {e.node} {e.transport or ''} {e.operation or ''}".strip()
    if e.type == "ATTEMPT_FAILED":
        return f"{what}: {e.error_kind} - {e.error or ''}".rstrip(" -")
    if e.type == "ATTEMPT_SKIPPED":
        return f"{what}: skipped ({e.outcome})"
    if e.type == "ATTEMPT_CANCELLED":
        return f"{what}: cancelled (lost the connection race)"
    if e.type == "BREAKER_TRANSITION":
        return f"{what}: breaker -> {e.data.get('to')} ({e.data.get('reason')})"
    if e.type == "NODE_DISABLED":
        return f"{what}: disabled ({e.outcome}; failed {e.data.get('failed_transports')})"
    return f"{what}: {str(e.type).lower()} {e.outcome or ''}".rstrip()


def _marks(events: list[Event], lay: Layout) -> list[str]:
    out = []
    if any(e.type == "ALERT" and e.node not in lay.bands for e in events):
        out.append(
            f'<text x="{LEFT - 8}" y="{ALERT_ROW + 5}" text-anchor="end" '
            'font-weight="bold" class="row-label">alerts</text>'
        )
    for i, e in enumerate(events):
        x = lay.xs.get(i)
        kind, tip = str(e.type), _title(_describe(e))
        if x is None or (e.node is None and kind != "ALERT"):
            continue
        lane = lay.lanes.get((e.node or "", e.transport or ""))
        if kind in ATTEMPTS and lane is not None:
            colour = MARK_COLOURS.get(kind, SKIPPED_COLOUR)
            out.append(
                f'<circle cx="{x:.1f}" cy="{lane:.1f}" r="5" fill="{colour}" '
                f'class="{kind.lower()}">{tip}</circle>'
            )
        elif kind in GLYPHS:
            y = lay.bands[e.node] + BAND / 2 if e.node in lay.bands else ALERT_ROW
            glyph = GLYPHS[kind][0]
            out.append(
                f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" '
                f'class="{kind.lower()}">{glyph}{tip}</text>'
            )
    return out


def _faults(result: ScenarioResult, lay: Layout) -> list[str]:
    """A glyph on the node's band where faults fired, between the engine events around them."""
    groups: dict[tuple[str, int], list[FaultEvent]] = {}
    for f in result.fault_trace:
        if f.kind is FaultKind.FIRED and f.node in lay.bands:
            groups.setdefault((f.node, f.seq), []).append(f)
    out = []
    for (node, seq), fired in groups.items():
        after = [x for i, x in lay.xs.items() if i >= seq]  # the event it came before
        before = [x for i, x in lay.xs.items() if i < seq]
        x = min(after) - SLOT / 2 if after else max(before, default=LEFT) + SLOT / 2
        lines = [f"t={fired[0].t:g}s {node}: {len(fired)} fault decision(s)"]
        lines += [_fired(f) for f in fired[:12]]
        lines += [f"... {len(fired) - 12} more"] if len(fired) > 12 else []
        out.append(
            f'<text x="{x:.1f}" y="{lay.bands[node] + BAND / 2 + 5:.1f}" text-anchor="middle" '
            f'class="fault_fired">{GLYPHS["FAULT_FIRED"][0]}{_title(chr(10).join(lines))}</text>'
        )
    return out


def _fired(f: FaultEvent) -> str:
    where = " ".join(
        str(v) for v in (f.proxy or f.channel, f.connection, f.direction) if v is not None
    )
    at = "" if f.offset is None else f" at {f.offset}" + ("" if f.offset_exact else " (inexact)")
    bit = "" if f.bit is None else f" bit {f.bit}"
    return f"{f.fault} {f.action or ''}{bit}{at} [{where}]"


def _steps(result: ScenarioResult, lay: Layout) -> list[str]:
    """One marker per virtual instant at which steps started, naming the steps (#a-#b)."""
    groups: dict[float, list[int]] = {}
    for i, step in enumerate(result.steps):
        groups.setdefault(step.virtual_time, []).append(i)
    out, last_x, row = [], -1e9, 0
    for t, members in groups.items():
        steps = [result.steps[i] for i in members]
        x = lay.x_at(t)
        row = row + 1 if x - last_x < 120 else 0
        last_x = x
        y = 34 + (row % 2) * 13
        kind = "step-failed" if any(not s.ok for s in steps) else "step"
        colour = STEP_COLOURS[kind]
        first, last = steps[0].index, steps[-1].index
        label = f"steps #{first}" if first == last else f"steps #{first}-#{last}"
        tip = "\n".join(
            f"#{s.index} t={s.virtual_time:g}s {'ok' if s.ok else 'FAILED'}: {s.description}"
            + (f" -> {s.detail}" if s.detail else "")
            for s in steps
        )
        out.append(
            f'<g class="{kind}"><line x1="{x:.1f}" y1="{y + 3}" x2="{x:.1f}" '
            f'y2="{lay.height - AXIS_GAP:.1f}" stroke="{colour}" stroke-dasharray="3,3" '
            f'stroke-opacity="0.6"/><text x="{x + 3:.1f}" y="{y}" fill="{colour}">'
            f"{label}{_title(tip)}</text></g>"
        )
    return out


def _failovers(events: list[Event], lay: Layout) -> list[str]:
    """A thin line through the attempts of one operation: the failover path."""
    out: list[str] = []
    open_ops: dict[str, list[tuple[float, float]]] = {}
    for i, e in enumerate(events):
        if e.node is None:
            continue
        lane = lay.lanes.get((e.node, e.transport or ""))
        if str(e.type) in ATTEMPTS[:2] and lane is not None and i in lay.xs:
            open_ops.setdefault(e.node, []).append((lay.xs[i], lane))
        elif e.type in ("OPERATION_SUCCEEDED", "OPERATION_FAILED"):
            points = open_ops.pop(e.node, [])
            if len(points) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="#888888" '
                    f'stroke-width="1" class="failover"/>'
                )
    return out


def _axis(events: list[Event], lay: Layout) -> list[str]:
    y = lay.height - AXIS_GAP
    out = [f'<line x1="{LEFT}" y1="{y}" x2="{lay.width - RIGHT:.1f}" y2="{y}" stroke="#333"/>']
    last_x = -1e9
    for t in sorted({e.monotonic for e in events} | set(lay.instants)):
        x = lay.x_at(t)
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 5}" stroke="#333"/>')
        if x - last_x >= 45:
            out.append(f'<text x="{x:.1f}" y="{y + 18}" text-anchor="middle">{t:g}s</text>')
            last_x = x
    if lay.to_scale:
        label = "virtual time (s, to scale)"
        note = (
            f"{lay.scale:.3g} px per virtual second; the events of one instant follow it "
            f"{SLOT}px apart, in the order they happened"
        )
    else:
        label = "virtual time (s, ordinal)"
        note = (
            "not to scale: instants in order, each labelled with its virtual time; "
            f"its events {SLOT}px apart, in the order they happened"
        )
    out.append(
        f'<text x="{LEFT - 24}" y="{y + 18}" text-anchor="end" class="axis-label">{label}</text>'
    )
    out.append(f'<text x="{LEFT}" y="{y + 32}" fill="#555" class="axis-note">{note}</text>')
    return out


def _legend(lay: Layout) -> list[str]:
    """Every colour and glyph the picture uses, on two rows; each key names (``data-key``)
    the class of the marks it explains."""
    shapes = [
        ("circle", MARK_COLOURS["ATTEMPT_SUCCEEDED"], "attempt_succeeded", "attempt succeeded"),
        ("circle", MARK_COLOURS["ATTEMPT_FAILED"], "attempt_failed", "attempt failed"),
        ("circle", SKIPPED_COLOUR, "attempt_skipped", "attempt skipped"),
        ("circle", MARK_COLOURS["ATTEMPT_CANCELLED"], "attempt_cancelled", "attempt cancelled"),
        *(
            ("rect", colour, f"breaker-{state}", f"breaker {state}")
            for state, colour in BREAKER_COLOURS.items()
        ),
        ("line", "#888888", "failover", "failover path"),
        ("dash", STEP_COLOURS["step"], "step", "steps start"),
        ("dash", STEP_COLOURS["step-failed"], "step-failed", "a step failed"),
    ]
    out, x, y = [], float(LEFT), lay.height - 22
    for shape, colour, key, label in shapes:
        out.append(_legend_shape(shape, colour, x, y, key))
        out.append(f'<text x="{x + 16}" y="{y}" class="legend">{_esc(label)}</text>')
        x += 30 + 6 * len(label)
    x, y = float(LEFT), lay.height - 6
    for kind, (glyph, label) in GLYPHS.items():
        out.append(
            f'<text x="{x + 6}" y="{y}" text-anchor="middle" class="legend-key" '
            f'data-key="{kind.lower()}">{glyph}</text>'
        )
        out.append(f'<text x="{x + 16}" y="{y}" class="legend">{_esc(label)}</text>')
        x += 30 + 6 * len(label)
    return out


def _legend_shape(shape: str, colour: str, x: float, y: float, key: str) -> str:
    tag = f'class="legend-key" data-key="{key}"'
    if shape == "circle":
        return f'<circle cx="{x + 5}" cy="{y - 4}" r="5" fill="{colour}" {tag}/>'
    if shape == "rect":
        return f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colour}" {tag}/>'
    dash = ' stroke-dasharray="3,3"' if shape == "dash" else ""
    return f'<line x1="{x}" y1="{y - 4}" x2="{x + 12}" y2="{y - 4}" stroke="{colour}"{dash} {tag}/>'


def render_svg(result: ScenarioResult) -> str:
    """The whole picture as an SVG document."""
    events = result.events
    lay = layout(events)
    verdict = "passed" if result.passed else "FAILED"
    body = [
        f'<text x="10" y="16" font-weight="bold">{_esc(result.name)} '
        f"(seed {result.seed}, {verdict})</text>",
        *_breaker_bands(events, lay),
        *_lanes(lay),
        *_steps(result, lay),
        *_failovers(events, lay),
        *_marks(events, lay),
        *_faults(result, lay),
        *_axis(events, lay),
        *_legend(lay),
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
        f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" '
        'font-family="sans-serif" font-size="11">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def write_timeline_svg(result: ScenarioResult, path: str | Path) -> Path:
    """Write the scenario's picture to ``path`` (a file, or a directory: NAME.svg in it)."""
    target = Path(path)
    if target.is_dir() or not target.suffix:
        target = target / f"{result.name}.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_svg(result), encoding="utf-8")
    return target


__all__ = ["render_svg", "write_timeline_svg"]
