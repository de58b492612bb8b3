"""The fake node's SFTP (and SCP) server: chrooted to the home, honouring the disk quota."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import cast

import asyncssh

from netfault.simulator.node.faults import NodeFaults, quota_report
from netfault.simulator.node.paths import disk_usage, is_inside


class NodeSFTPServer(asyncssh.SFTPServer):
    """SFTP confined to ``home``: symlinks leading out are refused, writes respect the quota."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], home: Path, faults: NodeFaults):
        super().__init__(chan, chroot=os.fsencode(home))
        self._home = home
        self._faults = faults
        self._full: set[int] = set()  # open files the quota already stopped
        self._base_usage: dict[int, int] = {}

    def map_path(self, path: bytes) -> bytes:
        local: bytes = super().map_path(path)
        if not is_inside(self._home, os.fsdecode(local)):
            raise asyncssh.SFTPPermissionDenied("path leads outside the home directory")
        return local

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        quota = self._faults.disk_quota
        if quota is not None:
            self._check_quota(file_obj, offset + len(data), quota)
        return cast(int, super().write(file_obj, offset, data))

    def _check_quota(self, file_obj: object, end: int, quota: int) -> None:
        fileno = file_obj.fileno()  # type: ignore[attr-defined]
        size = os.fstat(fileno).st_size
        base = self._base_usage.get(id(file_obj))
        if base is None:
            # Usage of everything but this file, measured once per open file.
            base = disk_usage(self._home) - size
            self._base_usage[id(file_obj)] = base
        if base + max(size, end) > quota:
            if id(file_obj) not in self._full:  # once per file, however many writes queued
                self._full.add(id(file_obj))
                self._faults.report(quota_report("no_space", "sftp", offset=quota - base))
            raise asyncssh.SFTPNoSpaceOnFilesystem(
                f"No space left on device (node quota {quota} bytes)"
            )

    def close(self, file_obj: object) -> None:
        self._base_usage.pop(id(file_obj), None)
        self._full.discard(id(file_obj))
        super().close(file_obj)

    def exit(self) -> None:
        # asyncssh's subsystem sends no exit status, which makes OpenSSH's scp exit 1.
        with contextlib.suppress(OSError):
            self.channel.exit(0)
