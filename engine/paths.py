"""Where a remote path may point: one rule for every transport, checked before any runs.

A remote path is relative to the node's ``base_path``. It is normalised (``a/./b`` ->
``a/b``, ``a/../b`` -> ``b``); a path that is absolute, or whose ``..`` climbs out of
``base_path``, is refused with ``BadRemotePathError``, as is one no transport can represent
(empty, ending in ``/``, naming ``.``, or containing NUL or a newline). Two ways to allow
absolute paths, both explicit:

* a node with ``base_path=""`` has no base: its paths are used as given (relative ones from
  the login directory), as the script API does;
* ``NodeConfig(allow_absolute_paths=True)`` keeps relative paths confined to ``base_path``
  but lets an absolute path through unchanged. The http transport cannot reach outside the
  agent's home, so it refuses an absolute path with the same error.
"""

from __future__ import annotations

import posixpath

from netfault.engine.config import NodeConfig
from netfault.engine.errors import BadRemotePathError

_UNREPRESENTABLE = ("\x00", "\n", "\r")


def confine_remote_path(node: NodeConfig, remote_path: str) -> str:
    """``remote_path`` normalised and checked against ``node``'s base path (see module doc).

    Returns the path the transports join under ``base_path``; raises ``BadRemotePathError``.
    """
    if (
        not remote_path
        or remote_path.endswith("/")
        or any(c in remote_path for c in _UNREPRESENTABLE)
    ):
        why = "must name a file (not empty, no trailing '/', no NUL or newline)"
        raise _refuse(node, remote_path, why)
    absolute = remote_path.startswith("/")
    if not node.base_path or (absolute and node.allow_absolute_paths):
        return remote_path
    if absolute:
        raise _refuse(
            node,
            remote_path,
            f"is absolute; give it relative to the node's base_path {node.base_path!r} "
            "(or set allow_absolute_paths on the node)",
        )
    normal = posixpath.normpath(remote_path)
    if normal == ".." or normal.startswith("../"):
        raise _refuse(node, remote_path, f"leaves the node's base_path {node.base_path!r}")
    if normal == ".":
        raise _refuse(node, remote_path, "names the base directory, not a file")
    return normal


def _refuse(node: NodeConfig, remote_path: str, why: str) -> BadRemotePathError:
    return BadRemotePathError(f"remote path {remote_path!r} on {node.name} {why}", node=node.name)


__all__ = ["confine_remote_path"]
