"""Named faults, each mapped in one place to proxy toxics or node switches.

A fault targets a node, optionally narrowed to a route (``hostname``/``tailscale``) and a
service (``ssh``/``http``/``p2p``). Proxy-level faults go through the Toxiproxy HTTP API
with the ``toxiproxy-python`` client, so the same code drives the real Toxiproxy; node-level
faults flip switches on the fake node. ``FaultController.clear_all()`` undoes everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netfault.simulator.node.faults import (
    CHANNEL_TRANSPORTS,
    MANGLING_MODES,
    ChannelMangling,
    ChannelReset,
)

SERVICES = ("ssh", "http", "p2p")
LEVELS = ("tcp", "ssh")
ROUTES = ("hostname", "tailscale")
FLAP_SCHEDULES = ("connections", "wall_clock")


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    # a scenario may write it as a percentage of the operation's size ("60%")
    relative: bool = False


@dataclass(frozen=True)
class FaultKind:
    """One named fault: its parameters and whether it acts on proxies or on the node."""

    name: str
    level: str  # "proxy" | "node" | "mixed"
    help: str
    params: dict[str, Param] = field(default_factory=dict)


FAULT_KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in [
        FaultKind(
            "reset",
            "mixed",
            "connections reset (RST); after_bytes cuts each connection "
            "after that many bytes; level=ssh resets only channels carrying binary data, "
            "or with transport: only the exec channels of that transport",
            {
                "after_bytes": Param(
                    int, 0, "bytes passed before the reset (or N% of the transfer)", relative=True
                ),
                "level": Param(str, "tcp", "tcp | ssh", LEVELS),
                "transport": Param(
                    str, None, "level ssh: only this transport's channels", CHANNEL_TRANSPORTS
                ),
            },
        ),
        FaultKind(
            "corrupt_binary",
            "mixed",
            "bytes damaged in transit (tcp: seeded bit flips; ssh: the SSH channel rewrites "
            "bytes in a mode: strip_high_bit (7-bit path), lf_to_crlf, pty (forced terminal))",
            {
                "level": Param(str, "tcp", "tcp | ssh", LEVELS),
                "probability": Param(
                    float, None, "per-byte chance (default: tcp 0.001, ssh 1: every byte)"
                ),
                "mode": Param(str, None, "level ssh: how bytes are rewritten", MANGLING_MODES),
                "transport": Param(
                    str, None, "level ssh: only this transport's channels", CHANNEL_TRANSPORTS
                ),
            },
        ),
        FaultKind(
            "timeout",
            "proxy",
            "blackhole: data dropped, connection held (timeout_ms > 0 closes it after that long)",
            {
                "timeout_ms": Param(int, 0, "0 holds forever"),
            },
        ),
        FaultKind(
            "latency",
            "proxy",
            "each chunk delayed",
            {
                "latency_ms": Param(int, 100, "delay"),
                "jitter_ms": Param(int, 0, "+- jitter"),
            },
        ),
        FaultKind("bandwidth", "proxy", "rate limit", {"rate_kbps": Param(int, 100, "KB/s")}),
        FaultKind("down", "proxy", "connections refused (proxy disabled)"),
        FaultKind("slow_close", "proxy", "close delayed", {"delay_ms": Param(int, 1000, "delay")}),
        FaultKind(
            "flapping",
            "proxy",
            "route goes down and up: by default in spells counted in connections (each "
            "connection's fate, passed, refused or cut at a seeded offset, fixed by the seed); "
            "schedule: wall_clock toggles the proxy on a timer instead (timing-dependent)",
            {
                "schedule": Param(str, "connections", "connections | wall_clock", FLAP_SCHEDULES),
                "up_connections": Param(int, None, "mean connections per up spell (default 3)"),
                "down_connections": Param(
                    int, None, "mean connections refused per down spell (default 2)"
                ),
                "cut_bytes": Param(
                    int,
                    None,
                    "the last connection of an up spell is reset within this many bytes "
                    "from the client (default 32768; 0: never cut)",
                ),
                "period_s": Param(float, None, "wall_clock: mean seconds per state (default 0.5)"),
            },
        ),
        FaultKind("auth_refused", "node", "SSH authentication refused"),
        FaultKind("host_key_changed", "node", "the node presents a new SSH host key"),
        FaultKind(
            "disk_full",
            "node",
            "writes fail with ENOSPC past a quota",
            {
                "quota_bytes": Param(int, 0, "bytes of home usage allowed"),
            },
        ),
        FaultKind("http_down", "node", "HTTP agent not listening"),
        FaultKind("http_5xx", "node", "HTTP agent answers 503"),
        FaultKind("http_hang", "node", "HTTP agent accepts and never answers"),
    ]
}


class FaultError(ValueError):
    """A fault was named or parameterised wrongly."""


class FaultParamError(FaultError):
    """One parameter of a fault is wrong; ``param`` names it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def check_param(kind: str, name: str, value: Any) -> Any:
    """One parameter of fault ``kind``, converted; FaultParamError naming it when wrong."""
    spec = FAULT_KINDS[kind]
    param = spec.params.get(name)
    if param is None:
        known = ", ".join(spec.params) or "none"
        raise FaultParamError(f"fault {kind} has no parameter {name!r} (known: {known})", name)
    if value is None and param.default is None:
        return None  # "not set": the fault's own default applies
    if param.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, param.kind) or isinstance(value, bool) != (param.kind is bool):
        raise FaultParamError(
            f"fault {kind}: {name} must be {param.kind.__name__}, got {value!r}", name
        )
    if param.choices and value not in param.choices:
        raise FaultParamError(
            f"fault {kind}: {name} {value!r} is not one of: {', '.join(param.choices)}", name
        )
    return value


