"""Hosts file loader: nodes, their addresses and their ordered transport lists.

Format (YAML)::

    nodes:                      # optional wrapper (then the only top-level key); a top-level
      node-1:                   # mapping of nodes also works
        hostname: 10.0.0.5      # required: the name alone is never taken as an address
        tailscale_ip: 100.64.0.5
        ssh_port: 22
        ssh_user: ubuntu
        ssh_key: ~/.ssh/id_cluster
        transports:             # optional; when given, not empty (omit it for the default order)
          - {type: p2p, priority: 1}
          - {type: ssh, priority: 2, fallback: true}
          - {type: base64, priority: 3, last_resort: true}
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from netfault.engine.config import TRANSPORT_TYPES, NodeConfig, TransportSpec
from netfault.engine.yamlsrc import Located, load_located

_NODE_FIELDS = {f.name: f for f in fields(NodeConfig)}
_INT_FIELDS = {"ssh_port", "http_port", "p2p_port", "tailscale_ssh_port", "tailscale_http_port"}
_PATH_FIELDS = {"ssh_key", "known_hosts"}
_BOOL_FIELDS = {"allow_absolute_paths"}
_SPEC_TYPES: dict[str, type] = {"type": str, "priority": int, "fallback": bool, "last_resort": bool}


def load_hosts(path: str | Path, text: str | None = None) -> dict[str, NodeConfig]:
    """Read a hosts file; errors name the file, line and key."""
    root = load_located(path, text)
    nodes = root.mapping()
    if "nodes" in nodes:
        others = sorted(set(nodes) - {"nodes"})
        if others:
            raise nodes[others[0]].error(
                f"top-level key beside 'nodes:' (found: {', '.join(others)}); "
                "put every node under 'nodes:' and remove the other keys",
                others[0],
            )
        nodes = nodes["nodes"].mapping("nodes")
    base = Path(path).parent
    return {name: _node(name, entry, base) for name, entry in nodes.items()}


def _node(name: str, entry: Located, base: Path) -> NodeConfig:
    values: dict[str, Any] = {"name": name}
    for key, item in entry.mapping(name).items():
        where = f"{name}.{key}"
        if key == "transports":
            specs = item.sequence(where)
            if not specs:
                raise item.error("empty list; omit 'transports' for the default order", where)
            values[key] = tuple(_spec(spec, f"{where}[{i}]") for i, spec in enumerate(specs))
        elif key not in _NODE_FIELDS or key == "name":
            known = ", ".join(sorted(set(_NODE_FIELDS) - {"name"}))
            raise item.error(f"unknown key (known: {known})", where)
        else:
            values[key] = _scalar(key, item, where, base)
    if values.get("hostname") is None:
        raise entry.error("missing required key 'hostname' (the node's address)", name)
    return NodeConfig(**values)


def _scalar(key: str, item: Located, where: str, base: Path) -> Any:
    value = item.value
    if value is None:
        return None
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise item.error(f"expected a port number 1-65535, got {value!r}", where)
        return value
    if key in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise item.error(f"expected true or false, got {value!r}", where)
        return value
    if isinstance(value, dict | list):
        raise item.error("expected a single value", where)
    if key in _PATH_FIELDS:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else base / p
    return str(value)


def _spec(item: Located, where: str) -> TransportSpec:
    values: dict[str, Any] = {}
    for key, sub in item.mapping(where).items():
        expected = _SPEC_TYPES.get(key)
        if expected is None:
            raise sub.error(f"unknown key (known: {', '.join(_SPEC_TYPES)})", f"{where}.{key}")
        if not isinstance(sub.value, expected) or (expected is int and isinstance(sub.value, bool)):
            raise sub.error(f"expected {expected.__name__}, got {sub.value!r}", f"{where}.{key}")
        values[key] = sub.value
    if "type" not in values:
        raise item.error("missing required key 'type'", where)
    if values["type"] not in TRANSPORT_TYPES:
        raise item.mapping()["type"].error(
            f"unknown transport {values['type']!r} (known: {', '.join(TRANSPORT_TYPES)})",
            f"{where}.type",
        )
    return TransportSpec(**values)
