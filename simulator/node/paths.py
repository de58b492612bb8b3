"""Confining client-supplied paths to a node's home directory, and measuring its usage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from netfault.simulator.node.errors import PathOutsideHome


def is_inside(root: Path, path: str | os.PathLike[str]) -> bool:
    """True when ``path``, with every symlink resolved, is ``root`` or lies under it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def resolve_in_home(home: Path, relative: str) -> Path:
    """Map a client path (relative to ``home``) to a local path, refusing any escape.

    Refused: empty, absolute, NUL, any ``..`` component, and anything a symlink (on the
    path or the file itself) leads outside ``home``.
    """
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        raise PathOutsideHome(f"path {relative!r} must be relative to the node's home")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise PathOutsideHome(f"path {relative!r} escapes the node's home")
    path = home.joinpath(*parts)
    if not is_inside(home, path):
        raise PathOutsideHome(f"path {relative!r} leads outside the node's home via a symlink")
    return path


AGENT_PART_SUFFIX = ".netfault-partial"


def partial_path(final: Path) -> Path:
    """Where a resumable upload to ``final`` accumulates before the atomic rename."""
    return final.with_name(f".{final.name}{AGENT_PART_SUFFIX}")


def disk_usage(root: Path) -> int:
    """Total size in bytes of the regular files under ``root`` (symlinks not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def file_size(path: Path) -> int:
    """Size of the regular file at ``path``, 0 when there is none."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0