SSH_ONLY = ("mode", "transport")


FLAP_BY_CONNECTIONS = ("up_connections", "down_connections", "cut_bytes")


def check_combination(kind: str, params: dict[str, Any]) -> None:
    """Parameters that only mean something together (mode/transport need level: ssh; a
    flapping schedule's own parameters)."""
    if kind == "flapping":
        _check_flapping(params)
    for name in SSH_ONLY:
        if params.get(name) is not None and params.get("level", "tcp") != "ssh":
            raise FaultParamError(
                f"fault {kind}: {name} acts on the node's SSH channels; add level: ssh", name
            )


def _check_flapping(params: dict[str, Any]) -> None:
    wall_clock = params.get("schedule") == "wall_clock"
    for name in FLAP_BY_CONNECTIONS:
        if wall_clock and params.get(name) is not None:
            raise FaultParamError(
                f"fault flapping: {name} counts connections; drop it or schedule: wall_clock", name
            )
        least = 0 if name == "cut_bytes" else 1
        if isinstance(params.get(name), int) and params[name] < least:
            raise FaultParamError(f"fault flapping: {name} must be at least {least}", name)
    if params.get("period_s") is not None and not wall_clock:
        raise FaultParamError(
            "fault flapping: period_s times a wall-clock schedule; add schedule: wall_clock",
            "period_s",
        )
    if isinstance(params.get("period_s"), float) and params["period_s"] <= 0:
        raise FaultParamError("fault flapping: period_s must be above 0", "period_s")


COUNTS_CONNECTIONS = ("reset", "corrupt_binary", "timeout", "latency", "bandwidth", "slow_close")


def check_connections(kind: str, params: dict[str, Any]) -> None:
    """``for_connections`` needs something that sees the connections: the proxy counts its
    accepts for a fault made of toxics, the node its SSH connections and HTTP requests for a
    fault inside it (see ``simulator/node/fault_scope.py``)."""
    if kind == "http_down":
        why = "closes the agent's listener, so the node sees no connection to count"
    elif node_level(kind, params) or kind in COUNTS_CONNECTIONS:
        return
    elif kind == "flapping":
        why = "keeps its own count of connections (up_connections, down_connections)"
    else:
        why = "switches the proxy off, so it sees no connection to count"
    supported = ", ".join(COUNTS_CONNECTIONS)
    raise FaultParamError(
        f"fault {kind} {why}: for_connections works on the proxy faults ({supported}) and "
        "the node faults but http_down; use for_operations",
        "for_connections",
    )


def check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Known fault, known parameters of the right type and value; defaults filled in."""
    spec = FAULT_KINDS.get(kind)
    if spec is None:
        raise FaultError(f"unknown fault {kind!r} (known: {', '.join(FAULT_KINDS)})")
    for name, value in params.items():
        check_param(kind, name, value)
    check_combination(kind, params)
    return {
        name: check_param(kind, name, params[name]) if name in params else param.default
        for name, param in spec.params.items()
    }


@dataclass(frozen=True)
class ToxicPlan:
    type: str
    stream: str
    attributes: dict[str, Any]


def toxics_for(kind: str, params: dict[str, Any]) -> list[ToxicPlan] | None:
    """The toxics a proxy-level fault needs on each affected proxy (None: not toxics)."""
    both = ("upstream", "downstream")
    if kind == "reset" and params["level"] == "tcp":
        if params["after_bytes"] > 0:
            return [ToxicPlan("limit_data", s, {"bytes": params["after_bytes"]}) for s in both]
        return [ToxicPlan("reset_peer", s, {"timeout": 0}) for s in both]
    if kind == "corrupt_binary" and params["level"] == "tcp":
        chance = 0.001 if params["probability"] is None else params["probability"]
        return [ToxicPlan("corrupt", s, {"probability": chance}) for s in both]
    if kind == "timeout":
        return [ToxicPlan("timeout", s, {"timeout": params["timeout_ms"]}) for s in both]
    if kind == "latency":
        attrs = {"latency": params["latency_ms"], "jitter": params["jitter_ms"]}
        return [ToxicPlan("latency", "downstream", attrs)]
    if kind == "bandwidth":
        return [ToxicPlan("bandwidth", s, {"rate": params["rate_kbps"]}) for s in both]
    if kind == "slow_close":
        return [ToxicPlan("slow_close", "downstream", {"delay": params["delay_ms"]})]
    if kind == "flapping" and params["schedule"] == "connections":
        # one toxic decides for the whole connection; it counts the client's bytes
        return [ToxicPlan("flap", "upstream", flap_attributes(params))]
    return None


FLAP_DEFAULTS = {"up_connections": 3, "down_connections": 2, "cut_bytes": 32768, "period_s": 0.5}


def flapping_value(params: dict[str, Any], name: str) -> Any:
    """A flapping parameter, or its schedule's default when not set."""
    value = params.get(name)
    return FLAP_DEFAULTS[name] if value is None else value


def flap_attributes(params: dict[str, Any]) -> dict[str, int]:
    """The flap toxic's attributes for a flapping fault counted in connections."""
    return {
        "up": flapping_value(params, "up_connections"),
        "down": flapping_value(params, "down_connections"),
        "cut": flapping_value(params, "cut_bytes"),
    }


Switch = Callable[[Any], Callable[[], None]]


def _setter(attr: str, value: Any, connections: int | None, record: dict[str, object]) -> Switch:
    """Set ``attr`` on a node's faults; with ``connections``, only for that many of the
    node's connections (the node counts them and sets it back by itself)."""

    def apply(faults: Any) -> Callable[[], None]:
        old = getattr(faults, attr)
        restored = False

        def restore() -> None:  # once: a later fault may have set it since
            nonlocal restored
            if not restored:
                restored = True
                setattr(faults, attr, old)

        setattr(faults, attr, value)
        if connections is None:
            return restore
        try:
            drop = faults.scope(attr, connections, restore, record)
        except BaseException:
            restore()
            raise

        def undo() -> None:
            drop()
            restore()

        return undo

    return apply


def _ssh_setting(kind: str, params: dict[str, Any], seed: int) -> tuple[str, Any]:
    """The classic SSH faults (every binary channel, every byte) keep the node's channel-wide
    switches; a mode, a probability below 1 or a transport goes to the exec-channel faults."""
    if kind == "reset":
        if params.get("transport") is not None:
            return "channel_reset", ChannelReset(params["after_bytes"], params["transport"])
        return "binary_reset_after", params["after_bytes"]
    mangling = ChannelMangling(
        params.get("mode") or "strip_high_bit",
        1.0 if params.get("probability") is None else params["probability"],
        params.get("transport"),
        seed,
    )
    if (mangling.mode, mangling.probability, mangling.transport) == ("strip_high_bit", 1, None):
        return "binary_mangling", True
    return "channel_mangling", mangling


def node_setting(kind: str, params: dict[str, Any], seed: int = 0) -> tuple[str, Any] | None:
    """For a node-level fault: the NodeFaults switch it sets and the value (None: not one)."""
    if kind in ("reset", "corrupt_binary") and params["level"] == "ssh":
        return _ssh_setting(kind, params, seed)
    table: dict[str, tuple[str, Any]] = {
        "auth_refused": ("auth_refused", True),
        "host_key_changed": ("host_key_changed", True),
        "disk_full": ("disk_quota", params.get("quota_bytes")),
        "http_down": ("http_mode", "down"),
        "http_5xx": ("http_mode", "5xx"),
        "http_hang": ("http_mode", "hang"),
    }
    return table.get(kind)


def node_switch(
    kind: str,
    params: dict[str, Any],
    seed: int = 0,
    connections: int | None = None,
    record: dict[str, object] | None = None,
) -> Switch | None:
    """For a node-level fault: a function that sets it on NodeFaults and returns its undo;
    ``connections``: it ends by itself after that many connections, reported with ``record``."""
    setting = node_setting(kind, params, seed)
    if setting is None:
        return None
    return _setter(*setting, connections, record or {"fault": kind})


def node_level(kind: str, params: dict[str, Any]) -> bool:
    """Whether the fault acts inside the node (so it cannot be narrowed to a route)."""
    return FAULT_KINDS[kind].level == "node" or params.get("level") == "ssh"
